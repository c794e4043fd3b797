"""Batch extraction: input records checked field by field, one flat output record per input,
JSONL or Parquet files, resumable.

An input record is ``{"id": ..., "text": ..., "tokens": [...], "image": ..., "caption": ...,
"context": ...}`` (``id`` a string or an integer, kept with its type; ``text`` or ``tokens``).
Every input yields exactly one output record (:meth:`graphie.Extraction.to_record` or
:meth:`ErrorRecord.to_record`); files add the input's ``line`` (1-based, the row for Parquet).
The record's JSON schema is in ``docs/tutorials/batch.md``.

The same functions run in one process (:func:`run_file`) and on Ray
(:mod:`graphie.distributed`), so both engines give the same records.
"""

from __future__ import annotations

import difflib
import json
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from .errors import InvalidInputError
from .types import Post, PostId

if TYPE_CHECKING:
    from .api import Extractor

#: Keys of an input record; any other key is an error naming it (a misspelt "txet" is not "empty text").
INPUT_KEYS = ("id", "text", "tokens", "image", "caption", "context")
Row = dict[str, Any]  # {"line": int, "raw": bytes (one JSON object), "dup_of": line of the id's first use or 0}


@dataclass
class ErrorRecord:
    """The outcome of an input that could not be processed; batch jobs yield it in the input's place.

    ``field`` names the input field at fault (``"text"``, ``"image"``, ``"id"``, an unknown key) or
    is ``None`` when the input as a whole is unreadable (not JSON, not an object).
    """

    id: PostId | None
    type: str
    message: str
    field: str | None = None

    @classmethod
    def from_exception(cls, post_id: PostId | None, exc: BaseException, field: str | None = None) -> "ErrorRecord":
        """The record of an input that failed with ``exc``: its id, the error type and message."""
        return cls(post_id, type(exc).__name__, str(exc), field)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types."""
        return {"id": self.id, "error": {"type": self.type, "field": self.field, "message": self.message}}

    def to_record(self) -> dict[str, Any]:
        """The flat output record, with the keys of :meth:`graphie.Extraction.to_record` (empty findings)."""
        return {"id": self.id, "entities": [], "relations": [], "windows": 0, "truncated": False, "warnings": [],
                "error": {"type": self.type, "field": self.field, "message": self.message}}


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "an integer", float: "a number",
               bool: "a boolean", type(None): "null"}


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), f"a {type(value).__name__}")


def _lone_surrogate(text: str) -> str | None:
    """Where ``text`` holds a lone surrogate (no valid UTF-8 can carry it; JSON's ``\\ud800`` can)."""
    for i, ch in enumerate(text):
        if "\ud800" <= ch <= "\udfff":
            return f"a lone surrogate U+{ord(ch):04X} at character {i}, which is not valid Unicode"
    return None


def post_from_record(record: Any, where: str, *, require_id: bool = True, default_id: PostId | None = None,
                     python_images: bool = False) -> Post | ErrorRecord:
    """A :class:`Post` from one input record, or the :class:`ErrorRecord` naming its first bad field.

    Args:
        record: the decoded JSON object (or a Python dict).
        where: how messages name the input (``"line 7"``, ``"input 3"``).
        require_id: a record without ``id`` is an error (files: resumption is by id).
        default_id: the id of a record without one when ids are not required.
        python_images: ``image`` may also be bytes or a PIL image (Python callers, not files).
    """
    if not isinstance(record, dict):
        return ErrorRecord(None, "InvalidInputError", f"{where}: expected a JSON object, got {_json_type(record)}")
    post_id = record.get("id")
    id_ok = isinstance(post_id, (str, int)) and not isinstance(post_id, bool)

    def bad(name: str, message: str) -> ErrorRecord:
        return ErrorRecord(post_id if id_ok else None, "InvalidInputError", f"{where}: {message}", name)

    for key in record:
        if key not in INPUT_KEYS:
            near = difflib.get_close_matches(str(key), INPUT_KEYS, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            return bad(str(key), f"unknown key {key!r}{hint}; an input has {', '.join(INPUT_KEYS)}")
    if post_id is None:
        if require_id:
            return bad("id", "no id (every input needs a string or integer id)")
        post_id, id_ok = default_id, True
    elif not id_ok:
        return bad("id", f"id must be a string or an integer, got {_json_type(post_id)}")
    elif isinstance(post_id, str) and (problem := _lone_surrogate(post_id)):
        return bad("id", f"id holds {problem}")
    for name in ("text", "caption", "context") + (() if python_images else ("image",)):
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            return bad(name, f"{name} must be a string, got {_json_type(value)}")
        if isinstance(value, str) and (problem := _lone_surrogate(value)):
            return bad(name, f"{name} holds {problem}")
    tokens = record.get("tokens")
    if tokens is not None:
        if not isinstance(tokens, list) or not tokens:
            return bad("tokens", f"tokens must be a non-empty array of strings, got {_json_type(tokens)}")
        for i, tok in enumerate(tokens):
            if not isinstance(tok, str) or not tok:
                return bad("tokens", f"token {i} must be a non-empty string, got {_json_type(tok)}")
            if problem := _lone_surrogate(tok):
                return bad("tokens", f"token {i} holds {problem}")
    text = record.get("text")
    if text is None and tokens is None:
        return bad("text", "no text (give 'text' or 'tokens')")
    if tokens is None and not text.strip():
        return bad("text", "text is empty")
    if isinstance(record.get("image"), str) and ("\x00" in record["image"] or not record["image"].strip()):
        return bad("image", f"image path {record['image']!r} is not a file name")
    return Post(text=text or "", tokens=tokens, image=record.get("image"), caption=record.get("caption"),
                context=record.get("context"), id=post_id)


def decode_row(row: Row, images_dir: str | os.PathLike | None = None) -> Post | ErrorRecord:
    """The post of one file row (raw bytes of one JSON object), or the error record saying why not."""
    where = f"line {row['line']}"
    try:
        record = json.loads(row["raw"].decode("utf-8"))
    except UnicodeDecodeError as exc:
        return ErrorRecord(None, "InvalidInputError", f"{where}: not valid UTF-8 ({exc.reason} at byte {exc.start})")
    except json.JSONDecodeError as exc:
        return ErrorRecord(None, "InvalidInputError", f"{where}: not valid JSON ({exc.msg} at character {exc.pos})")
    if row.get("dup_of"):
        return ErrorRecord(None, "InvalidInputError",
                           f"{where}: duplicate id {record['id']!r} (first on line {row['dup_of']})", "id")
    post = post_from_record(record, where)
    if isinstance(post, Post) and images_dir is not None and isinstance(post.image, str) \
            and not os.path.isabs(post.image):
        post.image = str(Path(images_dir) / post.image)
    return post


def extract_rows(extractor: "Extractor", rows: Iterable[Row], *, images_dir: str | os.PathLike | None = None,
                 batch_size: int = 16, progress: bool | None = None) -> Iterator[dict[str, Any]]:
    """One output record per row, in order, streaming: the work of both engines."""
    lines: deque[int] = deque()

    def posts() -> Iterator[Post | ErrorRecord]:
        for row in rows:
            lines.append(row["line"])
            yield decode_row(row, images_dir)

    for outcome in extractor.extract_many(posts(), batch_size=batch_size, progress=progress):
        record = outcome.to_record()
        yield {"id": record.pop("id"), "line": lines.popleft(), **record}


# --- files ---------------------------------------------------------------------------------
def _is_parquet(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith((".parquet", ".pq"))


def read_rows(path: str | os.PathLike) -> Iterator[tuple[int, bytes]]:
    """``(line, raw JSON bytes)`` of each input: JSONL lines (blank lines skipped) or Parquet rows."""
    if not _is_parquet(path):
        with open(path, "rb") as f:
            for line, raw in enumerate(f, start=1):
                if raw.strip():
                    yield line, raw
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    table_file = pq.ParquetFile(path)
    for col in table_file.schema_arrow:
        t = col.type
        plain = pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t) \
            or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_null(t)
        if not (plain or (pa.types.is_list(t) and pa.types.is_string(t.value_type))):
            raise InvalidInputError(f"{path}: column {col.name!r} is {t}; inputs are strings, integers "
                                    "(id) and lists of strings (tokens); images are given as paths")
    line = 0
    for batch in table_file.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            line += 1
            record = {k: v for k, v in row.items() if v is not None}
            yield line, json.dumps(record, ensure_ascii=False).encode("utf-8", "surrogatepass")


@dataclass
class Finished:
    """What an output file already holds: ids, and the lines of records without an id (inputs
    whose id was missing, unreadable or a duplicate)."""

    ids: set[PostId] = field(default_factory=set)
    lines: set[int] = field(default_factory=set)
    records: list[dict[str, Any]] = field(default_factory=list)  # Parquet only: rewritten with the new ones
    text_ids: bool = False  # a Parquet id column of strings: integer ids of the input were written as text

    def has(self, post_id: PostId) -> bool:
        return (str(post_id) if self.text_ids and isinstance(post_id, int) else post_id) in self.ids


def finished(output_path: str | os.PathLike) -> Finished:
    """What an earlier run of the same command wrote; a torn last JSONL line (a killed run) is cut off."""
    path, done = Path(output_path), Finished()
    if not path.exists():
        return done
    if _is_parquet(path):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        done.records, done.text_ids = table.to_pylist(), table.schema.field("id").type == "string"
        records: Iterable[dict[str, Any]] = done.records
    else:
        records, good_bytes = [], 0
        with open(path, "rb") as f:
            for raw in f:
                try:
                    record = json.loads(raw) if raw.endswith(b"\n") else None
                except ValueError:
                    record = None
                if not isinstance(record, dict):
                    break
                records.append(record)
                good_bytes += len(raw)
        if good_bytes != path.stat().st_size:
            with open(path, "rb+") as f:
                f.truncate(good_bytes)
    for record in records:
        if record.get("id") is not None:
            done.ids.add(record["id"])
        elif record.get("line") is not None:
            done.lines.add(record["line"])
    return done


def pending_rows(input_path: str | os.PathLike, done: Finished, counts: dict[str, int]) -> Iterator[Row]:
    """The rows still to do, each marked with the line of its id's first use when the id is a
    duplicate (an id is tracked through skipped lines too, so reruns judge duplicates alike)."""
    first_line: dict[PostId, int] = {}
    for line, raw in read_rows(input_path):
        post_id = _peek_id(raw)
        dup_of = 0
        if post_id is not None:
            dup_of = first_line.setdefault(post_id, line)
            dup_of = 0 if dup_of == line else dup_of
        if done.has(post_id) if post_id is not None and not dup_of else (line in done.lines):
            counts["skipped"] += 1
            continue
        yield {"line": line, "raw": raw, "dup_of": dup_of}


def _peek_id(raw: bytes) -> PostId | None:
    try:
        record = json.loads(raw.decode("utf-8"))
    except ValueError:
        return None
    post_id = record.get("id") if isinstance(record, dict) else None
    return post_id if isinstance(post_id, (str, int)) and not isinstance(post_id, bool) else None


def run_file(extractor: "Extractor", input_path: str | os.PathLike, output_path: str | os.PathLike, *,
             images_dir: str | os.PathLike | None = None, batch_size: int = 16,
             progress: bool | None = None) -> dict[str, int]:
    """Extract from every input of a JSONL or Parquet file into a JSONL or Parquet file (by suffix),
    in this process, resuming after the inputs already there.

    Returns counts: ``{"done": results written, "errors": error records written, "skipped": already done}``.
    """
    return write_records(input_path, output_path, lambda rows: extract_rows(
        extractor, rows, images_dir=images_dir, batch_size=batch_size, progress=progress))


def write_records(input_path: str | os.PathLike, output_path: str | os.PathLike,
                  engine: Callable[[Iterator[Row]], Iterable[dict[str, Any]]]) -> dict[str, int]:
    """Run ``engine`` (rows in, one record per row out, in order) over the pending inputs and write
    its records: JSONL lines appended and flushed one by one, or Parquet written whole at the end
    (through a temporary file, so a killed run leaves the previous file intact)."""
    if not Path(input_path).is_file():
        raise InvalidInputError(f"input file {str(input_path)!r} does not exist")
    done = finished(output_path)
    counts = {"done": 0, "errors": 0, "skipped": 0}
    records = engine(pending_rows(input_path, done, counts))
    if _is_parquet(output_path):
        new = []
        for record in records:
            counts["errors" if record["error"] else "done"] += 1
            new.append(record)
        _write_parquet(done.records + new, output_path)
        return counts
    with open(output_path, "a", encoding="utf-8") as out:
        for record in records:
            counts["errors" if record["error"] else "done"] += 1
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
    return counts


def _write_parquet(records: list[dict[str, Any]], path: str | os.PathLike) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .distributed import record_schema

    ids = {type(r["id"]) for r in records if r["id"] is not None}
    id_type = pa.int64() if ids == {int} else pa.string()
    if ids == {int, str}:  # one column has one type: mixed ids are written as strings
        records = [{**r, "id": None if r["id"] is None else str(r["id"])} for r in records]
    table = pa.Table.from_pylist(records, schema=record_schema(id_type, with_line=True))
    tmp = Path(f"{path}.partial")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
