"""``graphie parse-image``: an image (or a caption) → scene graph JSON on stdout."""

from __future__ import annotations

import argparse
import json
import os

from ..errors import InvalidInputError
from . import print_json


def _option_value(text: str):
    """``--option KEY=VALUE`` values: JSON when they parse (numbers, true/false, null), else strings."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``parse-image``."""
    p = subparsers.add_parser(
        "parse-image",
        help="parse an image (or a caption) into a scene graph (JSON on stdout)",
        description="Detect objects in an image and link them with spatial predicates; with only "
        "--caption, parse the caption text into a scene graph instead.",
    )
    p.add_argument("path", nargs="?", help="local image file (URLs are not fetched)")
    p.add_argument("--detector", default="default",
                   help="detector backend: default, torchvision, detectron2, onnx, precomputed, caption")
    p.add_argument("--caption", help="caption text: output its scene graph instead of detecting (with PATH, "
                   "the graph is named after the image and --draw draws it there)")
    p.add_argument("--draw", metavar="OUT.png", help="also draw the scene graph on the image into this PNG")
    p.add_argument("--max-objects", type=int, default=10, help="objects kept by score (default 10)")
    p.add_argument("--no-features", action="store_true", help="leave out the 1280-d region features")
    p.add_argument("--cache-dir", help="reuse / store results in this folder")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="detector option, repeatable (e.g. --option ocr=full --option model=yolo.onnx)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``graphie parse-image``: print (or draw) the scene graph of an image."""
    from parsers.image import caption_scene_graph, draw_scene_graph, parse_image

    if args.max_objects < 0:
        raise InvalidInputError(f"--max-objects must be >= 0, got {args.max_objects}")
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--option expects KEY=VALUE, got {item!r}")
        options[key.replace("-", "_")] = _option_value(value)

    if args.caption is not None:
        graph = caption_scene_graph(args.caption, max_objects=args.max_objects)
        if args.path is not None:
            graph.image_id = os.path.basename(args.path)
    elif args.path is None:
        raise InvalidInputError("give an image PATH, or --caption TEXT for a caption scene graph")
    else:
        graph = parse_image(args.path, args.detector, args.max_objects, args.cache_dir,
                            features=not args.no_features, **options)
    if args.draw:
        draw_scene_graph(args.path, graph, args.draw)
    print_json(graph.to_dict())
    return 0
