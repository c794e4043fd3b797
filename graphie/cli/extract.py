"""``graphie extract``, ``graphie extract-file`` and ``graphie draw``: the front door on the command line."""

from __future__ import annotations

import argparse

from . import print_json


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``extract``, ``extract-file`` and ``draw``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", default="default", help="shipped model name or saved model folder (default: default)")
    common.add_argument("--detector", default="default", help="scene-graph backend for images (default: default)")
    common.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda when available)")
    common.add_argument("--relation-threshold", type=float, default=0.0,
                        help="least score a relation needs to be reported (default 0: any whose vote beats None)")

    p = sub.add_parser("extract", parents=[common], help="entities and relations of one post")
    p.add_argument("--text", required=True, help="the post's text")
    p.add_argument("--image", help="path of the post's image")
    p.add_argument("--caption", help="caption of the image (used as the scene graph when no image is given)")
    p.add_argument("--context", help="auxiliary text that informs the prediction but yields no entities")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=_extract)

    p = sub.add_parser("extract-file", parents=[common], help="extract from every post of a JSONL file (resumable)")
    p.add_argument("input", help='JSONL, one {"id": ..., "text": ..., "image": ...} per line')
    p.add_argument("--output", required=True, help="JSONL output; rerunning resumes after the finished ids")
    p.add_argument("--images", help="folder that relative image paths are resolved against")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--workers", type=int, default=2, help="threads parsing images")
    p.add_argument("--cache-dir", help="cache scene graphs of images here")
    p.set_defaults(func=_extract_file)

    p = sub.add_parser("draw", parents=[common], help="picture of what was found in a post")
    p.add_argument("--text", required=True)
    p.add_argument("--image", help="path of the post's image")
    p.add_argument("--caption")
    p.add_argument("--output", required=True, help="PNG file to write")
    p.set_defaults(func=_draw)


def _load(args: argparse.Namespace, **kwargs):
    from ..api import load

    return load(args.model, device=args.device, detector=args.detector,
                relation_threshold=args.relation_threshold, **kwargs)


def _extract(args: argparse.Namespace) -> int:
    result = _load(args).extract(args.text, args.image, caption=args.caption, context=args.context)
    if args.json:
        print_json(result.to_dict())
        return 0
    if not result.entities:
        print("no entities found")
    for e in result.entities:
        evidence = ", ".join(f"{ev['label']}#{ev['object']} ({ev['weight']:.2f})" for ev in e.evidence)
        print(f"entity    {e.text!r:32} {e.type:5} {e.score:.2f}" + (f"   image: {evidence}" if evidence else ""))
    for r in result.relations:
        print(f"relation  {r.head.text!r} -> {r.tail.text!r}  {r.label}  {r.score:.2f}")
    if result.scene_graph is not None:
        objs = ", ".join(o.label for o in result.scene_graph.objects[1:]) or "no objects"
        print(f"image     {len(result.scene_graph.objects) - 1} objects: {objs}")
    return 0


def _extract_file(args: argparse.Namespace) -> int:
    from ..batch import run_jsonl

    extractor = _load(args, cache_dir=args.cache_dir, image_workers=args.workers)
    counts = run_jsonl(extractor, args.input, args.output, images_dir=args.images,
                       batch_size=args.batch_size, progress=True)
    print_json(counts)
    return 0


def _draw(args: argparse.Namespace) -> int:
    from ..draw import draw_extraction

    result = _load(args).extract(args.text, args.image, caption=args.caption)
    draw_extraction(result, args.image, args.output)
    print(args.output)
    return 0
