"""Rendering a scene graph onto its image: boxes, labels, OCR text, the first tag of each
object, predicate arrows, and a side panel listing the nodes with their tags and the edges
(caption graphs, which have no boxes, show the panel only)."""

from __future__ import annotations

import math
import os
import textwrap

from PIL import Image, ImageDraw, ImageFont

from ..scene import SceneGraph
from .loading import ImageSource, load_image

COLOURS = {"person": (230, 60, 60), "face": (250, 170, 30), "text": (40, 150, 255)}
OTHER_COLOUR = (60, 200, 90)
# One edge of each inverse pair is drawn; the other direction adds nothing to a picture.
DRAWN_PREDICATES_SKIP = {"right of", "below", "inside", "under", "behind"}
# With many objects, direction arrows between every pair hide the image: draw them only for
# small graphs (the side panel always lists every edge).
DIRECTIONS = {"left of", "above"}
MAX_OBJECTS_FOR_DIRECTIONS = 4
PANEL_WIDTH = 320
PANEL_CHARS = 46  # characters of the 12 px panel font that fit in PANEL_WIDTH


def load_font(size: int):
    """Pillow's default font at ``size`` (a fixed-size bitmap font on Pillow < 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def draw_scene_graph(image: ImageSource | None, graph: SceneGraph, path: str | os.PathLike | None = None,
                     max_panel_edges: int = 40) -> Image.Image:
    """``graph`` drawn on ``image`` (or on a blank canvas when ``image`` is ``None``); saved as
    PNG to ``path`` when given. Returns the picture."""
    if image is not None:
        base = load_image(image).copy()
    elif any(o.box is not None for o in graph.objects[1:]):
        base = Image.new("RGB", (graph.width or 480, graph.height or 360), (245, 245, 245))
    else:  # a caption graph: the panel alone
        base = Image.new("RGB", (0, 0))
    w, h = base.size
    tag_lines = sum(1 + len(o.tags) // 3 for o in graph.objects if o.tags)
    panel_height = 12 + 15 * (len(graph.objects) + tag_lines + min(len(graph.edges), max_panel_edges) + 5)
    canvas = Image.new("RGB", (w + PANEL_WIDTH, max(h, min(panel_height, 1200))), (255, 255, 255))
    canvas.paste(base, (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = load_font(max(12, min(w, h) // 40))
    small = load_font(12)

    def colour(i: int):
        return COLOURS.get(graph.objects[i].label, OTHER_COLOUR)

    def centre(i: int):
        b = graph.objects[i].box
        return ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)

    directions = len(graph.objects) - 1 <= MAX_OBJECTS_FOR_DIRECTIONS
    arrows: dict[tuple[int, int], list[str]] = {}  # one arrow per pair, its predicates joined
    for e in graph.edges:
        if e.subject == 0 or e.object == 0 or e.predicate in DRAWN_PREDICATES_SKIP:
            continue
        if e.predicate in DIRECTIONS and not directions:
            continue
        if graph.objects[e.subject].box is None or graph.objects[e.object].box is None:
            continue
        if (e.object, e.subject) in arrows:  # near / overlaps: keep the arrow already there
            if e.predicate not in arrows[(e.object, e.subject)]:
                arrows[(e.object, e.subject)].append(e.predicate)
            continue
        arrows.setdefault((e.subject, e.object), [])
        if e.predicate not in arrows[(e.subject, e.object)]:
            arrows[(e.subject, e.object)].append(e.predicate)
    for (s, o), predicates in arrows.items():
        (x0, y0), (x1, y1) = centre(s), centre(o)
        draw.line([(x0, y0), (x1, y1)], fill=(255, 255, 255), width=3)
        draw.line([(x0, y0), (x1, y1)], fill=(90, 90, 90), width=1)
        angle = math.atan2(y1 - y0, x1 - x0)
        for side in (2.6, -2.6):  # arrow head at the object end
            draw.line([(x1, y1), (x1 + 10 * math.cos(angle + side), y1 + 10 * math.sin(angle + side))],
                      fill=(90, 90, 90), width=2)
        draw.text(((x0 + x1) / 2, (y0 + y1) / 2), ", ".join(predicates), fill=(0, 0, 0), font=small,
                  stroke_width=2, stroke_fill=(255, 255, 255))

    for i, o in enumerate(graph.objects[1:], 1):
        if o.box is None:
            continue
        draw.rectangle(o.box, outline=colour(i), width=3)
        caption = f"{i}:{o.label} {o.score:.2f}" + (f" '{o.text}'" if o.text else "")
        if o.tags:
            caption += f" ({next(iter(o.tags))})"
        height = getattr(font, "size", 11) + 4
        # Above the box, or just inside its top edge when there is no room above.
        tx, ty = o.box[0] + 2, o.box[1] - height if o.box[1] >= height else o.box[1] + 2
        draw.text((tx, ty), caption, fill=colour(i), font=font, stroke_width=2, stroke_fill=(0, 0, 0))

    size = f" {graph.width}x{graph.height}" if graph.width else ""
    lines = [f"{graph.image_id or ''}{size}", f"{len(graph.objects)} nodes, {len(graph.edges)} edges", ""]
    for i, o in enumerate(graph.objects):
        lines.append(f"{i}: {o.label}" + (f" '{o.text}'" if o.text else ""))
        if o.tags:  # wrapped to the panel's width
            lines += textwrap.wrap(", ".join(f"{t} {p:.2f}" for t, p in o.tags.items()), PANEL_CHARS,
                                   initial_indent="    ", subsequent_indent="    ")
    lines.append("")
    shown, listed = [], set()
    for e in graph.edges:  # a symmetric predicate (beside, near) is listed once per pair
        drawn = e.subject and e.object and e.predicate not in DRAWN_PREDICATES_SKIP
        if drawn and (e.object, e.predicate, e.subject) not in listed:
            shown.append(e)
            listed.add((e.subject, e.predicate, e.object))
    lines += [f"{e.subject} {graph.objects[e.subject].label} - {e.predicate} -> {e.object} {graph.objects[e.object].label}"
              for e in shown[:max_panel_edges]]
    if len(shown) > max_panel_edges:
        lines.append(f"... {len(shown) - max_panel_edges} more")
    draw.multiline_text((w + 8, 8), "\n".join(lines), fill=(0, 0, 0), font=small, spacing=3)
    if path is not None:
        canvas.save(path, format="PNG")
    return canvas
