r"""Relevance gate: a learned probability that the image helps this post scales what the post
reads from it (RpBERT: Sun et al., AAAI 2021), trained with swapped-image negatives (MAF: Xu et
al., WSDM 2022), and reported per post (the modality discriminator's choice)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InvalidInputError
from ..registry import fusions
from .base import Fusion, FusionOutput, ImageRepresentation, key_padding, mean_units


def swapped_images(present: Tensor, group: Tensor | None) -> tuple[Tensor, Tensor]:
    """For each row, the next row (cyclically) that has an image and shows a *different* one:
    ``(partner [B] long, has_partner [B] bool)``. Rows without an image, or in a batch where every
    image is theirs, have no partner (``partner`` is then the row itself)."""
    B = present.shape[0]
    rows = torch.arange(B, device=present.device)
    group = rows if group is None else group.to(present.device)
    allowed = present[None, :] & present[:, None] & (group[None, :] != group[:, None])  # [B, B]
    distance = (rows[None, :] - rows[:, None]) % B  # steps forward from row b to row b'
    distance = distance.masked_fill(~allowed, B)
    nearest, partner = distance.min(-1)
    has = nearest < B
    return torch.where(has, partner, rows), has


@fusions.register("relevance_gate")
class RelevanceGate(Fusion):
    r"""Text–image relevance gate on a cross-attention message (RpBERT, Sun et al., AAAI 2021), with
    swapped-image negatives as in MAF (Xu et al., WSDM 2022).

    .. math::
        t_b = \operatorname{mean}_{i} h_{bi},\qquad v_b = \operatorname{mean}_{j} u_{bj},\qquad
        s(t, v) = w^\top \tanh\big(W [t; v; t \odot v; |t - v|] + c\big) + c_0

        r_b = \sigma\big(s(t_b, v_b)\big),\qquad
        h'_{bi} = h_{bi} + r_b\, \mathrm{Drop}\big(\mathrm{MHA}(h_{bi}, U_b, U_b)\big)

        \mathcal{L}_{rel} = \lambda \cdot \operatorname{mean}_b \tfrac12\Big[\mathrm{BCE}\big(s(t_b, v_b), 1\big)
            + \mathrm{BCE}\big(s(t_b, v_{\pi(b)}), 0\big)\Big]

    :math:`U_b = \{u_{bj}\}` are post :math:`b`'s image units (scene-graph objects, context
    sub-words), :math:`\pi(b)` the next post of the batch showing another image
    (:func:`swapped_images`); the mean runs over the posts that have one. :math:`r_b` is reported
    as the diagnostic ``gate``, and the model's result gives it as the post's ``image_relevance``.
    A closed gate (:math:`r_b = 0`) gives the text states exactly.

    Args:
        dim (int): width of word states and image units.
        heads (int): attention heads of the message (default 4).
        hidden (int): width of the relevance scorer :math:`W` (default 128).
        loss_weight (float): :math:`\lambda` of :math:`\mathcal{L}_{rel}` (default 1.0, RpBERT's and
            MAF's unweighted sum; 0 trains the gate by the task loss alone).
        closed_below (float): in prediction (eval mode), a gate under this value is set to 0, so
            the post reads its text only: the modality discriminator's per-post choice
            (default 0.0: the soft gate is used as is).
        dropout (float): attention and message dropout (default 0.1).

    Shapes:
        - **text:** :math:`(B, n, d)`, **text_mask:** :math:`(B, n)` (True = real word)
        - **image.states:** :math:`(B, m, d)`, **image.mask:** :math:`(B, m)`, **image.group:** :math:`(B)`
        - **output:** word states :math:`(B, n, d)`; scalar float32 :math:`\mathcal{L}_{rel}` (0 under
          ``torch.no_grad()``); diagnostic ``gate`` :math:`r_b` :math:`(B)` (0 for posts without image units)

    Deviations from the papers:
        - RpBERT scores relevance from BERT's ``[CLS]`` over the text and the image's regions read
          together, and trains it on the TRC relevance labels (Bloomberg's text–image relation
          data set); graphie has no relevance labels for its data, so the scorer reads pooled text
          and image states and learns from MAF's swapped-image negatives (own image = relevant, another
          post's = not). What it learns is "this image belongs to this text", a proxy for "this
          image helps", and the gate also learns from the task loss through :math:`h'`.
        - RpBERT multiplies the visual features by :math:`r` before they enter BERT; here the gate
          scales one cross-attention message added to the encoder's word states.
        - MAF's per-token gate is not used: the gate is per post, as RpBERT's.
    """

    diagnostics = ("gate",)
    relevance = "gate"

    def __init__(self, dim: int, heads: int = 4, hidden: int = 128, loss_weight: float = 1.0,
                 closed_below: float = 0.0, dropout: float = 0.1):
        super().__init__(dim)
        if hidden <= 0 or loss_weight < 0 or not 0.0 <= closed_below <= 1.0:
            raise InvalidInputError(f"relevance_gate needs hidden > 0, loss_weight >= 0 and closed_below in [0, 1], "
                                    f"got {hidden}, {loss_weight}, {closed_below}")
        self.loss_weight, self.closed_below = loss_weight, closed_below
        if dim % heads:
            raise InvalidInputError(f"relevance_gate: width {dim} is not divisible by heads={heads}")
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.scorer = nn.Sequential(nn.Linear(4 * dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def score(self, t: Tensor, v: Tensor) -> Tensor:
        """Relevance logits :math:`s(t, v)` ``[B]`` of pooled text ``t`` and image ``v`` ``[B, d]``, float32."""
        return self.scorer(torch.cat([t, v, t * v, (t - v).abs()], -1)).squeeze(-1).float()

    def fuse(self, text: Tensor, text_mask: Tensor, image: ImageRepresentation) -> FusionOutput:
        t, v = mean_units(text, text_mask), mean_units(image.states.to(text.dtype), image.mask)
        logits = self.score(t, v)
        gate = torch.sigmoid(logits)
        if not self.training and self.closed_below > 0:
            gate = gate.masked_fill(gate < self.closed_below, 0.0)
        units = image.states.to(text.dtype)
        attended = self.attention(text, units, units, key_padding_mask=key_padding(image.mask), need_weights=False)[0]
        states = text + gate.to(text.dtype)[:, None, None] * self.dropout(attended)
        loss = text.new_zeros((), dtype=torch.float32)
        if torch.is_grad_enabled() and self.loss_weight > 0:
            loss = self.loss_weight * self.relevance_loss(t, v, logits, image)
        return FusionOutput(states, loss, {"gate": gate.detach()})

    def relevance_loss(self, t: Tensor, v: Tensor, positive: Tensor, image: ImageRepresentation) -> Tensor:
        """Mean over posts with an image and a swap partner of ``½[BCE(s(t_b, v_b), 1) + BCE(s(t_b, v_π(b)), 0)]``."""
        partner, has = swapped_images(image.present, image.group)
        if not bool(has.any()):
            return positive.new_zeros(())
        negative = self.score(t, v[partner])
        bce = nn.functional.binary_cross_entropy_with_logits
        per_post = 0.5 * (bce(positive, torch.ones_like(positive), reduction="none")
                          + bce(negative, torch.zeros_like(negative), reduction="none"))
        return per_post[has].mean()
