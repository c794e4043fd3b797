"""graphie's trainable core: encoder, dependency-graph attribute transformer, multi-channel
pair features, heads (``bio`` tags with optional CRF, ``grid`` word-pair tagging, ``marker`` pairs), composed in :class:`GraphieModel`."""

from .attribute import AttributeTransformer, AttributeTransformerConv
from .config import ModelConfig
from .bio import BIOTagger
from .encoder import TransformerEncoder, resolve_encoder
from .grid import GridHead, decode_entities, decode_relations, encode_entities, encode_relations
from .marker import MarkerHead, mark_pair
from .model import GraphieModel, ModelOutput
from .pair_features import CooccurrenceStats, MultiChannelPairFeatures

__all__ = [
    "AttributeTransformer",
    "AttributeTransformerConv",
    "BIOTagger",
    "CooccurrenceStats",
    "GraphieModel",
    "GridHead",
    "MarkerHead",
    "ModelConfig",
    "ModelOutput",
    "MultiChannelPairFeatures",
    "TransformerEncoder",
    "decode_entities",
    "decode_relations",
    "encode_entities",
    "encode_relations",
    "mark_pair",
    "resolve_encoder",
]
