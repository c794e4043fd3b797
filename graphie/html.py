"""An HTML view of an :class:`~graphie.types.Extraction`, for notebooks and browsers.

Three parts, each left out when it has nothing to show:

- the post's text with the entities highlighted as displaCy highlights them
  (``<mark class="graphie-entity" data-type="PER">Barack Obama <span>PER 0.99</span></mark>``);
  overlapping entities cannot all be marked in running text, so the longest wins there;
- an SVG of the relations: every entity a box in text order, every relation an arc from head to
  tail with an arrow at the tail and the label and score on top
  (``<g class="graphie-relation" data-head="0" data-tail="1" data-label="peer">``);
- the image (inline, base64 JPEG, at most :data:`IMAGE_WIDTH` pixels wide) with a box per image
  object aligned with an entity (``<g class="graphie-evidence">``), in the entity type's colour;
- for a model with a relevance gate, how far it let the image in
  (``<div class="graphie-relevance" data-value="0.8312">``, the extraction's ``image_relevance``).

Everything taken from the post or the model (text, types, labels) is escaped: a post holding
``Obama</b>`` or a ``<script>`` shows it as text. Styles are inline, so the view survives
notebook front-ends that drop ``<style>`` blocks. The classes and ``data-`` attributes are the
stable part, for tests and for custom CSS.
"""

from __future__ import annotations

import base64
import io
import unicodedata
from html import escape
from typing import TYPE_CHECKING, Any

from .draw import DEFAULT_COLOUR, TYPE_COLOURS

if TYPE_CHECKING:
    from .types import Entity, Extraction

#: widest image embedded, in pixels (larger images are scaled down; boxes keep their coordinates)
IMAGE_WIDTH = 720
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
CHAR_WIDTH = 8.0  # pixels per character of 14 px text (generous: boxes never clip their text)
NODE_HEIGHT, NODE_PAD, NODE_GAP = 38, 10, 36
ARC_BASE, ARC_STEP = 34, 26  # height of an arc between neighbours, and per entity it spans


def extraction_html(result: "Extraction", image: Any = None, *, page: bool = False) -> str:
    """The HTML view of ``result`` (``image``: a path, bytes or PIL image of the post, drawn
    with the evidence boxes; ``None``: no picture). ``page=True`` wraps it in a whole document
    (``<!DOCTYPE html>``, UTF-8, a title), as ``graphie draw --format html`` writes it.

    Raises:
        ImageError: ``image`` cannot be read.
    """
    parts = [_text_html(result)]
    if result.relations:
        parts.append(_relations_svg(result))
    if image is not None:
        parts.append(_image_html(result, image))
    if result.image_relevance is not None:
        value = float(result.image_relevance)
        parts.append(f'<div class="graphie-relevance" data-value="{value:.4f}" style="font-size: 0.85em; '
                     f'color: #555">image relevance {value:.2f}</div>')
    body = (f'<div class="graphie" style="font-family: {FONT}; line-height: 2.4; max-width: 100%">'
            + "".join(parts) + "</div>")
    if not page:
        return body
    title = escape(result.text if len(result.text) <= 60 else result.text[:59] + "…")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>graphie: {title}</title>\n</head>\n<body style=\"margin: 24px\">\n{body}\n</body>\n</html>\n")


def colour(entity_type: str) -> str:
    """The CSS colour of an entity type (the palette of :mod:`graphie.draw`)."""
    r, g, b = TYPE_COLOURS.get(entity_type, DEFAULT_COLOUR)
    return f"rgb({r}, {g}, {b})"


def _pale(entity_type: str) -> str:
    r, g, b = (int(c + (255 - c) * 0.75) for c in TYPE_COLOURS.get(entity_type, DEFAULT_COLOUR))
    return f"rgb({r}, {g}, {b})"


def _attr(value: Any) -> str:
    return escape(str(value), quote=True)


# --- the text ----------------------------------------------------------------------------------
def _marked(result: "Extraction") -> list[tuple[int, int, int]]:
    """``(start_char, end_char, entity index)`` of the entities marked in the running text: no
    two overlap, the longer first (as ``spacy.util.filter_spans``), in text order."""
    spans = [(*result.char_span(e), i) for i, e in enumerate(result.entities)]
    chosen: list[tuple[int, int, int]] = []
    for start, end, i in sorted(spans, key=lambda s: (-(s[1] - s[0]), s[0])):
        if start < end and all(end <= s or start >= e for s, e, _ in chosen):
            chosen.append((start, end, i))
    return sorted(chosen)


