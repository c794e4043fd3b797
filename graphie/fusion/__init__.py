"""Fusion components: where the word states meet the post's image representation.

Components are chosen by name from :data:`graphie.registry.fusions` (the model config's
``fusion``, options in ``fusion_options``): ``none`` (text only), ``relevance_gate`` (RpBERT's
text–image relevance gate, trained with MAF's swapped-image negatives), ``umt`` (UMT's
cross-modal transformers, visual gate and text-only span detection), ``hybrid`` (MKGformer's
text-prefixed image attention and token–unit similarity fed into a feed-forward layer),
``experts`` (each image source an expert, mixed per post by a gate on the text: VisualPT-MoE,
MoRe's mixture of experts) and ``visual_prefix`` (HVPNet's gated visual prefixes in the
self-attention of every encoder layer: the one component that acts inside the encoder). Each reads
the same :class:`~graphie.fusion.base.ImageRepresentation`: scene-graph object states and/or the
context segment's sub-word states::

    fusion = fusions.create("relevance_gate", dim=384)
    out = fusion(text, text_mask, image)   # states [B, n, d], loss, diagnostics {"gate": [B]}
    loss = task_loss + out.loss            # already weighted by the component's options
"""

# importing the modules registers "none", "relevance_gate", "umt", "hybrid", "experts" and "visual_prefix"
from .base import CrossAttention, Fusion, FusionOutput, ImageRepresentation, LayerPrefixes, NoFusion, create_fusion
from .experts import ExpertMixture
from .hybrid import HybridFusion
from .prefix import VisualPrefix
from .relevance import RelevanceGate
from .umt import UMTFusion

__all__ = ["CrossAttention", "ExpertMixture", "Fusion", "FusionOutput", "HybridFusion", "ImageRepresentation",
           "LayerPrefixes", "NoFusion", "RelevanceGate", "UMTFusion", "VisualPrefix", "create_fusion"]
