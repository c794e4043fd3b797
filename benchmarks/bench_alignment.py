"""Alignment figures: synthetic benchmark and Twitter caption graphs for none / mega / eega.

Every run goes through graphie's own trainer (``graphie.training.trainer.train``, the code behind
``graphie train``), one run at a time, and keeps its ``metrics.json`` under ``runs/alignment/``.

    python benchmarks/bench_alignment.py data --train 1500 --valid 500       # runs/synthetic/
    python benchmarks/bench_alignment.py synthetic --modes none mega eega
    python benchmarks/bench_alignment.py twitter --dataset 2015 --modes none mega eega
    python benchmarks/bench_alignment.py table                                # markdown of all runs

The synthetic configs read precomputed scene graphs (``"scene": "precomputed"`` with a
``"scene_graphs"`` JSON file keyed by image file name); the Twitter ones parse each post's BLIP-2
caption into a scene graph (``"scene": "caption"``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "alignment"
MODES = ("none", "mega", "eega")


def run(config_path: Path, name: str, overrides: dict) -> dict:
    from graphie.training.trainer import train

    config = json.loads(config_path.read_text(encoding="utf-8"))
    for section, values in overrides.items():
        config.setdefault(section, {}).update(values)
    output = RUNS / name
    start = time.time()
    summary = train(config, output, base=ROOT, progress=False)
    summary["wall_seconds"] = round(time.time() - start, 1)
    (output / "metrics.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(json.dumps({"run": name, "best_epoch": summary["best_epoch"], "dev": summary["dev"]}), flush=True)
    return summary


def table() -> str:
    """Markdown rows: run, best epoch, P/R/F1 (+ entity F1), seconds per epoch (train, eval)."""
    rows = ["| run | best epoch | P | R | F1 | entity F1 | train s/epoch | eval s/epoch |",
            "|---|---|---|---|---|---|---|---|"]
    for metrics in sorted(RUNS.glob("*/metrics.json")):
        s = json.loads(metrics.read_text())
        dev, hist = s["dev"] or {}, s["history"]
        train_s = sum(h["train_seconds"] for h in hist) / len(hist)
        eval_s = sum(h["eval_seconds"] for h in hist) / len(hist)
        fmt = lambda v: f"{v:.2f}" if isinstance(v, (int, float)) else "–"  # the trainer reports percentages
        rows.append(f"| {metrics.parent.name} | {s['best_epoch']} | {fmt(dev.get('precision'))} | "
                    f"{fmt(dev.get('recall'))} | {fmt(dev.get('f1'))} | {fmt(dev.get('entity_f1'))} | "
                    f"{train_s:.0f} | {eval_s:.0f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("data", help="write the synthetic benchmark to runs/synthetic")
    d.add_argument("--train", type=int, default=1500)
    d.add_argument("--valid", type=int, default=500)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--output", default=str(ROOT / "runs" / "synthetic"))
    for name in ("synthetic", "twitter"):
        p = sub.add_parser(name)
        p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
        p.add_argument("--epochs", type=int)
        p.add_argument("--max-train", type=int)
        p.add_argument("--max-dev", type=int)
        p.add_argument("--seed", type=int)
        p.add_argument("--tag", default="", help="suffix of the run folder names")
        if name == "twitter":
            p.add_argument("--dataset", choices=["2015", "2017"], required=True)
    sub.add_parser("table")
    args = ap.parse_args(argv)

    if args.command == "data":
        from graphie.synthetic import write_synthetic

        print(json.dumps(write_synthetic(args.output, args.train, args.valid, args.seed)))
        return 0
    if args.command == "table":
        print(table())
        return 0
    training = {k: v for k, v in (("epochs", args.epochs), ("max_train", args.max_train),
                                  ("max_dev", args.max_dev), ("seed", args.seed)) if v is not None}
    for mode in args.modes:
        if args.command == "synthetic":
            config, name = ROOT / "configs" / f"synthetic_{mode}.json", f"synthetic_{mode}{args.tag}"
        else:
            config = ROOT / "configs" / f"twitter{args.dataset}_caption_{mode}.json"
            name = f"twitter{args.dataset}_caption_{mode}{args.tag}"
        run(config, name, {"training": training})
    return 0


if __name__ == "__main__":
    sys.exit(main())
