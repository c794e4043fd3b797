"""The stages between a parsed post and its :class:`~graphie.types.Extraction` that the model
does not own: long texts split into windows the encoder can read, the windows' findings
merged back into one result, and a warning for text the English models cannot read.

    graph -> split() -> Windows -> model.predict(windows) -> merge() -> Extraction

Each stage is a plain function on plain data, so each is tested alone (tests/test_long_posts.py).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Sequence

from .types import Entity, Extraction, Relation, Span

#: Words two consecutive windows share. An entity cut by one window's end lies whole in the
#: next one as long as it is shorter than this (the default model's entities are <= 8 words).
DEFAULT_OVERLAP = 16


def plan_windows(pieces: Sequence[int], budget: int, overlap: int = DEFAULT_OVERLAP) -> list[tuple[int, int]]:
    """Word windows ``[start, end)`` covering every word, each within ``budget`` sub-words,
    consecutive windows sharing up to ``overlap`` words. ``pieces[i]`` is word ``i``'s sub-word
    count; a word longer than the whole budget gets a window of its own."""
    n = len(pieces)
    windows: list[tuple[int, int]] = []
    start = 0
    while start < n:
        end, used = start, 0
        while end < n and used + pieces[end] <= budget:
            used += pieces[end]
            end += 1
        end = max(end, start + 1)
        windows.append((start, end))
        if end >= n:
            break
        start = max(start + 1, end - min(overlap, (end - start) // 2))  # short windows: half overlap
        while start < end and sum(pieces[start:end + 1]) > budget:  # the next window must reach further
            start += 1
    return windows


@dataclass
class Windows:
    """A post's text graph cut into the windows the model reads (one window: the graph itself)."""

    graph: Any  # parsers.text.TextGraph of the whole text
    spans: list[tuple[int, int]]
    graphs: list[Any]  # one TextGraph per window, sharing the whole text and its offsets
    truncated: bool  # some word has more sub-words than the encoder's budget


def split(graph: Any, pieces: Sequence[int], budget: int, overlap: int = DEFAULT_OVERLAP) -> Windows:
    """Cut ``graph`` into windows of at most ``budget`` sub-words (``pieces[i]``, word ``i``'s
    count, is the encoder's own, so a window is never cut again by the encoder)."""
    truncated = any(p > budget for p in pieces)
    if sum(pieces) <= budget:
        return Windows(graph, [(0, len(graph))], [graph], truncated)
    spans = plan_windows(pieces, budget, overlap)
    return Windows(graph, spans, [graph.window(s, e) for s, e in spans], truncated)


def merge(windows: Windows, results: Sequence[Extraction]) -> Extraction:
    """One :class:`Extraction` over the whole text from the windows' results.

    Word spans move to whole-text positions (character offsets are already the whole text's).
    An entity touching a window's inner edge may be cut, and the overlap holds it whole in the
    neighbouring window, so it is dropped; of entities of different windows that overlap, the
    best-scoring one is kept. Relations are found within windows and kept when both ends
    survive (a dropped duplicate stands for its kept twin), one per entity pair, best score.
    ``image_relevance`` is the windows' largest (the image was let in for some part of the
    text; each window read the same image), ``None`` when the model has no relevance gate.
    """
    if len(results) == 1 and windows.spans == [(0, len(windows.graph))]:
        result = results[0]
        result.truncated = windows.truncated
        return result
    n = len(windows.graph)
    candidates: list[tuple[float, int, Entity, Entity]] = []  # score, window, global, window's own
    for w, ((start, end), result) in enumerate(zip(windows.spans, results)):
        for e in result.entities:
            if (start > 0 and e.span.start == 0) or (end < n and e.span.end == end - start):
                continue
            s = e.span
            moved = Entity(Span(s.start + start, s.end + start, s.text, s.start_char, s.end_char), e.type, e.score,
                           e.evidence)
            candidates.append((e.score, w, moved, e))
    candidates.sort(key=lambda c: -c[0])
    kept: list[tuple[int, Entity]] = []
    by_key: dict[tuple[int, int, str], Entity] = {}
    twin: dict[int, Entity] = {}  # id of a window's entity -> the merged entity standing for it
    for _, w, moved, own in candidates:
        if moved.key in by_key:
            twin[id(own)] = by_key[moved.key]
            continue
        if any(kw != w and k.span.start < moved.span.end and moved.span.start < k.span.end for kw, k in kept):
            continue
        kept.append((w, moved))
        by_key[moved.key] = moved
        twin[id(own)] = moved
    entities = sorted((e for _, e in kept), key=lambda e: (e.span.start, e.span.end, e.type))
    best: dict[frozenset[int], Relation] = {}
    for result in results:
        for r in result.relations:
            head, tail = twin.get(id(r.head)), twin.get(id(r.tail))
            if head is None or tail is None or head is tail:
                continue
            pair = frozenset((id(head), id(tail)))
            if pair not in best or r.score > best[pair].score:
                best[pair] = Relation(head, tail, r.label, r.score)
    order = {id(e): i for i, e in enumerate(entities)}
    relations = sorted(best.values(), key=lambda r: (order[id(r.head)], order[id(r.tail)]))
    first = results[0]
    gates = [r.image_relevance for r in results if r.image_relevance is not None]
    return Extraction(text=windows.graph.text, tokens=list(windows.graph.tokens), entities=entities,
                      relations=relations, text_graph=windows.graph, scene_graph=first.scene_graph, id=first.id,
                      windows=len(windows.spans), truncated=windows.truncated,
                      image_relevance=max(gates) if gates else None)


