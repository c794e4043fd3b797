"""Posts per second of ``graphie extract-file`` with the local engine and with the Ray engine
(1 and 2 workers) on the same text-only JSONL file.

    python benchmarks/bench_ray.py                        # 512 Twitter-2017 validation posts, default model
    python benchmarks/bench_ray.py --n 2048 --workers 1 2 4 --model runs/x

Each engine runs twice: on ``--small`` posts (start-up: Ray, actors, model loads) and on ``--n``
posts; ``steady_posts_per_s`` = the extra posts divided by the extra time, ``wall_posts_per_s``
includes the start-up. The local engine gets the machine's cores as torch threads; each Ray
worker is an actor with one CPU (and so one torch thread).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from graphie.batch import run_file, write_records
from graphie.datasets import read_twitter


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--texts", default="../shared/data/twitter2017/valid.txt", help="Twitter CoNLL file")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--small", type=int, default=16)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    import ray
    import torch

    import graphie
    from graphie.api import resolve_model
    from graphie.distributed import extract_rows

    texts = [" ".join(p.tokens) for p in read_twitter(args.texts)]
    model = str(resolve_model(args.model).resolve())
    work = Path(tempfile.mkdtemp())
    files = {}
    for n in (args.small, args.n):
        files[n] = work / f"in{n}.jsonl"
        files[n].write_text("".join(json.dumps({"id": i, "text": texts[i % len(texts)]}) + "\n" for i in range(n)))

    report: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                    "model": args.model, "posts": args.n, "batch_size": args.batch_size, "engines": {}}

    def entry(small_s: float, full_s: float) -> dict:
        return {"startup_run_s": round(small_s, 2), "run_s": round(full_s, 2),
                "wall_posts_per_s": round(args.n / full_s, 2),
                "steady_posts_per_s": round((args.n - args.small) / max(full_s - small_s, 1e-9), 2)}

    torch.set_num_threads(os.cpu_count() or 1)

    def local(n: int) -> None:
        extractor = graphie.load(model)
        run_file(extractor, files[n], work / f"local{n}_{time.time()}.jsonl", batch_size=args.batch_size,
                 progress=False)

    report["engines"]["local"] = entry(timed(lambda: local(args.small)), timed(lambda: local(args.n)))
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    for k in args.workers:
        def on_ray(n: int) -> None:
            write_records(files[n], work / f"ray{k}_{n}_{time.time()}.jsonl", lambda rows: extract_rows(
                rows, model, num_workers=k, batch_size=args.batch_size))

        report["engines"][f"ray_{k}_workers"] = entry(timed(lambda: on_ray(args.small)), timed(lambda: on_ray(args.n)))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
