"""Per-stage timing of the default image parser on a folder of images.

    python benchmarks/bench_image_parser.py [IMAGE_DIR] [--threads 1] [--repeat 3] [--crop-tags 1] [--draw OUT_DIR]

Prints, per image, the milliseconds of each stage (decode; objects = the 80-class COCO SSD,
person = the person-only SSDLite, face, ocr; graph = top-k + spatial predicates; tags = the
ImageNet tagger on the whole image and ``--crop-tags`` object crops; features), ``det+tags``
(objects + person + face + tags: the figure the 150 ms budget is about, OCR aside), their
total, the wall-clock total, and what was found; then the median and maximum per column.
Stage times are CPU time
(``time.process_time``; with ``--threads 1`` this is the single-core cost, unaffected by
other jobs on a shared machine), each the best of ``--repeat`` runs; ``wall`` is the best
wall-clock time of the whole image.

    python benchmarks/bench_image_parser.py [IMAGE_DIR] --person-recall

instead compares the two person detectors at 0.4: per image, the people the COCO SSD finds, the
people the person-only SSDLite finds, and those of the latter that no COCO person box matches
(IoU < 0.5): what the SSDLite stage adds to the default detector.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="?", default=os.path.join("..", "shared", "data", "mnre_images"))
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads (default 1)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ocr", choices=["fast", "full", "off"], default="fast")
    parser.add_argument("--faces", choices=["persons", "full", "off"], default="persons")
    parser.add_argument("--crop-tags", type=int, default=1, help="object crops tagged per image (default 1)")
    parser.add_argument("--draw", help="folder to write annotated PNGs into")
    parser.add_argument("--person-recall", action="store_true", help="compare the two person detectors instead")
    args = parser.parse_args(argv)

    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    from parsers.image import (RegionFeatureExtractor, build_scene_graph, draw_scene_graph, get_detector, get_tagger,
                               load_image, tag_scene_graph)

    t = time.perf_counter()
    off = {"off": False}
    detector = get_detector("default", threads=args.threads, ocr=off.get(args.ocr, args.ocr),
                            faces=off.get(args.faces, args.faces))
    tagger = get_tagger("default", threads=args.threads)
    features = RegionFeatureExtractor("roi")
    print(f"models loaded in {time.perf_counter() - t:.2f} s (threads={args.threads})")

    files = sorted(f for f in os.listdir(args.images) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        print(f"no images in {args.images}", file=sys.stderr)
        return 1
    if args.person_recall:
        return person_recall(detector, [os.path.join(args.images, f) for f in files])
    # Warm-up: onnxruntime and torch allocate on the first call.
    warm = load_image(os.path.join(args.images, files[0]))
    found: list = []
    for _, stage in detector.stages():
        found += stage(warm, found)
    tagger.tag([warm])
    features(warm, [])

    stage_names = [n for n, _ in detector.stages()]
    names = ["decode", *stage_names, "graph", "tags", "features"]
    budget = [n for n in ("objects", "person", "face", "tags") if n in names]
    columns = names + ["det+tags", "total", "wall"]
    rows: dict[str, list[float]] = {n: [] for n in columns}
    header = "".join(f"{n:>9}" for n in columns)
    print(f"{'image':<44}{header}  found")
    for f in files:
        path = os.path.join(args.images, f)
        best: dict[str, float] = {}

        def timed(name, fn, *a):
            start = time.process_time()
            out = fn(*a)
            best[name] = min(best.get(name, float("inf")), (time.process_time() - start) * 1000)
            return out

        for _ in range(args.repeat):
            wall = time.perf_counter()
            image = timed("decode", load_image, path)
            objects = []
            for name, stage in detector.stages():
                objects += timed(name, stage, image, objects)
            graph = timed("graph", lambda: build_scene_graph(image, detector.finish(objects), 10, f))
            timed("tags", tag_scene_graph, image, graph, tagger, args.crop_tags)
            timed("features", features, image, [o.box for o in graph.objects[1:]])
            best["wall"] = min(best.get("wall", float("inf")), (time.perf_counter() - wall) * 1000)
        best["det+tags"] = sum(best[n] for n in budget)
        best["total"] = sum(best[n] for n in names)
        for n in columns:
            rows[n].append(best[n])
        counts: dict[str, int] = {}
        for o in graph.objects[1:]:
            counts[o.label] = counts.get(o.label, 0) + 1
        tags = ", ".join(t for o in graph.objects if o.tags for t in o.tags)
        found = " ".join(f"{k}={v}" for k, v in counts.items()) + f" | tags: {tags}"
        print(f"{f:<44}" + "".join(f"{best[n]:9.1f}" for n in columns) + "  " + found)
        if args.draw:
            os.makedirs(args.draw, exist_ok=True)
            draw_scene_graph(image, graph, os.path.join(args.draw, os.path.splitext(f)[0] + ".png"))
    print(f"{'median (ms)':<44}" + "".join(f"{statistics.median(rows[n]):9.1f}" for n in columns))
    print(f"{'max (ms)':<44}" + "".join(f"{max(rows[n]):9.1f}" for n in columns))
    return 0


def person_recall(detector, paths: list[str]) -> int:
    """Print what the person-only SSDLite adds to the COCO SSD's people (both at their thresholds)."""
    from parsers.image import load_image
    from parsers.image.detectors.base import box_iou

    totals = [0, 0, 0]
    print(f"{'image':<44}{'coco':>6}{'ssdlite':>9}{'added':>7}  added scores")
    for path in paths:
        image = load_image(path)
        coco = [o for o in detector.objects.detect(image) if o.label == "person"]
        lite = detector.person(image)
        added = [o for o in lite if all(box_iou(o.box, c.box) < 0.5 for c in coco)]
        for k, n in enumerate((len(coco), len(lite), len(added))):
            totals[k] += n
        scores = " ".join(f"{o.score:.2f}" for o in added)
        print(f"{os.path.basename(path):<44}{len(coco):>6}{len(lite):>9}{len(added):>7}  {scores}")
    print(f"{'total':<44}{totals[0]:>6}{totals[1]:>9}{totals[2]:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
