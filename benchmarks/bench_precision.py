"""Training step time and prediction speed in fp32 against bf16 autocast, MiniLM and MPNet.

For each encoder, one model is built from the config (``model.encoder`` replaced) and timed on
the same batches in both precisions, interleaved batch by batch (fp32, bf16, fp32, ...), so that a
shared, noisy CPU slows both alike and the ratio stays valid. A training step counts what an
epoch costs (collation, forward, backward, the optimiser step); prediction runs
:meth:`GraphieModel.predict` (parse excluded: text graphs are computed once beforehand) in eval
mode under :func:`graphie.models.precision.autocast_forward`, as ``graphie.load(dtype=...)`` does.

bf16 is forced here, even on a CPU without native bf16 where ``training.precision`` and
``dtype=`` would fall back to fp32: the point is to measure what that fallback avoids.

    python benchmarks/bench_precision.py                       # minilm and mpnet-base, a few minutes
    python benchmarks/bench_precision.py --encoders minilm --batches 10

Prints a side-by-side table (Markdown) and, with ``--json``, the figures as one JSON object.
MPNet needs the ``graphie[base]`` extra.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graphie.models import CooccurrenceStats, GraphieModel, ModelConfig  # noqa: E402
from graphie.models.precision import autocast_forward, cpu_supports_bf16  # noqa: E402
from graphie.models.batching import length_batches, make_examples, parse_posts  # noqa: E402
from graphie.training.trainer import labels_from, load_posts, seed_everything  # noqa: E402

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def measure(config: dict, encoder: str, posts: list, graphs: list, batch_size: int, batches: int,
            predict_posts: int, predict_batch: int, device: torch.device) -> dict[str, dict[str, float]]:
    """Median training-step seconds and prediction posts/s of one encoder, per precision."""
    seed_everything(13)
    model_cfg = ModelConfig.from_dict({**config["model"], "encoder": encoder})
    model_cfg.entity_types, model_cfg.relation_labels = labels_from(posts, model_cfg.task, model_cfg.none_label)
    examples = make_examples(posts, graphs, merge_pairs=model_cfg.task == "mnre")
    stats = (CooccurrenceStats.fit([g.tokens for g in graphs])
             if model_cfg.uses_pairs and "cooccurrence" in model_cfg.pair_channels else None)
    model = GraphieModel(model_cfg, stats).to(device)
    collate = model.collator()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)  # tiny: the weights barely move between timings
    chunks = list(length_batches(examples, batch_size, shuffle=True, seed=13))[: batches + 1]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train_step(chunk: list, dtype: torch.dtype | None) -> float:
        model.train()
        sync()
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out = model(collate(chunk).to(device))
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        sync()
        return time.perf_counter() - start

    def predict(dtype: torch.dtype | None) -> float:
        model.eval()
        sync()
        start = time.perf_counter()
        with torch.inference_mode(), autocast_forward(model, dtype):
            model.predict(posts[:predict_posts], graphs=graphs[:predict_posts], batch_size=predict_batch)
        sync()
        return predict_posts / (time.perf_counter() - start)

    for dtype in PRECISIONS.values():  # warm-up: first calls allocate and pick kernels
        train_step(chunks[0], dtype)
    steps: dict[str, list[float]] = {name: [] for name in PRECISIONS}
    for chunk in chunks[1:]:
        for name, dtype in PRECISIONS.items():
            steps[name].append(train_step(chunk, dtype))
    speed: dict[str, list[float]] = {name: [] for name in PRECISIONS}
    for _ in range(2):
        for name, dtype in PRECISIONS.items():
            speed[name].append(predict(dtype))
    words = statistics.mean(len(ex.words) for chunk in chunks[1:] for ex in chunk)
    out = {}
    for name in PRECISIONS:
        step = statistics.median(steps[name])
        out[name] = {"train_step_s": round(step, 3), "train_posts_s": round(batch_size / step, 1),
                     "predict_posts_s": round(max(speed[name]), 1), "mean_words": round(words, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/twitter2017.json")
    ap.add_argument("--encoders", nargs="+", default=["minilm", "mpnet-base"])
    ap.add_argument("--batches", type=int, default=4, help="training steps timed per precision (after one warm-up)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--predict-posts", type=int, default=64, help="posts predicted per timing (best of two)")
    ap.add_argument("--predict-batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1, as every figure in RESULTS.md)")
    ap.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = json.loads(Path(args.config).read_text(encoding="utf-8"))
    posts = load_posts(config["data"], "train", Path(args.config).resolve().parent.parent)
    posts = posts[: max(args.batch_size * (args.batches + 1) * 3, args.predict_posts)]
    graphs = parse_posts(posts)
    start = time.time()
    results = {enc: measure(config, enc, posts, graphs, args.batch_size, args.batches, args.predict_posts,
                            args.predict_batch, device) for enc in args.encoders}
    hardware = (torch.cuda.get_device_name() if device.type == "cuda"
                else f"CPU {platform.machine()}, {torch.get_num_threads()} threads, "
                     f"native bf16: {'yes' if cpu_supports_bf16() else 'no'} "
                     f"(torch capability {torch.backends.cpu.get_cpu_capability()})")
    print(f"{args.config}, batch {args.batch_size}, {args.batches} timed steps, {args.predict_posts} posts "
          f"predicted at batch {args.predict_batch}; {hardware}; torch {torch.__version__}; "
          f"{time.time() - start:.0f} s")
    print()
    print("| encoder | train step fp32 (s) | train step bf16 (s) | bf16 / fp32 step | "
          "train posts/s fp32 | train posts/s bf16 | predict posts/s fp32 | predict posts/s bf16 | bf16 / fp32 predict speed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for enc, r in results.items():
        a, b = r["fp32"], r["bf16"]
        print(f"| {enc} | {a['train_step_s']} | {b['train_step_s']} | {b['train_step_s'] / a['train_step_s']:.2f} | "
              f"{a['train_posts_s']} | {b['train_posts_s']} | {a['predict_posts_s']} | {b['predict_posts_s']} | "
              f"{b['predict_posts_s'] / a['predict_posts_s']:.2f} |")
    if args.json:
        print(json.dumps({"config": args.config, "hardware": hardware, "results": results}, indent=2))


if __name__ == "__main__":
    main()
