"""Cross-graph alignment: carry scene-graph evidence into token states.

Modules are chosen by name from :data:`graphie.registry.alignments`: ``none`` (text only),
``mega`` (structural + semantic alignment), ``eega`` (optimal-transport node and
Gromov-Wasserstein edge alignment, then cross-attention) and ``routed`` (EEGA's graph loss on
projection heads with an image-swap contrast, and token → object routing with a null slot)::

    alignment = alignments.create("eega", dim=384, alpha=0.4)
    out = alignment(text, text_mask, text_adj, objects, object_mask, object_adj)
    loss = task_loss + 0.6 * out.loss  # λ, EEGA's graph-loss weight
"""

# importing the modules registers "none", "mega", "eega" and "routed"
from .base import Alignment, AlignmentOutput, NoAlignment
from .eega import EEGAAlignment
from .mega import MEGAAlignment
from .routed import RoutedAlignment

__all__ = ["Alignment", "AlignmentOutput", "NoAlignment", "MEGAAlignment", "EEGAAlignment", "RoutedAlignment"]
