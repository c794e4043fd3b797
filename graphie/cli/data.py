"""``graphie data``: benchmark statistics and building JMERE from MNRE.

    graphie data stats mnre ../shared/data/mnre/mnre_train.txt
    graphie data stats twitter ../shared/data/twitter2015/train.txt --captions ../shared/data/twitter2015/blip2_captions.txt
    graphie data jmere-from-mnre ../shared/data/mnre OUT [--eega-compatible]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..datasets import DATASET_FORMATS, dataset_stats, jmere_from_mnre, read_captions, read_dataset, read_mnre, write_jmere
from ..errors import InvalidInputError
from . import print_json

#: split -> file names MNRE releases use for it (the original names validation ``mnre_val .txt``)
MNRE_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("mnre_train.txt",),
    "val": ("mnre_val.txt", "mnre_val .txt"),
    "test": ("mnre_test.txt",),
}


def _stats(args: argparse.Namespace) -> int:
    kw = {}
    if args.keep_other:
        if args.format not in ("twitter", "pgim"):
            raise InvalidInputError("--keep-other applies to the twitter and pgim formats only")
        kw["other_as_misc"] = False
    if args.captions is not None:
        if args.format != "twitter":
            raise InvalidInputError("--captions applies to the twitter format only")
        kw["captions"] = read_captions(args.captions)
    posts = read_dataset(args.format, args.path, **kw)
    print_json({"format": args.format, "path": str(args.path), **dataset_stats(posts)})
    return 0


def _jmere_from_mnre(args: argparse.Namespace) -> int:
    mnre_dir, out_dir = Path(args.mnre_dir), Path(args.out_dir)
    if not mnre_dir.is_dir():
        raise InvalidInputError(f"{mnre_dir}: not a directory of MNRE files")
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInputError(f"{out_dir}: exists and is not a directory")
    found = {}
    for split, names in MNRE_SPLITS.items():
        path = next((mnre_dir / n for n in names if (mnre_dir / n).is_file()), None)
        if path is not None:
            found[split] = path
    if not found:
        wanted = ", ".join(n for names in MNRE_SPLITS.values() for n in names)
        raise InvalidInputError(f"{mnre_dir}: none of {wanted} found")
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {"mode": "eega-compatible" if args.eega_compatible else "clean", "splits": {}, "skipped": {}}
    for split in MNRE_SPLITS:
        if split not in found:
            note = f"no {' or '.join(map(repr, MNRE_SPLITS[split]))} in {mnre_dir}"
            result["skipped"][split] = note
            print(f"graphie data jmere-from-mnre: note: {split} split skipped: {note}", file=sys.stderr)
            continue
        samples = jmere_from_mnre(read_mnre(found[split]), eega_compatible=args.eega_compatible)
        out = out_dir / f"{split}.json"
        write_jmere(samples, out)
        result["splits"][split] = {
            "source": str(found[split]),
            "path": str(out),
            "sentences": len(samples),
            "quintuples": sum(len(p.relations) for p in samples),
        }
    print_json(result)
    return 0


def register(subparsers) -> None:
    """Add ``graphie data`` with its sub-commands ``stats`` and ``jmere-from-mnre``."""
    data = subparsers.add_parser("data", help="benchmark statistics and conversions")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    sub.required = True

    stats = sub.add_parser("stats", help="count sentences, tokens, entities and relations of a dataset file (JSON)")
    stats.add_argument("format", choices=sorted(DATASET_FORMATS), metavar="FORMAT", help=f"one of {', '.join(sorted(DATASET_FORMATS))}")
    stats.add_argument("path", metavar="PATH", help="the dataset file")
    stats.add_argument("--keep-other", action="store_true", help="twitter/pgim: keep OTHER instead of mapping it to MISC")
    stats.add_argument("--captions", metavar="FILE", help="twitter: caption file to attach (counted as 'captions')")
    stats.set_defaults(func=_stats)

    build = sub.add_parser(
        "jmere-from-mnre", help="build JMERE JSON files (train/val/test.json) from an MNRE folder; print their counts"
    )
    build.add_argument("mnre_dir", metavar="MNRE_DIR", help="folder with mnre_train.txt, mnre_val.txt, mnre_test.txt")
    build.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the JMERE JSON files to (created if needed)")
    build.add_argument(
        "--eega-compatible",
        action="store_true",
        help="reproduce EEGA's split (a None line inside a sentence starts a new sample) instead of the clean merge",
    )
    build.set_defaults(func=_jmere_from_mnre)
