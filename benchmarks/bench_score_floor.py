"""Every detection of the default image parser on the real photos, with its score, so that the
per-class score floors (:data:`parsers.image.detectors.coco.CLASS_FLOORS`) are chosen from data.

    python benchmarks/bench_score_floor.py [IMAGE_DIR ...] [--min-score 0.2] [--draw OUT_DIR]

For each photo (default: ``../shared/data/mnre_images``, ``../shared/data/tweet_images`` and the
README's ``examples/data/astronaut.jpg``, and the scikit-image photos the tests read) it lists what the COCO SSD finds down to
``--min-score`` (below the detector's threshold, to see what a lower floor would let in), then
the people of the person-only SSDLite, the faces and the text lines the default detector keeps,
each marked ``kept`` when the default detector shows it; then the relations of the scene graph
(``riding``, ``on``, ``holding``, ...). Each COCO detection is also marked with the verdict of a
person who looked at the photo (:data:`VERDICTS`: ``true``, ``FALSE`` or ``?`` when nobody
judged it). The summary gives, per class, the scores of the judged true and false detections
and the floor that keeps every true one above the threshold and drops every false one.
``--draw`` writes each photo with its COCO boxes and scores, for judging.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIRS = [os.path.join(HERE, "..", "..", "shared", "data", "mnre_images"),
                os.path.join(HERE, "..", "..", "shared", "data", "tweet_images"),
                os.path.join(HERE, "..", "examples", "data", "astronaut.jpg")]


def skimage_photos() -> list[str]:
    """The scikit-image photos the tests read (lossless, so scores differ from the README's JPEG)."""
    try:
        import skimage
    except ImportError:
        return []
    folder = os.path.join(os.path.dirname(skimage.__file__), "data")
    return [os.path.join(folder, f) for f in ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png")]
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")

#: What a person saw, per photo (file name relative to its folder) and COCO detection, the
#: detection named by its label and its score to two places (``"mouse 0.41"``): True when the
#: box holds that thing, False when it does not.
VERDICTS: dict[str, dict[str, bool]] = {
    "astronaut.jpg": {"mouse 0.41": False},                                    # her helmet
    "astronaut.png": {"mouse 0.50": False},                                    # the same, lossless
    "chelsea.png": {"cat 0.91": True},
    "coffee.png": {"cup 0.95": True, "dining table 0.76": True},
    "motorcycle_left.png": {"motorcycle 0.99": True},
    "twitter_19_31_14_34.jpg": {"cat 0.85": True, "cat 0.54": True, "bed 0.45": True},  # one cat, two boxes; a blanket
    "twitter_stream_2018_05_07_17_0_2_172.jpg": {"mouse 0.36": False, "keyboard 0.39": False},  # a drawn bear
    "twitter_stream_2018_07_23_3_0_2_87.jpg": {"truck 0.88": True},           # a harvester, COCO's nearest class
    "twitter_stream_2018_10_10_13_0_2_142.jpg": {"bird 0.86": True},          # black and white, low over the water
    "twitter2015/190.jpg": {"chair 0.41": True},                               # the teacher's stool
    "twitter2015/278.jpg": {"bird 0.71": False},                               # an iceberg
    "twitter2015/694.jpg": {"tv 0.83": False},                                 # a phone screenshot
    "twitter2015/70560.jpg": {"chair 0.93": True, "chair 0.46": True, "dining table 0.37": True},
    "twitter2017/16_05_01_125.jpg": {"sports ball 0.56": False, "umbrella 0.45": False},  # cotton wool, a bag
    "twitter2017/16_05_01_147.jpg": {"tie 0.42": True},                        # the coach's tie
    "twitter2017/16_05_01_732.jpg": {"laptop 0.73": False},                    # a web page screenshot
    "twitter2017/16_05_01_818.jpg": {"pizza 0.41": False},                     # a basketball net
    "twitter2017/O_4154.jpg": {"tie 0.52": True, "tennis racket 0.39": False},  # a microphone stand
}


def photos(paths: list[str]) -> list[tuple[str, str]]:
    """(name shown, path) of every image under ``paths`` (folders walked, sorted)."""
    out = []
    for root in paths:
        if os.path.isfile(root):
            out.append((os.path.basename(root), root))
            continue
        for folder, _, files in sorted(os.walk(root)):
            for f in sorted(files):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    path = os.path.join(folder, f)
                    out.append((os.path.relpath(path, root), path))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", help="image files or folders (default: the photos named above)")
    parser.add_argument("--min-score", type=float, default=0.2, help="list COCO detections down to this score")
    parser.add_argument("--draw", help="folder to write each photo with its COCO boxes into")
    args = parser.parse_args(argv)

    import cv2

    cv2.setNumThreads(1)
    from parsers.image import build_scene_graph, get_detector, load_image
    from parsers.image.detectors.coco import CLASS_FLOORS, CocoSSD

    default = get_detector("default", threads=1)
    raw = CocoSSD(threshold=args.min_score, floors={})
    base = default.objects.threshold
    scores: dict[str, dict[bool | None, list[float]]] = defaultdict(lambda: defaultdict(list))
    relations: dict[str, int] = defaultdict(int)
    for name, path in photos([p for p in args.images or DEFAULT_DIRS + skimage_photos() if os.path.exists(p)]):
        image = load_image(path)
        kept = default.detect(image)
        print(f"{name}  ({image.width}x{image.height})")
        verdicts = VERDICTS.get(name, {})
        drawn = []
        for o in raw.detect(image):
            key = f"{o.label} {o.score:.2f}"
            verdict = verdicts.get(key)
            shown = any(k.source == "ssd_coco" and k.label == o.label and k.box == o.box for k in kept)
            mark = {True: "true", False: "FALSE", None: "?"}[verdict]
            box = " ".join(f"{v:.0f}" for v in o.box)
            print(f"  coco    {key:<22} [{box}]  {mark:<5} {'kept' if shown else ''}")
            scores[o.label][verdict].append(o.score)
            drawn.append((o, key))
        for o in kept:
            if o.source != "ssd_coco":
                box = " ".join(f"{v:.0f}" for v in o.box)
                text = f" {o.text!r}" if o.text else ""
                print(f"  {o.source:<7} {o.label} {o.score:.2f}{text}  [{box}]  kept")
        graph = build_scene_graph(image, kept)
        for e in graph.edges:
            if e.subject and e.object and e.predicate not in ("under", "inside", "behind"):
                s, t = graph.objects[e.subject], graph.objects[e.object]
                print(f"  relation  {s.label} {s.score:.2f} --{e.predicate}--> {t.label} {t.score:.2f}")
                relations[e.predicate] += 1
        if args.draw:
            _draw(image, drawn, os.path.join(args.draw, name.replace(os.sep, "_") + ".png"))

    print(f"\nper class (COCO SSD, threshold {base}): scores judged true | judged false | not judged; "
          "suggested floor (the highest false score rounded up to 0.05, if above the threshold); floor used")
    for label in sorted(scores):
        row = scores[label]
        fmt = lambda xs: (" ".join(f"{s:.2f}" for s in sorted(xs, reverse=True)[:8])
                          + (f" +{len(xs) - 8} more" if len(xs) > 8 else "")) or "-"
        false = [s for s in row[False] if s >= base]
        suggested = math.ceil(max(false) * 20 + 1e-9) / 20 if false else base
        true = [s for s in row[True] if s >= base]
        if true and suggested > min(true):
            suggested_text = f"{suggested:.2f} (drops a true one)"
        else:
            suggested_text = f"{suggested:.2f}"
        floor = max(base, CLASS_FLOORS.get(label, base))
        print(f"  {label:<14} {fmt(row[True]):<26} | {fmt(row[False]):<16} | {fmt(row[None]):<44} ; "
              f"{suggested_text} ; {floor:.2f}")
    print("relations shown (forward predicates):", ", ".join(f"{p}={n}" for p, n in sorted(relations.items())))
    return 0


def _draw(image, drawn, out: str) -> None:
    from PIL import ImageDraw

    os.makedirs(os.path.dirname(out), exist_ok=True)
    picture = image.copy()
    pen = ImageDraw.Draw(picture)
    for o, key in drawn:
        pen.rectangle(o.box, outline="red", width=3)
        pen.text((o.box[0] + 4, o.box[1] + 4), key, fill="yellow")
    picture.save(out)


if __name__ == "__main__":
    raise SystemExit(main())
