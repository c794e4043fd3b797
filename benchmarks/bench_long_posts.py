"""Peak memory and time of one long post, by length: long posts are read in windows, so memory
should grow linearly with the text, not with its square.

    python benchmarks/bench_long_posts.py                       # 5,000 and 50,000 words, default model
    python benchmarks/bench_long_posts.py --words 1000 10000 50000 --model runs/x

Each length runs in a fresh process (peak RSS is per process). Prints one JSON object:
words, windows, entities found, seconds, peak RSS (MB) and the RSS of the loaded model alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

FILLER = "the weather was nice and we walked along the river for a while before lunch .".split()
NAMES = {"Barack Obama": "Barack Obama met reporters today .", "Angela Merkel": "Angela Merkel visited the museum .",
         "Lionel Messi": "Lionel Messi scored again ."}


def long_post(words: int) -> str:
    """``words`` words of filler with a name at the start, the middle and the end."""
    body = (FILLER * (words // len(FILLER) + 1))[:words]
    half = len(body) // 2
    first, middle, last = NAMES.values()
    return " ".join([first, *body[:half], middle, *body[half:], last])


def one(model: str, words: int, threads: int) -> dict:
    import torch

    import graphie

    torch.set_num_threads(threads)
    extractor = graphie.load(model)
    extractor.extract("warm up")
    loaded_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = long_post(words)
    t = time.perf_counter()
    result = extractor.extract(text)
    seconds = time.perf_counter() - t
    found = {e.text for e in result.entities}
    return {"words": len(result.tokens), "characters": len(text), "windows": result.windows,
            "truncated": result.truncated, "entities": len(result.entities),
            "names_found": {name: name in found for name in NAMES},
            "seconds": round(seconds, 2), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "model_loaded_rss_mb": round(loaded_mb, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--words", type=int, nargs="+", default=[5000, 50000])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one length here
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.model, args.one, args.threads)))
        return
    runs = []
    for words in args.words:
        out = subprocess.run([sys.executable, __file__, "--model", args.model, "--threads", str(args.threads),
                              "--one", str(words)], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(json.dumps({"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                                 f"torch threads {args.threads}", "model": args.model, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
