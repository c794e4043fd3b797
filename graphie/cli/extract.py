"""``graphie extract``, ``graphie extract-file`` and ``graphie draw``: the front door on the command line."""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from ..errors import InvalidInputError
from . import json_object, print_json


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value}")
    return value


def _labels(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated entity types or relation labels, got {text!r}")
    return names


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``extract``, ``extract-file`` and ``draw``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", default="default", help="shipped model name or saved model folder (default: default)")
    common.add_argument("--detector", default="default", help="scene-graph backend for images (default: default)")
    common.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda when available)")
    common.add_argument("--dtype", default=None, choices=("auto", "fp32", "bf16", "fp16", "float32", "bfloat16", "float16"),
                        help="precision of prediction (default auto: bf16 on CUDA, fp32 on CPU; bf16 on a CPU without native bf16 falls back to fp32)")
    common.add_argument("--relation-threshold", type=_fraction, default=None,
                        help="least score a relation needs to be reported (default: the model's own, chosen on validation; 0: any whose vote beats None)")
    common.add_argument("--threshold", type=_fraction, default=None,
                        help="least score an entity needs to be reported (default: every entity the model predicts)")
    common.add_argument("--labels", type=_labels, default=None, metavar="LABEL[,LABEL...]",
                        help="entity types and/or relation labels to report, comma-separated, e.g. PER,ORG "
                             "(default: all; a kind none of them names is kept whole)")
    common.add_argument("--quantize", action="store_true",
                        help="dynamic int8 encoder on CPU (about 1.7x faster; validation F1 about 2 points lower)")
    provided = argparse.ArgumentParser(add_help=False)
    provided.add_argument("--context-provider", metavar="NAME",
                          help="a graphie.context provider (retrieval, llm) whose text joins each post's context, "
                               "for a model that learnt to read context (the default reads LLM notes)")
    provided.add_argument("--context-options", type=json_object, default={}, metavar="JSON",
                          help='its options as a JSON object, e.g. \'{"base_url": "http://localhost:8000/v1", '
                               '"model": "qwen2.5-7b-instruct"}\' for llm')

    p = sub.add_parser("extract", parents=[common, provided], help="entities and relations of one post")
    p.add_argument("--text", required=True, help="the post's text")
    p.add_argument("--image", help="path of the post's image")
    p.add_argument("--caption", help="caption of the image (used as the scene graph when no image is given)")
    p.add_argument("--context", help="auxiliary text that informs the prediction but yields no entities")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=_extract)

    p = sub.add_parser("extract-file", parents=[common, provided],
                       help="extract from every post of a JSONL or Parquet file (resumable)")
    p.add_argument("input", help='JSONL or Parquet (by suffix), one {"id": ..., "text": ..., "image": ...} per line/row')
    p.add_argument("--output", required=True,
                   help="JSONL or Parquet output (by suffix), one record per input; rerunning resumes")
    p.add_argument("--images", help="folder that relative image paths are resolved against")
    p.add_argument("--batch-size", type=_positive_int, default=16)
    p.add_argument("--workers", type=_positive_int, default=2, help="threads parsing images (each worker)")
    p.add_argument("--cache-dir", help="cache scene graphs of images here")
    p.add_argument("--captions", nargs="+", metavar="FILE",
                   help="captions file (<image file name> :<caption>), or several joined per image: each input "
                        "without a caption gets its image's; a model that learnt to read captions reads it in its context")
    p.add_argument("--notes", nargs="+", metavar="PGIM_FILE",
                   help="PGIM files: each input without a context gets the note of the same tweet (same words)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process; ray: Ray Data over an actor pool (pip install 'graphie[ray]')")
    p.add_argument("--num-workers", type=_positive_int, default=1,
                   help="Ray actors, each with its own copy of the model (--engine ray)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="errors only: no progress bar (it is shown only on a terminal anyway), no messages")
    p.set_defaults(func=_extract_file)

    p = sub.add_parser("draw", parents=[common], help="picture or HTML page of what was found in a post")
    p.add_argument("--text", required=True)
    p.add_argument("--image", help="path of the post's image")
    p.add_argument("--caption")
    p.add_argument("--output", required=True,
                   help="file to write: a picture (the suffix picks its format: .png, .jpg, .webp) or an HTML page (.html)")
    p.add_argument("--format", choices=("image", "html"), default=None,
                   help="image: one picture; html: a page with the entities highlighted, relations as SVG arcs "
                        "and the image with its evidence boxes (default: html for an .html/.htm output, else image)")
    p.set_defaults(func=_draw)


def _load_options(args: argparse.Namespace) -> dict:
    return {"device": args.device, "detector": args.detector, "relation_threshold": args.relation_threshold,
            "quantize": args.quantize, "dtype": args.dtype, "threshold": args.threshold, "labels": args.labels}


def _load(args: argparse.Namespace, **kwargs):
    from ..api import load

    return load(args.model, **_load_options(args), **kwargs)


def _provided(args: argparse.Namespace) -> Any:
    """The ``--context-provider`` as a :class:`graphie.context.ProvidedContext`, or ``None``;
    built before any model loads, so a wrong name or option costs nothing."""
    if args.context_provider is None:
        if args.context_options:
            raise InvalidInputError("--context-options needs --context-provider")
        return None
    from ..context import ProvidedContext

    return ProvidedContext(args.context_provider, **args.context_options)


def _extract(args: argparse.Namespace) -> int:
    provided = _provided(args)
    context = args.context
    if provided is not None:  # one post: the provider's own error, in one line, if it fails
        from ..context import join_context
        from ..types import Post

        context = join_context(context, provided.provider(Post(args.text, image=args.image, caption=args.caption,
                                                                 context=context)))
    result = _load(args).extract(args.text, args.image, caption=args.caption, context=context)
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
    from ..api import check_device, resolve_model
    from ..batch import check_paths, extract_rows, write_records

    check_paths(args.input, args.output)  # before the model loads: a wrong path costs nothing
    progress = not args.quiet and sys.stderr.isatty()
    images = os.path.abspath(args.images or ".")  # workers may run elsewhere; both engines say the same
    fills = []  # built here, once: a bad file or provider stops the run before any model or cluster
    if args.captions or args.notes:
        from ..datasets import StoredContext

        fills.append(StoredContext(args.captions, args.notes or ()))
    if (provided := _provided(args)) is not None:
        fills.append(provided)  # after the stored notes, as training joins data.notes and data.context_provider
    fill = None
    if fills:
        from ..batch import FillChain

        fill = FillChain(fills)
    if args.engine == "local":
        # The model loads once the output is locked and read (a second run on it stops at once).
        counts = write_records(args.input, args.output, lambda rows: extract_rows(
            _load(args, cache_dir=args.cache_dir, image_workers=args.workers), rows, images_dir=images,
            batch_size=args.batch_size, progress=progress, fill=fill))
    else:
        from ..distributed import extract_rows as ray_rows

        check_device(args.device)  # at the door, not in every worker
        model = str(resolve_model(args.model).resolve())
        options = {**_load_options(args), "cache_dir": args.cache_dir and os.path.abspath(args.cache_dir),
                   "image_workers": args.workers}
        with _stdout_for_counts_only():
            counts = write_records(args.input, args.output, lambda rows: ray_rows(
                rows, model, num_workers=args.num_workers, batch_size=args.batch_size, images_dir=images, fill=fill,
                **options))
    print_json(counts)
    return 0


#: Lines Ray prints that say nothing a user can act on (its own issue 53727: Ray Data always
#: passes actor arguments through the object store).
RAY_NOISE = re.compile(rb"has constructor arguments in the object store and max_restarts > 0")


@contextmanager
def _stdout_for_counts_only() -> Iterator[None]:
    """While Ray runs, whatever writes to this process's stdout (Ray's own processes inherit it)
    goes to stderr, and Ray's harmless lines there (:data:`RAY_NOISE`) are dropped: stdout
    holds the counts alone, for scripts that read them."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    read_end, write_end = os.pipe()
    pump = threading.Thread(target=_pump, args=(read_end, os.dup(saved_err)), daemon=True, name="graphie-stderr")
    pump.start()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        # The pump ends when no process holds the pipe any more (processes Ray started may keep
        # a copy; the daemon thread then forwards their lines until this process ends).
        pump.join(timeout=2)


def _pump(read_end: int, dest: int) -> None:
    """Copy lines from ``read_end`` to ``dest``, without :data:`RAY_NOISE`, until end of file."""
    with os.fdopen(read_end, "rb") as src, os.fdopen(dest, "wb", buffering=0) as out:
        for line in src:
            if not RAY_NOISE.search(line):
                try:
                    out.write(line)
                except OSError:
                    pass


def _draw(args: argparse.Namespace) -> int:
    from ..draw import draw_extraction, write_html
    from ..errors import OutputError

    as_html = args.format == "html" or (args.format is None and args.output.lower().endswith((".html", ".htm")))
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):  # before the model loads
        raise OutputError(f"cannot write {args.output!r}: the folder {folder!r} does not exist")
    result = _load(args).extract(args.text, args.image, caption=args.caption)
    if as_html:
        write_html(result, args.image, args.output)
    else:
        draw_extraction(result, args.image, args.output)
    print(args.output)
    return 0
