"""Pictures of what graphie sees and finds in a post.

    python examples/draw.py                         # the bundled example post, default model
    python examples/draw.py --text "..." --image photo.jpg --model runs/train_small
    python examples/draw.py --quick --model runs/train_small

Writes two PNGs to --output-dir: the scene graph of the image alone (objects, boxes, OCR text,
predicates; no model needed), and the whole extraction (the image with its objects, the text with
entities highlighted by type, relation arrows, and lines from entities to the image objects most
aligned with them). The command-line equivalents are `graphie parse-image IMAGE --draw OUT.png`
and `graphie draw --text TEXT --image IMAGE --output OUT.png`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import graphie
from graphie.draw import draw_extraction
from parsers.image import draw_scene_graph, parse_image

EXAMPLE_IMAGE = Path(__file__).parent / "data" / "astronaut.jpg"
EXAMPLE_TEXT = "Astronaut Eileen Collins of NASA poses before the launch of Columbia at Kennedy Space Center"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", default=EXAMPLE_TEXT)
    parser.add_argument("--image", default=str(EXAMPLE_IMAGE))
    parser.add_argument("--model", default="default", help="shipped model name or model folder")
    parser.add_argument("--output-dir", default="runs/draw")
    parser.add_argument("--quick", action="store_true", help="smallest setting (CI): no region features")
    args = parser.parse_args()

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    scene = parse_image(args.image, features=not args.quick)
    scene_png = out / "scene_graph.png"
    draw_scene_graph(args.image, scene, scene_png)
    print(f"{scene_png}: {len(scene.objects) - 1} objects, {len(scene.edges)} edges")

    result = graphie.load(args.model).extract(args.text, scene)  # a ready scene graph is accepted as the image
    extraction_png = out / "extraction.png"
    picture = draw_extraction(result, args.image, extraction_png)
    print(f"{extraction_png}: {picture.width}x{picture.height}")
    for e in result.entities:
        evidence = ", ".join(f"{ev['label']} {ev['weight']:.2f}" for ev in e.evidence)
        print(f"  {e.text!r} {e.type} {e.score:.2f}" + (f"  (image: {evidence})" if evidence else ""))
    for r in result.relations:
        print(f"  {r.head.text!r} -{r.label}-> {r.tail.text!r} {r.score:.2f}")


if __name__ == "__main__":
    main()
