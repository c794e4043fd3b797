"""Image evidence on real tweet photos: do graphie's detections and evidence land on GMNER's entity boxes?

    python benchmarks/bench_evidence.py [--split valid|train|all] [--model default|PATH|none] [--threads 1]

For each photo of ``tweet_images/`` that GMNER boxes (``gmner/boxes.jsonl``), and for each gold
entity of its tweet that GMNER marks visible (``gmner/entities.jsonl``, ``visible: true``):

1. **Detector recall** (the upper bound for evidence): does some object of the scene graph that the
   model reads (the whole-image node left out, at most the model's ``max_objects``) have IoU >= 0.5
   with one of the entity's true boxes? The same question for every detection before the top-k cut,
   and for the whole-image box (a trivial reference: a box that fills the photo "matches" it too);
   and whether an OCR text object reads the entity's name (another kind of evidence, not a box match).
   **Precision side**: of the detected objects, how many have IoU >= 0.5 with some GMNER box of the
   photo, and how many lie mostly (>= 50 % of their area) inside one (a face in a person's box).
2. **Own-box top evidence**: the post's text (its tweet tokens joined by spaces) and the scene graph go
   through the model (``Extractor.extract``); for each visible gold entity that the model extracts
   (same characters, any type), is its top evidence (``Entity.evidence[0]``, strongest first) an
   object whose box has IoU >= 0.5 with one of the entity's true boxes? A model with alignment
   ``none`` (the shipped ``default``) gives no evidence at all; the table says so.

Boxes are compared in pixels of the original image: scene-graph boxes are in pixels of the image the
parser decoded (``SceneGraph.width`` x ``height``) and are scaled to GMNER's ``width`` x ``height``
when the two differ (a photo over ``max_pixels`` is decoded smaller). Prints Markdown; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from parsers.image.detectors.base import box_iou  # noqa: E402
from parsers.scene import Box, box_area  # noqa: E402

DATA = os.path.join("..", "shared", "data")
IOU = 0.5
TYPES = ("PER", "LOC", "ORG", "MISC", "OTHER")


# ---------------------------------------------------------------------------- matching
def scale_box(box: Sequence[float], size: tuple[float, float], to: tuple[float, float]) -> Box:
    """``box`` (x0, y0, x1, y1) in pixels of an image of ``size`` (width, height), in pixels of the
    same image at size ``to``."""
    sx, sy = to[0] / size[0], to[1] / size[1]
    return (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)


def best_match(true_boxes: Sequence[Sequence[float]], boxes: Sequence[Sequence[float] | None]) -> tuple[int | None, float]:
    """The index of the box in ``boxes`` with the highest IoU with any of ``true_boxes``, and that
    IoU; ``(None, 0.0)`` when no box meets any true box (``None`` entries, boxless objects, never match)."""
    best, best_iou = None, 0.0
    for i, box in enumerate(boxes):
        if box is None:
            continue
        iou = max((box_iou(tuple(box), tuple(t)) for t in true_boxes), default=0.0)
        if iou > best_iou:
            best, best_iou = i, iou
    return best, best_iou


def matches(true_boxes: Sequence[Sequence[float]], box: Sequence[float] | None, threshold: float = IOU) -> bool:
    """Whether ``box`` has IoU >= ``threshold`` with one of ``true_boxes``."""
    return box is not None and best_match(true_boxes, [box])[1] >= threshold


def share_inside(box: Sequence[float], true_boxes: Sequence[Sequence[float]]) -> float:
    """The largest share of ``box``'s area that lies inside one of ``true_boxes`` (1 for a face
    inside a person's box, whatever their IoU)."""
    area = box_area(tuple(box))
    if area <= 0:
        return 0.0
    best = 0.0
    for t in true_boxes:
        ix = max(0.0, min(box[2], t[2]) - max(box[0], t[0]))
        iy = max(0.0, min(box[3], t[3]) - max(box[1], t[1]))
        best = max(best, ix * iy / area)
    return best


def _letters(s: str) -> str:
    return "".join(ch for ch in s.lower() if ch.isalnum())


def ocr_names(name: str, objects: Sequence[Any], least: int = 4) -> Any:
    """The first OCR text object whose reading contains the entity's name or is contained in it
    (letters and digits only, case ignored, at least ``least`` of them on the shorter side), else ``None``."""
    want = _letters(name)
    for o in objects:
        got = _letters(o.text or "")
        if min(len(got), len(want)) >= least and (want in got or got in want):
            return o
    return None


def own_box_evidence(evidence: Sequence[dict[str, Any]], graph: Any, true_boxes: Sequence[Sequence[float]],
                     size: tuple[float, float], threshold: float = IOU) -> tuple[dict[str, Any] | None, float, bool]:
    """An entity's top evidence (``evidence[0]``, strongest first; ``None`` without evidence), the
    IoU of the scene-graph object it names with the entity's best true box (boxes in pixels of an
    image of ``size``; graph boxes scaled from the graph's size), and whether that is an own-box
    match: IoU >= ``threshold`` and not the whole-image node (object 0, which "matches" any box that
    fills the photo)."""
    if not evidence:
        return None, 0.0, False
    top = evidence[0]
    index = int(top["object"])
    if graph is None or not 0 <= index < len(graph.objects) or graph.objects[index].box is None:
        return top, 0.0, False
    box = graph.objects[index].box
    if graph.width and graph.height:
        box = scale_box(box, (graph.width, graph.height), size)
    iou = best_match(true_boxes, [box])[1]
    return top, iou, index != 0 and iou >= threshold


