r"""MKGformer's hybrid transformer (Chen et al., SIGIR 2022): the image side attends over the text's
keys and values as a prefix to its own (prefix-guided interaction), and each word's feed-forward
layer reads the image units most similar to it (correlation-aware fusion)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import fusions
from .base import CrossAttention, Fusion, FusionOutput, ImageRepresentation, key_padding


@fusions.register("hybrid")
class HybridFusion(Fusion):
    r"""Prefix-guided interaction and correlation-aware fusion of MKGformer (Chen et al., SIGIR 2022).

    .. math::
        U' = \mathrm{LN}\Big(U + \mathrm{MHA}\big(U,\ [H; U],\ [H; U]\big)\Big),\qquad U'' = \mathrm{LN}(U' + \mathrm{FFN}_v(U'))

        S_{ij} = \operatorname{softmax}_{j}\Big(\frac{h_i^\top u''_j}{\sqrt d}\Big),\qquad
        h'_i = \mathrm{LN}\Big(h_i + \mathrm{FFN}_t\big(h_i + W_f \textstyle\sum_j S_{ij}\, u''_j\big)\Big)

    :math:`H` are the word states, :math:`U` the post's image units (scene-graph objects, context
    sub-words). The first line is the prefix-guided interaction (PGI): the image units' attention
    reads the words' keys and values in front of their own. The second is the correlation-aware
    fusion (CAF): the token–unit similarity :math:`S` gathers the units that resemble each word
    into the input of the word's feed-forward layer. The diagnostic ``focus`` is the mean over a
    post's words of :math:`\max_j S_{ij}` (1: every word reads one unit; :math:`1/m`: uniform).

    Args:
        dim (int): width of word states and image units.
        heads (int): attention heads of the image side (default 4).
        dropout (float): attention, residual and FFN dropout (default 0.1).

    Shapes:
        - **text:** :math:`(B, n, d)`, **text_mask:** :math:`(B, n)` (True = real word)
        - **image.states:** :math:`(B, m, d)`, **image.mask:** :math:`(B, m)`
        - **output:** word states :math:`(B, n, d)`; loss 0 (MKGformer has no auxiliary loss);
          diagnostic ``focus`` :math:`(B)` (0 for posts without image units)

    Deviations from the paper:
        - MKGformer runs PGI and CAF inside the last three layers of both a BERT and a ViT (text
          prefixes in the ViT's self-attention, patch similarity in BERT's own FFN); here one
          hybrid layer runs after the text encoder, with its own FFNs, on image units that are
          scene-graph objects and context sub-words rather than ViT patches.
        - the similarity :math:`S` is scaled by :math:`1/\sqrt d` (MKGformer's is unscaled) so that
          it does not saturate at the start of training.
    """

    diagnostics = ("focus",)

    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.1):
        super().__init__(dim)
        self.image_side = CrossAttention(dim, heads, dropout=dropout)
        self.fuse_units = nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def fuse(self, text: Tensor, text_mask: Tensor, image: ImageRepresentation) -> FusionOutput:
        units = image.states.to(text.dtype)
        # PGI: units attend over [words; units]
        ignore = torch.cat([~text_mask, key_padding(image.mask)], 1)
        units = self.image_side(units, torch.cat([text, units], 1), ignore)
        # CAF: token–unit similarity into the words' FFN
        scores = (text @ units.transpose(1, 2)).float() / self.dim ** 0.5  # [B, n, m]
        scores = scores.masked_fill(key_padding(image.mask)[:, None, :], torch.finfo(scores.dtype).min)
        similarity = scores.softmax(-1)
        gathered = similarity.to(text.dtype) @ units
        states = self.norm(text + self.dropout(self.ffn(text + self.fuse_units(gathered))))
        words = text_mask.to(similarity.dtype)
        focus = (similarity.amax(-1) * words).sum(-1) / words.sum(-1).clamp(min=1.0)
        return FusionOutput(states, text.new_zeros((), dtype=torch.float32), {"focus": focus.detach()})
