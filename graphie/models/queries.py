r"""Entity types asked as questions: the ``queries`` head, MRC-style span extraction
(Li et al., "A Unified MRC Framework for Named Entity Recognition", ACL 2020; applied to
multimodal NER by MRC-MNER, Jia et al., "Query Prior Matters: A MRC Framework for Multimodal
Named Entity Recognition", ACM MM 2022).

Each post is read once per entity type :math:`y`, paired with a natural-language question
:math:`q_y` ("person: names of people, real or fictional, ..."); the answers are the spans of
type :math:`y`. With :math:`E \in \mathbb{R}^{n \times d}` the word states of the row
``[CLS] post [SEP] q_y [SEP]``:

.. math::
    P_{\mathrm{start}} = \sigma(E\, w_s), \qquad P_{\mathrm{end}} = \sigma(E\, w_e), \qquad
    P_{\mathrm{match}}(i, j) = \sigma\big(w_m^\top \mathrm{GELU}(W_a E_i + W_b E_j + b) + c\big)

    \mathcal{L} = \mathrm{BCE}(P_{\mathrm{start}}) + \mathrm{BCE}(P_{\mathrm{end}})
        + \gamma\, \mathrm{BCE}\big(P_{\mathrm{match}}\big|_{(i, j):\ i \in S,\ j \in F,\ 0 \le j - i < L}\big)

where the match loss is taken over the candidate pairs whose start :math:`i` is a gold or
predicted start (:math:`S`) and whose end :math:`j` a gold or predicted end (:math:`F`), as in
the paper, within :math:`L` = ``max_entity_len`` words. Decoding keeps the spans whose start,
end and match probabilities all reach the threshold, scored by their geometric mean
:math:`(P_{\mathrm{start}}(i)\, P_{\mathrm{end}}(j)\, P_{\mathrm{match}}(i, j))^{1/3}`, and maps
each row back to its post: the spans all of the post's questions found, best score first, each
kept unless it overlaps a span kept before (so two questions answering the same words give the
words the type whose answer scored higher). With ``nested_entities`` only spans of the same type
exclude each other (an identical span still keeps one type).

Shapes:
    - **h:** :math:`(R, n, d)` word states of R = B·T rows (B posts, T entity types; row
      :math:`r` reads post :math:`\lfloor r / T \rfloor` with the question of type :math:`r \bmod T`)
    - **word_mask:** :math:`(R, n)` (True = a real word of the post)
    - **start, end:** :math:`(R, n)` logits; **match:** :math:`(R, n, L)` logits of span
      :math:`(i, i + k)` at :math:`[r, i, k]`; **band:** :math:`(R, n, L)` True where
      :math:`i` and :math:`i + k` are both real words

Deviations from the papers:
    - **Post first, question second.** The papers read ``[CLS] query [SEP] text [SEP]``;
      graphie's encoder reads the post as the first segment (its word pooling and
      :class:`~graphie.models.encoder.EncodedBatch` maps are built for it), so the question is
      the second segment, where a post's context (a caption, notes) goes: ``[CLS] post [SEP]
      question | context [SEP]`` with ``keep_context`` (the default), the context cut to what
      ``max_context_length`` leaves after the question. Each row keeps sub-words free for the
      longest question (:meth:`QueryHead.reserved`): a post's budget is ``max_length`` − 3 −
      that, and a longer post is read in windows.
    - **Words, not sub-words.** Start, end and match score words (the encoder's pooled first
      sub-word), so spans are the word spans the entity metric scores.
    - **The match layer is an MLP** over the sum of two projections (``match_dim`` wide), the
      first layer of an MLP over :math:`[E_i; E_j]` split in two, computed only within
      :math:`L` words (the paper's equation is linear in :math:`[E_i; E_j]`, which cannot score
      a pair beyond its two ends; its code uses an MLP).
    - **Spans longer than** :math:`L` (``max_entity_len``, default 8) cannot be answered.
    - **The image** enters as in every graphie head: an alignment or a fusion reading
      ``objects`` runs on each row (each row with its post's scene graph). A fusion that reads
      the ``context`` source is refused: the second segment now holds the question, which is
      not image evidence; so is ``context_adapter`` (every row has a second segment). MRC-MNER's
      query grounding (the question located among the image's regions, with box supervision
      from its own annotation) is not built: graphie's data has no region labels.
    - **Entities only** (task ``ner``): relations (``jmere``) would need a relation channel over
      the post's words, and each post is read T times; the head refuses other tasks.
    - **Cost:** a post is encoded once per entity type (T = 4 on the Twitter sets), so a step
      costs about T times the ``bio`` head's encoder work (``benchmarks/bench_head_step.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InvalidInputError
from ..registry import heads
from ..types import Extraction
from .batching import Batch, Collator, Example, partial_mask
from .config import ModelConfig
from .decoding import ModelOutput, _entity, attach_evidence
from .encoder import TransformerEncoder
from .heads import Head

#: The default question of each entity type, written as an annotation guideline (the MRC-NER
#: paper found guideline-style questions best). Twitter-2015's ``OTHER`` (read as ``MISC`` unless
#: ``data.other_as_misc`` is false) asks the ``MISC`` question.
DEFAULT_QUERIES: dict[str, str] = {
    "PER": "person: names of people, real or fictional, such as politicians, athletes, artists and characters.",
    "ORG": "organization: names of companies, teams, bands, parties, agencies, institutions and other groups.",
    "LOC": "location: names of places such as countries, cities, regions, streets, buildings and landmarks.",
    "MISC": "miscellaneous: other names such as events, nationalities, products, brands, titles and works of art.",
}
DEFAULT_QUERIES["OTHER"] = DEFAULT_QUERIES["MISC"]

SpanTuple = tuple[int, int, str, float]


class QuerySpans(nn.Module):
    r"""Start, end and span-match logits of each row's words (the MRC-NER span layer); see the
    module docstring for the equations and shapes.

    Args:
        dim (int): width of the word states :math:`d`.
        match_dim (int): width of the match MLP's hidden layer.
        span (int): longest span scored, in words (:math:`L`).
        dropout (float): dropout on the word states.
    """

    def __init__(self, dim: int, match_dim: int, span: int, dropout: float = 0.1):
        super().__init__()
        self.span = span
        self.dropout = nn.Dropout(dropout)
        self.boundary = nn.Linear(dim, 2)  # start, end
        self.match_start = nn.Linear(dim, match_dim)
        self.match_end = nn.Linear(dim, match_dim, bias=False)
        self.match_out = nn.Linear(match_dim, 1)

    def ends(self, n: int, device: torch.device) -> Tensor:
        """``[n, L]`` long: the last word ``i + k`` of span ``(i, i + k)``, clamped to the last word
        (cells past it are outside :meth:`band`)."""
        return (torch.arange(n, device=device)[:, None] + torch.arange(self.span, device=device)).clamp(max=n - 1)

    def band(self, word_mask: Tensor) -> Tensor:
        """``[R, n, L]`` bool: span ``(i, i + k)`` lies within the real words."""
        n = word_mask.size(1)
        inside = (torch.arange(n, device=word_mask.device)[:, None] + torch.arange(self.span, device=word_mask.device)) < n
        end_real = word_mask[:, self.ends(n, word_mask.device)]  # [R, n, L]
        return word_mask.unsqueeze(-1) & end_real & inside

    def forward(self, h: Tensor, word_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(start [R, n], end [R, n], match [R, n, L])`` logits; cells outside :meth:`band` are meaningless."""
        h = self.dropout(h)
        start, end = self.boundary(h).unbind(-1)
        pair = self.match_start(h).unsqueeze(2) + self.match_end(h)[:, self.ends(h.size(1), h.device)]  # [R, n, L, match_dim]
        match = self.match_out(self.dropout(F.gelu(pair))).squeeze(-1)
        return start, end, match


