"""Batch extraction: input records checked field by field, one flat output record per input,
JSONL or Parquet files, resumable.

An input record is ``{"id": ..., "text": ..., "tokens": [...], "image": ..., "caption": ...,
"context": ...}`` (``id`` a string or an integer, kept with its type; ``text`` or ``tokens``).
Every input yields exactly one output record (:meth:`graphie.Extraction.to_record` or
:meth:`graphie.records.ErrorRecord.to_record`); files add the input's ``line`` (1-based, the row
for Parquet). The record contract (input checks, the output record, its Arrow schema) is
:mod:`graphie.records`; the record's JSON schema is in ``docs/tutorials/batch.md``.

The same functions run in one process (:func:`run_file`) and on Ray
(:mod:`graphie.distributed`), so both engines give the same records.

Files survive what operators do to them (:func:`write_records`): an output that is the input, a
file graphie did not write or a device is refused before any work; a lock file keeps a second
run off an output; a full disk, a kill or SIGTERM loses nothing already written (a Parquet
output is journalled until its final write), and the rerun resumes. A line that cannot be read
is one error record; a file that is not UTF-8 JSONL or readable Parquet is one error.
"""

from __future__ import annotations

import difflib
import json
import os
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from .errors import InvalidInputError, OutputError
from .records import INPUT_KEYS, ErrorRecord, post_from_record, record_schema
from .types import Post, PostId

if TYPE_CHECKING:
    from .api import Extractor

Row = dict[str, Any]  # {"line": int, "raw": bytes (one JSON object), "dup_of": line of the id's first use or 0,
#                         "problem": why the line was not read, or ""}


def loads(raw: bytes, where: str) -> tuple[Any, str | None]:
    """The JSON value of one raw input line, or ``(None, why not)``: not UTF-8, not JSON, nested
    too deeply to read, or a number too long to convert. Never raises, so that one line can never
    stop a run (nor every rerun of it)."""
    try:
        return json.loads(raw.decode("utf-8")), None
    except UnicodeDecodeError as exc:
        return None, f"{where}: not valid UTF-8 ({exc.reason} at byte {exc.start})"
    except json.JSONDecodeError as exc:
        return None, f"{where}: not valid JSON ({exc.msg} at character {exc.pos})"
    except RecursionError:
        return None, f"{where}: JSON nested too deeply to read (an input is one flat object)"
    except ValueError as exc:  # Python's 4,300-digit limit on integers
        return None, f"{where}: not readable JSON ({str(exc).split(';')[0]})"


def decode_row(row: Row, images_dir: str | os.PathLike | None = None) -> Post | ErrorRecord:
    """The post of one file row (raw bytes of one JSON object), or the error record saying why not."""
    where = f"line {row['line']}"
    if row.get("problem"):
        return ErrorRecord(None, "InvalidInputError", f"{where}: {row['problem']}")
    record, problem = loads(row["raw"], where)
    if problem is not None:
        return ErrorRecord(None, "InvalidInputError", problem)
    if row.get("dup_of"):
        return ErrorRecord(None, "InvalidInputError",
                           f"{where}: duplicate id {record['id']!r} (first on line {row['dup_of']})", "id")
    post = post_from_record(record, where)
    if isinstance(post, Post) and images_dir is not None and isinstance(post.image, str) \
            and not os.path.isabs(post.image):
        post.image = str(Path(images_dir) / post.image)
    return post


class FillChain:
    """Fills (see :func:`extract_rows`) applied in turn, e.g. captions and notes from files, then
    a context provider; an :class:`~graphie.records.ErrorRecord` from one ends the chain.
    Picklable when its fills are (to go to Ray workers)."""

    def __init__(self, fills: Sequence[Callable[[Post], "Post | ErrorRecord"]]):
        self.fills = list(fills)

    def __call__(self, post: Post) -> "Post | ErrorRecord":
        for fill in self.fills:
            post = fill(post)
            if not isinstance(post, Post):
                break
        return post

    def __repr__(self) -> str:
        return f"FillChain({self.fills!r})"


