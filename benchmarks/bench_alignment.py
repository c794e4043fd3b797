"""Alignment figures: synthetic benchmark and Twitter caption graphs for none / mega / eega.

Every run goes through graphie's own trainer (``graphie.training.trainer.train``, the code behind
``graphie train``), one run at a time, and keeps its ``metrics.json`` under ``runs/alignment/``.

    python benchmarks/bench_alignment.py data --train 1500 --valid 500       # runs/synthetic/
    python benchmarks/bench_alignment.py synthetic --modes none mega eega
    python benchmarks/bench_alignment.py twitter --dataset 2015 --modes none mega eega
    python benchmarks/bench_alignment.py diagnose synthetic_eega              # who-has-which-role check
    python benchmarks/bench_alignment.py cost                                 # step time vs none
    python benchmarks/bench_alignment.py table                                # markdown of all runs

The synthetic configs read precomputed scene graphs (``"scene": "precomputed"`` with a
``"scene_graphs"`` JSON file keyed by image file name); the Twitter ones parse each post's BLIP-2
caption into a scene graph (``"scene": "caption"``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "alignment"
MODES = ("none", "mega", "eega")


def run(config_path: Path, name: str, overrides: dict) -> dict:
    from graphie.training.trainer import train

    config = json.loads(config_path.read_text(encoding="utf-8"))
    for section, values in overrides.items():
        config.setdefault(section, {}).update(values)
    output = RUNS / name
    start = time.time()
    summary = train(config, output, base=ROOT, progress=False)
    summary["wall_seconds"] = round(time.time() - start, 1)
    (output / "metrics.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(json.dumps({"run": name, "best_epoch": summary["best_epoch"], "dev": summary["dev"]}), flush=True)
    return summary


def table() -> str:
    """Markdown rows: run, best epoch, P/R/F1 (+ entity F1), seconds per epoch (train, eval)."""
    rows = ["| run | best epoch | P | R | F1 | entity F1 | train s/epoch | eval s/epoch |",
            "|---|---|---|---|---|---|---|---|"]
    for metrics in sorted(RUNS.glob("*/metrics.json")):
        s = json.loads(metrics.read_text())
        dev, hist = s["dev"] or {}, s["history"]
        train_s = sum(h["train_seconds"] for h in hist) / len(hist)
        eval_s = sum(h["eval_seconds"] for h in hist) / len(hist)
        fmt = lambda v: f"{v:.2f}" if isinstance(v, (int, float)) else "–"  # the trainer reports percentages
        rows.append(f"| {metrics.parent.name} | {s['best_epoch']} | {fmt(dev.get('precision'))} | "
                    f"{fmt(dev.get('recall'))} | {fmt(dev.get('f1'))} | {fmt(dev.get('entity_f1'))} | "
                    f"{train_s:.0f} | {eval_s:.0f} |")
    return "\n".join(rows)


def diagnose(run_name: str, data_dir: Path, max_dev: int) -> dict:
    """Synthetic run: relation accuracy on gold pairs, split by whether the post's two people share
    a role. A model that reads only *which* roles the image shows (not who has which) scores 100%
    on shared roles and 50% on different ones; one that aligns each name with its person node
    scores high on both. Also the accuracy with the scene graphs withheld."""
    from graphie.datasets import read_jmere
    from graphie.models import GraphieModel
    from parsers.scene import SceneGraph

    posts = read_jmere(data_dir / "valid.json")[:max_dev]
    table = json.loads((data_dir / "scene_graphs.json").read_text(encoding="utf-8"))
    scenes = [SceneGraph.from_dict(table[p.image]) for p in posts]
    model = GraphieModel.from_pretrained(RUNS / run_name)
    result: dict = {"run": run_name, "posts": len(posts)}
    for setting, graphs in (("with_image", scenes), ("without_image", None)):
        preds = model.predict(posts, scene_graphs=graphs)
        hits = {"shared": [0, 0], "different": [0, 0]}
        for post, pred in zip(posts, preds):
            found = {(r.head.key[:2], r.tail.key[:2]): r.label for r in pred.relations}
            group = "shared" if len({r.label for r in post.relations}) == 1 else "different"
            for r in post.relations:
                hits[group][0] += found.get((r.head.key[:2], r.tail.key[:2])) == r.label
                hits[group][1] += 1
        result[setting] = {g: {"accuracy": round(100 * h / max(1, n), 2), "pairs": n} for g, (h, n) in hits.items()}
    print(json.dumps(result), flush=True)
    return result


def cost(config_name: str, data_dir: Path, batches: int, batch_size: int, repeats: int) -> dict:
    """Seconds per training step (forward + backward + optimiser) and per inference batch of
    none / mega / eega on the same synthetic batches, the modes interleaved round-robin so that
    the shared machine's load hits all of them alike; medians and ratios to ``none``."""
    import statistics

    import torch

    from graphie.datasets import read_jmere
    from graphie.models import GraphieModel, ModelConfig
    from graphie.training.batching import make_examples, parse_posts
    from graphie.training.trainer import labels_from, seed_everything
    from parsers.scene import SceneGraph

    torch.set_num_threads(2)
    posts = read_jmere(data_dir / "train.json")[: batches * batch_size]
    table_ = json.loads((data_dir / "scene_graphs.json").read_text(encoding="utf-8"))
    examples = make_examples(posts, parse_posts(posts), [SceneGraph.from_dict(table_[p.image]) for p in posts])
    chunks = [examples[i:i + batch_size] for i in range(0, len(examples), batch_size)]
    models = {}
    for mode in MODES:
        cfg = json.loads((ROOT / "configs" / f"{config_name}_{mode}.json").read_text(encoding="utf-8"))["model"]
        model_cfg = ModelConfig.from_dict(cfg)
        model_cfg.entity_types, model_cfg.relation_labels = labels_from(posts, model_cfg.task, model_cfg.none_label)
        seed_everything(13)
        model = GraphieModel(model_cfg)
        models[mode] = (model, model.collator(), torch.optim.AdamW(model.parameters(), lr=1e-4))
    times = {mode: {"train": [], "infer": []} for mode in MODES}
    for model, collate, _ in models.values():  # warm-up: first calls allocate and pick kernels
        model(collate(chunks[0])).loss.backward()
    for _ in range(repeats):
        for chunk in chunks:
            for mode, (model, collate, opt) in models.items():
                batch = collate(chunk)
                model.train()
                t0 = time.perf_counter()
                out = model(batch)
                opt.zero_grad()
                out.loss.backward()
                opt.step()
                t1 = time.perf_counter()
                model.eval()
                with torch.no_grad():
                    model(collate(chunk, with_targets=False))
                times[mode]["train"].append(t1 - t0)
                times[mode]["infer"].append(time.perf_counter() - t1)
    result = {mode: {k: round(statistics.median(v), 3) for k, v in t.items()} for mode, t in times.items()}
    for mode in MODES:
        for k in ("train", "infer"):
            result[mode][f"{k}_vs_none"] = round(result[mode][k] / result["none"][k], 2)
    result["setting"] = {"batches": len(chunks), "batch_size": batch_size, "repeats": repeats}
    print(json.dumps(result), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("data", help="write the synthetic benchmark to runs/synthetic")
    d.add_argument("--train", type=int, default=1500)
    d.add_argument("--valid", type=int, default=500)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--output", default=str(ROOT / "runs" / "synthetic"))
    for name in ("synthetic", "twitter"):
        p = sub.add_parser(name)
        p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
        p.add_argument("--epochs", type=int)
        p.add_argument("--max-train", type=int)
        p.add_argument("--max-dev", type=int)
        p.add_argument("--seed", type=int)
        p.add_argument("--tag", default="", help="suffix of the run folder names")
        if name == "twitter":
            p.add_argument("--dataset", choices=["2015", "2017"], required=True)
    sub.add_parser("table")
    c = sub.add_parser("cost", help="train-step and inference time of each mode on the same batches")
    c.add_argument("--config", default="synthetic", help="config family: configs/<config>_<mode>.json")
    c.add_argument("--data", default=str(ROOT / "runs" / "synthetic"))
    c.add_argument("--batches", type=int, default=6)
    c.add_argument("--batch-size", type=int, default=16)
    c.add_argument("--repeats", type=int, default=2)
    g = sub.add_parser("diagnose", help="shared- vs different-role accuracy of a synthetic run, with and without image")
    g.add_argument("run", help="run folder name under runs/alignment, e.g. synthetic_eega")
    g.add_argument("--data", default=str(ROOT / "runs" / "synthetic"))
    g.add_argument("--max-dev", type=int, default=300)
    args = ap.parse_args(argv)

    if args.command == "data":
        from graphie.synthetic import write_synthetic

        print(json.dumps(write_synthetic(args.output, args.train, args.valid, args.seed)))
        return 0
    if args.command == "table":
        print(table())
        return 0
    if args.command == "cost":
        cost(args.config, Path(args.data), args.batches, args.batch_size, args.repeats)
        return 0
    if args.command == "diagnose":
        diagnose(args.run, Path(args.data), args.max_dev)
        return 0
    training = {k: v for k, v in (("epochs", args.epochs), ("max_train", args.max_train),
                                  ("max_dev", args.max_dev), ("seed", args.seed)) if v is not None}
    for mode in args.modes:
        if args.command == "synthetic":
            config, name = ROOT / "configs" / f"synthetic_{mode}.json", f"synthetic_{mode}{args.tag}"
        else:
            config = ROOT / "configs" / f"twitter{args.dataset}_caption_{mode}.json"
            name = f"twitter{args.dataset}_caption_{mode}{args.tag}"
        run(config, name, {"training": training})
    return 0


if __name__ == "__main__":
    sys.exit(main())
