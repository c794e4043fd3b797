"""Training time of a full GraphieModel step against the bare encoder's forward+backward.

Both run on the same batches, interleaved batch by batch (so a shared, noisy CPU slows both
alike). The full step counts what an epoch costs: collation (tokenising, graph tensors, grids),
forward, backward and the optimiser step; the bare step counts tokenising, encoder forward, a
backward from the word states and the optimiser step over the encoder's weights.

    python benchmarks/bench_training_speed.py --config configs/jmere.json --batches 12

Prints one JSON object: seconds per batch of each, their ratio, and the extrapolated epoch time.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graphie.models import CooccurrenceStats, GraphieModel, ModelConfig  # noqa: E402
from graphie.models.batching import length_batches, make_examples, parse_posts  # noqa: E402
from graphie.training.trainer import labels_from, load_posts, seed_everything  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/jmere.json")
    ap.add_argument("--batches", type=int, default=12, help="batches timed (after one warm-up batch)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seed_everything(13)
    config = json.loads(Path(args.config).read_text())
    batch_size = args.batch_size or config.get("training", {}).get("batch_size", 16)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    all_posts = load_posts(config["data"], "train", Path(args.config).resolve().parent.parent)
    posts = all_posts[: batch_size * (args.batches + 1) * 3]
    model_cfg = ModelConfig.from_dict(dict(config["model"]))
    model_cfg.entity_types, model_cfg.relation_labels = labels_from(posts, model_cfg.task, model_cfg.none_label)
    graphs = parse_posts(posts)
    examples = make_examples(posts, graphs, merge_pairs=model_cfg.task == "mnre")
    stats = CooccurrenceStats.fit([g.tokens for g in graphs]) if "cooccurrence" in model_cfg.pair_channels else None
    model = GraphieModel(model_cfg, stats).to(device).train()
    collate = model.collator()
    encoder = model.encoder
    full_opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    bare_opt = torch.optim.AdamW(encoder.parameters(), lr=1e-5)
    batches = list(length_batches(examples, batch_size, shuffle=True, seed=13))[: args.batches + 1]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def full_step(chunk) -> float:
        sync()
        t = time.perf_counter()
        out = model(collate(chunk).to(device))
        full_opt.zero_grad(set_to_none=True)
        out.loss.backward()
        full_opt.step()
        sync()
        return time.perf_counter() - t

    def bare_step(chunk) -> float:
        sync()
        t = time.perf_counter()
        enc = encoder.encode([ex.words for ex in chunk], [ex.post.context for ex in chunk]).to(device)
        states = encoder(enc)
        bare_opt.zero_grad(set_to_none=True)
        states.pow(2).mean().backward()
        bare_opt.step()
        sync()
        return time.perf_counter() - t

    full_step(batches[0]), bare_step(batches[0])  # warm-up
    full, bare = [], []
    for chunk in batches[1:]:
        full.append(full_step(chunk))
        bare.append(bare_step(chunk))
    # mnre lines of one sentence train as one example
    n_examples = (len({(tuple(p.tokens), p.image) for p in all_posts}) if model_cfg.task == "mnre" else len(all_posts))
    steps_per_epoch = math.ceil(n_examples / batch_size)
    result = {
        "config": args.config,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "batch_size": batch_size,
        "batches": len(full),
        "mean_words": round(statistics.mean(len(ex.words) for b in batches[1:] for ex in b), 1),
        "full_step_s": round(statistics.median(full), 4),
        "bare_encoder_step_s": round(statistics.median(bare), 4),
        "ratio": round(statistics.median(full) / statistics.median(bare), 3),
        "ratio_of_totals": round(sum(full) / sum(bare), 3),
        "steps_per_epoch": steps_per_epoch,
        "epoch_s_full": round(statistics.median(full) * steps_per_epoch, 1),
        "epoch_s_bare": round(statistics.median(bare) * steps_per_epoch, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