# --- language ----------------------------------------------------------------------------
# Function words frequent in each language and rare in English tweets (no "a", "in", "no", "die").
_FUNCTION_WORDS = {
    "Spanish": {"el", "la", "los", "las", "que", "y", "del", "una", "por", "con", "para", "es", "se", "lo", "su",
                "pero", "como", "más", "muy", "está"},
    "French": {"le", "les", "des", "et", "est", "une", "du", "au", "avec", "pour", "pas", "dans", "qui", "sur",
               "je", "nous", "vous", "très", "c'est", "mais"},
    "German": {"der", "das", "und", "ist", "nicht", "ein", "eine", "mit", "auf", "den", "dem", "ich", "sie",
               "wir", "auch", "für", "von", "zu", "sich", "noch"},
    "Portuguese": {"o", "os", "que", "e", "do", "da", "dos", "das", "um", "uma", "para", "com", "não", "é",
                   "em", "mais", "muito", "está", "ao", "pelo"},
    "Italian": {"il", "gli", "che", "e", "è", "della", "del", "di", "un", "una", "per", "con", "non", "sono",
                "anche", "questo", "molto", "alla", "nel", "ma"},
    "Dutch": {"de", "het", "een", "en", "van", "niet", "ik", "je", "zijn", "met", "voor", "ook", "maar", "dat",
              "wat", "bij", "nog", "naar", "wij", "dit"},
}
_ENGLISH = {"the", "and", "of", "to", "is", "in", "for", "with", "on", "at", "this", "that", "it", "you", "i",
            "we", "are", "was", "be", "my", "not", "but", "from", "by", "have", "has", "will", "our", "your"}


def language_warning(tokens: Sequence[str]) -> str | None:
    """A warning when words are mostly in a non-Latin script, or clearly in another language
    than English by their function words; ``None`` for English (and for text too short to tell)."""
    letters = [ch for tok in tokens if not tok.startswith(("@", "#", "http")) for ch in tok if ch.isalpha()]
    if len(letters) >= 4:
        latin = sum(1 for ch in letters if unicodedata.name(ch, "").startswith("LATIN"))
        if latin < 0.5 * len(letters):
            return ("mostly non-Latin script: the model reads English only, so these entities and relations "
                    "are unreliable")
    words = [tok.lower() for tok in tokens if tok[:1].isalpha()]
    if len(words) < 5:
        return None
    english = sum(w in _ENGLISH for w in words)
    language, hits = max(((lang, sum(w in vocab for w in words)) for lang, vocab in _FUNCTION_WORDS.items()),
                         key=lambda x: x[1])
    if hits >= 2 and hits >= 0.15 * len(words) and hits > 3 * english:
        return (f"looks like {language}, not English: the model reads English only, so these entities and "
                "relations are unreliable")
    return None
