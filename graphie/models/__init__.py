"""graphie's trainable core: encoder, dependency-graph attribute transformer, multi-channel
pair features, word-pair grid tagging (or CRF) head, composed in :class:`GraphieModel`."""

from .attribute import AttributeTransformer, AttributeTransformerConv
from .config import ModelConfig
from .crf import CRFTagger
from .encoder import TransformerEncoder, resolve_encoder
from .grid import GridHead, decode_entities, decode_relations, encode_entities, encode_relations
from .model import GraphieModel, ModelOutput
from .pair_features import CooccurrenceStats, MultiChannelPairFeatures

__all__ = [
    "AttributeTransformer",
    "AttributeTransformerConv",
    "CRFTagger",
    "CooccurrenceStats",
    "GraphieModel",
    "GridHead",
    "ModelConfig",
    "ModelOutput",
    "MultiChannelPairFeatures",
    "TransformerEncoder",
    "decode_entities",
    "decode_relations",
    "encode_entities",
    "encode_relations",
    "resolve_encoder",
]
