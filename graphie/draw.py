"""One picture of an extraction: the image with its scene graph, the post's text with entities
highlighted by type, relation arrows between entities, and lines from each entity to the image
objects most aligned with it. :func:`write_html` writes the HTML view (:mod:`graphie.html`) instead."""

from __future__ import annotations

import os
from typing import Any

from PIL import Image, ImageDraw

from parsers.image.draw import load_font

from .errors import InvalidInputError, OutputError
from .types import Extraction

TYPE_COLOURS = {
    "PER": (231, 76, 60),
    "ORG": (52, 152, 219),
    "LOC": (46, 204, 113),
    "MISC": (155, 89, 182),
}
DEFAULT_COLOUR = (127, 140, 141)
MARGIN = 16
LEVEL_HEIGHT = 22  # vertical room per nesting level of relation arcs


def _layout_words(tokens: list[str], font: Any, width: int, top: int, line_height: int) -> list[tuple[float, float, float, float]]:
    """Word boxes (x0, y0, x1, y1) of the text wrapped to ``width``."""
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    space = measure.textlength(" ", font=font)
    boxes, x, y = [], MARGIN, top
    for tok in tokens:
        w = measure.textlength(tok, font=font)
        if x + w > width - MARGIN and x > MARGIN:
            x, y = MARGIN, y + line_height
        boxes.append((x, y, x + w, y + font.size if hasattr(font, "size") else y + 12))
        x += w + space
    return boxes


def draw_extraction(
    result: Extraction, image: Any = None, path: str | os.PathLike | None = None, font_size: int = 20
) -> Image.Image:
    """Render ``result`` (with ``image``, a path/bytes/PIL image, when it has one) as one picture;
    saved to ``path`` when given, in the format its suffix names (``x.jpg`` is a JPEG)."""
    from parsers.image import draw_scene_graph

    image_format = None
    if path is not None:
        suffix = os.path.splitext(str(path))[1].lower()
        image_format = Image.registered_extensions().get(suffix)
        if image_format is None:
            raise InvalidInputError(f"cannot write a picture to {str(path)!r}: unknown suffix {suffix!r} "
                                    "(use .png, .jpg, .webp, ...)")

    top = None
    if result.scene_graph is not None:
        top = draw_scene_graph(image, result.scene_graph)
    elif image is not None:
        from parsers.image import load_image

        top = load_image(image).copy()
    width = max(top.width if top is not None else 0, 720)
    font, small = load_font(font_size), load_font(max(11, font_size - 6))
    line_height = font_size + 2 * LEVEL_HEIGHT + 24
    levels = max(1, min(len(result.relations), 12))
    text_top = (top.height if top is not None else 0) + MARGIN + levels * LEVEL_HEIGHT + 30
    words = _layout_words(result.tokens, font, width, text_top, line_height)
    legend_y = (words[-1][3] if words else text_top) + MARGIN + 24  # below the type labels
    canvas = Image.new("RGB", (width, int(legend_y + 40)), (255, 255, 255))
    if top is not None:
        canvas.paste(top, (0, 0))
    draw = ImageDraw.Draw(canvas)

    def line_boxes(entity) -> list[tuple[float, float, float, float]]:
        """One box per text line the entity's words fall on (a wrapped entity has two)."""
        lines: dict[float, list] = {}
        for b in words[entity.span.start:entity.span.end]:
            lines.setdefault(b[1], []).append(b)
        return [(min(b[0] for b in bs), y, max(b[2] for b in bs), max(b[3] for b in bs)) for y, bs in lines.items()]

    def span_box(entity) -> tuple[float, float, float, float]:
        """Where arrows and evidence lines attach: the entity's first line."""
        return line_boxes(entity)[0]

    # A line from each entity up to its most aligned detected object (drawn first, under
    # everything else). The whole-image node (object 0) has no place to point at.
    graph = result.scene_graph
    for ent in result.entities:
        colour = TYPE_COLOURS.get(ent.type, DEFAULT_COLOUR)
        x0, y0, x1, _ = span_box(ent)
        for ev in ent.evidence:
            obj = graph.objects[ev["object"]] if graph is not None and 0 < ev["object"] < len(graph.objects) else None
            if obj is None or obj.box is None:
                continue
            target = ((obj.box[0] + obj.box[2]) / 2, (obj.box[1] + obj.box[3]) / 2)
            draw.line([((x0 + x1) / 2, y0 - 4), target], fill=colour, width=max(1, round(4 * ev["weight"])))
            break

    # Entities: a coloured band behind the words and the type above them.
    for ent in result.entities:
        colour = TYPE_COLOURS.get(ent.type, DEFAULT_COLOUR)
        pale = tuple(int(c + (255 - c) * 0.65) for c in colour)
        for x0, y0, x1, y1 in line_boxes(ent):
            draw.rectangle((x0 - 3, y0 - 3, x1 + 3, y1 + 5), fill=pale, outline=colour, width=2)
        x0, _, _, y1 = span_box(ent)
        draw.text((x0, y1 + 6), f"{ent.type} {ent.score:.2f}", fill=colour, font=small)
    for tok, (x0, y0, _, _) in zip(result.tokens, words):
        draw.text((x0, y0), tok, fill=(0, 0, 0), font=font)

    # Relations: an arc above the text from head to tail, arrow at the tail, label on top.
    for level, rel in enumerate(result.relations):
        hx0, hy0, hx1, _ = span_box(rel.head)
        tx0, ty0, tx1, _ = span_box(rel.tail)
        hx, tx = (hx0 + hx1) / 2, (tx0 + tx1) / 2
        y = min(hy0, ty0) - 12 - (level % levels + 1) * LEVEL_HEIGHT
        draw.line([(hx, hy0 - 4), (hx, y), (tx, y), (tx, ty0 - 4)], fill=(60, 60, 60), width=2)
        draw.polygon([(tx, ty0 - 3), (tx - 5, ty0 - 12), (tx + 5, ty0 - 12)], fill=(60, 60, 60))
        draw.text((hx + (6 if tx >= hx else -6), y - 2), f"{rel.label} {rel.score:.2f}", fill=(20, 20, 20),
                  font=small, anchor="ld" if tx >= hx else "rd", stroke_width=2, stroke_fill=(255, 255, 255))

    x = MARGIN
    for name, colour in TYPE_COLOURS.items():
        draw.rectangle((x, legend_y, x + 14, legend_y + 14), fill=colour)
        draw.text((x + 20, legend_y), name, fill=(0, 0, 0), font=small)
        x += 90
    if path is not None:
        try:
            canvas.save(path, format=image_format)
        except OSError as exc:
            raise OutputError(f"cannot write the picture {str(path)!r}: {exc.strerror or exc}") from exc
    return canvas


def write_html(result: Extraction, image: Any = None, path: str | os.PathLike = "extraction.html") -> str:
    """Write the HTML page of ``result`` (:meth:`~graphie.types.Extraction.to_html` with ``page=True``; ``image``
    a path, bytes or PIL image, inline) to ``path`` as UTF-8 and return the page.

    Raises:
        OutputError: ``path`` cannot be written (missing folder, read-only, disk full).
        ImageError: ``image`` cannot be read.
    """
    page = result.to_html(image, page=True)
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as exc:
        raise OutputError(f"cannot write the HTML page {str(path)!r}: {exc.strerror or exc}") from exc
    return page
