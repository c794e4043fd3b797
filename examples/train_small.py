"""Train a small joint entity-relation model on graphie's generated synthetic benchmark.

    python examples/train_small.py                 # 400 train / 100 validation posts, 4 epochs
    python examples/train_small.py --alignment eega  # align text and scene graphs (EEGA)
    python examples/train_small.py --quick         # a smoke run: 32 / 8 posts, 1 epoch

The synthetic posts (graphie.synthetic) name two people and a team; their relations to the team
are decided by the image's scene graph only (what each person wears or holds), so a text-only
model (--alignment none) finds the entities but can only guess the relations (chance is 1 in 4);
--alignment mega or eega reads the precomputed scene graphs written next to the data. The model
folder it writes (config.json + model.safetensors) loads with graphie.load(...) and works with
every other example's --model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import graphie
from graphie import Post
from graphie.synthetic import write_synthetic
from graphie.training.trainer import train
from parsers.scene import SceneGraph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="runs/train_small", help="model folder to write")
    parser.add_argument("--quick", action="store_true", help="smallest setting (CI)")
    parser.add_argument("--alignment", default="none", choices=["none", "mega", "eega"],
                        help="how the scene graphs reach the words (default: none, text only)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    n_train, n_valid, epochs = (32, 8, 1) if args.quick else (400, 100, 4)
    data_dir = Path(args.output) / "data"
    counts = write_synthetic(data_dir, train=n_train, valid=n_valid, seed=args.seed)
    print("data:", json.dumps(counts))

    data = {"format": "jmere", "train": str(data_dir / "train.json"), "dev": str(data_dir / "valid.json")}
    if args.alignment != "none":  # scene graphs keyed by image file name, written by write_synthetic
        data.update(scene="precomputed", scene_graphs=str(data_dir / "scene_graphs.json"))
    config = {
        "data": data,
        "model": {"task": "jmere", "max_length": 32, "grid_dim": 64, "pair_channels": ["pos", "distance"],
                  "none_weight": 0.2, "entity_pos_weight": 4.0, "alignment": args.alignment},
        "training": {"epochs": epochs, "batch_size": 16, "lr": 1e-4, "head_lr": 3e-3, "warmup": 0.0,
                     "patience": epochs, "seed": args.seed, "num_threads": 2},
    }
    summary = train(config, args.output, progress=not args.quick)
    dev = summary["dev"]
    print(f"best epoch {summary['best_epoch']}: relations P {dev['precision']:.2f} R {dev['recall']:.2f} "
          f"F1 {dev['f1']:.2f} | entities F1 {dev['entity_f1']:.2f}")

    # The folder is a complete model: load it through the front door and use it on a validation
    # post, with that post's scene graph standing in for its image.
    extractor = graphie.load(args.output)
    post = Post.from_dict(json.loads((data_dir / "posts_valid.jsonl").read_text().splitlines()[0]))
    scene = SceneGraph.from_dict(json.loads((data_dir / "scene_graphs.json").read_text())[post.image])
    result = extractor.extract(post.text, scene)
    print("post:", post.text)
    print("scene graph:", [o.label + (f" '{o.text}'" if o.text else "") for o in scene.objects])
    print("gold:", [(r.head.text, r.label, r.tail.text) for r in post.relations])
    print("predicted entities:", [(e.text, e.type, round(e.score, 2)) for e in result.entities])
    print("predicted relations:", [(r.head.text, r.label, r.tail.text, round(r.score, 2)) for r in result.relations])

if __name__ == "__main__":
    main()
