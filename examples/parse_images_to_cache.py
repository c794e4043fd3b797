"""Parse a folder of images into scene graphs once, cached on disk, and reuse them.

    python examples/parse_images_to_cache.py ../shared/data/mnre_images --cache-dir runs/scene_cache
    python examples/parse_images_to_cache.py --quick          # the bundled example image, no features

Each graph is stored as JSON under --cache-dir, keyed by the SHA-256 of the image bytes and of the
parser settings (detector, its options, max_objects, features, tagger, relations and the graph
version, which changes when the parser does: graphs cached by an older parser are not reused), so a
second run, or training and
extraction with the same settings, reads the cache instead of running the detectors again. Bad
images (corrupt, truncated, not an image) are reported and skipped; they never stop the run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from graphie.errors import GraphieError
from parsers.image import SceneGraphCache, parse_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
EXAMPLE_IMAGES = Path(__file__).parent / "data"


def parse_folder(folder: Path, cache_dir: Path, detector: str, features: bool, max_objects: int) -> dict:
    """Parse every image of ``folder`` through the cache; returns counts and seconds."""
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    counts = {"images": len(images), "parsed": 0, "failed": 0, "seconds": 0.0}
    start = time.perf_counter()
    for path in images:
        try:
            graph = parse_image(path, detector=detector, max_objects=max_objects, cache_dir=cache_dir,
                                features=features)
        except GraphieError as exc:
            counts["failed"] += 1
            print(f"  {path.name}: skipped ({type(exc).__name__}: {exc})")
            continue
        counts["parsed"] += 1
        found = ", ".join(o.label + (f" '{o.text}'" if o.text else "") for o in graph.objects[1:]) or "nothing"
        tags = ", ".join(graph.objects[0].tags or {}) or "none"
        print(f"  {path.name}: {found} (tags: {tags})")
    counts["seconds"] = round(time.perf_counter() - start, 3)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=str(EXAMPLE_IMAGES), help="folder of images")
    parser.add_argument("--cache-dir", default="runs/scene_cache")
    parser.add_argument("--detector", default="default", help="scene-graph backend (default: default)")
    parser.add_argument("--max-objects", type=int, default=10)
    parser.add_argument("--no-features", action="store_true", help="skip the 1280-d region features")
    parser.add_argument("--quick", action="store_true", help="smallest setting (CI): no region features")
    args = parser.parse_args()

    folder, cache_dir = Path(args.folder), Path(args.cache_dir)
    if not folder.is_dir():
        parser.error(f"{folder} is not a folder")
    features = not (args.no_features or args.quick)
    for attempt in ("first pass", "second pass (from the cache)"):
        print(attempt)
        counts = parse_folder(folder, cache_dir, args.detector, features, args.max_objects)
        print("  " + json.dumps(counts))
    print(f"{len(SceneGraphCache(cache_dir))} scene graphs cached in {cache_dir}")


if __name__ == "__main__":
    main()
