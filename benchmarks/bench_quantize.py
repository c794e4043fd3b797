"""Dynamic int8 quantisation of the encoder (``graphie.load(..., quantize=True)``): speed and
F1 on a validation set, next to the float model.

    python benchmarks/bench_quantize.py                                   # default model, Twitter-2017 valid
    python benchmarks/bench_quantize.py --model runs/x --task jmere --data ../shared/data/mnre/...

Prints one JSON object: for ``float`` and ``int8``, the seconds and posts/s of the model's
prediction over the set (text graphs parsed once beforehand, shared) and the scores of
``graphie.training.evaluate``; ``f1_change`` is int8 minus float, in points.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from graphie.api import quantize_encoder, resolve_model
from graphie.models import GraphieModel
from graphie.training.evaluate import evaluate
from graphie.training.trainer import load_posts
from parsers.text import TextParser


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--task", default="twitter")
    ap.add_argument("--format", default="twitter")
    ap.add_argument("--data", default="../shared/data/twitter2017/valid.txt")
    ap.add_argument("--n", type=int, default=0, help="first N posts only (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    posts = load_posts({"format": args.format, "dev": args.data}, "dev")
    posts = posts[: args.n] if args.n else posts
    graphs = list(TextParser().pipe([p.tokens or p.text for p in posts]))
    report: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                               f"torch threads {args.threads}", "model": args.model, "task": args.task,
                    "data": args.data, "posts": len(posts)}
    for name in ("float", "int8"):
        model = GraphieModel.from_pretrained(resolve_model(args.model))
        if name == "int8":
            quantize_encoder(model)
        with torch.inference_mode():
            evaluate(model, posts[:32], args.task, graphs=graphs[:32])  # warm-up
            t = time.perf_counter()
            scores, _ = evaluate(model, posts, args.task, graphs=graphs, batch_size=args.batch_size)
            seconds = time.perf_counter() - t
        report[name] = {"seconds": round(seconds, 2), "posts_per_s": round(len(posts) / seconds, 2), "scores": scores}
    f1 = {k: report[k]["scores"].get("f1") for k in ("float", "int8")}
    if None not in f1.values():
        report["f1_change"] = round(f1["int8"] - f1["float"], 2)
    report["speed_up"] = round(report["float"]["seconds"] / report["int8"]["seconds"], 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
