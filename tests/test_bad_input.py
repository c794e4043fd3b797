"""Every input yields exactly one record, whatever it is; bad arguments are refused at the door
with a typed error naming them. A small randomly initialised model (real encoder and parsers)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

import graphie
from graphie.batch import run_file
from graphie.cli import main


BAD = [  # (record, field named, words in the message)
    ({"id": 1, "txet": "Obama in Paris"}, "txet", "unknown key 'txet' (did you mean 'text'?)"),
    ({"id": 2, "text": 5}, "text", "text must be a string, got an integer"),
    ({"id": 3, "text": "Obama", "caption": 5}, "caption", "caption must be a string"),
    ({"id": 4, "text": "Obama", "context": ["a", "b"]}, "context", "context must be a string, got an array"),
    ({"id": 5, "text": "   "}, "text", "text is empty"),
    ({"id": 6}, "text", "no text"),
    ({"text": "Obama in Paris"}, "id", "no id"),
    ({"id": 1.5, "text": "Obama"}, "id", "id must be a string or an integer, got a number"),
    ({"id": True, "text": "Obama"}, "id", "got a boolean"),
    ({"id": 9, "text": "Obama \ud800 Paris"}, "text", "lone surrogate U+D800"),
    ({"id": 10, "tokens": ["Obama", 3]}, "tokens", "token 1 must be a non-empty string"),
    ({"id": 11, "text": "Obama", "image": "/no/such/file.jpg"}, "image", "no/such/file.jpg"),
    ({"id": 12, "text": "Obama", "image": 7}, "image", "image must be a string"),
    (["not", "an", "object"], None, "expected a JSON object, got an array"),
    ("a string", None, "expected a JSON object, got a string"),
]


def test_every_bad_record_is_one_error_naming_its_field(model_dir):
    ex = graphie.load(model_dir)  # the default image parser: a missing file is an ImageError
    good = {"id": "ok", "text": "Obama visits Paris\x00 today"}  # NUL separates words like a space
    records = ex.extract_batch([good] + [r for r, _, _ in BAD] + [good])
    assert len(records) == len(BAD) + 2
    assert records[0]["error"] is None and records[0]["id"] == "ok" and records[0]["windows"] == 1
    assert records[-1]["error"]["field"] == "id" and "duplicate id 'ok'" in records[-1]["error"]["message"]
    for record, (_, field, words) in zip(records[1:], BAD):
        assert record["error"]["field"] == field, record
        assert words in record["error"]["message"], record
        assert record["entities"] == [] and record["relations"] == []
    assert [r["id"] for r in records[1:4]] == [1, 2, 3]  # ids keep their JSON type
    assert json.loads(json.dumps(records, ensure_ascii=False)) == records  # plain data, valid UTF-8


def test_a_file_of_bad_lines_gives_one_record_per_line_and_goes_on(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    huge = tmp_path / "huge.png"
    Image.new("L", (9000, 5000)).save(huge)  # 45 MP: refused before decoding
    lines = [json.dumps(r, ensure_ascii=False).encode("utf-8", "surrogatepass") for r, _, _ in BAD]
    lines += [b'{"id": "latin1", "text": "caf\xe9"}', b'{"id": "torn", "text": "Obama',
              json.dumps({"id": 1, "text": "again"}).encode(), json.dumps({"id": "1", "text": "Obama"}).encode(),
              json.dumps({"id": "big", "text": "Obama", "image": str(huge)}).encode()]
    src.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.jsonl"
    counts = run_file(graphie.load(model_dir), src, out, progress=False)  # the default image parser
    records = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == list(range(1, len(lines) + 1))
    assert counts == {"done": 1, "errors": len(lines) - 1, "skipped": 0}
    by_line = {r["line"]: r for r in records}
    n = len(BAD)
    assert "not valid UTF-8" in by_line[n + 1]["error"]["message"]
    assert "not valid JSON" in by_line[n + 2]["error"]["message"]
    assert by_line[n + 3]["error"]["field"] == "id" and "duplicate id 1 (first on line 1)" in \
        by_line[n + 3]["error"]["message"]
    assert by_line[n + 4]["id"] == "1" and by_line[n + 4]["error"] is None  # "1" is not 1
    assert by_line[n + 5]["error"] == {"type": "ImageError", "field": "image", "message": by_line[n + 5]["error"]["message"]}
    assert "pixels" in by_line[n + 5]["error"]["message"]
    ids = [r["id"] for r in records if r["id"] is not None]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("call,words", [
    (lambda ex: list(ex.extract_many("a string")), "got one str"),
    (lambda ex: list(ex.extract_many(["x"], batch_size="8")), "batch_size must be an integer >= 1, got '8'"),
    (lambda ex: list(ex.extract_many(["x"], batch_size=0)), "batch_size must be an integer >= 1"),
    (lambda ex: graphie.Extractor(ex.model, relation_threshold="0.5"), "relation_threshold must be a number in [0, 1]"),
    (lambda ex: graphie.Extractor(ex.model, relation_threshold=1.5), "relation_threshold"),
    (lambda ex: graphie.Extractor(ex.model, image_workers=0), "image_workers must be an integer >= 1"),
    (lambda ex: ex.extract("Obama \udcff Paris"), "lone surrogate U+DCFF"),
    (lambda ex: ex.extract(["Obama"], image="x.jpg"), "a list of posts carries its images"),
])
def test_bad_arguments_are_typed_errors_at_the_door(extractor, call, words):
    with pytest.raises(graphie.InvalidInputError) as info:
        call(extractor)
    assert words in str(info.value)


@pytest.mark.parametrize("device,words", [
    ("tpu9", "unknown device 'tpu9'"),
    ("cuda", "use device='cpu'"),
    ("cuda:3", "cuda"),
])
def test_devices_are_checked_with_a_hint(model_dir, device, words):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the hint is for machines without it")
    with pytest.raises(graphie.InvalidInputError, match=words.replace("(", r"\(")):
        graphie.load(model_dir, device=device)


def test_cli_refuses_bad_numbers_and_bad_text_in_one_line(model_dir, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "text": "Obama"}\n')
    for flag, value in [("--workers", "0"), ("--batch-size", "x"), ("--num-workers", "0"),
                        ("--relation-threshold", "2")]:
        with pytest.raises(SystemExit) as info:
            main(["extract-file", str(src), "--output", str(tmp_path / "o.jsonl"), flag, value])
        assert info.value.code == 2
        assert flag in capsys.readouterr().err
    assert main(["extract", "--model", str(model_dir), "--text", "Obama \udcff Paris"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lone surrogate" in err
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("graphie ")


def test_a_killed_run_resumes_and_writes_each_id_once(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": f"Obama visits city number {i} with Merkel"}) + "\n"
                           for i in range(150)))
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-c", "import sys; from graphie.cli import main; sys.exit(main(sys.argv[1:]))",
           "extract-file", str(src), "--output", str(out), "--model", str(model_dir), "--batch-size", "4", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while (not out.exists() or out.stat().st_size < 2000) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = out.read_bytes().count(b"\n")
    assert 0 < partial < 150, "the run was not killed mid-way"
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    ids = [json.loads(x)["id"] for x in out.read_text().splitlines()]
    assert sorted(ids) == list(range(150))


def test_draw_writes_the_format_its_suffix_names(extractor, tmp_path):
    from graphie.draw import draw_extraction

    result = extractor.extract("Obama in Paris")
    for name, fmt in [("a.jpg", "JPEG"), ("a.jpeg", "JPEG"), ("a.png", "PNG"), ("a.webp", "WEBP")]:
        draw_extraction(result, None, tmp_path / name)
        assert Image.open(tmp_path / name).format == fmt
    with pytest.raises(graphie.InvalidInputError, match="unknown suffix"):
        draw_extraction(result, None, tmp_path / "a.txt")
    buf = io.BytesIO()
    draw_extraction(result).save(buf, format="PNG")
    assert buf.getvalue()
