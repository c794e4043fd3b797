"""Cost of the ``pixels`` image source per image: the feature grid, its JSON, and its projection.

    python benchmarks/bench_pixel_features.py [IMAGE_DIR] [--limit 8] [--repeat 5] [--extractor default]

Per image (the first ``--limit`` images of the folder, sorted by path, searched recursively):
``decode`` (reading the file into RGB), ``grid`` (the registered feature-map extractor on the
decoded image: for ``default``, EfficientNet-Lite3 int8 by LiteRT with all tensors preserved),
``tagger`` (the same network run as the ImageNet tagger, for comparison: what preserving the
intermediate tensors adds), ``regions`` (the other image features graphie has, MobileNetV2's
region features in torch: the one forward pass at 384 pixels, no box), each in milliseconds of CPU time (``time.process_time``, one thread:
the single-core cost, unaffected by other jobs on a shared machine), the best of ``--repeat``
runs; and the grid's size in a scene graph's JSON (float16, zlib, base64). Then the median and
maximum, the one-off load times, and the model side: the :class:`~graphie.fusion.base.PixelUnits`
projection of a batch of 16 grids into MiniLM's 384 dimensions.

The figures on the 29 tweet photos (``--limit 29``), with this command's output, are in
docs/fusion.md ("Image features from the pixels", *Cost*): grid 24 ms a photo (median), the
tagger 23 ms, MobileNetV2's pass 59 ms, 44 KB of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def best_cpu_ms(fn, repeat: int) -> tuple[float, object]:
    """The least CPU time of ``repeat`` calls of ``fn`` in milliseconds, and its last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.process_time()
        out = fn()
        best = min(best, time.process_time() - start)
    return 1000 * best, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="?", default=os.path.join("..", "shared", "data", "tweet_images"))
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--extractor", default="default", help="a name in parsers.registry.feature_maps")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from parsers.image import RegionFeatureExtractor, get_tagger, load_image
    from parsers.image.features import get_feature_map

    paths = sorted(os.path.join(root, name) for root, _, names in os.walk(args.images) for name in names
                   if name.lower().endswith(IMAGE_EXTENSIONS))[: args.limit]
    if not paths:
        print(f"no images in {args.images}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    extractor = get_feature_map(args.extractor, threads=1)
    loaded_grid = time.perf_counter() - start
    start = time.perf_counter()
    tagger = get_tagger("default", threads=1)
    loaded_tagger = time.perf_counter() - start
    regions = RegionFeatureExtractor("roi")
    print(f"extractor {extractor.name!r}, grid {extractor.shape}; loaded in {loaded_grid:.2f} s "
          f"(tagger {loaded_tagger:.2f} s); one thread, best of {args.repeat}")
    print(f"{'image':<28} {'size':>9} {'decode':>7} {'grid':>7} {'tagger':>7} {'regions':>7} {'json KB':>8}")
    rows = []
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        decode, rgb = best_cpu_ms(lambda: load_image(data), args.repeat)
        grid_ms, grid = best_cpu_ms(lambda: extractor.grid(rgb), args.repeat)
        tag_ms, _ = best_cpu_ms(lambda: tagger.tag([rgb]), args.repeat)
        region_ms, _ = best_cpu_ms(lambda: regions(rgb, []), args.repeat)
        kb = len(json.dumps(grid.to_dict())) / 1000
        rows.append((decode, grid_ms, tag_ms, region_ms, kb))
        name = os.path.relpath(path, args.images)
        print(f"{name:<28} {rgb.width:>4}x{rgb.height:<4} {decode:>7.1f} {grid_ms:>7.1f} {tag_ms:>7.1f} {region_ms:>7.1f} "
              f"{kb:>8.1f}")
    columns = list(zip(*rows))
    print(f"{'median':<28} {'':>9} " + " ".join(f"{statistics.median(c):>{w}.1f}" for c, w in zip(columns, (7, 7, 7, 7, 8))))
    print(f"{'max':<28} {'':>9} " + " ".join(f"{max(c):>{w}.1f}" for c, w in zip(columns, (7, 7, 7, 7, 8))))

    from graphie.fusion.base import PixelUnits

    rows_, cols, channels = extractor.shape
    units = PixelUnits(channels, rows_ * cols, 384).eval()
    features = torch.randn(16, rows_ * cols, channels)
    mask = torch.ones(16, rows_ * cols, dtype=torch.bool)
    with torch.no_grad():
        project, _ = best_cpu_ms(lambda: units(features, mask), args.repeat)
    params = sum(p.numel() for p in units.parameters())
    print(f"PixelUnits ({params / 1e6:.2f} M parameters): {project:.1f} ms for a batch of 16 grids "
          f"({16 * rows_ * cols} units of {channels} -> 384), forward, no gradient")
    return 0


if __name__ == "__main__":
    sys.exit(main())
