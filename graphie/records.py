"""The record contract of the front door: what an input record may hold
(:data:`INPUT_KEYS`, :func:`post_from_record`), what an output record holds
(:data:`RECORD_FIELDS`, declared once: the keys of :meth:`graphie.Extraction.to_record` and
:meth:`ErrorRecord.to_record`, the Arrow schema :func:`record_schema` and the table in the docs,
:func:`record_table`, all follow it) and the checks of the arguments every front door takes
(:func:`check_count`, :func:`check_fraction`). :mod:`graphie.api` (one post),
:mod:`graphie.batch` (a stream, files) and :mod:`graphie.distributed` (a cluster) all use it,
and it imports none of them.
"""

from __future__ import annotations

import difflib
import numbers
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import InvalidInputError
from .types import Post, PostId

if TYPE_CHECKING:
    import pyarrow

#: Keys of an input record; any other key is an error naming it (a misspelt "txet" is not "empty text").
INPUT_KEYS = ("id", "text", "tokens", "image", "caption", "context")


# --- the output record, declared once ------------------------------------------------------
@dataclass(frozen=True)
class ArrayOf:
    """The kind of a field that holds a list of ``item`` (a kind itself)."""

    item: Any


@dataclass(frozen=True)
class RecordField:
    """One field of the output record: its name, its kind and what it means.

    ``kind`` is ``"integer"``, ``"number"``, ``"string"``, ``"boolean"``, ``"id"`` (a string or
    an integer, the input's own), a tuple of :class:`RecordField` (an object with those fields)
    or :class:`ArrayOf` one of these. ``nullable`` fields may be null; ``files_only`` fields are
    added by file outputs (:mod:`graphie.batch`), not by ``to_record``.
    """

    name: str
    kind: Any
    meaning: str
    nullable: bool = False
    files_only: bool = False


EVIDENCE_FIELDS = (
    RecordField("object", "integer", "index of the image object in the post's scene graph"),
    RecordField("label", "string", "the object's label"),
    RecordField("weight", "number", "how strongly the entity's words align with the object (mean over its words)"),
)
ENTITY_FIELDS = (
    RecordField("start", "integer", "character offset of the entity's first character in the text"),
    RecordField("end", "integer", "character offset just after its last character (half-open)"),
    RecordField("text", "string", "the entity's words"),
    RecordField("type", "string", "its type, e.g. `PER`"),
    RecordField("score", "number", "the model's confidence in it, 4 decimals"),
    RecordField("evidence", ArrayOf(EVIDENCE_FIELDS),
                "the image objects that support it, strongest first; empty without an image"),
)
RELATION_FIELDS = (
    RecordField("head", "integer", "the head entity: its index in `entities`"),
    RecordField("tail", "integer", "the tail entity: its index in `entities`"),
    RecordField("label", "string", "the relation's label"),
    RecordField("score", "number", "the model's confidence in it, 4 decimals"),
)
ERROR_FIELDS = (
    RecordField("type", "string", "the error's type: `InvalidInputError`, `ImageError`, ..."),
    RecordField("field", "string", "the input field at fault; null when the input as a whole is unreadable",
                nullable=True),
    RecordField("message", "string", "what is wrong, in one line naming the input"),
)
#: The fields of every output record, in order: the one declaration that
#: :meth:`graphie.Extraction.to_record`, :meth:`ErrorRecord.to_record`, :func:`record_schema` and
#: the table in the docs (:func:`record_table`) follow.
RECORD_FIELDS = (
    RecordField("id", "id", "the input's id; null when the input had none, was unreadable or repeated an id",
                nullable=True),
    RecordField("line", "integer", "the input's line (JSONL, 1-based) or row (Parquet, 1-based)", files_only=True),
    RecordField("entities", ArrayOf(ENTITY_FIELDS), "the entities found, in the order of the text"),
    RecordField("relations", ArrayOf(RELATION_FIELDS), "the directed relations found between them"),
    RecordField("windows", "integer",
                "windows the text was read in (1 for a post within the encoder's budget; 0 for an error)"),
    RecordField("truncated", "boolean", "some text was not read (only a single word longer than the whole budget)"),
    RecordField("warnings", ArrayOf("string"),
                "e.g. text that is not English, which the shipped models were not trained on"),
    RecordField("image_relevance", "number",
                "how far the model's relevance gate let the image in, 0 to 1, 4 decimals (0: no image or "
                "context; the largest over a long post's windows); null for a model without a gate", nullable=True),
    RecordField("error", ERROR_FIELDS, "why the input could not be processed; null when it was", nullable=True),
)