def _evidence_note(entity: "Entity") -> str:
    return "; image: " + ", ".join(f"{v['label']}#{v['object']} ({float(v['weight']):.2f})"
                                   for v in entity.evidence) if entity.evidence else ""


def _text_html(result: "Extraction") -> str:
    out, last = [], 0
    text = result.text
    for start, end, i in _marked(result):
        e = result.entities[i]
        out.append(escape(text[last:start]))
        note = f"{e.type} {float(e.score):.2f}{_evidence_note(e)}"
        out.append(
            f'<mark class="graphie-entity" data-entity="{i}" data-type="{_attr(e.type)}" '
            f'data-score="{float(e.score):.4f}" title="{_attr(note)}" style="background: {_pale(e.type)}; '
            f'border: 2px solid {colour(e.type)}; padding: 0.25em 0.45em; margin: 0 0.2em; '
            f'border-radius: 0.35em; line-height: 1; box-decoration-break: clone; -webkit-box-decoration-break: clone">{escape(text[start:end])}'
            f'<span class="graphie-label" style="font-size: 0.7em; font-weight: bold; '
            f'text-transform: uppercase; vertical-align: middle; margin-left: 0.45em">'
            f'{escape(e.type)} {float(e.score):.2f}</span></mark>')
        last = end
    out.append(escape(text[last:]))
    return f'<div class="graphie-text" style="white-space: pre-wrap; overflow-wrap: anywhere">{"".join(out)}</div>'


# --- the relations -----------------------------------------------------------------------------
def _text_width(text: str) -> float:
    """Rough width in pixels of ``text`` at 14 px (wide East Asian characters and emoji count twice)."""
    return CHAR_WIDTH * sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _relations_svg(result: "Extraction") -> str:
    """Entities as boxes in text order, relations as arcs above them, highest for the widest."""
    order = sorted(range(len(result.entities)), key=lambda i: result.char_span(result.entities[i]))
    place = {i: k for k, i in enumerate(order)}
    labels = {i: f"{result.entities[i].type} {float(result.entities[i].score):.2f}" for i in order}
    x, boxes = NODE_GAP / 2, {}
    for i in order:
        width = max(_text_width(result.entities[i].text), _text_width(labels[i]) * 0.8) + 2 * NODE_PAD
        boxes[i] = (x, width)
        x += width + NODE_GAP
    relations = result.relation_indices()
    # Nested arcs lower, wider arcs higher; arcs over the same stretch stack.
    levels: dict[tuple[int, int], int] = {}
    heights = []
    for head, tail, _ in relations:
        lo, hi = sorted((place[head], place[tail]))
        stretch = (lo, hi)
        levels[stretch] = levels.get(stretch, -1) + 1
        heights.append(ARC_BASE + ARC_STEP * (max(hi - lo, 1) - 1 + 2 * levels[stretch]))
    top = max(heights, default=0) + 24
    width, height = x - NODE_GAP / 2, top + NODE_HEIGHT + 8
    out = [f'<svg class="graphie-relations" xmlns="http://www.w3.org/2000/svg" role="img" width="{width:.0f}" '
           f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
           f'style="display: block; margin-top: 1em; max-width: none; font-family: {FONT}; font-size: 14px">']
    out.append(f"<title>{escape(_summary(result, relations))}</title>")
    for (head, tail, r), arc_height in zip(relations, heights):
        out.append(_arc(result, r, head, tail, boxes, place, top, arc_height))
    for i in order:
        bx, bw = boxes[i]
        e = result.entities[i]
        out.append(
            f'<g class="graphie-node" data-entity="{i}" data-type="{_attr(e.type)}">'
            f'<rect x="{bx:.1f}" y="{top:.1f}" width="{bw:.1f}" height="{NODE_HEIGHT}" rx="6" '
            f'fill="{_pale(e.type)}" stroke="{colour(e.type)}" stroke-width="2"/>'
            f'<text x="{bx + bw / 2:.1f}" y="{top + 16:.1f}" text-anchor="middle">{escape(e.text)}</text>'
            f'<text x="{bx + bw / 2:.1f}" y="{top + 31:.1f}" text-anchor="middle" font-size="10" '
            f'font-weight="bold" fill="{colour(e.type)}">{escape(labels[i])}</text></g>')
    out.append("</svg>")
    return "".join(out)


