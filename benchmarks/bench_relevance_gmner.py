"""Does a relevance gate open where the image shows an entity? The gate against GMNER's boxes.

    python benchmarks/bench_relevance_gmner.py --model PATH [--dataset twitter2017] [--split valid]
        [--captions ../shared/data/twitter2017/owl_captions.txt] [--notes FILE] [--threads 1]

Issue 24 asks, for the ``relevance_gate`` fusion (RpBERT's image-text relation gate), how often it
opens on posts whose GMNER boxes say an entity is visible, against posts where none is. This runs a
model with a relevance gate (``model.fusion: relevance_gate``, or any fusion that names a
``relevance`` diagnostic) over every post of a Twitter split, each with its image's caption (and
notes, when given) as context, and reads the post's ``image_relevance`` (the gate's value, 0 to 1;
the largest over a long post's windows). Posts are then grouped by ``gmner/entities.jsonl``:

- **visible**: GMNER covers the tweet and marks at least one of its gold entities ``visible``
  (boxed in the image);
- **none visible**: GMNER covers the tweet, none of its entities is boxed;
- **no GMNER row**: ``entities.jsonl`` has no entity of the tweet (GMNER does not cover it, or
  the tweet has no gold entity): no verdict either way.

For each group: posts, the gate's mean and median, and the share of posts with a gate at or over
0.5 ("opens"). The AUC is the probability that a random *visible* post gets a higher gate than a
random *none visible* one (ties count half): 0.5 is a gate blind to what the image shows. Rows
``boxed: TYPE``: posts with a boxed entity of that type against the *none visible* posts. Posts without a
caption get no context and a gate of 0 by construction; they are counted apart and left out of the
groups. Prints Markdown; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections import defaultdict
from typing import Iterable, Sequence

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

DATA = os.path.join("..", "shared", "data")
TYPES = ("PER", "LOC", "ORG", "MISC", "OTHER")
GROUPS = ("visible", "none visible", "no GMNER row")


def gmner_verdicts(lines: Iterable[str], dataset: str) -> dict[str, set[str]]:
    """``img_id -> types of the boxed (visible) entities`` for every tweet of ``dataset`` that GMNER
    covers (an empty set: covered, nothing boxed), from the lines of ``gmner/entities.jsonl``."""
    verdicts: dict[str, set[str]] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"gmner entities line {n}: not JSON ({exc.msg})") from None
        if row.get("dataset") != dataset:
            continue
        types = verdicts.setdefault(str(row["img_id"]), set())
        if row.get("visible"):
            types.add(str(row["type"]))
    return verdicts


def group_of(post_id: str, verdicts: dict[str, set[str]]) -> str:
    """The GMNER group of one tweet (see the module docstring)."""
    if post_id not in verdicts:
        return "no GMNER row"
    return "visible" if verdicts[post_id] else "none visible"


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """P(a random positive scores above a random negative), ties half: the Mann-Whitney U over
    ``len(positives) * len(negatives)``; ``None`` when either side is empty."""
    if not positives or not negatives:
        return None
    ranked = sorted([(v, 1) for v in positives] + [(v, 0) for v in negatives])
    rank_sum, i = 0.0, 0
    while i < len(ranked):  # average ranks over ties
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mean_rank = (i + 1 + j) / 2
        rank_sum += mean_rank * sum(1 for _, pos in ranked[i:j] if pos)
        i = j
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def summary_row(name: str, gates: Sequence[float], reference: Sequence[float] | None = None) -> str:
    """A Markdown row: posts, mean, median, share >= 0.5 and (against ``reference``) the AUC."""
    if not gates:
        return f"| {name} | 0 | – | – | – | – |"
    opens = sum(g >= 0.5 for g in gates) / len(gates)
    area = auc(gates, reference) if reference is not None else None
    return (f"| {name} | {len(gates)} | {statistics.fmean(gates):.3f} | {statistics.median(gates):.3f} | "
            f"{100 * opens:.1f} % | {'–' if area is None else f'{area:.3f}'} |")


def report(gates: dict[str, float], verdicts: dict[str, set[str]], uncaptioned: int) -> list[str]:
    """The Markdown table of ``gates`` (post id -> gate, captioned posts only)."""
    grouped: dict[str, list[float]] = defaultdict(list)
    by_type: dict[str, list[float]] = defaultdict(list)
    for post_id, gate in gates.items():
        grouped[group_of(post_id, verdicts)].append(gate)
        for t in verdicts.get(post_id, ()):
            by_type[t].append(gate)
    negatives = grouped["none visible"]
    lines = ["| posts | n | mean gate | median gate | gate >= 0.5 | AUC against none visible |",
             "|---|---:|---:|---:|---:|---:|"]
    lines.append(summary_row("visible (an entity boxed)", grouped["visible"], negatives))
    lines.append(summary_row("none visible", negatives))
    lines.append(summary_row("no GMNER row", grouped["no GMNER row"]))
    for t in TYPES:
        if by_type.get(t):
            lines.append(summary_row(f"boxed: {t}", by_type[t], negatives))
    lines.append(f"\n{uncaptioned} posts without a caption (no context, gate 0) are left out.")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a trained model folder whose fusion has a relevance gate")
    ap.add_argument("--dataset", default="twitter2017", choices=("twitter2015", "twitter2017"))
    ap.add_argument("--split", default="valid", choices=("train", "valid"))
    ap.add_argument("--captions", help="captions file (default: the dataset's owl_captions.txt)")
    ap.add_argument("--notes", help="PGIM notes file of the same split (a pgim-format file), for a model that reads notes")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args(argv)

    import torch

    import graphie
    from graphie.datasets import attach_notes, read_captions, read_dataset

    torch.set_num_threads(args.threads)
    captions = read_captions(args.captions or os.path.join(DATA, args.dataset, "owl_captions.txt"))
    posts = read_dataset("twitter", os.path.join(DATA, args.dataset, f"{args.split}.txt"), captions=captions)
    if args.notes:
        attach_notes(posts, args.notes)  # matched by the tweet's tokens
    extractor = graphie.load(args.model)
    if getattr(extractor.model.fusion, "relevance", None) is None:
        raise SystemExit(f"{args.model}: its fusion has no relevance gate (model.fusion: relevance_gate)")
    captioned = [p for p in posts if p.caption]
    for p in captioned:
        p.image = None  # the photos are not on this machine; the caption is the image's evidence
    gates: dict[str, float] = {}
    for post, outcome in zip(captioned, extractor.extract_many(captioned, batch_size=args.batch_size, progress=False)):
        if not isinstance(outcome, graphie.Extraction):
            raise SystemExit(f"post {post.id}: {outcome.message}")
        gates[str(post.id)] = float(outcome.image_relevance or 0.0)
    with open(os.path.join(DATA, "gmner", "entities.jsonl"), encoding="utf-8") as f:
        verdicts = gmner_verdicts(f, args.dataset)
    print(f"Relevance gate of `{args.model}` on {args.dataset} {args.split} "
          f"({len(posts)} posts, {len(captioned)} with a caption):\n")
    print("\n".join(report(gates, verdicts, len(posts) - len(captioned))))


if __name__ == "__main__":
    main()