def extract_rows(extractor: "Extractor", rows: Iterable[Row], *, images_dir: str | os.PathLike | None = None,
                 batch_size: int = 16, progress: bool | None = None,
                 fill: Callable[[Post], "Post | ErrorRecord"] | None = None) -> Iterator[dict[str, Any]]:
    """One output record per row, in order, streaming: the work of both engines. ``fill`` gives
    each decoded post what it lacks (e.g. a :class:`graphie.datasets.StoredContext`: its caption
    and notes from files; a :class:`graphie.context.ProvidedContext`: a provider's text), or an
    :class:`~graphie.records.ErrorRecord` in its place when that fails."""
    lines: deque[int] = deque()

    def posts() -> Iterator[Post | ErrorRecord]:
        for row in rows:
            lines.append(row["line"])
            post = decode_row(row, images_dir)
            yield fill(post) if fill is not None and isinstance(post, Post) else post

    for outcome in extractor.extract_many(posts(), batch_size=batch_size, progress=progress):
        record = outcome.to_record()
        yield {"id": record.pop("id"), "line": lines.popleft(), **record}


# --- files ---------------------------------------------------------------------------------
#: A longer input line is an error record, read past without holding it in memory (a file without
#: line breaks must not exhaust memory); a 10 MB post is read.
MAX_LINE_BYTES = 64 * 2**20
#: Keys every output record has; an existing output whose lines lack them was not written by graphie.
OUTPUT_KEYS = ("id", "line", "entities", "relations", "error")
_UTF8_BOM = b"\xef\xbb\xbf"
_FOREIGN = (  # how a file that is not UTF-8 JSONL starts, and what to do about it
    (b"\xff\xfe\x00\x00", "UTF-32 text", "convert it: iconv -f UTF-32 -t UTF-8 {path} > posts.jsonl"),
    (b"\x00\x00\xfe\xff", "UTF-32 text", "convert it: iconv -f UTF-32 -t UTF-8 {path} > posts.jsonl"),
    (b"\xff\xfe", "UTF-16 text", "convert it: iconv -f UTF-16 -t UTF-8 {path} > posts.jsonl"),
    (b"\xfe\xff", "UTF-16 text", "convert it: iconv -f UTF-16 -t UTF-8 {path} > posts.jsonl"),
    (b"PAR1", "a Parquet file", "name it .parquet"),
    (b"\x1f\x8b", "gzip-compressed", "decompress it first: gunzip"),
)
_INT64 = (-2**63, 2**63 - 1)


