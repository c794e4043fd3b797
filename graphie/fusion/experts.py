r"""A mixture of image experts: each source of the image representation (scene-graph objects, the
context's sub-words, ...) is an expert that reads its own units, and a gate on the post's text
mixes them (VisualPT-MoE, DASFAA 2023; MoRe's mixture of experts, Findings of EMNLP 2022)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..errors import InvalidInputError
from ..registry import fusions
from .base import SOURCES, Fusion, FusionOutput, ImageRepresentation, key_padding, mean_units


@fusions.register("experts")
class ExpertMixture(Fusion):
    r"""Several image representations as experts, mixed per post by a gate on the text (VisualPT-MoE,
    DASFAA 2023; the mixture of experts of MoRe, Findings of EMNLP 2022).

    .. math::
        t_b = \operatorname{mean}_i h_{bi},\qquad
        x^k_b = \mathrm{MHA}_k\big(t_b,\ U^k_b,\ U^k_b\big)\quad (k \in A_b)

        \pi_{bk} = \frac{\exp(w_k^\top t_b + c_k)}{\sum_{k' \in A_b} \exp(w_{k'}^\top t_b + c_{k'})},\qquad
        m_b = \sum_{k \in A_b} \pi_{bk}\, x^k_b

        g_{bi} = \sigma\big(W_h h_{bi} + W_m m_b\big),\qquad h'_{bi} = h_{bi} + g_{bi} \odot \mathrm{Drop}(m_b)

    :math:`U^k_b` are post :math:`b`'s image units of source :math:`k` (``objects``: scene-graph
    objects; ``context``: the context segment's sub-words; see
    :data:`~graphie.fusion.base.SOURCES`) and :math:`A_b` the sources the post has units of. Expert
    :math:`k` pools its own units with its own attention, the post's mean word state
    :math:`t_b` as the query; the gate :math:`\pi_b` is a softmax over the post's available
    experts, conditioned on its text alone; each word takes the mixture :math:`m_b` through an
    elementwise gate :math:`g_{bi}`. The diagnostics ``weight_<source>`` are :math:`\pi_{bk}`
    (0 for a source the post lacks; they sum to 1 over a post's sources). A post with one source
    gets that expert whole; a post with none gets its text states back.

    Args:
        dim (int): width of word states and image units.
        sources (list[str]): the sources that get an expert, in :data:`~graphie.fusion.base.SOURCES`
            (default all; a model passes its ``fusion_sources``: not a ``fusion_options`` key).
        heads (int): attention heads of each expert's pooling (default 4).
        dropout (float): attention and mixture dropout (default 0.1).

    Shapes:
        - **text:** :math:`(B, n, d)`, **text_mask:** :math:`(B, n)` (True = real word)
        - **image.states:** :math:`(B, m, d)`, **image.mask:** :math:`(B, m)`, **image.source:** :math:`(B, m)`
        - **output:** word states :math:`(B, n, d)`; loss 0; diagnostics ``weight_<source>``
          :math:`(B)` for each expert (0 for posts without image units)

    Deviations from the papers:
        - VisualPT-MoE turns each image representation into visual prompts for the text encoder
          and mixes them there; here the experts read the shared image representation after the
          encoder, and their mixture enters the word states through a gated residual.
        - MoRe mixes the *predictions* of expert models, each reading the knowledge of one
          retrieval (by text, by image); here the experts are representations mixed before one
          head: one encoder pass, not an ensemble of models.
        - the experts are fixed by source (no learned routing of tokens, hence no load-balancing
          loss); a source joins by a name in :data:`~graphie.fusion.base.SOURCES` and the
          :class:`~graphie.fusion.base.ImageRepresentation` units that carry it.
    """

    def __init__(self, dim: int, sources: Sequence[str] = SOURCES, heads: int = 4, dropout: float = 0.1):
        super().__init__(dim)
        sources = list(sources)
        if not sources or len(set(sources)) != len(sources) or not set(sources) <= set(SOURCES):
            raise InvalidInputError(f"experts: sources must be distinct names of {SOURCES}, got {sources}")
        if dim % heads:
            raise InvalidInputError(f"experts: width {dim} is not divisible by heads={heads}")
        self.sources = sources
        self.diagnostics = tuple(f"weight_{s}" for s in sources)
        self.experts = nn.ModuleDict(
            {s: nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True) for s in sources})
        self.gate = nn.Linear(dim, len(sources))
        self.word_gate = nn.Linear(dim, dim)
        self.mixture_gate = nn.Linear(dim, dim, bias=False)
        self.dropout = nn.Dropout(dropout)

    def fuse(self, text: Tensor, text_mask: Tensor, image: ImageRepresentation) -> FusionOutput:
        codes = torch.tensor([SOURCES.index(s) for s in self.sources], device=image.source.device)
        of_source = image.mask[..., None] & (image.source[..., None] == codes)  # [B, m, K]
        if bool((image.mask & ~of_source.any(-1)).any()):
            unread = sorted({SOURCES[i] for i in image.source[image.mask & ~of_source.any(-1)].tolist()})
            raise InvalidInputError(f"experts: image units of {unread} but experts only for {self.sources}")
        units = image.states.to(text.dtype)
        t = mean_units(text, text_mask)
        query = t.unsqueeze(1)
        x = torch.stack([expert(query, units, units, key_padding_mask=key_padding(of_source[..., k]),
                                need_weights=False)[0].squeeze(1)
                         for k, expert in enumerate(self.experts.values())], 1)  # [B, K, d]
        available = of_source.any(1)  # [B, K]
        logits = self.gate(t).float().masked_fill(~available, torch.finfo(torch.float32).min)
        weights = logits.softmax(-1) * available  # a post without units: all 0 (the base class keeps its text)
        mixture = (weights.to(x.dtype).unsqueeze(-1) * x).sum(1)  # [B, d]
        gate = torch.sigmoid(self.word_gate(text) + self.mixture_gate(mixture).unsqueeze(1))
        states = text + gate * self.dropout(mixture).unsqueeze(1)
        diagnostics = {f"weight_{s}": weights[:, k].detach() for k, s in enumerate(self.sources)}
        return FusionOutput(states, text.new_zeros((), dtype=torch.float32), diagnostics)