@heads.register("queries")
class QueryHead(Head):
    """``queries``: one row per post and entity type, the type asked as a question in the second
    segment; start/end pointers and a span-match score per row (:class:`QuerySpans`); decoding
    joins each post's rows into typed, non-overlapping entities (the module docstring).

    Args:
        config (ModelConfig): task ``ner``; ``max_entity_len`` is the longest span answered;
            ``head_options`` as below.
        dim (int): width of the word states.

    Head options (``head_options``):
        - ``queries`` (dict): entity type -> question, over :data:`DEFAULT_QUERIES` (PER, ORG, LOC,
          MISC, OTHER); every entity type of the model needs one.
        - ``keep_context`` (bool, true): the post's context follows the question in the second segment.
        - ``match_dim`` (int, 128): hidden width of the match MLP.
        - ``match_weight`` (float, 1.0): :math:`\\gamma`, the match loss's weight.

    Raises:
        InvalidInputError: a task other than ``ner``; a fusion reading ``context`` or a
            ``context_adapter``; an unknown or ill-typed option; an entity type without a question.
    """

    options: ClassVar[dict[str, Any]] = {"queries": {}, "keep_context": True, "match_dim": 128, "match_weight": 1.0}

    def __init__(self, config: ModelConfig, dim: int):
        super().__init__(config, dim)
        if config.task != "ner":
            raise InvalidInputError(f"head 'queries' extracts entities: task must be 'ner', not {config.task!r}")
        if config.fusion != "none" and "context" in config.fusion_sources:
            raise InvalidInputError("head 'queries' writes its question into the context segment: a fusion "
                                    "cannot read it as image evidence; set fusion_sources [\"objects\"]")
        if config.context_adapter:
            raise InvalidInputError("head 'queries' gives every row a second segment (its question): "
                                    "context_adapter would always be on; set it to 0")
        opts = {**self.options, **config.head_options}
        queries = opts["queries"]
        if not isinstance(queries, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                                    for k, v in queries.items()):
            raise InvalidInputError("head 'queries': head_options.queries must map entity types to non-empty questions")
        if not isinstance(opts["keep_context"], bool):
            raise InvalidInputError(f"head 'queries': keep_context must be true or false, got {opts['keep_context']!r}")
        if not isinstance(opts["match_dim"], int) or isinstance(opts["match_dim"], bool) or opts["match_dim"] < 1:
            raise InvalidInputError(f"head 'queries': match_dim must be a positive integer, got {opts['match_dim']!r}")
        weight = opts["match_weight"]
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            raise InvalidInputError(f"head 'queries': match_weight must be a number >= 0, got {weight!r}")
        asked = {**DEFAULT_QUERIES, **queries}
        missing = [t for t in config.entity_types if t not in asked]
        if missing:
            raise InvalidInputError(f"head 'queries': no question for entity type(s) {', '.join(missing)}; "
                                    "give them in head_options.queries")
        self.questions = [asked[t].strip() for t in config.entity_types]
        self.keep_context, self.match_weight = opts["keep_context"], float(weight)
        self.queries = QuerySpans(dim, opts["match_dim"], config.max_entity_len, config.dropout)
        self._reserve: int | None = None

    # ------------------------------------------------------------------ rows
    def reserved(self, encoder: TransformerEncoder) -> int:
        """Sub-words of the longest question and its closing ``[SEP]``, counted by ``encoder``
        as it reads them (once).

        Raises:
            InvalidInputError: a question that does not fit ``max_context_length`` (or
                ``max_length``), or questions that leave no room for a post.
        """
        if self._reserve is None:
            longest = 0
            for t, question in zip(self.config.entity_types, self.questions):
                encoded = encoder.encode([["x"]], [question])
                size = int((encoded.token_type_ids == 1).sum()) - 1  # its sub-words, the [SEP] left out
                limit = min(encoder.max_context_length, encoder.max_length - 4)  # what a one-word post leaves
                if size <= 0 or size >= limit:
                    raise InvalidInputError(f"head 'queries': the question for {t} does not fit in {limit} sub-words "
                                            f"(max_context_length {encoder.max_context_length}, max_length "
                                            f"{encoder.max_length}): shorten it")
                longest = max(longest, size)
            if encoder.post_budget - longest - 1 < 1:
                raise InvalidInputError(f"head 'queries': questions of {longest} sub-words leave no room for the "
                                        f"post in max_length={encoder.max_length}")
            self._reserve = longest + 1
        return self._reserve

    def row_context(self, t: int, context: str | None) -> str:
        """The second segment of the row asking type ``t``: its question, then the post's context."""
        if self.keep_context and context:
            return f"{self.questions[t]} | {context}"
        return self.questions[t]

    def collate(self, collator: Collator, examples: Sequence[Example], with_targets: bool) -> Batch:
        """One row per post and entity type (post-major: row ``b * T + t``), each with its
        question in the context segment; ``extra["query_post"]`` and ``extra["query_type"]``
        ``[R]`` say which. ``batch.examples`` are the rows (a post's example with the row's context)."""
        T = len(self.questions)
        if T == 0:
            raise InvalidInputError("head 'queries' asks one question per entity type: the model has none")
        rows = [dataclasses.replace(ex, post=dataclasses.replace(ex.post, context=self.row_context(t, ex.post.context)))
                for ex in examples for t in range(T)]
        batch, kept = collator.words(rows, reserve=self.reserved(collator.encoder))
        batch.extra["query_post"] = torch.arange(len(examples)).repeat_interleave(T)
        batch.extra["query_type"] = torch.arange(T).repeat(len(examples))
        if with_targets:
            self.targets(batch, kept)
        return batch

    def targets(self, batch: Batch, kept: list[int]) -> None:
        """Gold starts, ends ``[R, n]`` and spans ``[R, n, L]`` of each row's type; ``known``
        ``[R, n]``: the words whose boundaries are learnt (all real words, or only around the
        annotated entities of a partially annotated post, as the ``bio`` head does)."""
        R, n = batch.word_mask.shape
        L, types = self.queries.span, self.config.entity_types
        start, end = torch.zeros(R, n), torch.zeros(R, n)
        spans = torch.zeros(R, n, L)
        known = batch.word_mask.clone()
        for r, (ex, t) in enumerate(zip(batch.examples, batch.extra["query_type"].tolist())):
            if not ex.entities_known:
                known[r] &= partial_mask(ex.entities, n)
            for s, e, label in ex.entities:
                if label != types[t] or e > kept[r]:
                    continue
                start[r, s], end[r, e - 1] = 1.0, 1.0
                if e - s <= L:
                    spans[r, s, e - 1 - s] = 1.0
        batch.extra.update(start=start, end=end, spans=spans, known=known)

    # ------------------------------------------------------------------ logits and loss
    def forward(self, h: Tensor, batch: Batch) -> ModelOutput:
        start, end, match = self.queries(h, batch.word_mask)
        band = self.queries.band(batch.word_mask)
        out = ModelOutput(loss=None, extra={"start": start, "end": end, "match": match, "band": band})
        if "start" in batch.extra:
            out.loss = self.loss(start, end, match, band, batch)
        return out

    def loss(self, start: Tensor, end: Tensor, match: Tensor, band: Tensor, batch: Batch) -> Tensor | None:
        """Start and end BCE over the known words, plus ``match_weight`` × the match BCE over the
        candidate spans (gold or predicted start × gold or predicted end, within the band)."""
        x = batch.extra
        known = x["known"]
        if not known.any():
            return None
        start, end, match = start.float(), end.float(), match.float()
        loss = (F.binary_cross_entropy_with_logits(start[known], x["start"][known])
                + F.binary_cross_entropy_with_logits(end[known], x["end"][known]))
        ends = self.queries.ends(known.size(1), known.device)
        starts_ok = ((x["start"] > 0) | (start.detach() > 0)) & known
        ends_ok = ((x["end"] > 0) | (end.detach() > 0)) & known
        candidates = band & starts_ok.unsqueeze(-1) & ends_ok[:, ends]
        if self.match_weight and candidates.any():
            loss = loss + self.match_weight * F.binary_cross_entropy_with_logits(match[candidates],
                                                                                x["spans"][candidates])
        return loss

    # ------------------------------------------------------------------ decoding
    def row_spans(self, out: ModelOutput, threshold: float) -> list[list[tuple[int, int, float]]]:
        """Each row's answers ``(start, end, score)`` (word span, end exclusive): start, end and
        match probabilities all at least ``threshold``; score their geometric mean."""
        x = out.extra
        p_start, p_end = torch.sigmoid(x["start"].float()), torch.sigmoid(x["end"].float())
        p_match = torch.sigmoid(x["match"].float())
        p_end_at = p_end[:, self.queries.ends(p_start.size(1), p_start.device)]  # [R, n, L]
        ok = x["band"] & (p_start.unsqueeze(-1) >= threshold) & (p_end_at >= threshold) & (p_match >= threshold)
        score = (p_start.unsqueeze(-1) * p_end_at * p_match).pow(1 / 3)
        found: list[list[tuple[int, int, float]]] = [[] for _ in range(p_start.size(0))]
        for r, i, k in ok.nonzero().tolist():
            found[r].append((i, i + k + 1, float(score[r, i, k])))
        return found

    def resolve(self, candidates: list[tuple[int, int, str, float, int]]) -> list[tuple[int, int, str, float, int]]:
        """A post's answers ``(start, end, type, score, row)`` from all its questions, best score
        first, each kept unless it overlaps one kept before (with ``nested_entities``: one of the
        same type, or the very same span)."""
        kept: list[tuple[int, int, str, float, int]] = []
        for s, e, t, score, r in sorted(candidates, key=lambda c: (-c[3], c[0], c[1])):
            clash = any(s < ke and ks < e and (not self.config.nested_entities or kt == t or (ks, ke) == (s, e))
                        for ks, ke, kt, _, _ in kept)
            if not clash:
                kept.append((s, e, t, score, r))
        return sorted(kept, key=lambda c: (c[0], c[1]))

    def decode(self, batch: Batch, out: ModelOutput, threshold: float,
               relation_threshold: float) -> list[Extraction]:
        """One extraction per post: its rows' answers joined (:meth:`resolve`), each entity with
        the image evidence of the row that found it (when the model aligns an image) and the
        post the largest ``image_relevance`` of its rows."""
        T, types = len(self.questions), self.config.entity_types
        per_row = self.row_spans(out, threshold)
        relevance = out.image_relevance.detach().float().cpu() if out.image_relevance is not None else None
        results = []
        for b in range(len(batch.examples) // T):
            rows = range(b * T, (b + 1) * T)
            ex = batch.examples[b * T]
            candidates = [(s, e, types[r - b * T], score, r) for r in rows for s, e, score in per_row[r]]
            entities = []
            for s, e, t, score, r in self.resolve(candidates):
                entity = _entity(ex.graph, s, e, t, score)
                if out.alignment is not None:
                    attach_evidence([entity], out.alignment[r], ex.scene_graph)
                entities.append(entity)
            gate = None if relevance is None else float(relevance[b * T:(b + 1) * T].max())
            results.append(Extraction(text=ex.graph.text, tokens=list(ex.graph.tokens), entities=entities,
                                      text_graph=ex.graph, scene_graph=ex.scene_graph, id=ex.post.id,
                                      image_relevance=gate))
        return results