def record_fields(with_line: bool = False) -> tuple[RecordField, ...]:
    """The fields of an output record: those of ``to_record``, and with ``with_line`` the
    ``line`` that file outputs add."""
    return tuple(f for f in RECORD_FIELDS if with_line or not f.files_only)


def _empty(field: RecordField) -> Any:
    """The value of ``field`` in a record that found nothing (an error record's)."""
    if field.nullable:
        return None
    if isinstance(field.kind, ArrayOf):
        return []
    return {"integer": 0, "number": 0.0, "boolean": False, "string": ""}[field.kind]


def _arrow_type(kind: Any, id_type: "pyarrow.DataType") -> "pyarrow.DataType":
    import pyarrow as pa

    if isinstance(kind, ArrayOf):
        return pa.list_(_arrow_type(kind.item, id_type))
    if isinstance(kind, tuple):
        return pa.struct([(f.name, _arrow_type(f.kind, id_type)) for f in kind])
    return {"id": id_type, "integer": pa.int64(), "number": pa.float64(), "string": pa.string(),
            "boolean": pa.bool_()}[kind]


def _kind_words(kind: Any) -> str:
    if isinstance(kind, ArrayOf):
        item = _kind_words(kind.item)
        return f"array of {'objects' if isinstance(kind.item, tuple) else item + 's'}"
    if isinstance(kind, tuple):
        return "object"
    return "string, integer" if kind == "id" else kind


def record_table() -> str:
    """The docs' table of the output record (``docs/_generated/output_record.md``, which
    ``tools/refresh_doc_outputs.py`` writes): one row a field, nested fields as
    ``entities[].start``, ``error.type``."""
    rows = ["| key | type | meaning |", "|---|---|---|"]

    def add(fields: tuple[RecordField, ...], prefix: str) -> None:
        for f in fields:
            words = _kind_words(f.kind) + (" or null" if f.nullable else "")
            where = "files only: " if f.files_only else ""
            rows.append(f"| `{prefix}{f.name}` | {words} | {where}{f.meaning} |")
            inner = f.kind.item if isinstance(f.kind, ArrayOf) else f.kind
            if isinstance(inner, tuple):
                add(inner, f"{prefix}{f.name}{'[]' if isinstance(f.kind, ArrayOf) else ''}.")

    add(RECORD_FIELDS, "")
    return "\n".join(rows) + "\n"


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
        """The flat output record (:data:`RECORD_FIELDS`): nothing found, ``windows`` 0, and the error."""
        return {**{f.name: _empty(f) for f in record_fields()}, **self.to_dict()}


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "an integer", float: "a number",
               bool: "a boolean", type(None): "null"}


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), f"a {type(value).__name__}")


_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(text: str) -> str | None:
    """Where ``text`` holds a lone surrogate (no valid UTF-8 can carry it; JSON's ``\\ud800`` can)."""
    if found := _SURROGATE.search(text):
        return f"a lone surrogate U+{ord(found.group()):04X} at character {found.start()}, which is not valid Unicode"
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
    elif isinstance(post_id, str) and (problem := lone_surrogate(post_id)):
        return bad("id", f"id holds {problem}")
    for name in ("text", "caption", "context") + (() if python_images else ("image",)):
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            return bad(name, f"{name} must be a string, got {_json_type(value)}")
        if isinstance(value, str) and (problem := lone_surrogate(value)):
            return bad(name, f"{name} holds {problem}")
    tokens = record.get("tokens")
    if tokens is not None:
        if not isinstance(tokens, list) or not tokens:
            return bad("tokens", f"tokens must be a non-empty array of strings, got {_json_type(tokens)}")
        for i, tok in enumerate(tokens):
            if not isinstance(tok, str) or not tok:
                return bad("tokens", f"token {i} must be a non-empty string, got {_json_type(tok)}")
            if problem := lone_surrogate(tok):
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


def record_schema(id_type: "pyarrow.DataType", with_line: bool = False) -> "pyarrow.Schema":
    """The Arrow schema of output records (one for all rows, so every block and file agrees),
    from :data:`RECORD_FIELDS`; ``id_type`` is the id column's type, ``with_line`` adds ``line``."""
    import pyarrow as pa

    return pa.schema([(f.name, _arrow_type(f.kind, id_type)) for f in record_fields(with_line)])


# --- arguments checked at every door ------------------------------------------------------
def check_count(name: str, value: Any, least: int = 1) -> int:
    """``value`` as an int of at least ``least``; a str, float or bool is an error, not a cast."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise InvalidInputError(f"{name} must be an integer >= {least}, got {value!r}")
    return int(value)


def check_fraction(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise InvalidInputError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)
