"""The record contract of the front door: what an input record may hold
(:data:`INPUT_KEYS`, :func:`post_from_record`), what an output record holds
(:meth:`graphie.Extraction.to_record`, :meth:`ErrorRecord.to_record`, the Arrow schema
:func:`record_schema`) and the checks of the arguments every front door takes
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
    """The Arrow schema of output records (one for all rows, so every block and file agrees)."""
    import pyarrow as pa

    evidence = pa.struct([("object", pa.int64()), ("label", pa.string()), ("weight", pa.float64())])
    entity = pa.struct([("start", pa.int64()), ("end", pa.int64()), ("text", pa.string()), ("type", pa.string()),
                        ("score", pa.float64()), ("evidence", pa.list_(evidence))])
    relation = pa.struct([("head", pa.int64()), ("tail", pa.int64()), ("label", pa.string()),
                          ("score", pa.float64())])
    error = pa.struct([("type", pa.string()), ("field", pa.string()), ("message", pa.string())])
    fields = [("id", id_type)] + ([("line", pa.int64())] if with_line else []) + [
        ("entities", pa.list_(entity)), ("relations", pa.list_(relation)), ("windows", pa.int64()),
        ("truncated", pa.bool_()), ("warnings", pa.list_(pa.string())), ("error", error)]
    return pa.schema(fields)


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
