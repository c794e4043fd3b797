r"""HVPNet's visual prefixes (Chen et al., Findings of NAACL 2022): the post's image units become a
key and a value prefix for the self-attention of every encoder layer, each layer mixing the
image's levels through its own gate."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InvalidInputError
from ..registry import fusions
from .base import Fusion, FusionOutput, ImageRepresentation, LayerPrefixes, mean_units


@fusions.register("visual_prefix")
class VisualPrefix(Fusion):
    r"""Hierarchical visual prefix with dynamic gated aggregation (HVPNet, Chen et al., Findings of
    NAACL 2022, `arXiv:2205.03521 <https://arxiv.org/abs/2205.03521>`_).

    .. math::
        V_i = U W_i + b_i \quad (i = 1 \dots K),\qquad z = \sum_{i=1}^{K} \operatorname{mean}_j\, (V_i)_j

        \alpha^l = \operatorname{softmax}\big(\mathrm{LeakyReLU}(W^l_g z + b^l_g)\big) \in \mathbb{R}^K,\qquad
        G^l = \sum_{i=1}^{K} \alpha^l_i\, V_i \qquad (l = 1 \dots L)

        [\phi^l_k ;\ \phi^l_v] = \mathrm{Drop}(G^l)\, W^l_\phi + b^l_\phi,\qquad
        \mathrm{head}^l = \operatorname{softmax}\Big(\frac{Q^l\, [\phi^l_k ; K^l]^\top}{\sqrt{d_h}} + M\Big)\,[\phi^l_v ; V^l]

    :math:`U` are a post's :math:`m` image units (scene-graph objects, context sub-words:
    :class:`~graphie.fusion.base.ImageRepresentation`), the mean runs over its real units.
    :math:`V_1 \dots V_K` are the image's *levels*; :math:`z` pools them (HVPNet: global average
    pooling, summed over the levels). Each encoder layer :math:`l` has its own gate
    :math:`\alpha^l` over the levels and its own map :math:`W^l_\phi` to a key prefix
    :math:`\phi^l_k` and a value prefix :math:`\phi^l_v`, split into the encoder's heads. In layer
    :math:`l` every token of the row (post, context, markers) attends over
    :math:`[\phi^l_k ; K^l]`: the prefix in front of the tokens' own keys and values (queries,
    positions and the residual stream are the encoder's own). :math:`M` masks padded units; a
    row without units gets an all-masked prefix and is computed as by the encoder without
    prefixes, so its states are the text-only encoder's bit for bit.

    The component acts in the encoder (``enters_encoder``): the model builds the image
    representation *before* the encoder pass (:meth:`GraphieModel.word_states
    <graphie.models.model.GraphieModel.word_states>`: the scene encoder's objects; the context
    segment read alone by :meth:`TransformerEncoder.read_context
    <graphie.models.encoder.TransformerEncoder.read_context>`, an extra pass over the contexts'
    sub-words), hands :meth:`prefix` to the encoder, and :meth:`fuse`, after the encoder, leaves the
    word states as they are. No auxiliary loss, no per-post diagnostic.

    Args:
        dim (int): width of the image units and of the encoder's hidden states.
        encoder_layers (int): :math:`L`, the encoder's layers (the model passes it; not a
            ``fusion_options`` key).
        encoder_heads (int): the encoder's attention heads (the model passes it); :math:`d_h` =
            ``dim / encoder_heads``.
        levels (int): :math:`K`, the levels the gates mix (default 4, HVPNet's four ResNet stages).
        dropout (float): dropout on :math:`G^l` (default 0.1).
        context_grad (bool): whether the context's own encoder pass (the ``context`` source) is
            trained: ``false`` reads it without gradient, which saves that pass's backward; the
            encoder still learns through the rows' own pass (default true).

    Shapes:
        - **image.states:** :math:`(B, m, d)`, **image.mask:** :math:`(B, m)` (True = a real unit)
        - **prefix output:** :class:`~graphie.fusion.base.LayerPrefixes`: :math:`L` keys and :math:`L`
          values :math:`(B, \text{heads}, m', d_h)`, mask :math:`(B, m')`: :math:`m'` slots, the most
          real units a row has, a row's units first in their order
        - **text:** :math:`(B, n, d)`, **text_mask:** :math:`(B, n)`; **output:** the same word
          states :math:`(B, n, d)` (the image entered the encoder), loss 0

    Deviations from the paper:
        - HVPNet's levels are the four stages of a ResNet over the image and its visual-grounding
          object crops, each pooled to a fixed grid: a pyramid of resolutions. graphie has no pixel
          pyramid; its units are scene-graph objects and context sub-words, so the levels are
          :math:`K` learned projections of the same units, and a layer's gate chooses a mixture of
          projections, not of resolutions.
        - The prefix length is the post's unit count :math:`m` (padding masked), not a fixed grid
          per level; HVPNet concatenates the image's and its objects' prefixes, here every source of
          the representation (objects, context) is a set of units side by side.
        - HVPNet fine-tunes the ResNet with the extractor; here the units' own encoders are graphie's:
          the objects follow ``scene_options.phrase_grad``, the context's separate pass follows
          ``context_grad``.
        - Only encoders whose attention goes through transformers' ``AttentionInterface`` (BERT:
          ``minilm``) take prefixes; MPNet (``mpnet-base``) is refused, and so is ``context_adapter``.
    """

    enters_encoder = True

    def __init__(self, dim: int, encoder_layers: int | None = None, encoder_heads: int | None = None,
                 levels: int = 4, dropout: float = 0.1, context_grad: bool = True):
        super().__init__(dim)
        if not encoder_layers or not encoder_heads:
            raise InvalidInputError("visual_prefix: the encoder's layers and heads are not known "
                                    "(create_fusion(..., encoder_layers=..., encoder_heads=...); a model passes them)")
        if dim % encoder_heads:
            raise InvalidInputError(f"visual_prefix: width {dim} is not divisible by the encoder's {encoder_heads} heads")
        if levels < 1:
            raise InvalidInputError(f"visual_prefix: levels must be >= 1, got {levels}")
        if not isinstance(context_grad, bool):
            raise InvalidInputError(f"visual_prefix: context_grad must be true or false, got {context_grad!r}")
        self.layers, self.heads, self.levels = encoder_layers, encoder_heads, levels
        self.context_grad = context_grad
        self.level_maps = nn.Linear(dim, levels * dim)  # W_1 ... W_K side by side
        self.gates = nn.Linear(dim, encoder_layers * levels)  # W_g^1 ... W_g^L side by side
        self.key_values = nn.ModuleList(nn.Linear(dim, 2 * dim) for _ in range(encoder_layers))  # W_phi^l
        self.dropout = nn.Dropout(dropout)

    def prefix(self, image: ImageRepresentation) -> LayerPrefixes:
        """The keys and values of every layer's prefix for the batch's image units, in as many slots
        as the most units a row has (a row's real units first, in their order: :func:`packed_units`).
        The levels, gates and maps run once per distinct set of units (:func:`distinct_rows`: the
        marker head's rows of one post share theirs); in training each row draws its own dropout."""
        d = image.states.shape[-1]
        if image.states.dim() != 3 or d != self.dim:
            raise InvalidInputError(f"visual_prefix: image units must be [B, m, {self.dim}], got {tuple(image.states.shape)}")
        states, mask = packed_units(image.states, image.mask.bool())
        index, first = distinct_rows(states, mask)
        sets, set_mask = (states, mask) if first is None else (states[first], mask[first])
        U, m = sets.shape[:2]
        levels = self.level_maps(sets).view(U, m, self.levels, d)  # V_i
        z = mean_units(levels.sum(2), set_mask)
        alpha = nn.functional.leaky_relu(self.gates(z)).view(U, self.layers, self.levels).softmax(-1)
        mixed = torch.einsum("blk,bmkd->blmd", alpha.to(levels.dtype), levels)  # G^l
        if first is not None and self.training and self.dropout.p > 0:  # a draw per row: rows apart from here
            mixed, first = mixed[index], None
        keys, values, shape = [], [], (mixed.shape[0], m, self.heads, d // self.heads)
        for layer, key_value in enumerate(self.key_values):
            k, v = key_value(self.dropout(mixed[:, layer])).chunk(2, -1)
            keys.append(k.reshape(shape).transpose(1, 2))
            values.append(v.reshape(shape).transpose(1, 2))
        if first is not None:  # each distinct set's prefix to its rows
            keys, values = [k[index] for k in keys], [v[index] for v in values]
        return LayerPrefixes(keys, values, mask)

    def fuse(self, text: Tensor, text_mask: Tensor, image: ImageRepresentation) -> FusionOutput:
        """The word states as the encoder gave them: the image entered its attention as prefixes."""
        return FusionOutput(text, text.new_zeros((), dtype=torch.float32))


def packed_units(states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """``states`` [B, m, d] and ``mask`` [B, m] cut to ``[B, m']`` slots, the most units a row has, a
    row's real units first, in their order. The context's sub-words come at the context segment's
    place in the row (``m`` = the batch's sub-words, mostly padding): every layer would otherwise
    attend over ``m`` masked slots."""
    width = int(mask.sum(1).max())
    if bool((mask[:, :width].sum(1) == mask.sum(1)).all()):  # every real unit in the first slots already
        return states[:, :width], mask[:, :width]
    order = torch.sort((~mask).to(torch.uint8), dim=1, stable=True).indices[:, :width]
    return states.gather(1, order.unsqueeze(-1).expand(-1, -1, states.size(-1))), mask.gather(1, order)


def distinct_rows(states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor | None]:
    """``(index [B], first [U])``: row ``b`` holds the same units as row ``first[index[b]]``, the
    first of the ``U`` distinct sets of units (what sits in a padded slot does not count);
    ``first`` is ``None`` when every row's are its own.

    A computation shared this way sends its gradient to the first row's units only, which is the
    gradient of computing each row wherever equal units are one computation on one input: a
    post's context read once for all its marker rows, its objects encoded again for each (equal
    only where no dropout was drawn)."""
    B = mask.shape[0]
    rows = torch.arange(B, device=mask.device)
    with torch.no_grad():
        content = torch.cat([states.masked_fill(~mask.unsqueeze(-1), 0).flatten(1), mask.to(states.dtype)], 1)
        if content.shape[1] == 0:  # no slot at all: every row alike
            return rows.new_zeros(B), rows[:1]
        _, index = torch.unique(content, dim=0, return_inverse=True)
    distinct = int(index.max()) + 1
    if distinct == B:
        return rows, None
    return index, torch.full((distinct,), B, device=mask.device).scatter_reduce_(0, index, rows, "amin")
