"""Every script in examples/ runs in its smallest setting (``--quick``) and does what it says.

The scripts run as users run them (a subprocess, from another working directory); the model the
others use is the one ``train_small.py --quick`` trains, so nothing here needs the shipped model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "2", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("train_small")
    out = run_example("train_small.py", "--quick", "--output", "model", cwd=work)
    return work / "model", out


def test_every_example_is_tested():
    tested = {"train_small.py", "parse_images_to_cache.py", "batch_extract.py", "draw.py", "quickstart.py",
              "synthetic_evidence.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_train_small_writes_a_loadable_model(small_model):
    folder, out = small_model
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    config = json.loads((folder / "config.json").read_text())
    assert config["model"]["task"] == "jmere"
    assert sorted(config["model"]["entity_types"]) == ["ORG", "PER"]
    assert '"train": {"posts": 32, "relations": 64}' in out
    assert "best epoch 1: relations P" in out and "entities:" in out


def test_parse_images_to_cache_reuses_the_cache(tmp_path):
    out = run_example("parse_images_to_cache.py", "--quick", "--cache-dir", "cache", cwd=tmp_path)
    first, second = [json.loads(line.strip()) for line in out.splitlines() if line.strip().startswith("{")]
    assert first["images"] == first["parsed"] == second["parsed"] == 1 and first["failed"] == 0
    found = next(line for line in out.splitlines() if line.strip().startswith("astronaut.jpg:"))
    assert "person" in found.split("(tags")[0]  # the bundled photo shows a person
    assert second["seconds"] < first["seconds"]
    records = list((tmp_path / "cache").rglob("*.json"))
    assert len(records) == 1 and "1 scene graphs cached" in out


def test_batch_extract_one_line_per_input_and_resumes(small_model, tmp_path):
    folder, _ = small_model
    out = run_example("batch_extract.py", "--quick", "--model", str(folder), "--output", "out/out.jsonl",
                      cwd=tmp_path)
    assert 'first run: {"done": 3, "errors": 4, "skipped": 0}' in out
    assert 'rerun (resumes): {"done": 0, "errors": 0, "skipped": 7}' in out
    lines = [json.loads(line) for line in (tmp_path / "out" / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == ["obama", "collins", "messi", "empty", "no-image", None, None]
    assert [r["line"] for r in lines] == list(range(1, 8))
    assert [r["error"] is None for r in lines] == [True, True, True, False, False, False, False]
    assert lines[4]["error"]["type"] == "ImageError"


def test_draw_writes_both_pictures(small_model, tmp_path):
    folder, _ = small_model
    out = run_example("draw.py", "--quick", "--model", str(folder), "--output-dir", "pics", cwd=tmp_path)
    scene, extraction = Image.open(tmp_path / "pics" / "scene_graph.png"), Image.open(tmp_path / "pics" / "extraction.png")
    assert scene.format == extraction.format == "PNG"
    assert scene.width > 512 and extraction.height > 512  # the 512x512 photo plus a panel / the text below
    assert "objects" in out


def test_quickstart_with_a_saved_model(small_model, tmp_path):
    folder, _ = small_model
    out = run_example("quickstart.py", "--quick", "--model", str(folder), cwd=tmp_path)
    assert out.startswith("tokens: ['Astronaut', 'Eileen', 'Collins'")
    assert "scene graph: 0:image, 1:person" in out


def test_quickstart_with_the_shipped_default_model(tmp_path):
    out = run_example("quickstart.py", "--quick", cwd=tmp_path)
    lines = out.splitlines()
    assert lines[0].startswith("tokens: ['Astronaut', 'Eileen', 'Collins'")
    people = [line for line in lines if line.startswith("entity") and " PER " in line]
    assert any("'Eileen Collins'" in line for line in people)  # the astronaut, by name
    assert "scene graph: 0:image, 1:person" in out


def test_synthetic_evidence_prints_each_names_evidence(tmp_path):
    # A tiny routed model (48 posts, one epoch): the script's output, not the routing quality,
    # which benchmarks/RESULTS_alignment.md measures on a full run.
    from graphie.synthetic import write_synthetic
    from graphie.training.trainer import train

    write_synthetic(tmp_path / "data", train=48, valid=16, seed=0)
    config = json.loads((EXAMPLES.parent / "configs" / "synthetic_routed.json").read_text())
    config["data"].update(train=str(tmp_path / "data" / "train.json"), dev=str(tmp_path / "data" / "valid.json"),
                          scene_graphs=str(tmp_path / "data" / "scene_graphs.json"))
    config["training"].update(epochs=1, num_threads=2)
    train(config, tmp_path / "model", progress=False)
    out = run_example("synthetic_evidence.py", "--model", str(tmp_path / "model"), "--posts", "2", cwd=tmp_path)
    person_lines = [line for line in out.splitlines() if "evidence:" in line]
    assert all("relation:" in line and "(gold " in line for line in person_lines)
    assert out.rstrip().splitlines()[-1].startswith("top evidence on the name's own person node: ")
