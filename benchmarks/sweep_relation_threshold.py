"""Quintuple P/R/F1 of a joint model on JMERE validation at several relation thresholds.

    python benchmarks/sweep_relation_threshold.py runs/default_s13 --data ../shared/data/mnre/mnre_val.txt

The model runs once with threshold 0; a threshold t then keeps the relations scoring at least t,
which is what decoding with t gives (each entity pair keeps its more confident direction, so a
pair whose best direction is under t has no direction left). Prints one Markdown table and the
threshold with the best F1: the value a shipped model stores as ``config.relation_threshold``
(chosen on validation, never on test).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graphie.metrics import jmere_scores  # noqa: E402
from graphie.models import GraphieModel  # noqa: E402
from graphie.training.trainer import load_posts  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="model folder or shipped model name")
    ap.add_argument("--data", default="../shared/data/mnre/mnre_val.txt", help="MNRE validation file (merged to JMERE)")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.0, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9])
    args = ap.parse_args()
    from graphie.api import resolve_model

    model = GraphieModel.from_pretrained(resolve_model(args.model))
    posts = load_posts({"format": "jmere_from_mnre", "dev": args.data}, "dev")
    preds = model.predict(posts, relation_threshold=0.0)
    print("| threshold | P | R | F1 | direction-free F1 (EEGA's scorer) |")
    print("|---|---|---|---|---|")
    best = None
    unfiltered = [list(p.relations) for p in preds]
    for t in args.thresholds:
        for p, full in zip(preds, unfiltered):
            p.relations = [r for r in full if r.score >= t]
        s = jmere_scores(posts, preds)
        print(f"| {t:.2f} | {s['precision']:.2f} | {s['recall']:.2f} | {s['f1']:.2f} | {s['eega_f1']:.2f} |")
        if best is None or s["f1"] > best[1]:
            best = (t, s["f1"])
    print(f"best on validation: threshold {best[0]:.2f}, F1 {best[1]:.2f}")


if __name__ == "__main__":
    main()