def _is_parquet(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith((".parquet", ".pq"))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _lines(f: Any) -> Iterator[tuple[bytes, int]]:
    """``(raw line, 0)`` of a binary file, or ``(b"", size)`` for a line over :data:`MAX_LINE_BYTES`,
    which is skipped in pieces and never held whole."""
    while raw := f.readline(MAX_LINE_BYTES + 1):
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            size = len(raw)
            while raw and not raw.endswith(b"\n"):
                raw = f.readline(2**20)
                size += len(raw)
            yield b"", size
        else:
            yield raw, 0


def _check_text_file(path: str | os.PathLike, head: bytes) -> None:
    """Refuse a whole file that is not UTF-8 text: line by line it would give records that are
    not one per input (UTF-16 breaks lines inside characters)."""
    for start, what, fix in _FOREIGN:
        if head.startswith(start):
            raise InvalidInputError(f"{path} is {what}, not UTF-8 JSONL: {fix.format(path=path)}")
    if head and head.count(0) * 4 >= len(head):  # UTF-16 or UTF-32 without a byte-order mark
        raise InvalidInputError(f"{path} is not UTF-8 text ({head.count(0)} of its first {len(head)} bytes are NUL: "
                                "UTF-16 without a byte-order mark, or a binary file)")


def _check_input_schema(path: str | os.PathLike, schema: Any) -> None:
    """Refuse a Parquet input whose columns cannot be inputs (the same for every row, so one error
    at the door instead of one per row)."""
    import pyarrow as pa

    for name in schema.names:
        if name not in INPUT_KEYS:
            near = difflib.get_close_matches(name, INPUT_KEYS, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise InvalidInputError(f"{path}: column {name!r} is not an input field{hint}; "
                                    f"inputs have {', '.join(INPUT_KEYS)}")
    if "id" not in schema.names:
        raise InvalidInputError(f"{path}: no 'id' column (every input needs a string or integer id)")
    if "text" not in schema.names and "tokens" not in schema.names:
        raise InvalidInputError(f"{path}: no 'text' or 'tokens' column")
    for col in schema:
        t = col.type
        if pa.types.is_dictionary(t):  # pandas categoricals
            t = t.value_type
        plain = pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t) \
            or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_null(t)
        if not (plain or (pa.types.is_list(t) and pa.types.is_string(t.value_type))):
            raise InvalidInputError(f"{path}: column {col.name!r} is {t}; inputs are strings, integers "
                                    "(id) and lists of strings (tokens); images are given as paths")


def read_rows(path: str | os.PathLike) -> Iterator[tuple[int, bytes, str]]:
    """``(line, raw JSON bytes, problem)`` of each input: JSONL lines (blank lines skipped, a UTF-8
    byte-order mark dropped) or Parquet rows. ``problem`` is empty, or says why the line was not
    read (longer than :data:`MAX_LINE_BYTES`).

    Raises:
        InvalidInputError: a file that is not UTF-8 JSONL (UTF-16, gzip, Parquet by content) or
            not a readable Parquet file with input columns.
    """
    if not _is_parquet(path):
        with open(path, "rb") as f:
            _check_text_file(path, f.read(4096))
            f.seek(0)
            for line, (raw, too_long) in enumerate(_lines(f), start=1):
                if too_long:
                    yield line, b"", f"the line has {too_long:,} bytes, more than {MAX_LINE_BYTES:,}"
                    continue
                if raw.startswith(_UTF8_BOM):  # Windows editors start a file (or each part of one) with it
                    raw = raw[len(_UTF8_BOM):]
                if raw.strip():
                    yield line, raw, ""
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table_file = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        with open(path, "rb") as f:
            looks_jsonl = f.read(64).lstrip(_UTF8_BOM + b" \t\r\n").startswith(b"{")
        hint = ": it looks like JSONL, name it .jsonl" if looks_jsonl else ""
        raise InvalidInputError(f"{path} is not a readable Parquet file ({_first_line(exc)}){hint}") from exc
    _check_input_schema(path, table_file.schema_arrow)
    line = 0
    try:
        for batch in table_file.iter_batches(batch_size=4096):
            for row in batch.to_pylist():
                line += 1
                record = {k: v for k, v in row.items() if v is not None}
                yield line, json.dumps(record, ensure_ascii=False).encode("utf-8", "surrogatepass"), ""
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInputError(f"{path} is unreadable after row {line} ({_first_line(exc)}); the rows before "
                                "it are done and a rerun resumes there") from exc


@dataclass
class Finished:
    """What an output file already holds: ids, and the lines of records without an id (inputs
    whose id was missing, unreadable or a duplicate)."""

    ids: set[PostId] = field(default_factory=set)
    lines: set[int] = field(default_factory=set)
    records: list[dict[str, Any]] = field(default_factory=list)  # Parquet only: rewritten with the new ones
    text_ids: bool = False  # a Parquet id column of strings: integer ids of the input were written as text
    journaled: int = 0  # Parquet only: records of a run that did not reach its final write

    def has(self, post_id: PostId) -> bool:
        return post_id in self.ids or (self.text_ids and isinstance(post_id, int) and str(post_id) in self.ids)

    def add(self, record: dict[str, Any]) -> None:
        if record.get("id") is not None:
            self.ids.add(record["id"])
        elif record.get("line") is not None:
            self.lines.add(record["line"])


def journal_path(output_path: str | os.PathLike) -> Path:
    """Where a Parquet output's records are appended as they come (JSONL) until the run writes the
    Parquet file: a run killed, out of disk or refused at its final write loses nothing."""
    return Path(f"{output_path}.inprogress.jsonl")


def _read_output_jsonl(path: Path, done: Finished, journal: bool) -> None:
    """Add the records of a JSONL output to ``done``; a torn last line (a killed run) is cut off.
    Any other line that is not an output record means graphie did not write the file: refused."""
    good = 0
    with open(path, "rb") as f:
        for n, (raw, too_long) in enumerate(_lines(f), start=1):
            if not too_long and not raw.endswith(b"\n") and raw.startswith(b'{"id": '):
                break  # the torn end of a killed run: cut off below, and that input done again
            if not too_long and not raw.strip():
                good += len(raw)
                continue
            record = None if too_long else loads(raw, "")[0]
            if not (isinstance(record, dict) and all(k in record for k in OUTPUT_KEYS)):
                raise InvalidInputError(
                    f"{path}: line {n} is not a graphie output record, so graphie did not write this file: "
                    "refusing to write into it (choose another output, or move the file away)")
            done.add(record)
            if journal:
                done.records.append(record)
                done.journaled += 1
            good += len(raw)
    if good != path.stat().st_size:
        with open(path, "rb+") as f:
            f.truncate(good)


def finished(output_path: str | os.PathLike) -> Finished:
    """What an earlier run of the same command wrote (for Parquet, with the records of a run that
    did not reach its final write); a torn last JSONL line (a killed run) is cut off.

    Raises:
        InvalidInputError: the file exists but graphie did not write it (another file, the input).
    """
    path, done = Path(output_path), Finished()
    if not _is_parquet(path):
        if path.exists():
            _read_output_jsonl(path, done, journal=False)
        return done
    if path.exists():
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInputError(f"{path} exists and is not a readable Parquet file ({_first_line(exc)}): "
                                    "refusing to replace it (choose another output, or move it away)") from exc
        missing = [k for k in OUTPUT_KEYS if k not in table.schema.names]
        if missing:
            raise InvalidInputError(f"{path} is a Parquet file graphie did not write (no {missing[0]!r} column): "
                                    "refusing to replace it (choose another output, or move it away)")
        done.records, done.text_ids = table.to_pylist(), table.schema.field("id").type == "string"
        for record in done.records:
            done.add(record)
    if journal_path(path).exists():
        _read_output_jsonl(journal_path(path), done, journal=True)
    return done


def pending_rows(input_path: str | os.PathLike, done: Finished, counts: dict[str, int]) -> Iterator[Row]:
    """The rows still to do, each marked with the line of its id's first use when the id is a
    duplicate (an id is tracked through skipped lines too, so reruns judge duplicates alike)."""
    first_line: dict[PostId, int] = {}
    for line, raw, problem in read_rows(input_path):
        post_id = _peek_id(raw) if not problem else None
        dup_of = 0
        if post_id is not None:
            dup_of = first_line.setdefault(post_id, line)
            dup_of = 0 if dup_of == line else dup_of
        if done.has(post_id) if post_id is not None and not dup_of else (line in done.lines):
            counts["skipped"] += 1
            continue
        yield {"line": line, "raw": raw, "dup_of": dup_of, "problem": problem}


def _peek_id(raw: bytes) -> PostId | None:
    record = loads(raw, "")[0]
    post_id = record.get("id") if isinstance(record, dict) else None
    return post_id if isinstance(post_id, (str, int)) and not isinstance(post_id, bool) else None


def run_file(extractor: "Extractor", input_path: str | os.PathLike, output_path: str | os.PathLike, *,
             images_dir: str | os.PathLike | None = None, batch_size: int = 16,
             progress: bool | None = None, fill: Callable[[Post], Post] | None = None) -> dict[str, int]:
    """Extract from every input of a JSONL or Parquet file into a JSONL or Parquet file (by suffix),
    in this process, resuming after the inputs already there; ``fill`` as in :func:`extract_rows`.

    Returns counts: ``{"done": results written, "errors": error records written, "skipped": already done}``.
    Raises the errors of :func:`write_records`.
    """
    return write_records(input_path, output_path, lambda rows: extract_rows(
        extractor, rows, images_dir=images_dir, batch_size=batch_size, progress=progress, fill=fill))


def check_paths(input_path: str | os.PathLike, output_path: str | os.PathLike) -> None:
    """Refuse, before any work, an input that is not a file and an output that graphie cannot
    append to and read back: the input itself, a device (``/dev/stdout``), a folder, or a path in
    a folder that does not exist."""
    for name, value in (("input_path", input_path), ("output_path", output_path)):
        if not isinstance(value, (str, os.PathLike)):
            raise InvalidInputError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__}")
    src, out = Path(input_path), Path(output_path)
    if not src.exists():
        raise InvalidInputError(f"input file {str(src)!r} does not exist")
    if not src.is_file():
        raise InvalidInputError(f"input {str(src)!r} is not a file")
    device = os.path.abspath(out).startswith(("/dev/", "/proc/"))
    if device or (out.exists() and not out.is_file()):
        kind = "a folder" if out.is_dir() else "a device, not a file"
        raise InvalidInputError(f"output {str(out)!r} is {kind}: a rerun reads the output back to resume, so it "
                                "must be a file (to watch the records come, write a file and `tail -f` it)")
    for target in (out, journal_path(out)):
        if target.exists() and os.path.samefile(src, target) or os.path.realpath(src) == os.path.realpath(target):
            raise InvalidInputError(f"output {str(out)!r} is the input file: choose another output path")
    if not out.parent.is_dir():
        raise InvalidInputError(f"output folder {str(out.parent)!r} does not exist")


