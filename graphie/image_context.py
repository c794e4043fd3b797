"""Image as text (ITA's lesson, Wang et al., NAACL 2022): a scene graph written out as a short
string for the encoder's auxiliary ``context=`` channel (``Post.context``, see :class:`graphie.types.Post`),
which informs the tagger but never yields entities itself.

    from graphie.image_context import image_context
    post.context = image_context(scene_graph, caption="a man holding a microphone")
    # 'caption: a man holding a microphone | objects: man, microphone, person (2) | text: FALCONS | tags: stage'

Deterministic (the same graph gives the same string), short (at most ``max_chars``, cut at an item
boundary), deduplicated (case-insensitively, in order of score) and empty when the graph holds
nothing beyond the whole-image node.
"""

from __future__ import annotations

from collections import Counter

from parsers.scene import IMAGE_LABEL, SceneGraph

from .errors import InvalidInputError

#: Least probability of an ImageNet tag that is written out, here and in the scene encoder's node phrases.
MIN_TAG_PROBABILITY = 0.3
#: Character budget of the image's words when they are a model's context (training and the front
#: door alike): long enough for a paragraph-long caption (mPLUG-Owl, MiniCPM-V); the encoder's
#: ``max_context_length`` then cuts the context in sub-words.
CONTEXT_CHARS = 2000
#: labels that name a detector's kind of box rather than a thing: their OCR text says more
UNINFORMATIVE_LABELS = frozenset({IMAGE_LABEL, "text"})


def _unique(items: list[str]) -> list[str]:
    """Items with whitespace collapsed, empty ones and case-insensitive repeats dropped, order kept."""
    seen: set[str] = set()
    out = []
    for item in items:
        item = " ".join(item.split())
        if item and item.lower() not in seen:
            seen.add(item.lower())
            out.append(item)
    return out


def image_context(graph: SceneGraph | None, caption: str | None = None, max_items: int = 8,
                  min_tag_probability: float = MIN_TAG_PROBABILITY, max_chars: int = 200) -> str:
    """``"caption: … | objects: … | text: … | tags: …"`` for ``graph`` (sections left out when empty).

    - **caption**: ``caption`` as given (a scene graph does not store the caption it came from);
    - **objects**: object labels other than the whole-image node and OCR ``text`` boxes, best
      score first, a repeated label once with its count (``person (2)``);
    - **text**: OCR strings read in the image, best score first;
    - **tags**: ImageNet tags (image node and crops) with probability ≥ ``min_tag_probability``,
      most probable first.

    Each list keeps at most ``max_items`` entries; the whole string at most ``max_chars``
    characters, cut before the first item that does not fit (a first item longer than
    ``max_chars``, e.g. a long caption, is cut at a word boundary instead). ``None`` or an empty graph with no
    caption gives ``""``.

    Raises:
        InvalidInputError: ``graph`` not a :class:`~parsers.scene.SceneGraph`, or a limit below 1.
    """
    if graph is not None and not isinstance(graph, SceneGraph):
        raise InvalidInputError(f"image_context needs a SceneGraph or None, got {type(graph).__name__}")
    if max_items < 1 or max_chars < 1:
        raise InvalidInputError(f"image_context needs max_items >= 1 and max_chars >= 1, got {max_items}, {max_chars}")
    objects = graph.objects if graph is not None else []
    by_score = sorted(range(len(objects)), key=lambda i: (-float(objects[i].score), i))
    counts = Counter(" ".join(objects[i].label.split()).lower() for i in by_score
                     if objects[i].label not in UNINFORMATIVE_LABELS)
    labels = [f"{label} ({counts[label.lower()]})" if counts[label.lower()] > 1 else label
              for label in _unique([objects[i].label for i in by_score if objects[i].label not in UNINFORMATIVE_LABELS])]
    texts = _unique([objects[i].text for i in by_score if objects[i].text])
    tag_scores: dict[str, float] = {}
    for o in objects:
        for name, p in (o.tags or {}).items():
            if p >= min_tag_probability:
                tag_scores[name] = max(p, tag_scores.get(name, 0.0))
    tags = _unique(sorted(tag_scores, key=lambda t: (-tag_scores[t], t)))
    sections = [("caption", _unique([caption or ""])), ("objects", labels[:max_items]), ("text", texts[:max_items]),
                ("tags", tags[:max_items])]
    out = ""
    for name, items in sections:
        for k, item in enumerate(items):
            piece = (f" | {name}: " if out else f"{name}: ") + item if k == 0 else f", {item}"
            if len(out) + len(piece) > max_chars:
                # The first item (a long caption, typically) is shortened at a word boundary rather
                # than lost: before, a caption over the budget left the whole context empty.
                return out or _cut_words(piece, max_chars)
            out += piece
    return out


def _cut_words(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters at the last space that fits (or mid-word
    when there is none)."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    return cut[: cut.rindex(" ")].rstrip() if " " in cut.strip() else cut
