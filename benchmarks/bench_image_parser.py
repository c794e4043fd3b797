"""Per-stage timing of the default image parser on a folder of images.

    python benchmarks/bench_image_parser.py [IMAGE_DIR] [--threads 1] [--repeat 3] [--draw OUT_DIR]

Prints, per image, the milliseconds of each stage (decode, person, face, ocr, features,
graph = top-k + spatial predicates), their total, the wall-clock total, and what was found
(people, faces, text); then the median and maximum per column. Stage times are CPU time
(``time.process_time``; with ``--threads 1`` this is the single-core cost, unaffected by
other jobs on a shared machine), each the best of ``--repeat`` runs; ``wall`` is the best
wall-clock time of the whole image.
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
    parser.add_argument("--draw", help="folder to write annotated PNGs into")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from parsers.image import RegionFeatureExtractor, build_scene_graph, draw_scene_graph, get_detector, load_image
    from parsers.image.detectors.base import nms

    t = time.perf_counter()
    off = {"off": False}
    detector = get_detector("default", threads=args.threads, ocr=off.get(args.ocr, args.ocr),
                            faces=off.get(args.faces, args.faces))
    features = RegionFeatureExtractor("roi")
    print(f"models loaded in {time.perf_counter() - t:.2f} s (threads={args.threads})")

    files = sorted(f for f in os.listdir(args.images) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        print(f"no images in {args.images}", file=sys.stderr)
        return 1
    # Warm-up: onnxruntime and torch allocate on the first call.
    warm = load_image(os.path.join(args.images, files[0]))
    found: list = []
    for _, stage in detector.stages():
        found += stage(warm, found)
    features(warm, [])

    names = ["decode"] + [n for n, _ in detector.stages()] + ["features", "graph"]
    columns = names + ["total", "wall"]
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
            graph = timed("graph", lambda: build_scene_graph(image, nms(objects), 10, f))
            timed("features", features, image, [o.box for o in graph.objects[1:]])
            best["wall"] = min(best.get("wall", float("inf")), (time.perf_counter() - wall) * 1000)
        best["total"] = sum(best[n] for n in names)
        for n in columns:
            rows[n].append(best[n])
        people = sum(o.label == "person" for o in graph.objects)
        faces = sum(o.label == "face" for o in graph.objects)
        texts = [o.text for o in graph.objects if o.label == "text"]
        found = f"people={people} faces={faces} text={texts}"
        print(f"{f:<44}" + "".join(f"{best[n]:9.1f}" for n in columns) + "  " + found)
        if args.draw:
            os.makedirs(args.draw, exist_ok=True)
            draw_scene_graph(image, graph, os.path.join(args.draw, os.path.splitext(f)[0] + ".png"))
    print(f"{'median (ms)':<44}" + "".join(f"{statistics.median(rows[n]):9.1f}" for n in columns))
    print(f"{'max (ms)':<44}" + "".join(f"{max(rows[n]):9.1f}" for n in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
