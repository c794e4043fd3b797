"""Alignment figures: synthetic benchmark and Twitter caption graphs for none / mega / eega / routed.

Every run goes through graphie's own trainer (``graphie.training.trainer.train``, the code behind
``graphie train``), one run at a time, and keeps its ``metrics.json`` under ``runs/alignment/``.

    python benchmarks/bench_alignment.py data --train 1500 --valid 500       # runs/synthetic/
    python benchmarks/bench_alignment.py synthetic --modes none mega eega routed
    python benchmarks/bench_alignment.py twitter --dataset 2015 --modes none mega eega
    python benchmarks/bench_alignment.py diagnose synthetic_eega              # who-has-which-role check
    python benchmarks/bench_alignment.py collapse                             # does minimising L_g collapse states?
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
MODES = ("none", "mega", "eega", "routed")
SYNTHETIC_ONLY = ("image_context",)  # configs/synthetic_image_context.json: the scene graph as context text


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


def own_person_node(graph, name: str) -> int | None:
    """Index in ``graph.objects`` of the person node whose OCR text is ``name`` (synthetic graphs)."""
    return next((i for i, o in enumerate(graph.objects) if o.label == "person" and o.text == name), None)


def diagnose(run_name: str, data_dir: Path, max_dev: int, with_context: bool = False) -> dict:
    """Synthetic run: relation accuracy on gold pairs, split by whether the post's two people share
    a role. A model that reads only *which* roles the image shows (not who has which) scores 100%
    on shared roles and 50% on different ones; one that aligns each name with its person node
    scores high on both. Also the accuracy with the scene graphs withheld, and for each gold person
    name: whether its largest alignment weight (mean over its words) falls on its own person node
    (``own_node_top``), the mean weight it puts there, and whether the first evidence object
    ``predict`` reports for the predicted entity with the name's span is that node (``own_node_evidence``;
    a name that is not predicted, or has no evidence, counts as a miss). ``with_context``: the
    run was trained with ``"image_context": true``, so each post gets its scene graph as context
    text (:func:`graphie.image_context.image_context`) wherever the scene graph is given."""
    import torch

    from graphie.models.scene_encoder import kept_objects
    from graphie.datasets import read_jmere
    from graphie.models import GraphieModel
    from parsers.scene import SceneGraph

    posts = read_jmere(data_dir / "valid.json")[:max_dev]
    table = json.loads((data_dir / "scene_graphs.json").read_text(encoding="utf-8"))
    scenes = [SceneGraph.from_dict(table[p.image]) for p in posts]
    from graphie.image_context import image_context

    model = GraphieModel.from_pretrained(RUNS / run_name)
    result: dict = {"run": run_name, "posts": len(posts)}
    evidence_hits = names = 0
    for setting, graphs in (("with_image", scenes), ("without_image", None)):
        for post, scene in zip(posts, scenes):
            post.context = image_context(scene) if with_context and graphs is not None else None
        preds = model.predict(posts, scene_graphs=graphs)
        hits = {"shared": [0, 0], "different": [0, 0]}
        for post, pred, graph in zip(posts, preds, scenes):
            found = {(r.head.key[:2], r.tail.key[:2]): r.label for r in pred.relations}
            group = "shared" if len({r.label for r in post.relations}) == 1 else "different"
            for r in post.relations:
                hits[group][0] += found.get((r.head.key[:2], r.tail.key[:2])) == r.label
                hits[group][1] += 1
            if graphs is not None:
                predicted = {e.key[:2]: e for e in pred.entities}
                for gold in post.entities:
                    if gold.type != "PER":
                        continue
                    names += 1
                    ent = predicted.get(gold.key[:2])
                    top = ent.evidence[0]["object"] if ent is not None and ent.evidence else None
                    evidence_hits += top is not None and top == own_person_node(graph, gold.text)
        result[setting] = {g: {"accuracy": round(100 * h / max(1, n), 2), "pairs": n} for g, (h, n) in hits.items()}
    result["own_node_evidence"] = round(100 * evidence_hits / max(1, names), 2)
    if model.alignment is not None:
        top_hits, weights = 0, []
        model.eval()
        with torch.no_grad():
            for i in range(0, len(posts), 32):
                chunk, chunk_scenes = posts[i:i + 32], scenes[i:i + 32]
                batch = model.prepare(chunk, chunk_scenes).to(model.device)
                alignment = model(batch).alignment.float()
                for b, (post, graph) in enumerate(zip(chunk, chunk_scenes)):
                    order = kept_objects(graph, model.config.max_objects)
                    for gold in post.entities:
                        if gold.type != "PER":
                            continue
                        row = alignment[b, gold.span.start:gold.span.end, :len(order)].mean(0)
                        own = order.index(own_person_node(graph, gold.text))
                        top_hits += int(row.argmax()) == own
                        weights.append(float(row[own]))
        result["own_node_top"] = round(100 * top_hits / max(1, len(weights)), 2)
        result["own_node_weight"] = round(sum(weights) / max(1, len(weights)), 3)
        result["names"] = len(weights)
    print(json.dumps(result), flush=True)
    return result


def collapse(steps: int, seed: int) -> dict:
    """Minimise each module's graph loss alone (Adam, lr 0.01) over free token and object states of
    random posts and report the mean pairwise cosine of the token states of each post (and, for
    ``routed``, of its head outputs) before and after: 1.0 means every token points one way."""
    import torch

    import graphie.alignment  # noqa: F401  (registers the modules)
    from graphie.registry import alignments

    torch.manual_seed(seed)
    B, n, m, d = 8, 12, 6, 64
    text0, objects0 = torch.randn(B, n, d), torch.randn(B, m, d)
    text_mask, object_mask = torch.ones(B, n, dtype=torch.bool), torch.ones(B, m, dtype=torch.bool)
    text_adj = torch.zeros(B, n, n, dtype=torch.bool)
    text_adj[:, torch.arange(n - 1), torch.arange(1, n)] = True
    text_adj = text_adj | text_adj.transpose(1, 2)
    object_adj = torch.zeros(B, m, m, dtype=torch.bool)
    object_adj[:, 0, 1:] = object_adj[:, 1:, 0] = True

    def mean_cosine(x: torch.Tensor) -> float:
        x = torch.nn.functional.normalize(x.float(), dim=-1)
        sim = x @ x.transpose(1, 2)
        off = ~torch.eye(x.shape[1], dtype=torch.bool)
        return round(float(sim[:, off].mean()), 3)

    result: dict = {"steps": steps, "posts": B, "tokens": n, "objects": m, "dim": d}
    variants = {"eega": {}, "routed": {}, "routed (no contrast)": {"contrast_weight": 0.0},
                "routed (states not detached)": {"detach_states": False}}
    for name, options in variants.items():
        torch.manual_seed(seed)
        module = alignments.create(name.split()[0], dim=d, **options)
        text, objects = text0.clone().requires_grad_(), objects0.clone().requires_grad_()
        opt = torch.optim.Adam([text, objects, *module.parameters()], lr=0.01)
        row = {"token_cos_before": mean_cosine(text)}
        for _ in range(steps):
            loss = module(text, text_mask, text_adj, objects, object_mask, object_adj).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
        row.update(token_cos_after=mean_cosine(text), loss_after=round(float(loss), 4))
        if hasattr(module, "project"):
            with torch.no_grad():
                row["head_cos_after"] = mean_cosine(module.project(text, objects)[0])
        result[name] = row
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
    from graphie.models.batching import make_examples, parse_posts
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
        p.add_argument("--modes", nargs="+", default=list(MODES),
                       choices=MODES + (SYNTHETIC_ONLY if name == "synthetic" else ()))
        p.add_argument("--epochs", type=int)
        p.add_argument("--max-train", type=int)
        p.add_argument("--max-dev", type=int)
        p.add_argument("--seed", type=int)
        p.add_argument("--tag", default="", help="suffix of the run folder names")
        p.add_argument("--num-threads", type=int, help="torch threads (default: the config's)")
        p.add_argument("--model-json", default="{}", help='model settings over the config\'s, e.g. \'{"graph_loss_weight": 0}\'')
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
    g.add_argument("--image-context", action="store_true", help="the run was trained with image_context")
    k = sub.add_parser("collapse", help="minimise each graph loss alone; mean pairwise cosine of token states")
    k.add_argument("--steps", type=int, default=300)
    k.add_argument("--seed", type=int, default=0)
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
        diagnose(args.run, Path(args.data), args.max_dev, args.image_context)
        return 0
    if args.command == "collapse":
        collapse(args.steps, args.seed)
        return 0
    training = {k: v for k, v in (("epochs", args.epochs), ("max_train", args.max_train),
                                  ("max_dev", args.max_dev), ("seed", args.seed),
                                  ("num_threads", args.num_threads)) if v is not None}
    for mode in args.modes:
        if args.command == "synthetic":
            config, name = ROOT / "configs" / f"synthetic_{mode}.json", f"synthetic_{mode}{args.tag}"
        else:
            config = ROOT / "configs" / f"twitter{args.dataset}_caption_{mode}.json"
            name = f"twitter{args.dataset}_caption_{mode}{args.tag}"
        run(config, name, {"training": training, "model": json.loads(args.model_json)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
