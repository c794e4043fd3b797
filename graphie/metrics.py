"""Evaluation exactly as the literature computes it (all scores in percent, 0-100).

- :func:`mre_scores`: MNRE relation classification, OpenNRE convention: micro P/R/F1 over
  predictions and gold labels that are not ``None``, plus accuracy over all pairs.
- :func:`entity_scores`: entity-level exact span+type micro P/R/F1 (seqeval's CoNLL mode);
  :func:`bio_to_spans` chunks BIO tags exactly as seqeval's default mode does.
- :func:`jmere_scores`: JMERE quintuples (head span+type, tail span+type, label) plus entities.

F1 is always ``2PR / (P + R)`` (0 when ``P + R == 0``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .errors import InvalidInputError
from .types import Entity, Extraction, Post

__all__ = ["bio_to_spans", "entity_scores", "jmere_scores", "mre_scores", "prf"]

_PREFIXES = ("B", "I", "E", "S")


def prf(tp: int, n_pred: int, n_gold: int) -> dict[str, Any]:
    """Precision ``tp/n_pred``, recall ``tp/n_gold`` and F1 ``2PR/(P+R)``, in percent."""
    if tp < 0 or n_pred < 0 or n_gold < 0 or tp > n_pred or tp > n_gold:
        raise InvalidInputError(f"need 0 <= tp <= n_pred, n_gold; got tp={tp}, n_pred={n_pred}, n_gold={n_gold}")
    p = 100.0 * tp / n_pred if n_pred else 0.0
    r = 100.0 * tp / n_gold if n_gold else 0.0
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"precision": p, "recall": r, "f1": f1, "tp": tp, "n_pred": n_pred, "n_gold": n_gold}


def _split_tag(tag: str) -> tuple[str, str]:
    """``(prefix, type)`` of a tag, typed the way seqeval types it (``'O'`` -> ``('O', '_')``)."""
    if not isinstance(tag, str) or not tag:
        raise InvalidInputError(f"invalid BIO tag {tag!r}")
    if tag == "O":
        return "O", "_"
    if tag[0] not in _PREFIXES or (len(tag) > 1 and tag[1] != "-"):
        raise InvalidInputError(f"invalid BIO tag {tag!r}: expected O, or B-/I-/E-/S- followed by a type")
    # seqeval: a bare 'B' has type '_'
    return tag[0], tag[2:] or "_"


def bio_to_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Entity spans ``(start, end, type)`` (half-open) of a tag sequence, chunked exactly as
    seqeval's default (CoNLL) mode: an ``I-`` without ``B-`` starts an entity, a type change
    ends one, ``E-``/``S-`` close one. Raises :class:`InvalidInputError` on malformed tags."""
    spans: list[tuple[int, int, str]] = []
    prev_tag, prev_type, begin = "O", "_", 0
    for i, chunk in enumerate([*tags, "O"]):
        tag, type_ = _split_tag(chunk)
        # end of chunk between i-1 and i
        if prev_tag in ("E", "S") or (
            prev_tag in ("B", "I") and tag in ("B", "S", "O")
        ) or (prev_tag != "O" and prev_type != type_):
            spans.append((begin, i, prev_type))
        # start of chunk at i
        if tag in ("B", "S") or (
            prev_tag in ("E", "S", "O") and tag in ("E", "I")
        ) or (tag != "O" and prev_type != type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return spans


def mre_scores(gold: Sequence[str], pred: Sequence[str], none_label: str = "None") -> dict[str, Any]:
    """Relation classification scores (OpenNRE): micro P/R/F1 where a prediction counts if it is
    not ``none_label`` and a gold pair counts if its label is not ``none_label``; ``accuracy``
    over all pairs, ``None`` included."""
    gold, pred = list(gold), list(pred)
    if len(gold) != len(pred):
        raise InvalidInputError(f"{len(gold)} gold labels but {len(pred)} predictions")
    correct = sum(g == p for g, p in zip(gold, pred))
    tp = sum(g == p and g != none_label for g, p in zip(gold, pred))
    scores = prf(tp, sum(p != none_label for p in pred), sum(g != none_label for g in gold))
    scores["accuracy"] = 100.0 * correct / len(gold) if gold else 0.0
    scores["n"] = len(gold)
    return scores


def _entity_keys(entities: Iterable[Entity | tuple], where: str) -> set[tuple[int, int, str]]:
    keys = set()
    for e in entities:
        if isinstance(e, Entity):
            keys.add(e.key)
        elif isinstance(e, (tuple, list)) and len(e) == 3:
            keys.add((int(e[0]), int(e[1]), str(e[2])))
        else:
            raise InvalidInputError(f"{where}: expected an Entity or a (start, end, type) tuple, got {e!r}")
    return keys


def entity_scores(gold: Iterable[Iterable[Entity | tuple]], pred: Iterable[Iterable[Entity | tuple]]) -> dict[str, Any]:
    """Exact span+type micro P/R/F1 over sentences: ``gold[i]`` and ``pred[i]`` are the entities
    (:class:`Entity` or ``(start, end, type)``) of sentence ``i``."""
    gold, pred = list(gold), list(pred)
    if len(gold) != len(pred):
        raise InvalidInputError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    tp = n_pred = n_gold = 0
    for i, (g, p) in enumerate(zip(gold, pred)):
        gk, pk = _entity_keys(g, f"gold sentence {i}"), _entity_keys(p, f"predicted sentence {i}")
        tp += len(gk & pk)
        n_pred += len(pk)
        n_gold += len(gk)
    return prf(tp, n_pred, n_gold)


def _undirected(key: tuple) -> tuple:
    head, tail, label = key
    return (min(head, tail), max(head, tail), label)


def jmere_scores(gold: Sequence[Post], pred: Sequence[Extraction | Post]) -> dict[str, Any]:
    """JMERE scores: a quintuple counts only when head span, head type, tail span, tail type
    and label all match, direction included (the headline); ``eega_precision``/``eega_recall``/
    ``eega_f1`` the same with the direction free, as EEGA's released scorer counts (it reads
    one upper-triangle cell for both orders of a pair); plus ``entity_precision``/
    ``entity_recall``/``entity_f1`` (exact span+type). ``pred[i]`` is the prediction for ``gold[i]``."""
    gold, pred = list(gold), list(pred)
    if len(gold) != len(pred):
        raise InvalidInputError(f"{len(gold)} gold posts but {len(pred)} predictions")
    tp = n_pred = n_gold = free_tp = free_pred = free_gold = 0
    for i, (g, p) in enumerate(zip(gold, pred)):
        if g.id is not None and p.id is not None and str(g.id) != str(p.id):
            raise InvalidInputError(f"prediction {i} is for post {p.id!r} but gold post {i} is {g.id!r}")
        gk = {r.key for r in g.relations}
        pk = {r.key for r in p.relations}
        tp += len(gk & pk)
        n_pred += len(pk)
        n_gold += len(gk)
        # EEGA's released scorer reads one upper-triangle cell for both orders of a pair: the
        # direction is free there. Counted beside the strict score, never instead of it.
        g_free = {_undirected(k) for k in gk}
        p_free = {_undirected(k) for k in pk}
        free_tp += len(g_free & p_free)
        free_pred += len(p_free)
        free_gold += len(g_free)
    scores = prf(tp, n_pred, n_gold)
    free = prf(free_tp, free_pred, free_gold)
    scores.update(eega_precision=free["precision"], eega_recall=free["recall"], eega_f1=free["f1"])
    ent = entity_scores([g.entities for g in gold], [p.entities for p in pred])
    scores.update(
        entity_precision=ent["precision"], entity_recall=ent["recall"], entity_f1=ent["f1"],
        entity_tp=ent["tp"], entity_n_pred=ent["n_pred"], entity_n_gold=ent["n_gold"],
    )
    return scores
