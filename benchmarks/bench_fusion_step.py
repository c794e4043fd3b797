"""Training-step time of each fusion component against the text-only model on the same batches.

One model per fusion (the config's model section with ``alignment`` "none" and ``fusion`` set;
the text-only twin has ``fusion`` "none"), all built from one seed, each timed on the same
batches, interleaved batch by batch (so a shared, noisy CPU slows all alike). A step counts
collation (tokenising, the scene batch), forward, backward and the optimiser step.

    python benchmarks/bench_fusion_step.py --config configs/mnre_caption_umt.json --batches 6 --threads 1

``--sources`` sets the fusions' ``fusion_sources``; ``--reference`` adds a text-only-fusion model
with that alignment (default ``routed``), whose scene encoder the fusions that read objects share.
``--context`` also writes each post's caption into its context segment (as a model with
``context: ["caption"]`` reads it), so the fusions read context sub-words besides the objects.
``--scene-options`` takes one JSON object per variant of the scene encoder, merged over the
config's ``scene_options``: every model that reads objects is timed once per variant in the same
run (the first keeps the model's name, the others are named ``name {"phrase_grad": false}``):

    python benchmarks/bench_fusion_step.py --config configs/mnre_caption_umt.json --batches 6 --threads 1 \
        --fusions relevance_gate umt --scene-options '{}' '{"phrase_grad": false}'

``--fusion-options`` does the same for the fusions' ``fusion_options`` (merged over the config's):

    python benchmarks/bench_fusion_step.py --config configs/mnre_caption_prefix_context.json --batches 4 \
        --threads 1 --fusions visual_prefix --context --sources context --reference "" \
        --fusion-options '{}' '{"context_grad": false}'

Prints one JSON object: median seconds per step of each model and its ratio to the text-only one.
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
from graphie.training.trainer import add_image_context, labels_from, scene_graphs_for, seed_everything  # noqa: E402

FUSIONS = ("relevance_gate", "umt", "hybrid", "experts")


def json_objects(ap: argparse.ArgumentParser, flag: str, texts: list[str]) -> list[dict]:
    """``texts`` parsed as JSON objects, one per variant; a usage error naming ``flag`` otherwise."""
    try:
        variants = [json.loads(text) for text in texts]
    except json.JSONDecodeError as exc:
        ap.error(f"{flag}: not JSON ({exc})")
    if not all(isinstance(v, dict) for v in variants):
        ap.error(f"{flag}: each variant must be a JSON object")
    return variants


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/mnre_caption_umt.json")
    ap.add_argument("--fusions", nargs="+", default=list(FUSIONS))
    ap.add_argument("--batches", type=int, default=6, help="batches timed (after one warm-up batch)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--context", action="store_true", help="captions in the context segment too")
    ap.add_argument("--sources", nargs="+", default=["objects", "context"], help="the models' fusion_sources")
    ap.add_argument("--reference", default="routed",
                    help="an alignment timed beside them (text-only fusion), for the cost of the scene encoder; '' for none")
    ap.add_argument("--scene-options", nargs="+", default=["{}"], metavar="JSON",
                    help="scene_options merged over the config's, one object per variant of the models that read objects")
    ap.add_argument("--fusion-options", nargs="+", default=["{}"], metavar="JSON",
                    help="fusion_options merged over the config's, one object per variant of each fusion")
    args = ap.parse_args()
    scene_variants, fusion_variants = (json_objects(ap, flag, texts) for flag, texts in
                                       (("--scene-options", args.scene_options), ("--fusion-options", args.fusion_options)))
    torch.set_num_threads(args.threads)
    config, batch_size, device, posts = training_posts(args.config, args.batch_size, args.batches)
    scenes = scene_graphs_for(posts, config["data"].get("scene", "none"), config["model"].get("max_objects", 10))
    if args.context:
        add_image_context(posts, None)
    base = {**config["model"], "alignment": "none"}
    labels = labels_from(posts, base.get("task", "jmere"), base.get("none_label", "None"))
    graphs = parse_posts(posts)
    examples = make_examples(posts, graphs, scenes, merge_pairs=base.get("task") == "mnre")
    batches = list(length_batches(examples, batch_size, shuffle=True, seed=13))[: args.batches + 1]

    variants = {"none": {"fusion": "none", "fusion_options": {}}}
    for name in args.fusions:
        for k, options in enumerate(fusion_variants):
            variants[name if k == 0 else f"{name} {json.dumps(options)}"] = {
                "fusion": name, "fusion_sources": args.sources,
                "fusion_options": {**base.get("fusion_options", {}), **options}}
    if args.reference:
        variants[f"alignment:{args.reference}"] = {"fusion": "none", "fusion_options": {}, "alignment": args.reference}
    configs = {}
    for name, change in variants.items():
        cfg = ModelConfig.from_dict({**base, **change})
        for k, options in enumerate(scene_variants if cfg.reads_scene else [{}]):
            label = name if k == 0 else f"{name} {json.dumps(options)}"
            configs[label] = ModelConfig.from_dict({**base, **change,
                                                    "scene_options": {**base.get("scene_options", {}), **options}})
    models = {}
    for name, cfg in configs.items():
        seed_everything(13)
        cfg.entity_types, cfg.relation_labels = labels
        models[name] = GraphieModel(cfg).to(device).train()
    times, _ = time_steps(models, batches, device)
    text_only = statistics.median(times["none"])
    result = {
        "config": args.config,
        "context": args.context,
        "fusion_sources": args.sources,
        "scene_options": scene_variants,
        "fusion_options": fusion_variants,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "batch_size": batch_size,
        "batches": len(batches) - 1,
        "step_s": {name: round(statistics.median(t), 4) for name, t in times.items()},
        "ratio_to_text_only": {name: round(statistics.median(t) / text_only, 3) for name, t in times.items() if name != "none"},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