@contextmanager
def output_lock(output_path: str | os.PathLike) -> Iterator[None]:
    """Hold ``<output>.lock`` while a run writes ``output_path``, so that two runs never write one
    output (each would append every id). The kernel frees the lock when its process ends, however
    it ends (``kill -9`` included), so a lock is never stale; the file is removed on release.

    Raises:
        OutputError: another run holds the lock, or the lock file cannot be written.
    """
    lock = Path(f"{output_path}.lock")
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (documented)
        yield
        return
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot write {output_path}: {exc.strerror or exc} (creating {lock})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            raise OutputError(f"another run{f' (pid {holder})' if holder else ''} is writing {output_path}: "
                              f"wait for it to end, or choose another output") from None
        try:  # the run that held the lock may have removed the file just before we locked it
            if os.path.samestat(os.fstat(fd), os.stat(lock)):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        try:
            os.unlink(lock)
        except OSError:
            pass
        os.close(fd)


class _Appender:
    """Appends output records to a file one whole line at a time: a record that cannot be written
    whole (disk full, a signal) is cut off again, so the file never ends in a torn line."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.size = os.fstat(self.fd).st_size
        self.written = 0

    def write(self, record: dict[str, Any]) -> None:
        text = json.dumps(record, ensure_ascii=False) + "\n"
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate in a message: \u escapes keep the line valid UTF-8
            data = (json.dumps(record) + "\n").encode("ascii")
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except BaseException:
            try:
                os.ftruncate(self.fd, self.size)
            except OSError:
                pass  # the next run cuts the torn line off
            raise
        self.size += len(data)
        self.written += 1

    def close(self) -> None:
        os.close(self.fd)


def write_records(input_path: str | os.PathLike, output_path: str | os.PathLike,
                  engine: Callable[[Iterator[Row]], Iterable[dict[str, Any]]]) -> dict[str, int]:
    """Run ``engine`` (rows in, one record per row out, in order) over the pending inputs and write
    its records, holding :func:`output_lock`. JSONL: lines appended one by one. Parquet: the records
    are appended to :func:`journal_path` as they come and the Parquet file is written whole at the
    end (through a temporary file), so a killed or failed run loses nothing and a rerun resumes.

    Raises:
        InvalidInputError: see :func:`check_paths`, :func:`read_rows` and :func:`finished`.
        OutputError: the output cannot be written (disk full, read-only, another run writing it);
            what was written is kept, and rerunning the same command resumes.
    """
    check_paths(input_path, output_path)
    parquet = _is_parquet(output_path)
    target = journal_path(output_path) if parquet else Path(output_path)
    with output_lock(output_path):
        done = finished(output_path)
        counts = {"done": 0, "errors": 0, "skipped": 0}
        created = not target.exists()
        try:
            out = _Appender(target)
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
        new: list[dict[str, Any]] = []
        try:
            for record in engine(pending_rows(input_path, done, counts)):
                try:
                    out.write(record)
                except OSError as exc:
                    raise OutputError(
                        f"cannot write {target}: {exc.strerror or exc} (after {out.written} new records, which are "
                        "kept): make room, or fix the path, and rerun the same command to resume") from exc
                counts["errors" if record["error"] else "done"] += 1
                if parquet:
                    new.append(record)
        except BaseException:
            if created and out.written == 0:  # a run that failed before its first record leaves no file
                target.unlink(missing_ok=True)
            raise
        finally:
            out.close()
        if parquet:
            if new or done.journaled or not Path(output_path).exists():
                try:
                    _write_parquet(done.records + new, output_path)
                except Exception as exc:  # noqa: BLE001 - disk full or an Arrow error: the records stay in the journal
                    raise OutputError(f"cannot write {output_path}: {_first_line(exc)}; every record is kept in "
                                      f"{target}: rerun the same command to write the Parquet file") from exc
            target.unlink(missing_ok=True)
    return counts


def _write_parquet(records: list[dict[str, Any]], path: str | os.PathLike) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = [r["id"] for r in records if r["id"] is not None]
    if {type(i) for i in ids} == {int} and all(_INT64[0] <= i <= _INT64[1] for i in ids):
        id_type = pa.int64()
    else:  # one column has one type: mixed ids, or integers beyond int64, are written as strings
        id_type = pa.string()
        records = [r if not isinstance(r["id"], int) else {**r, "id": str(r["id"])} for r in records]
    table = pa.Table.from_pylist(records, schema=record_schema(id_type, with_line=True))
    tmp = Path(f"{path}.partial")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
