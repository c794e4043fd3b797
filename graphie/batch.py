"""Batch extraction over JSONL files: one output line per input line, resumable.

Input lines are ``{"id": ..., "text": ..., "image": ..., "caption": ..., "context": ...}``;
output lines are ``{"id": ..., "result": {...}}`` or ``{"id": ..., "error": {"type": ..., "message": ...}}``.
A line without an ``id`` is identified by its line number (``"line-7"``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import InvalidInputError
from .types import Post


@dataclass
class ErrorRecord:
    """The outcome of an input that could not be processed; batch jobs yield it in the input's place."""

    id: str | None
    type: str
    message: str

    @classmethod
    def from_exception(cls, post_id: str | None, exc: BaseException) -> "ErrorRecord":
        """The record of an input that failed with ``exc``: its id, the error type and message."""
        return cls(post_id, type(exc).__name__, str(exc))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types; :meth:`from_dict` reads it back."""
        return {"id": self.id, "error": {"type": self.type, "message": self.message}}


def read_jsonl_posts(path: str | os.PathLike, images_dir: str | os.PathLike | None = None) -> Iterator[Post | ErrorRecord]:
    """Stream the posts of a JSONL file; a line that is not valid UTF-8 JSON of a post becomes an ErrorRecord."""
    images = Path(images_dir) if images_dir is not None else None
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            fallback_id = f"line-{line_no}"
            try:
                record = json.loads(raw.decode("utf-8"))
                if not isinstance(record, dict):
                    raise InvalidInputError(f"line {line_no}: expected a JSON object, got {type(record).__name__}")
                if not isinstance(record.get("text", ""), str):
                    raise InvalidInputError(f"line {line_no}: 'text' must be a string")
                post = Post.from_dict(record)
            except UnicodeDecodeError as exc:
                yield ErrorRecord(fallback_id, "InvalidInputError", f"line {line_no}: not valid UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            except json.JSONDecodeError as exc:
                yield ErrorRecord(fallback_id, "InvalidInputError", f"line {line_no}: not valid JSON ({exc.msg})")
                continue
            except (InvalidInputError, KeyError, TypeError) as exc:
                yield ErrorRecord(str(record.get("id", fallback_id)) if isinstance(record, dict) else fallback_id, "InvalidInputError", str(exc))
                continue
            if post.id is None:
                post.id = fallback_id
            if images is not None and post.image and not os.path.isabs(post.image):
                post.image = str(images / post.image)
            yield post


def finished_ids(output_path: str | os.PathLike) -> set[str]:
    """Ids already written to an output file; a torn last line (a killed run) is cut off."""
    path = Path(output_path)
    if not path.exists():
        return set()
    done: set[str] = set()
    good_bytes = 0
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                done.add(str(json.loads(raw)["id"]))
            except (ValueError, KeyError, TypeError):
                break
            good_bytes += len(raw)
    if good_bytes != path.stat().st_size:
        with open(path, "rb+") as f:
            f.truncate(good_bytes)
    return done


def run_jsonl(
    extractor: Any,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    images_dir: str | os.PathLike | None = None,
    batch_size: int = 16,
    progress: bool = True,
) -> dict[str, int]:
    """Extract from every post of ``input_path`` into ``output_path``, resuming after ids already there.

    Returns counts: ``{"done": results written, "errors": error records written, "skipped": already done}``.
    """
    done = finished_ids(output_path)
    counts = {"done": 0, "errors": 0, "skipped": 0}

    def pending() -> Iterable[Post | ErrorRecord]:
        for item in read_jsonl_posts(input_path, images_dir):
            if item.id in done:
                counts["skipped"] += 1
                continue
            yield item

    with open(output_path, "a", encoding="utf-8") as out:
        for outcome in extractor.extract_many(pending(), batch_size=batch_size, progress=progress):
            if isinstance(outcome, ErrorRecord):
                line = outcome.to_dict()
                counts["errors"] += 1
            else:
                line = {"id": outcome.id, "result": outcome.to_dict()}
                counts["done"] += 1
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()
    return counts
