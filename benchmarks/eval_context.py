"""Validation P/R/F1 of joint models with and without their context: the rows that decide whether a
model that reads captions and notes ships (``benchmarks/RESULTS_context.md``).

    python benchmarks/eval_context.py "text only=default" "adapter=/work/runs/default_adapter_s*"

Each argument is ``ROW=MODELS``: a shipped model's name, a model folder, or a glob of folders (one
seed each; mean ± sd over them). Every model is scored with ``graphie evaluate`` on

- JMERE validation (``mnre_val.txt`` as JMERE; strict quintuple F1) with the Qwen-VL captions of
  its images, and without;
- Twitter-2017 and Twitter-2015 validation with PGIM's notes of the tweets, and without;

at the relation threshold stored in each model's config. A model that learnt no context reads the
post alone either way (its two columns agree). Prints one Markdown table; writes nothing.

    python benchmarks/eval_context.py --examples 5 "adapter=/work/runs/default_adapter_s13"

lists instead, for the first model, up to 5 posts of each Twitter set whose entities the notes
change, with the gold entities and which answer matches them: real examples for the docs.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import io
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from graphie.cli import main as graphie_main  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
BENCHMARKS = [  # (name, task, data file, context flags)
    ("JMERE + caption", "jmere", "mnre/mnre_val.txt", ["--captions", "mnre/captions/qwen_vl.txt"]),
    ("JMERE", "jmere", "mnre/mnre_val.txt", []),
    ("Twitter-2017 + notes", "twitter", "twitter2017/valid.txt", ["--notes", "pgim2017/valid.txt"]),
    ("Twitter-2017", "twitter", "twitter2017/valid.txt", []),
    ("Twitter-2015 + notes", "twitter", "twitter2015/valid.txt", ["--notes", "pgim2015/valid.txt"]),
    ("Twitter-2015", "twitter", "twitter2015/valid.txt", []),
]


def score(model: str, task: str, data: str, flags: list[str], predictions: Path | None = None) -> dict[str, float]:
    """``graphie evaluate``'s scores of ``model`` on ``data`` (paths under the data folder)."""
    args = ["evaluate", model, "--task", task, "--data", str(DATA / data)]
    args += ["--predictions", str(predictions)] if predictions else []
    args += [str(DATA / f) if not f.startswith("--") else f for f in flags]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        if graphie_main(args) != 0:
            raise SystemExit(f"graphie {' '.join(args)} failed")
    return json.loads(out.getvalue().strip().splitlines()[-1])


def cell(values: list[float]) -> str:
    return f"{values[0]:.2f}" if len(values) == 1 else f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def entities(record: dict, side: str) -> list[tuple[str, str]]:
    return sorted((e["span"]["text"], e["type"]) for e in record[side]["entities"])


def examples(model: str, k: int) -> None:
    """Posts whose entities the notes change, and which answer is the gold one."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for bench, task, data, flags in BENCHMARKS[2:]:
            if not flags:
                continue
            read, alone = Path(tmp) / "read.jsonl", Path(tmp) / "alone.jsonl"
            score(model, task, data, flags, read)
            score(model, task, data, [], alone)
            shown = 0
            for a, b in zip(map(json.loads, read.open()), map(json.loads, alone.open())):
                if entities(a, "pred") == entities(b, "pred") or shown >= k:
                    continue
                shown += 1
                gold = entities(a, "gold")
                print(f"{bench} {a['id']}: {' '.join(a['tokens'])}\n  gold:          {gold}\n"
                      f"  with notes:    {entities(a, 'pred')}{'  (= gold)' if entities(a, 'pred') == gold else ''}\n"
                      f"  without notes: {entities(b, 'pred')}{'  (= gold)' if entities(b, 'pred') == gold else ''}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rows", nargs="+", help="ROW=MODELS (a name, a folder or a glob of folders)")
    ap.add_argument("--examples", type=int, default=0, help="list K posts per Twitter set whose entities the notes change")
    args = ap.parse_args(argv)
    if args.examples:
        name, _, pattern = args.rows[0].partition("=")
        examples((sorted(glob.glob(pattern)) or [pattern])[0], args.examples)
        return
    print("| row | benchmark | P | R | F1 | seeds |")
    print("|---|---|---|---|---|---|")
    for spec in args.rows:
        name, _, pattern = spec.partition("=")
        models = sorted(p for p in glob.glob(pattern) if (Path(p) / "config.json").is_file()) or [pattern]
        for bench, task, data, flags in BENCHMARKS:
            scores = [score(m, task, data, flags) for m in models]
            p, r, f = ([s[k] for s in scores] for k in ("precision", "recall", "f1"))
            print(f"| {name} | {bench} | {cell(p)} | {cell(r)} | {cell(f)} | {len(models)} |", flush=True)


if __name__ == "__main__":
    main()
