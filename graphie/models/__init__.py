"""graphie's trainable core: encoder, dependency-graph attribute transformer, scene-graph
encoder, multi-channel pair features, heads (``bio`` tags with optional CRF, ``grid`` word-pair
tagging, ``marker`` pairs), composed in :class:`GraphieModel`; and the model's data road, posts
-> :class:`Batch` (:mod:`graphie.models.batching`) -> :class:`ModelOutput` -> extractions
(:mod:`graphie.models.decoding`)."""

from .attribute import AttributeTransformer, AttributeTransformerConv
from .batching import Batch, Collator, Example, make_examples, parse_posts
from .bio import BIOTagger
from .config import ModelConfig
from .decoding import ModelOutput, attach_evidence, decode
from .encoder import TransformerEncoder, resolve_encoder
from .heads import Head
from .grid import GridHead, decode_entities, decode_relations, encode_entities, encode_relations
from .marker import MarkerHead, mark_pair
from .model import GraphieModel
from .pair_features import CooccurrenceStats, MultiChannelPairFeatures
from .scene_encoder import SceneBatch, SceneEncoder

__all__ = [
    "AttributeTransformer",
    "AttributeTransformerConv",
    "BIOTagger",
    "Batch",
    "Collator",
    "CooccurrenceStats",
    "Example",
    "GraphieModel",
    "GridHead",
    "Head",
    "MarkerHead",
    "ModelConfig",
    "ModelOutput",
    "MultiChannelPairFeatures",
    "SceneBatch",
    "SceneEncoder",
    "TransformerEncoder",
    "attach_evidence",
    "decode",
    "decode_entities",
    "decode_relations",
    "encode_entities",
    "encode_relations",
    "make_examples",
    "mark_pair",
    "parse_posts",
    "resolve_encoder",
]
