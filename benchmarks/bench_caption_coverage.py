"""How much of a post's relation does each captioner's description of the image name? A screen of
the MNRE captioners that costs seconds, where training one row costs half an hour.

    python benchmarks/bench_caption_coverage.py [--split valid|train] [--captions DIR] [--context-length 64]

For every caption file in ``DIR`` (default ``../shared/data/mnre/captions``: BLIP-2, InstructBLIP,
LLaVA-NeXT, Qwen-VL, CogVLM, MiniCPM-V) and the MNRE posts of the split, it prints one Markdown row:

- **captioned**: share of posts whose image has a caption in the file;
- **words**, **sub-words**: mean caption length in words and in MiniLM word pieces (the encoder
  reads at most ``--context-length`` pieces of the context segment: **cut** is the share of
  captions longer than that);
- **head / tail / either / both named**: share of the posts' relation pairs (all pairs, and the
  pairs with a relation other than ``None``) whose head or tail entity the caption names, matched
  case-insensitively on whole words after dropping a leading ``#``/``@`` and splitting CamelCase
  hashtags (``#JoeBiden`` -> "joe biden"); a multi-word name counts when all its words occur in order.

A caption that names an entity can tell the model what the entity is (a person at a podium, a
stadium), which is the signal a context segment adds; one that names none can still describe the
scene. This is a proxy for choosing which captioners to train with, not a measurement of F1.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from statistics import mean

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from graphie.datasets import MNRE_NONE, read_captions, read_mnre  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "mnre"
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[a-z0-9]+")


def name_words(name: str) -> list[str]:
    """The words of an entity name as a caption would write them: ``#JoeBiden`` -> ``["joe", "biden"]``."""
    name = " ".join(_CAMEL.sub(" ", w.lstrip("#@")) for w in name.split())
    return _WORD.findall(name.lower())


def names(caption_words: list[str], name: str) -> bool:
    """Whether the caption's words hold every word of ``name`` in order (not necessarily adjacent)."""
    words = name_words(name)
    if not words:
        return False
    it = iter(caption_words)
    return all(any(w == c for c in it) for w in words)


def coverage(posts, captions: dict[str, str], tokenizer, context_length: int) -> dict[str, float]:
    """One row of the table for one caption file (shares in %)."""
    found = [captions.get(p.image) for p in posts]
    texts = [c for c in found if c]
    pieces = [len(tokenizer.tokenize(c)) for c in texts] if texts else [0]
    row = {"captioned": 100 * len(texts) / len(posts),
           "words": mean(len(c.split()) for c in texts) if texts else 0.0,
           "sub-words": mean(pieces), "cut": 100 * sum(n > context_length for n in pieces) / len(pieces)}
    for subset, keep in (("all", lambda r: True), ("related", lambda r: r.label != MNRE_NONE)):
        hits = {"head": 0, "tail": 0, "either": 0, "both": 0}
        n = 0
        for post, caption in zip(posts, found):
            words = _WORD.findall((caption or "").lower())
            for rel in post.relations:
                if not keep(rel):
                    continue
                n += 1
                h, t = names(words, rel.head.span.text), names(words, rel.tail.span.text)
                hits["head"] += h
                hits["tail"] += t
                hits["either"] += h or t
                hits["both"] += h and t
        for k, v in hits.items():
            row[f"{k} ({subset})"] = 100 * v / max(n, 1)
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=["valid", "train"], default="valid")
    ap.add_argument("--captions", type=Path, default=DATA / "captions", help="folder of <captioner>.txt files")
    ap.add_argument("--data", type=Path, default=None, help="MNRE file (default: the split's file next to --captions)")
    ap.add_argument("--context-length", type=int, default=64, help="context sub-words the encoder reads (max_context_length)")
    args = ap.parse_args(argv)
    data = args.data or args.captions.parent / ("mnre_val.txt" if args.split == "valid" else "mnre_train.txt")
    posts = read_mnre(data)
    from graphie.models.encoder import create_encoder

    tokenizer = create_encoder("minilm").tokenizer
    files = sorted(args.captions.glob("*.txt"))
    if not files:
        raise SystemExit(f"{args.captions}: no caption files")
    rows = {f.stem: coverage(posts, read_captions(f), tokenizer, args.context_length) for f in files}
    cols = list(next(iter(rows.values())))
    print(f"MNRE {args.split}: {len(posts)} posts ({sum(r.label != MNRE_NONE for p in posts for r in p.relations)} "
          f"with a relation other than None); shares in %; sub-words of MiniLM, cut = longer than {args.context_length}\n")
    print("| captioner | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name, row in sorted(rows.items(), key=lambda kv: -kv[1]["either (related)"]):
        print(f"| {name} | " + " | ".join(f"{row[c]:.1f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
