"""Quickstart: entities and relations of one post with its image, from the shipped default model.

    python examples/quickstart.py
    python examples/quickstart.py --text "Barack Obama and Michelle Obama at the White House" --no-image
    python examples/quickstart.py --model runs/train_small      # any saved model folder

graphie.extract parses the text (spaCy dependency graph) and the image (scene graph of people,
faces, text), aligns them, and decodes entities and directed relations; each entity lists the
image objects most aligned with it as its evidence.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import graphie

EXAMPLE_IMAGE = Path(__file__).parent / "data" / "astronaut.jpg"
EXAMPLE_TEXT = "Astronaut Eileen Collins of NASA poses before the launch of Columbia at Kennedy Space Center"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", default=EXAMPLE_TEXT)
    parser.add_argument("--image", default=str(EXAMPLE_IMAGE))
    parser.add_argument("--no-image", action="store_true", help="text only")
    parser.add_argument("--model", help="a saved model folder instead of the shipped default")
    parser.add_argument("--json", action="store_true", help="also print the whole result as JSON")
    parser.add_argument("--quick", action="store_true", help="smallest setting (CI); same as the default here")
    args = parser.parse_args()

    image = None if args.no_image else args.image
    if args.model:
        result = graphie.load(args.model).extract(args.text, image)
    else:
        result = graphie.extract(args.text, image)

    print("tokens:", result.tokens)
    for e in result.entities:
        chars = f"chars {e.span.start_char}-{e.span.end_char}" if e.span.start_char is not None else ""
        print(f"entity   {e.text!r:28} {e.type:5} score {e.score:.2f}  words {e.span.start}-{e.span.end} {chars}")
        for ev in e.evidence:
            print(f"         image evidence: object {ev['object']} ({ev['label']}) weight {ev['weight']:.2f}")
    for r in result.relations:
        print(f"relation {r.head.text!r} -> {r.tail.text!r}: {r.label} (score {r.score:.2f})")
    if result.scene_graph is not None:
        objects = ", ".join(f"{i}:{o.label}" for i, o in enumerate(result.scene_graph.objects))
        print(f"scene graph: {objects}")
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False)[:2000])


if __name__ == "__main__":
    main()
