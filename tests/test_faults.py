"""Every fault survived: what operators and odd inputs do to a run, each in its smallest form.

Each case ends in a typed one-line error (exit status 2 on the command line) or in exactly one
output record per input, and a rerun resumes exactly: every id once, nothing lost. The small
untrained model of ``conftest.py`` (the plumbing, not quality); the Ray cases are in
``test_distributed.py``.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import graphie
import graphie.batch
from graphie.batch import MAX_LINE_BYTES, journal_path, output_lock, run_file
from graphie.cli import main

POSTS = [{"id": i, "text": f"Obama visits city {i} with Merkel"} for i in range(6)]


def jsonl(path: Path, records=POSTS, *, raw: bytes = b"") -> Path:
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records) + raw)
    return path


def records_of(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, *words: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


# --- refused at the door, before the model loads ------------------------------------------------
def test_the_input_as_output_is_refused_and_kept(tmp_path, capsys):
    src = jsonl(tmp_path / "in.jsonl")
    before = src.read_bytes()
    code, out, err = cli(capsys, "extract-file", str(src), "--output", str(src))
    assert code == 2 and out == ""
    one_line(err, "is the input file")
    assert src.read_bytes() == before


@pytest.mark.parametrize("content", [b"precious notes\n", b"id,text\n1,Obama\n", b"no line break at the end",
                                     b'{"id": 1, "text": "an input, not a result"}\n'])
def test_a_file_graphie_did_not_write_is_never_truncated(tmp_path, capsys, content):
    src, notes = jsonl(tmp_path / "in.jsonl"), tmp_path / "notes.txt"
    notes.write_bytes(content)
    code, _, err = cli(capsys, "extract-file", str(src), "--output", str(notes))
    assert code == 2
    one_line(err, "graphie did not write")
    assert notes.read_bytes() == content


@pytest.mark.parametrize("output", ["/dev/stdout", "/dev/full", "FOLDER", "missing/out.jsonl"])
def test_devices_folders_and_missing_folders_are_refused_at_once(tmp_path, capsys, output):
    src = jsonl(tmp_path / "in.jsonl")
    output = {"FOLDER": str(tmp_path), "missing/out.jsonl": str(tmp_path / "missing" / "out.jsonl")}.get(output, output)
    code, _, err = cli(capsys, "extract-file", str(src), "--output", output)
    assert code == 2
    one_line(err, "error: output")


def test_a_second_run_on_one_output_stops_at_once(tmp_path, capsys):
    src, out = jsonl(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    with output_lock(out):  # as a run in another process holds it
        code, _, err = cli(capsys, "extract-file", str(src), "--output", str(out))
        assert code == 2
        one_line(err, f"another run (pid {os.getpid()}) is writing")
        assert not out.exists()
    assert not Path(f"{out}.lock").exists()  # released: the lock file goes with it


@pytest.mark.parametrize("name,data,words", [
    ("u16.jsonl", '{"id": 1, "text": "Obama"}\n{"id": 2, "text": "Paris"}\n'.encode("utf-16"), "UTF-16"),
    ("u16be.jsonl", '{"id": 1, "text": "Obama"}\n'.encode("utf-16-be"), "NUL"),
    ("gz.jsonl", b"\x1f\x8b\x08\x00junk", "gzip"),
    ("trunc.parquet", b"PAR1\x00\x00\x00", "not a readable Parquet file"),
    ("jsonl.parquet", b'{"id": 1, "text": "Obama"}\n', "name it .jsonl"),
])
def test_a_file_that_is_not_utf8_jsonl_or_parquet_is_one_error(tmp_path, capsys, name, data, words):
    src = tmp_path / name
    src.write_bytes(data)
    code, _, err = cli(capsys, "extract-file", str(src), "--output", str(tmp_path / "out.jsonl"))
    assert code == 2
    one_line(err, words)


def test_parquet_with_the_wrong_schema_is_one_error(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    for table, words in [(pa.table({"id": [1], "txt": ["Obama"]}), "column 'txt' is not an input field (did you mean 'text'?)"),
                         (pa.table({"text": ["Obama"]}), "no 'id' column"),
                         (pa.table({"id": [1], "text": [b"Obama"]}), "column 'text' is binary")]:
        pq.write_table(table, tmp_path / "in.parquet")
        code, _, err = cli(capsys, "extract-file", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "o.jsonl"))
        assert code == 2
        one_line(err, words)


def test_an_existing_output_that_is_not_graphies_parquet_is_kept(tmp_path, capsys):
    src, out = jsonl(tmp_path / "in.jsonl"), tmp_path / "out.parquet"
    out.write_bytes(b"not parquet")
    code, _, err = cli(capsys, "extract-file", str(src), "--output", str(out))
    assert code == 2
    one_line(err, "refusing to replace it")
    assert out.read_bytes() == b"not parquet"


def test_parse_text_refuses_a_lone_surrogate_and_bad_stdin(capsys, monkeypatch):
    code, _, err = cli(capsys, "parse-text", "Obama \udcff Paris")  # what a non-UTF-8 argument becomes
    assert code == 2
    one_line(err, "lone surrogate U+DCFF")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"caf\xe9 Obama")))
    code, _, err = cli(capsys, "parse-text", "-")
    assert code == 2
    one_line(err, "stdin is not UTF-8")


# --- broken models --------------------------------------------------------------------------------
def _broken_models(root: Path, model_dir: Path) -> dict[str, Path]:
    cases = {}
    for name in ("empty", "no_weights", "bad_json", "wrong_version", "wrong_shapes"):
        folder = root / name
        folder.mkdir()
        cases[name] = folder
    config = json.loads((model_dir / "config.json").read_text())
    weights = (model_dir / "model.safetensors").read_bytes()
    (cases["no_weights"] / "config.json").write_text(json.dumps(config))
    (cases["bad_json"] / "config.json").write_text("{not json")
    (cases["bad_json"] / "model.safetensors").write_bytes(weights)
    (cases["wrong_version"] / "config.json").write_text(json.dumps({**config, "format_version": 999}))
    (cases["wrong_version"] / "model.safetensors").write_bytes(weights)
    other = {**config, "model": {**config["model"], "entity_types": ["A", "B", "C", "D", "E", "F", "G"]}}
    (cases["wrong_shapes"] / "config.json").write_text(json.dumps(other))
    (cases["wrong_shapes"] / "model.safetensors").write_bytes(weights)
    return cases


def test_broken_model_folders_are_one_model_load_error(model_dir, tmp_path):
    for name, folder in _broken_models(tmp_path, Path(model_dir)).items():
        with pytest.raises(graphie.ModelLoadError) as info:
            graphie.load(folder)
        assert "\n" not in str(info.value), name


def test_a_broken_model_with_ray_is_one_line_before_ray_starts(model_dir, tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    import graphie.distributed as gd

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray started for a broken model")

    monkeypatch.setattr(gd, "_strategy", no_ray)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((Path(model_dir) / "config.json").read_text())
    src = jsonl(tmp_path / "in.jsonl")
    code, out, err = cli(capsys, "extract-file", str(src), "--output", str(tmp_path / "o.jsonl"), "--model",
                         str(broken), "--engine", "ray")
    assert code == 2 and out == ""
    one_line(err, "model.safetensors is missing")


# --- odd lines: one record each, and reruns resume ----------------------------------------------
def test_odd_lines_give_one_record_each_and_never_stop_a_run(extractor, tmp_path):
    lines = [
        b"\xef\xbb\xbf" + json.dumps({"id": "bom", "text": "Obama in Paris"}).encode(),  # Windows editors
        json.dumps({"id": "crlf", "text": "Obama in Paris"}).encode() + b"\r",
        b'{"id": "latin1", "text": "caf\xe9"}',
        b'{"id": "deep", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # RecursionError in json
        b'{"id": ' + b"9" * 5000 + b', "text": "Obama"}',  # beyond Python's 4,300-digit limit
        json.dumps({"id": 10**30, "text": "Obama in Paris"}).encode(),  # beyond int64
        json.dumps({"id": "long", "text": "word " * 2_100_000}).encode(),  # a 10 MB line
        json.dumps({"id": "last", "text": "Merkel in Berlin"}).encode(),
    ]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    counts = run_file(extractor, src, out, progress=False)
    records = records_of(out)
    assert [r["line"] for r in records] == list(range(1, len(lines) + 1))
    by_line = {r["line"]: r for r in records}
    assert by_line[1]["id"] == "bom" and by_line[1]["error"] is None
    assert by_line[2]["id"] == "crlf" and by_line[2]["error"] is None
    assert "not valid UTF-8" in by_line[3]["error"]["message"]
    assert "nested too deeply" in by_line[4]["error"]["message"]
    assert "4300 digits" in by_line[5]["error"]["message"]
    assert by_line[6]["id"] == 10**30 and by_line[6]["error"] is None
    assert by_line[7]["id"] == "long" and by_line[7]["error"]["field"] == "text"
    assert counts == {"done": 4, "errors": 4, "skipped": 0}
    assert run_file(extractor, src, out, progress=False) == {"done": 0, "errors": 0, "skipped": len(lines)}


def test_a_line_beyond_the_limit_is_read_past_not_held(extractor, tmp_path, monkeypatch):
    monkeypatch.setattr(graphie.batch, "MAX_LINE_BYTES", 1000)
    src, out = jsonl(tmp_path / "in.jsonl", POSTS[:1] + [{"id": "big", "text": "x" * 5000}] + POSTS[1:2]), tmp_path / "o.jsonl"
    run_file(extractor, src, out, progress=False)
    records = records_of(out)
    assert [r["id"] for r in records] == [0, None, 1]
    assert "more than 1,000" in records[1]["error"]["message"]
    assert MAX_LINE_BYTES >= 10 * 2**20  # a 10 MB post is read


# --- output faults: what was written is kept, the rerun completes it ------------------------------
def _fail_writes_to(path: Path, after: int, monkeypatch) -> None:
    """os.write to ``path`` writes ``after`` whole records, then half of one, then fails: a full disk."""
    real, calls = os.write, {"n": 0}

    def write(fd, data):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if target != os.path.realpath(path):
            return real(fd, data)
        calls["n"] += 1
        if calls["n"] <= after:
            return real(fd, data)
        if calls["n"] == after + 1:
            return real(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", write)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="finds the output's descriptor through /proc")
def test_a_full_disk_keeps_whole_lines_and_the_rerun_completes(extractor, tmp_path, monkeypatch):
    src, out = jsonl(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    with monkeypatch.context() as m:
        _fail_writes_to(out, 2, m)
        with pytest.raises(graphie.OutputError, match="No space left on device") as info:
            run_file(extractor, src, out, progress=False)
    assert "after 2 new records" in str(info.value) and "\n" not in str(info.value)
    assert [r["id"] for r in records_of(out)] == [0, 1]  # the torn third line was cut off
    assert run_file(extractor, src, out, progress=False) == {"done": 4, "errors": 0, "skipped": 2}
    assert [r["id"] for r in records_of(out)] == list(range(6))


def test_a_read_only_output_is_one_line(model_dir, tmp_path, capsys, monkeypatch):
    def read_only(self, path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(graphie.batch._Appender, "__init__", read_only)
    src = jsonl(tmp_path / "in.jsonl")
    code, _, err = cli(capsys, "extract-file", str(src), "--output", str(tmp_path / "o.jsonl"), "--model", str(model_dir))
    assert code == 2
    one_line(err, "cannot write", "Read-only file system")


def test_parquet_keeps_its_records_when_the_final_write_fails(extractor, tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    src, out = jsonl(tmp_path / "in.jsonl", POSTS + [{"id": 2**70, "text": "Obama"}]), tmp_path / "out.parquet"
    with monkeypatch.context() as m:
        def full(records, path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        m.setattr(graphie.batch, "_write_parquet", full)
        with pytest.raises(graphie.OutputError, match="every record is kept in"):
            run_file(extractor, src, out, progress=False)
    assert not out.exists() and len(records_of(journal_path(out))) == 7
    assert run_file(extractor, src, out, progress=False) == {"done": 0, "errors": 0, "skipped": 7}
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == [str(i) for i in range(6)] + [str(2**70)]  # beyond int64: strings
    assert not journal_path(out).exists()
    assert run_file(extractor, src, out, progress=False) == {"done": 0, "errors": 0, "skipped": 7}


def test_sigterm_ends_a_run_in_one_line_and_the_rerun_resumes(model_dir, tmp_path, capsys, monkeypatch):
    src, out = jsonl(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    real = graphie.batch.extract_rows

    def killed_after_two(*args, **kwargs):
        for i, record in enumerate(real(*args, **kwargs)):
            if i == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # through the real signal handler
            yield record

    with monkeypatch.context() as m:
        m.setattr(graphie.batch, "extract_rows", killed_after_two)
        code, out_text, err = cli(capsys, "extract-file", str(src), "--output", str(out), "--model", str(model_dir))
    assert code == 143 and out_text == ""
    one_line(err, "terminated (SIGTERM)", "rerun the same command to resume")
    kept = records_of(out)
    assert 0 < len(kept) < len(POSTS)
    code, out_text, _ = cli(capsys, "extract-file", str(src), "--output", str(out), "--model", str(model_dir))
    assert code == 0 and json.loads(out_text)["skipped"] == len(kept)
    assert [r["id"] for r in records_of(out)] == list(range(6))


# --- one Extractor, many threads ------------------------------------------------------------------
def test_threads_sharing_one_extractor_get_what_each_would_alone(extractor):
    texts = [f"Obama visits Paris with Merkel on day {i}" for i in range(12)]
    alone = [r.to_record() for r in extractor.extract(texts)]
    results, errors = {}, []
    start = threading.Barrier(3)

    def work(k):
        try:
            start.wait()
            results[k] = [r.to_record() for r in extractor.extract_many(texts, batch_size=4, progress=False)]
            extractor.extract("Barack Obama in Berlin")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(results[k] == alone for k in range(3))


# --- unusual text, images and Python types --------------------------------------------------------
TEXTS = ["😀😀😀", "🇺🇸👨\u200d👩\u200d👧", "مرحبا بالعالم في باريس", "שלום Obama בפריז", "Obama\u200bvisits\u200dParis\ufeff",
         "\u200b\u200b\u200b", "a" * 100_000, "x " + "b" * 100_000 + " Obama", "\u202eObama\u202c in Paris", "\x00\x01"]


def test_unusual_texts_give_one_record_each_with_offsets_into_the_text(extractor):
    records = extractor.extract_batch([{"id": i, "text": t} for i, t in enumerate(TEXTS)])
    assert [r["id"] for r in records] == list(range(len(TEXTS)))
    for text, record in zip(TEXTS, records):
        assert record["error"] is None or record["error"]["type"] == "InvalidInputError", record
        for e in record["entities"]:
            assert text[e["start"]:e["end"]] == e["text"]
    json.dumps(records, ensure_ascii=False).encode("utf-8")  # every record is valid UTF-8


def _image_bytes() -> dict[str, bytes]:
    def encode(image: Image.Image, fmt: str, **kw) -> bytes:
        buf = io.BytesIO()
        image.save(buf, format=fmt, **kw)
        return buf.getvalue()

    rgb = Image.new("RGB", (40, 30), (200, 30, 30))
    frames = [Image.new("P", (16, 16), i) for i in range(3)]
    return {"cmyk.jpg": encode(rgb.convert("CMYK"), "JPEG"),
            "16bit.png": encode(Image.fromarray((np.arange(1200).reshape(30, 40) * 50).astype(np.uint16)), "PNG"),
            "animated.gif": encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
            "photo.webp": encode(rgb, "WEBP"),
            "one.png": encode(Image.new("RGB", (1, 1)), "PNG"),
            "truncated.jpg": encode(rgb, "JPEG")[:200],
            "empty.jpg": b"",
            "text.jpg": b"not an image"}


def test_unusual_images_give_a_result_or_one_image_error_each(model_dir, tmp_path):
    class NoObjects:
        name = "none"

        def detect(self, image):
            return []

    for name, data in _image_bytes().items():
        (tmp_path / name).write_bytes(data)
    Image.new("1", (9000, 5000)).save(tmp_path / "huge.png")  # 45 MP: refused before decoding
    names = [*_image_bytes(), "huge.png"]
    ex = graphie.load(model_dir, detector=NoObjects())
    records = ex.extract_batch([{"id": n, "text": "Obama in Paris", "image": str(tmp_path / n)} for n in names])
    errors = {r["id"]: r["error"] for r in records}
    assert [r["id"] for r in records] == names
    for readable in ("cmyk.jpg", "16bit.png", "animated.gif", "photo.webp", "one.png"):
        assert errors[readable] is None, errors[readable]
    for bad in ("truncated.jpg", "empty.jpg", "text.jpg", "huge.png"):
        assert errors[bad]["type"] == "ImageError" and errors[bad]["field"] == "image", errors[bad]


@pytest.mark.parametrize("call,error", [
    (lambda ex: ex.extract(123), graphie.InvalidInputError),
    (lambda ex: ex.extract(None), graphie.InvalidInputError),
    (lambda ex: ex.extract(b"Obama"), graphie.InvalidInputError),
    (lambda ex: ex.extract("Obama", image=3.5), graphie.GraphieError),
])
def test_wrong_python_types_are_typed_errors(extractor, call, error):
    with pytest.raises(error):
        call(extractor)


def test_wrong_path_types_are_typed_errors(extractor, tmp_path):
    with pytest.raises(graphie.InvalidInputError, match="input_path must be a path"):
        run_file(extractor, 123, tmp_path / "o.jsonl")
    with pytest.raises(graphie.InvalidInputError, match="output_path must be a path"):
        run_file(extractor, jsonl(tmp_path / "in.jsonl"), None)


def test_wrong_types_inside_a_batch_are_records(extractor):
    records = extractor.extract_batch([{"id": 1, "text": "Obama"}, {"id": 2, "text": ["Obama"]}, {"id": 3, "text": None},
                                       {"id": 4, "tokens": "Obama"}, {"id": 5, "text": "Obama", "image": 7}])
    assert [r["id"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["error"] is None
    assert [r["error"]["field"] for r in records[1:]] == ["text", "text", "tokens", "image"]


# --- evaluation files and logging -----------------------------------------------------------------
def test_a_malformed_line_in_an_evaluation_file_names_file_and_line(tmp_path, capsys):
    good = "{'token': ['Obama', 'in', 'Paris'], 'h': {'name': 'Obama', 'pos': [0, 1]}, " \
           "'t': {'name': 'Paris', 'pos': [2, 3]}, 'img_id': 'a.jpg', 'relation': 'None'}\n"
    data = tmp_path / "mnre_val.txt"
    data.write_text(good + "{'token': ['torn'\n" + good)
    code, out, err = cli(capsys, "data", "stats", "mnre", str(data))
    assert code == 2 and out == ""
    one_line(err, f"{data}:2")


def test_logging_is_library_safe(model_dir):
    from transformers.utils import logging as hf_logging

    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("graphie").handlers)
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("parsers").handlers)
    hf_logging.enable_progress_bar()
    graphie.load(model_dir)
    assert hf_logging.is_progress_bar_enabled()  # the user's setting, untouched by a load


def test_verbose_and_quiet_on_every_command():
    from graphie.cli import _leaves, build_parser

    for leaf in _leaves(build_parser()):
        assert {"--verbose", "--quiet"} <= set(leaf._option_string_actions), leaf.prog