# ---------------------------------------------------------------------------- data
@dataclass
class Photo:
    img_id: str
    dataset: str
    split: str
    path: str
    width: int
    height: int
    boxes: list[dict[str, Any]]  # GMNER: {"entity", "box"}
    entities: list[dict[str, Any]] = field(default_factory=list)  # visible gold entities
    tokens: list[str] = field(default_factory=list)


def read_jsonl(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_photos(data: str, split: str) -> list[Photo]:
    """The boxed photos of ``tweet_images/`` in ``split`` (``all``: train and valid), with their
    visible gold entities and tweet tokens."""
    from graphie.datasets import read_twitter

    images = os.path.join(data, "tweet_images")
    with open(os.path.join(images, "images.tsv"), encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        rows = {r["img_id"]: r for r in (dict(zip(header, line.rstrip("\n").split("\t"))) for line in f if line.strip())}
    boxed = {d["img_id"]: d for d in read_jsonl(os.path.join(data, "gmner", "boxes.jsonl"))
             if d["img_id"] in rows and d["boxes"] and (split == "all" or d["split"] == split)}
    photos = {i: Photo(i, d["dataset"], d["split"], os.path.join(images, rows[i]["file"]), d["width"], d["height"], d["boxes"])
              for i, d in boxed.items()}
    for e in read_jsonl(os.path.join(data, "gmner", "entities.jsonl")):
        if e["img_id"] in photos and e["visible"]:
            photos[e["img_id"]].entities.append(e)
    for dataset, sp in {(p.dataset, p.split) for p in photos.values()}:
        for post in read_twitter(os.path.join(data, dataset, f"{sp}.txt"), other_as_misc=False):
            if str(post.id) in photos and photos[str(post.id)].dataset == dataset:
                photos[str(post.id)].tokens = list(post.tokens)
    return sorted(photos.values(), key=lambda p: (p.dataset, p.split, p.img_id))


def char_span(tokens: Sequence[str], start: int, end: int) -> tuple[int, int]:
    """Character offsets of tokens ``[start, end)`` in ``" ".join(tokens)``."""
    begin = sum(len(t) + 1 for t in tokens[:start])
    return begin, begin + len(" ".join(tokens[start:end]))


# ---------------------------------------------------------------------------- report
def fmt_obj(obj: Any) -> str:
    if obj is None:
        return "–"
    label = "text “" + obj.text.replace("|", r"\|") + "”" if obj.label == "text" and obj.text else obj.label
    return f"{label} ({obj.score:.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA, help=f"the shared data folder (default {DATA})")
    parser.add_argument("--split", choices=["valid", "train", "all"], default="valid",
                        help="photos of this original split (default valid; all: train too, nothing is trained here)")
    parser.add_argument("--model", default="default",
                        help="a shipped model name or saved model folder (default: default); none: detector only")
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads (default 1)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from parsers.image import get_detector, load_image, parse_image

    photos = load_photos(args.data, args.split)
    if not photos:
        print(f"no boxed photos for split {args.split!r} under {args.data}", file=sys.stderr)
        return 1
    detector_options = {"threads": args.threads}
    extractor = None
    if args.model != "none":
        import graphie

        extractor = graphie.load(args.model, detector_options=detector_options)
    detector = get_detector("default", **detector_options)

    recall_rows, precision_rows, evidence_rows = [], [], []
    by_type: dict[str, Counter] = {}
    totals = Counter()
    for p in photos:
        size = (p.width, p.height)
        graph = extractor.scene_graph(p.path) if extractor is not None else \
            parse_image(p.path, detector, max_objects=10, features=False)
        gsize = (graph.width, graph.height)
        objects = graph.objects[1:]  # objects[0] is the whole image
        boxes = [scale_box(o.box, gsize, size) if o.box is not None else None for o in objects]
        image = load_image(p.path)
        everything = detector.detect(image)
        all_boxes = [scale_box(o.box, image.size, size) for o in everything]
        whole = (0.0, 0.0, float(p.width), float(p.height))

        for e in p.entities:
            i, iou = best_match(e["boxes"], boxes)
            j, iou_all = best_match(e["boxes"], all_boxes)
            whole_iou = best_match(e["boxes"], [whole])[1]
            read = ocr_names(e["text"], objects)
            hit, hit_all = iou >= IOU, iou_all >= IOU
            c = by_type.setdefault(e["type"], Counter())
            c.update(entities=1, graph=int(hit), all=int(hit_all), whole=int(whole_iou >= IOU), ocr=int(read is not None))
            recall_rows.append(f"| {p.img_id} | {p.split} | {e['text']} | {e['type']} | "
                               f"{fmt_obj(objects[i] if i is not None else None)} | {iou:.2f} | {'yes' if hit else 'no'} | "
                               f"{fmt_obj(everything[j] if j is not None else None)} | {iou_all:.2f} | {whole_iou:.2f} | "
                               f"{fmt_obj(read)} |")

        gmner = [b["box"] for b in p.boxes]
        on_box = [o for o, b in zip(objects, boxes) if b is not None and matches(gmner, b)]
        inside = [o for o, b in zip(objects, boxes) if b is not None and share_inside(b, gmner) >= 0.5]
        off = Counter(o.label for o, b in zip(objects, boxes) if b is None or share_inside(b, gmner) < 0.5)
        totals.update(objects=len(objects), on_box=len(on_box), inside=len(inside), boxes=len(gmner))
        precision_rows.append(f"| {p.img_id} | {len(gmner)} | {len(objects)} | {len(on_box)} | {len(inside)} | "
                              f"{', '.join(f'{k}×{v}' for k, v in sorted(off.items())) or '–'} |")

        if extractor is not None:
            text = " ".join(p.tokens)
            result = extractor.extract(text, graph)
            found = {(x.span.start_char, x.span.end_char): x for x in result.entities}
            for e in p.entities:
                start, end = char_span(p.tokens, e["start"], e["end"])
                predicted = found.get((start, end))
                top, iou, own = own_box_evidence(predicted.evidence if predicted else [], result.scene_graph,
                                                 e["boxes"], size)
                totals.update(gold=1, extracted=int(predicted is not None), with_evidence=int(top is not None), own=int(own),
                              whole_top=int(top is not None and int(top["object"]) == 0))
                shown = f"{top['label']} #{top['object']} ({top['weight']:.2f})" if top else "–"
                evidence_rows.append(f"| {p.img_id} | {e['text']} | {e['type']} | {predicted.type if predicted else '–'} | "
                                     f"{shown} | {f'{iou:.2f}' if top else '–'} | {'yes' if own else 'no'} |")

    n_photos, n_entities = len(photos), sum(len(p.entities) for p in photos)
    max_objects = extractor.max_objects if extractor is not None else 10
    print(f"## Detector recall of visible entity boxes ({args.split}: {n_photos} photos, {n_entities} visible gold entities)\n")
    print(f"Scene graph: the default detector, at most {max_objects} objects (the whole-image node left out); "
          f"a match is IoU >= {IOU} with one of the entity's GMNER boxes.\n")
    print("| photo | split | entity | type | best graph object | IoU | match | best of all detections | IoU "
          "| whole-image IoU | OCR reads the name |")
    print("|---|---|---|---|---|---:|---|---|---:|---:|---|")
    print("\n".join(recall_rows))
    print("\n| type | visible entities | matched (graph) | matched (all detections) | whole-image box matches "
          "| OCR reads the name |")
    print("|---|---:|---:|---:|---:|---:|")
    total = Counter()
    for t in [t for t in TYPES if t in by_type] + sorted(set(by_type) - set(TYPES)):
        c = by_type[t]
        total.update(c)
        print(f"| {t} | {c['entities']} | {c['graph']} | {c['all']} | {c['whole']} | {c['ocr']} |")
    print(f"| all | {total['entities']} | {total['graph']} | {total['all']} | {total['whole']} | {total['ocr']} |")

    print("\n## Detected objects on GMNER boxes (precision side)\n")
    print(f"| photo | GMNER boxes | graph objects | IoU >= {IOU} with a box | >= 50 % inside a box | labels of the others |")
    print("|---|---:|---:|---:|---:|---|")
    print("\n".join(precision_rows))
    print(f"| all | {totals['boxes']} | {totals['objects']} | {totals['on_box']} | {totals['inside']} | |")

    if extractor is not None:
        cfg = extractor.model.config
        print(f"\n## Own-box top evidence (model {args.model!r}: task {cfg.task}, alignment {cfg.alignment!r})\n")
        if totals["with_evidence"] == 0:
            why = (f"the model has no alignment (alignment {cfg.alignment!r}: it reads the text only)"
                   if cfg.alignment == "none" else "it extracted none of them" if not totals["extracted"]
                   else "no object reached the evidence threshold for any of them")
            print(f"{totals['extracted']} of {totals['gold']} visible gold entities extracted; "
                  f"0 of {totals['extracted']} with evidence, because {why}.\n")
        print("| photo | entity | gold type | extracted as | top evidence (object, weight) | IoU | own box |")
        print("|---|---|---|---|---|---:|---|")
        print("\n".join(evidence_rows))
        print(f"\nExtracted {totals['extracted']} of {totals['gold']}; with evidence {totals['with_evidence']}; "
              f"top evidence the whole image {totals['whole_top']}; own-box top evidence {totals['own']} "
              f"of {totals['extracted']} extracted ({totals['own']} of {totals['gold']} visible).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
