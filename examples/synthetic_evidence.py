"""Which image object supports each name? graphie's evidence on synthetic posts.

Each synthetic post names two people ("Maya and Leo at the Falcons game tonight"); its scene graph
has one person node per name (OCR text = the name on the badge) wearing or holding the objects of
that person's role. A model that routes names to their own person node reports that node as the
name's evidence, with the weight it read it with; objects under the threshold are left out, and
a name no object supports gets no evidence at all.

Train the routed synthetic model first (about 10 minutes on 2 CPU cores):

    python benchmarks/bench_alignment.py data --train 1500 --valid 500
    python benchmarks/bench_alignment.py synthetic --modes routed --epochs 5 --max-train 800 --max-dev 300

then:

    python examples/synthetic_evidence.py --model runs/alignment/synthetic_routed --posts 5
"""

from __future__ import annotations

import argparse
import sys

import graphie
from graphie.synthetic import make_synthetic


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a saved model folder trained with an alignment")
    ap.add_argument("--posts", type=int, default=5, help="synthetic posts to show")
    ap.add_argument("--seed", type=int, default=2024, help="seed of the synthetic posts (not a training seed)")
    args = ap.parse_args(argv)

    extractor = graphie.load(args.model)
    own = hits = 0
    for post, graph in make_synthetic(args.posts, seed=args.seed, prefix="example"):
        result = extractor.extract(post.text, graph)
        roles = {r.head.text: r.label for r in post.relations}
        print(post.text)
        for ent in result.entities:
            if ent.type != "PER":
                continue
            found = ", ".join(f"{ev['label']}#{ev['object']} '{result.scene_graph.objects[ev['object']].text or ''}' "
                              f"({ev['weight']:.2f})" for ev in ent.evidence) or "no supporting object"
            predicted = next((r.label for r in result.relations if r.head.text == ent.text), "none")
            print(f"  {ent.text:14} evidence: {found}   relation: {predicted} (gold {roles.get(ent.text)})")
            own += 1
            hits += bool(ent.evidence) and result.scene_graph.objects[ent.evidence[0]["object"]].text == ent.text
    print(f"top evidence on the name's own person node: {hits}/{own}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
