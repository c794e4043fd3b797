"""Batch extraction over a JSONL file: one output line per input line, resumable.

    python examples/batch_extract.py posts.jsonl --output out.jsonl --images DIR
    python examples/batch_extract.py --quick                  # a few example posts, text only
    python examples/batch_extract.py --quick --model runs/train_small

Without an input file, a small demo file is written first: good posts, one with the bundled example
image, and bad lines (empty text, invalid UTF-8, torn JSON, a missing image) that become error
records instead of stopping the run. The run is then repeated to show that it resumes: nothing is
extracted twice. The command-line equivalent is `graphie extract-file IN --output OUT [--images DIR]`.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import graphie
from graphie.batch import run_file

EXAMPLE_DIR = Path(__file__).parent / "data"
DEMO_POSTS = [
    {"id": "obama", "text": "Barack Obama and Michelle Obama at the White House"},
    {"id": "collins", "text": "Astronaut Eileen Collins of NASA poses before the launch of Columbia",
     "image": "astronaut.jpg"},
    {"id": "messi", "text": "Messi and Ronaldo before the Barcelona match , what a night"},
    {"id": "empty", "text": "   "},
    {"id": "no-image", "text": "Serena Williams wins in Melbourne", "image": "missing.jpg"},
]


def write_demo(path: Path, with_image: bool) -> None:
    with open(path, "wb") as f:
        for post in DEMO_POSTS:
            if not with_image and post["id"] == "collins":
                post = {k: v for k, v in post.items() if k != "image"}
            f.write((json.dumps(post) + "\n").encode("utf-8"))
        f.write(b'{"id": "latin1", "text": "caf\xe9 in Paris"}\n')  # not UTF-8
        f.write(b'{"id": "torn", "text": "Tom Brady and\n')  # not JSON


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", nargs="?", help="JSONL input (default: write a demo file)")
    parser.add_argument("--output", default="runs/batch_extract/out.jsonl")
    parser.add_argument("--images", default=str(EXAMPLE_DIR), help="folder for relative image paths")
    parser.add_argument("--model", default="default", help="shipped model name or model folder")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="smallest setting (CI): demo posts without the image")
    args = parser.parse_args()

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if args.input is None:
        source = output.with_name("demo_posts.jsonl")
        write_demo(source, with_image=not args.quick)
        if output.exists():
            output.unlink()  # a fresh demo run each time
    else:
        source = Path(args.input)

    extractor = graphie.load(args.model)
    counts = run_file(extractor, source, output, images_dir=args.images, batch_size=args.batch_size,
                       progress=not args.quick)
    print("first run:", json.dumps(counts))
    again = run_file(extractor, source, output, images_dir=args.images, batch_size=args.batch_size, progress=False)
    print("rerun (resumes):", json.dumps(again))

    outcomes: Counter = Counter()
    for line in output.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["error"]:
            outcomes[record["error"]["type"]] += 1
            print(f"  line {record['line']} ({record['id']}): {record['error']['type']}: {record['error']['message']}")
        else:
            outcomes["result"] += 1
            ents = record["entities"]
            names = ", ".join(f"{e['text']}/{e['type']}" for e in ents) or "no entities"
            rels = ", ".join(f"{ents[r['head']]['text']} -{r['label']}-> {ents[r['tail']]['text']}"
                             for r in record["relations"])
            print(f"  {record['id']}: {names}" + (f" | {rels}" if rels else ""))
    print(f"{output}: {sum(outcomes.values())} lines, {dict(outcomes)}")


if __name__ == "__main__":
    main()
