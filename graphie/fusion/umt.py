r"""UMT (Yu et al., ACL 2020): cross-modal transformers give image-aware word states and
word-aware image states, a visual gate per word weighs the latter, and an auxiliary text-only
span detection keeps the text side honest."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InvalidInputError
from ..registry import fusions
from .base import CrossAttention, Fusion, FusionOutput, ImageRepresentation, key_padding

SPAN_TAGS = 3  # O, B, I


@fusions.register("umt")
class UMTFusion(Fusion):
    r"""Unified multimodal transformer's interaction module and span detection (Yu et al., ACL 2020).

    .. math::
        P = \mathrm{CMT}(U, H),\qquad A = \mathrm{CMT}(H, P),\qquad Q = \mathrm{CMT}(H, U)

        g_i = \sigma\big(W_a a_i + W_q q_i\big),\qquad b_i = g_i \odot q_i,\qquad h'_i = a_i + b_i

        \mathcal{L}_{sd} = \lambda \cdot \mathrm{CE}\big(W_s h_i,\ y_i\big),\quad y_i \in \{O, B, I\}

    :math:`H` are the word states, :math:`U` the post's image units (scene-graph objects, context
    sub-words); :math:`\mathrm{CMT}(X, Y)` is a cross-modal transformer block, :math:`X` attending
    over :math:`Y` (:class:`~graphie.fusion.base.CrossAttention`). :math:`P`: image units that read
    the words; :math:`A`: image-aware word states (words that read :math:`P`); :math:`Q`:
    word-aware visual states (words that read the image units); :math:`g_i`: the visual gate,
    elementwise. :math:`\mathcal{L}_{sd}` is the auxiliary span detection on the *text* states
    :math:`h_i` (every post, with or without an image), over the words whose untyped tag
    :math:`y_i` is known. The diagnostic ``gate`` is the mean of :math:`g_i` over a post's words.

    Args:
        dim (int): width of word states and image units.
        heads (int): attention heads of each block (default 4).
        span_loss_weight (float): :math:`\lambda` (default 0.5; 0 turns span detection off).
        ffn (bool): give each of the three blocks its feed-forward layer (default True, as UMT);
            ``False`` keeps attention, residual and LayerNorm only: on MiniLM the three FFNs of
            width ``4 * dim`` were measured at about a quarter of a text-only training step
            (docs/fusion.md, *Cost*).
        dropout (float): attention, residual and FFN dropout (default 0.1).

    Shapes:
        - **text:** :math:`(B, n, d)`, **text_mask:** :math:`(B, n)` (True = real word)
        - **image.states:** :math:`(B, m, d)`, **image.mask:** :math:`(B, m)`
        - **spans:** :math:`(B, n)` long in :math:`\{0, 1, 2, -100\}` (training only; −100 = unknown)
        - **output:** word states :math:`(B, n, d)`; scalar float32 :math:`\mathcal{L}_{sd}`;
          diagnostic ``gate`` :math:`(B)` (0 for posts without image units)

    Deviations from the paper:
        - UMT concatenates :math:`[a_i; b_i]` for its CRF; here :math:`h'_i = a_i + b_i` keeps the
          width :math:`d` that every head reads (a linear layer on the concatenation is a sum of
          two projections; the head's own layer plays that part).
        - UMT's span detection runs on a separate text-only BERT and its tags constrain the MNER
          CRF through a conversion matrix; here it is a linear layer on the shared encoder's word
          states, trained jointly, and no conversion matrix ties it to the head's decoding (graphie's
          heads are not all CRFs). It is learnt from posts whose entities are all annotated (tasks
          ``ner`` and ``jmere``); marker rows and ``mnre`` posts give no span tags.
        - UMT's image units are ResNet grid regions; here they are scene-graph objects and context
          sub-words (:class:`~graphie.fusion.base.ImageRepresentation`).
    """

    diagnostics = ("gate",)
    reads_spans = True

    def __init__(self, dim: int, heads: int = 4, span_loss_weight: float = 0.5, ffn: bool = True,
                 dropout: float = 0.1):
        super().__init__(dim)
        if span_loss_weight < 0:
            raise InvalidInputError(f"umt span_loss_weight must be >= 0, got {span_loss_weight}")
        self.span_loss_weight = span_loss_weight
        self.image_reads_text = CrossAttention(dim, heads, ffn=ffn, dropout=dropout)  # P
        self.text_reads_image_aware = CrossAttention(dim, heads, ffn=ffn, dropout=dropout)  # A
        self.text_reads_image = CrossAttention(dim, heads, ffn=ffn, dropout=dropout)  # Q
        self.gate_a = nn.Linear(dim, dim)
        self.gate_q = nn.Linear(dim, dim, bias=False)
        self.spans = nn.Linear(dim, SPAN_TAGS)

    def fuse(self, text: Tensor, text_mask: Tensor, image: ImageRepresentation) -> FusionOutput:
        units = image.states.to(text.dtype)
        ignore_units, ignore_words = key_padding(image.mask), ~text_mask
        p = self.image_reads_text(units, text, ignore_words)
        a = self.text_reads_image_aware(text, p, ignore_units)
        q = self.text_reads_image(text, units, ignore_units)
        gate = torch.sigmoid(self.gate_a(a) + self.gate_q(q))
        words = text_mask.unsqueeze(-1).to(gate.dtype)
        mean_gate = ((gate.mean(-1, keepdim=True) * words).sum((1, 2)) / words.sum((1, 2)).clamp(min=1.0))
        return FusionOutput(a + gate * q, text.new_zeros((), dtype=torch.float32), {"gate": mean_gate.detach().float()})

    def text_loss(self, text: Tensor, text_mask: Tensor, spans: Tensor | None) -> Tensor:
        """:math:`\\lambda\\,\\mathcal{L}_{sd}` over the words with a known tag (0 without ``spans``)."""
        known = spans >= 0 if spans is not None else None
        if known is None or self.span_loss_weight == 0 or not bool(known.any()):
            return super().text_loss(text, text_mask, spans)
        logits = self.spans(text[known]).float()
        return self.span_loss_weight * nn.functional.cross_entropy(logits, spans[known])
