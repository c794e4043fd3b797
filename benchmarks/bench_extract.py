"""Throughput of Extractor.extract_many next to its parts, and memory over a long stream.

    python benchmarks/bench_extract.py                      # the shipped default model
    python benchmarks/bench_extract.py --model runs/x --n 256 --memory-posts 10000
    python benchmarks/bench_extract.py --quantize --memory-posts 0     # the int8 encoder

Prints one JSON object. Text-only throughput is compared with what the bare parts allow on the
same texts: spaCy parsing (TextParser.pipe) and the encoder's forward pass at the same batch
size; ``overhead_ratio`` = extract_many posts/s divided by 1 / (parse time + encoder time per
post). With images, the default image parser alone is timed too.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import torch

import graphie
from graphie.datasets import read_twitter
from parsers.text import TextParser


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--texts", default="../shared/data/twitter2017/valid.txt", help="Twitter CoNLL file")
    ap.add_argument("--images", default="../shared/data/mnre_images", help="folder of images (cycled)")
    ap.add_argument("--n", type=int, default=256, help="posts per throughput measurement")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--image-posts", type=int, default=48)
    ap.add_argument("--memory-posts", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--latency-posts", type=int, default=64)
    ap.add_argument("--quantize", action="store_true", help="dynamic int8 encoder (graphie.load(quantize=True))")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    texts = [" ".join(p.tokens) for p in read_twitter(args.texts)][: args.n]
    extractor = graphie.load(args.model, quantize=args.quantize)
    model = extractor.model
    parser = TextParser()
    report: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}",
                    "model": args.model, "quantize": args.quantize, "posts": len(texts), "text_only": {}}

    extractor.extract(texts[0])  # warm-up: lazy loads, caches
    t = time.perf_counter()
    graphs = list(parser.pipe(texts))
    parse_s = time.perf_counter() - t
    report["spacy_parse_posts_per_s"] = rate(len(texts), parse_s)
    words = [g.tokens for g in graphs]

    for bs in args.batch_sizes:
        with torch.inference_mode():
            t = time.perf_counter()
            for i in range(0, len(words), bs):
                enc = model.encoder.encode(words[i:i + bs])
                model.encoder.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask,
                                    token_type_ids=enc.token_type_ids)
            enc_s = time.perf_counter() - t
        t = time.perf_counter()
        n_out = sum(1 for _ in extractor.extract_many(texts, batch_size=bs, progress=False))
        full_s = time.perf_counter() - t
        bound = len(texts) / (parse_s + enc_s)
        report["text_only"][f"batch_{bs}"] = {
            "extract_many_posts_per_s": rate(n_out, full_s),
            "encoder_only_posts_per_s": rate(len(texts), enc_s),
            "parse_plus_encoder_bound_posts_per_s": round(bound, 2),
            "overhead_ratio": round((n_out / full_s) / bound, 3),
        }

    times = []
    for text in texts[: args.latency_posts]:
        t = time.perf_counter()
        extractor.extract(text)
        times.append(time.perf_counter() - t)
    report["text_only"]["latency_ms"] = {"posts": len(times), "median": round(1000 * statistics.median(times), 1),
                                         "p90": round(1000 * sorted(times)[int(0.9 * (len(times) - 1))], 1)}

    images = sorted(p for p in Path(args.images).glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if images:
        posts = [{"id": str(i), "text": texts[i % len(texts)], "image": str(images[i % len(images)])}
                 for i in range(args.image_posts)]
        from parsers.image import parse_image

        detector = extractor._detector()
        t = time.perf_counter()
        for p in posts:
            parse_image(p["image"], detector, max_objects=model.config.max_objects)
        parser_s = time.perf_counter() - t
        t = time.perf_counter()
        n_out = sum(1 for _ in extractor.extract_many(posts, batch_size=8, progress=False))
        full_s = time.perf_counter() - t
        report["with_images"] = {
            "posts": len(posts),
            "image_parser_alone_images_per_s": rate(len(posts), parser_s),
            "extract_many_batch_8_posts_per_s": rate(n_out, full_s),
        }

    if args.memory_posts:
        marks = {}
        stream = (texts[i % len(texts)] for i in itertools.count())
        outcomes = extractor.extract_many(itertools.islice(stream, args.memory_posts), batch_size=32, progress=False)
        t = time.perf_counter()
        for k, _ in enumerate(outcomes, 1):
            if k in (1000, args.memory_posts // 2, args.memory_posts):
                marks[str(k)] = round(rss_mb(), 1)
        report["memory"] = {"posts": args.memory_posts, "rss_mb_after": marks,
                            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                            "posts_per_s": rate(args.memory_posts, time.perf_counter() - t)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
