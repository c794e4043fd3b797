"""Validation P/R/F1 of training runs, mean ± sd over seeds: the rows of benchmarks/RESULTS.md.

    python benchmarks/summarize_runs.py "plain=runs/t17_bio_s*" "crf=runs/t17_crf_s*"

Each argument is ``ROW=GLOB``; every folder the glob matches is one seed of that row and must
hold the ``metrics.json`` that ``graphie train`` writes (its ``dev`` scores are those of the
checkpoint selected on validation). Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
from pathlib import Path


def row(name: str, pattern: str) -> str:
    runs = sorted(p for p in glob.glob(pattern) if (Path(p) / "metrics.json").is_file())
    if not runs:
        return f"| {name} | no finished run matches `{pattern}` | | | | |"
    scores = [json.loads((Path(p) / "metrics.json").read_text())["dev"] for p in runs]

    def cell(key: str) -> str:
        values = [s[key] for s in scores]
        if len(values) == 1:
            return f"{values[0]:.2f}"
        return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"

    extra = ""
    if "eega_f1" in scores[0]:
        extra = f" (direction-free, EEGA's scorer: {cell('eega_f1')}; entities {cell('entity_f1')})"
    if "accuracy" in scores[0]:
        extra = f" (accuracy {cell('accuracy')})"
    return f"| {name} | {cell('precision')} | {cell('recall')} | {cell('f1')}{extra} | {len(runs)} | `{pattern}` |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+", metavar="ROW=GLOB")
    args = parser.parse_args()
    print("| row | P | R | F1 | seeds | runs |")
    print("|---|---|---|---|---|---|")
    for spec in args.rows:
        name, _, pattern = spec.partition("=")
        print(row(name, pattern))


if __name__ == "__main__":
    main()
