"""``graphie parse-text``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from graphie.cli import main

NASA = "RT @NASA: Astronaut Scott Kelly lands in Kazakhstan after a year in space https://t.co/x #YearInSpace"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["parse-text", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_parse_text_json(capsys):
    code, out, err = run(capsys, NASA)
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert set(doc) == {"tokens", "pos", "arcs"}
    tokens = doc["tokens"]
    assert len(doc["pos"]) == len(tokens) and len(doc["arcs"]) == len(tokens) - 1
    arcs = {(tokens[a["head"]], tokens[a["dep"]]): a["label"] for a in doc["arcs"]}
    assert arcs[("lands", "Kelly")] == "nsubj" and arcs[("in", "Kazakhstan")] == "pobj"
    assert "https://t.co/x" in tokens and tokens[-2:] == ["#", "YearInSpace"]  # split as the benchmarks split it


def test_pretokenised_option(capsys):
    code, out, _ = run(capsys, "--tokens", "RT @user : Can't   wait 😍😍")
    assert code == 0
    assert json.loads(out)["tokens"] == ["RT", "@user", ":", "Can't", "wait", "😍😍"]


def test_text_from_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Obama visited Harvard\n"))
    code, out, _ = run(capsys, "-")
    assert code == 0 and json.loads(out)["tokens"] == ["Obama", "visited", "Harvard"]


@pytest.mark.parametrize("argv", [[" "], ["--tokens", "  "]])
def test_empty_text_is_a_one_line_error(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("graphie parse-text: error:") and err.count("\n") == 1


def test_console_script():
    script = Path(sys.executable).with_name("graphie")
    if not script.exists():
        pytest.skip("the graphie console script is not installed next to this interpreter")
    done = subprocess.run([str(script), "parse-text", "Obama visited Harvard"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["arcs"] == [{"head": 1, "dep": 0, "label": "nsubj"}, {"head": 1, "dep": 2, "label": "dobj"}]
