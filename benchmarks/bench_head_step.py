"""Training-step time of each head against the text-only ``bio`` head on the same batches.

One model per head (the config's model section with ``head`` set; options a head does not take
dropped), all built from one seed, each timed on the same batches, interleaved batch by batch (so
a shared, noisy CPU slows all alike). A step counts collation (tokenising: the ``queries`` head
writes one row per post and entity type), forward, backward and the optimiser step.

    python benchmarks/bench_head_step.py --config configs/twitter2017.json --heads queries --batches 6 --threads 1

A head may be given as ``name:{json}``, its ``head_options``, to time a variant beside the plain
one (e.g. ``'queries:{"queries": {"PER": "person", ...}}'``, one-word questions).
Prints one JSON object: median seconds per step of each head, its ratio to ``bio``'s, and the
rows and sub-words (non-padding) an encoder pass of each reads per batch.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graphie.models import GraphieModel, ModelConfig  # noqa: E402
from graphie.models.batching import length_batches, make_examples, parse_posts  # noqa: E402
from step_timing import time_steps, training_posts  # noqa: E402
from graphie.training.trainer import labels_from, seed_everything  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/twitter2017.json")
    ap.add_argument("--heads", nargs="+", default=["queries"], help="heads timed beside 'bio'")
    ap.add_argument("--batches", type=int, default=6, help="batches timed (after one warm-up batch)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config, batch_size, device, posts = training_posts(args.config, args.batch_size, args.batches)
    base = {**config["model"], "task": "ner", "crf": False, "head_options": {}}
    labels = labels_from(posts, "ner", base.get("none_label", "None"))
    examples = make_examples(posts, parse_posts(posts))
    batches = list(length_batches(examples, batch_size, shuffle=True, seed=13))[: args.batches + 1]

    models = {}
    for spec in ["bio", *[h for h in args.heads if h != "bio"]]:
        head, _, options = spec.partition(":")
        seed_everything(13)
        cfg = ModelConfig.from_dict({**base, "head": head, "head_options": json.loads(options) if options else {}})
        cfg.entity_types, cfg.relation_labels = labels
        models[spec] = GraphieModel(cfg).to(device).train()
    times, sizes = time_steps(models, batches, device)
    text_only = statistics.median(times["bio"])
    result = {
        "config": args.config,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
                   f"{torch.get_num_threads()} threads",
        "entity_types": labels[0],
        "batch_size": batch_size,
        "batches": len(batches) - 1,
        "step_s": {name: round(statistics.median(t), 4) for name, t in times.items()},
        "ratio_to_bio": {name: round(statistics.median(t) / text_only, 3) for name, t in times.items() if name != "bio"},
        "rows_per_batch": {name: statistics.median(r for r, _ in s) for name, s in sizes.items()},
        "sub_words_per_batch": {name: statistics.median(w for _, w in s) for name, s in sizes.items()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