def _arc(result: "Extraction", relation: Any, head: int, tail: int, boxes: dict, place: dict,
         top: float, arc_height: float) -> str:
    """One relation: a curve from the head's box to the tail's, an arrow into the tail, the label."""
    def end(i: int, towards: int) -> float:  # an arc leaves a box off-centre, towards the other end
        bx, bw = boxes[i]
        shift = 0.0 if towards == place[i] else (bw / 6 if towards > place[i] else -bw / 6)
        return bx + bw / 2 + shift

    x1, x2 = end(head, place[tail]), end(tail, place[head])
    if head == tail:  # a loop over one box
        x1, x2 = x1 - boxes[head][1] / 4, x2 + boxes[head][1] / 4
    y = top - 2
    peak = y - arc_height / 0.75  # a cubic's apex is 3/4 of its control height
    label = f"{relation.label} {float(relation.score):.2f}"
    return (
        f'<g class="graphie-relation" data-head="{head}" data-tail="{tail}" data-label="{_attr(relation.label)}" '
        f'data-score="{float(relation.score):.4f}">'
        f'<path class="graphie-arc" d="M {x1:.1f} {y:.1f} C {x1:.1f} {peak:.1f}, {x2:.1f} {peak:.1f}, '
        f'{x2:.1f} {y - 6:.1f}" fill="none" stroke="rgb(60, 60, 60)" stroke-width="1.6"/>'
        f'<path class="graphie-arrow" d="M {x2 - 5:.1f} {y - 8:.1f} L {x2 + 5:.1f} {y - 8:.1f} L {x2:.1f} {y:.1f} Z" '
        f'fill="rgb(60, 60, 60)"/>'
        f'<text x="{(x1 + x2) / 2:.1f}" y="{y - arc_height - 5:.1f}" text-anchor="middle" font-size="12" '
        f'stroke="white" stroke-width="4" paint-order="stroke" fill="rgb(20, 20, 20)">{escape(label)}</text></g>')


def _summary(result: "Extraction", relations: list) -> str:
    return "; ".join(f"{result.entities[h].text} → {result.entities[t].text}: {r.label} {float(r.score):.2f}"
                     for h, t, r in relations)


# --- the image ---------------------------------------------------------------------------------
def _image_html(result: "Extraction", image: Any) -> str:
    """The image, inline, with a box per (entity, object) pair of the evidence."""
    from parsers.image import load_image

    picture = load_image(image)
    graph = result.scene_graph
    width = (graph.width if graph is not None and graph.width else None) or picture.width
    height = (graph.height if graph is not None and graph.height else None) or picture.height
    shown = picture.copy()
    shown.thumbnail((IMAGE_WIDTH, IMAGE_WIDTH * 4))
    buf = io.BytesIO()
    shown.convert("RGB").save(buf, format="JPEG", quality=85)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    boxes = []
    for i, e in enumerate(result.entities):
        for v in e.evidence:
            k = int(v["object"])
            obj = graph.objects[k] if graph is not None and 0 < k < len(graph.objects) else None
            if obj is None or obj.box is None:
                continue
            x0, y0, x1, y1 = obj.box
            stroke = max(2.0, 8.0 * float(v["weight"])) * width / max(shown.width, 1)
            note = f"{e.text} ({e.type}) ← {obj.label} {float(v['weight']):.2f}"
            boxes.append(
                f'<g class="graphie-evidence" data-entity="{i}" data-object="{k}" data-label="{_attr(obj.label)}">'
                f'<title>{escape(note)}</title>'
                f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" fill="none" '
                f'stroke="{colour(e.type)}" stroke-width="{stroke:.1f}"/>'
                f'<text x="{x0 + stroke:.1f}" y="{y0 + 16 * width / max(shown.width, 1) + stroke:.1f}" '
                f'font-size="{14 * width / max(shown.width, 1):.1f}" fill="white" stroke="{colour(e.type)}" '
                f'stroke-width="{4 * width / max(shown.width, 1):.1f}" paint-order="stroke">{escape(note)}</text></g>')
    overlay = (f'<svg class="graphie-boxes" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
               f'preserveAspectRatio="none" style="position: absolute; left: 0; top: 0; width: 100%; height: 100%">'
               + "".join(boxes) + "</svg>") if boxes else ""
    return (f'<div class="graphie-image" style="position: relative; display: inline-block; margin-top: 1em; '
            f'max-width: {shown.width}px; line-height: 0">'
            f'<img src="data:image/jpeg;base64,{data}" alt="image of the post" width="{shown.width}" '
            f'height="{shown.height}" style="display: block; max-width: 100%; height: auto">{overlay}</div>')
