"""What bf16 prediction costs in F1: a saved model scored on validation in fp32 and in bf16 autocast.

    python benchmarks/bench_precision_f1.py [--model default] [--rows t17 t17+notes jmere] [--threads 1]

Issue 21 makes bf16 the CPU's default precision of prediction only if it holds F1 within 0.3 of
fp32 (and runs at least 1.5x faster, which ``benchmarks/bench_precision.py`` measures). The F1
side does not depend on whether the CPU computes bf16 natively: the rounding is the same, only
the speed differs. So bf16 is **forced** here, as in ``bench_precision.py``, even on a CPU where
``graphie.load(dtype="bf16")`` and ``graphie evaluate --dtype bf16`` fall back to fp32 with a
warning (a CPU without AVX512-BF16 or AMX emulates it, several times slower).

Each row loads its posts as ``graphie evaluate`` does (``--task``, ``--data``, ``--notes``,
``--captions``) and scores the same model on the same posts twice, under
:func:`graphie.models.precision.autocast_forward` with ``None`` (fp32) and with
``torch.bfloat16``. Prints a Markdown table: P, R and F1 in each precision, the F1 change, and
how many posts' predictions differ at all. Validation splits only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graphie.api import resolve_model  # noqa: E402
from graphie.models import GraphieModel  # noqa: E402
from graphie.models.precision import autocast_forward  # noqa: E402
from graphie.training.evaluate import TASK_ALIASES, can_score, evaluate  # noqa: E402
from graphie.training.trainer import load_dev_posts  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
#: name -> (task, data format, validation file, captions file or None, notes files)
ROWS = {
    "t17": ("twitter", "twitter", "twitter2017/valid.txt", None, []),
    "t17+notes": ("twitter", "twitter", "twitter2017/valid.txt", None, ["pgim2017/valid.txt"]),
    "t15": ("twitter", "twitter", "twitter2015/valid.txt", None, []),
    "t15+notes": ("twitter", "twitter", "twitter2015/valid.txt", None, ["pgim2015/valid.txt"]),
    "jmere": ("jmere", "jmere_from_mnre", "mnre/mnre_val.txt", None, []),
    "jmere+caption": ("jmere", "jmere_from_mnre", "mnre/mnre_val.txt", "mnre/captions/qwen_vl.txt", []),
}
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def signature(pred) -> tuple:
    """What a prediction says, scores left out: its entity spans and types, its relations."""
    return (tuple((e.span.start, e.span.end, e.type) for e in pred.entities),
            tuple((r.head.span.start, r.head.span.end, r.tail.span.start, r.tail.span.end, r.label)
                  for r in pred.relations))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--rows", nargs="+", default=["t17", "t17+notes", "jmere"], choices=sorted(ROWS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = GraphieModel.from_pretrained(resolve_model(args.model), device="cpu")
    print(f"model `{args.model}`, CPU, {args.threads} thread(s), torch {torch.__version__}; bf16 forced "
          f"(native bf16 on this CPU: {'yes' if torch.backends.cpu.get_cpu_capability() in ('AVX512_BF16', 'AMX') else 'no'})\n")
    print("| row | posts | P fp32 | R fp32 | F1 fp32 | P bf16 | R bf16 | F1 bf16 | ΔF1 | posts whose prediction changed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.rows:
        task, fmt, dev, captions, notes = ROWS[name]
        if not can_score(model.config.task, TASK_ALIASES[task]):
            print(f"| {name} | – | the model's task is {model.config.task!r} | | | | | | | |")
            continue
        data = {"format": fmt, "dev": str(DATA / dev), "captions": captions and str(DATA / captions),
                "notes": [str(DATA / n) for n in notes]}
        posts = load_dev_posts(data, model.config.context)
        scores, preds = {}, {}
        for precision, dtype in PRECISIONS.items():
            with autocast_forward(model, dtype):
                scores[precision], preds[precision] = evaluate(model, posts, task, None, batch_size=args.batch_size)
        changed = sum(signature(a) != signature(b) for a, b in zip(preds["fp32"], preds["bf16"]))
        a, b = scores["fp32"], scores["bf16"]
        print(f"| {name} | {len(posts)} | {a['precision']:.2f} | {a['recall']:.2f} | {a['f1']:.2f} | "
              f"{b['precision']:.2f} | {b['recall']:.2f} | {b['f1']:.2f} | {b['f1'] - a['f1']:+.2f} | {changed} |",
              flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
