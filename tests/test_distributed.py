"""The Ray engine on a local cluster (ray.init(num_cpus=2)): the same records as the local engine,
one per input, ids kept; a picklable worker; no import-time cost for users without Ray."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import graphie
from graphie.cli import main

ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra: pip install 'graphie[ray]'")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


LINES = [json.dumps({"id": i, "text": f"Obama and Michelle visit city {i} with Merkel"}).encode() for i in range(40)] + [
    json.dumps({"id": "40", "text": "Messi joins Inter Miami", "caption": "a man holding a shirt"}).encode(),
    b'{"id": 41, "txet": "misspelt"}', b'{"id": "torn", "text": "Obama', b'{"id": "x", "text": "caf\xe9"}',
    b'{"id": 3, "text": "a duplicate id"}', b'["not an object"]', b'{"text": "no id"}',
]


def test_ray_engine_gives_the_local_engines_records(cluster, model_dir, tmp_path, capfd):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(LINES) + b"\n")
    common = ["--model", str(model_dir), "--detector", "caption", "--batch-size", "8", "--quiet"]
    assert main(["extract-file", str(src), "--output", str(tmp_path / "local.jsonl"), *common]) == 0
    local_counts = json.loads(capfd.readouterr().out)
    assert main(["extract-file", str(src), "--output", str(tmp_path / "ray.jsonl"), *common,
                 "--engine", "ray", "--num-workers", "2"]) == 0
    out = capfd.readouterr().out  # at the descriptor: what Ray's processes write too
    assert out.count("\n") == 1, out  # the counts alone, for scripts that read them
    assert json.loads(out) == local_counts == {"done": 41, "errors": 6, "skipped": 0}
    local = [json.loads(x) for x in (tmp_path / "local.jsonl").read_text().splitlines()]
    remote = [json.loads(x) for x in (tmp_path / "ray.jsonl").read_text().splitlines()]
    assert remote == local
    assert [r["line"] for r in remote] == list(range(1, len(LINES) + 1))
    assert [r["id"] for r in remote[:3]] == [0, 1, 2] and remote[40]["id"] == "40"

    # Parquet out, and a rerun resumes (nothing left to do).
    assert main(["extract-file", str(src), "--output", str(tmp_path / "ray.parquet"), *common,
                 "--engine", "ray", "--num-workers", "1"]) == 0
    capfd.readouterr()
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "ray.parquet")
    rows = table.to_pylist()
    assert [r["line"] for r in rows] == [r["line"] for r in local]
    assert [r["error"] for r in rows] == [r["error"] for r in local]
    assert [r["id"] for r in rows] == [None if r["id"] is None else str(r["id"]) for r in local]  # mixed ids: strings
    assert main(["extract-file", str(src), "--output", str(tmp_path / "ray.parquet"), *common,
                 "--engine", "ray"]) == 0
    assert json.loads(capfd.readouterr().out) == {"done": 0, "errors": 0, "skipped": len(LINES)}


def test_ray_engine_gives_stored_captions_and_notes_as_the_local_engine_does(cluster, tmp_path, capfd):
    import torch

    from graphie.models import GraphieModel, ModelConfig

    reader = tmp_path / "reader"  # an untrained tagger that reads captions and notes: the plumbing, not quality
    torch.manual_seed(0)
    GraphieModel(ModelConfig(task="ner", head="bio", entity_types=["LOC", "ORG", "PER"],
                             context=["caption", "notes"])).save_pretrained(reader)
    captions = tmp_path / "captions.txt"
    captions.write_text("a.jpg :a man waving at a crowd\n", encoding="utf-8")
    notes = tmp_path / "notes.txt"  # PGIM's format: the tweet's tagged tokens, <EOS>, the note's tokens
    notes.write_text("Obama\tB-PER\nvisits\tO\nParis\tB-LOC\n<EOS>\tX\n"
                     + "".join(f"{w}\tX\n" for w in "Obama is a politician .".split()) + "\n", encoding="utf-8")
    shutil.copy(Path(__file__).resolve().parent.parent / "examples" / "data" / "astronaut.jpg", tmp_path / "a.jpg")
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": 1, "text": "Obama visits Paris", "image": "a.jpg"}, {"id": 2, "text": "Merkel in Berlin"},
        {"id": 3, "text": "Obama visits Paris"}]), encoding="utf-8")
    plain_args = ["--model", str(reader), "--quiet", "--images", str(tmp_path)]
    common = [*plain_args, "--captions", str(captions), "--notes", str(notes)]
    assert main(["extract-file", str(src), "--output", str(tmp_path / "local.jsonl"), *common]) == 0
    assert main(["extract-file", str(src), "--output", str(tmp_path / "plain.jsonl"), *plain_args]) == 0
    assert main(["extract-file", str(src), "--output", str(tmp_path / "ray.jsonl"), *common,
                 "--engine", "ray", "--num-workers", "1"]) == 0
    capfd.readouterr()
    local, plain, remote = ([json.loads(x) for x in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
                            for name in ("local", "plain", "ray"))
    assert remote == local and not any(r["error"] for r in remote)
    assert local[0]["entities"] != plain[0]["entities"]  # the stored caption and note reached the model
    assert local[2]["entities"] != plain[2]["entities"]  # the note alone too (no image, same words)


@pytest.mark.slow
def test_a_worker_killed_mid_batch_is_restarted_and_loses_nothing(cluster, model_dir, tmp_path):
    from graphie.batch import write_records
    from graphie.distributed import extract_rows

    class DiesOnce:
        """A scene-graph source whose first call kills the process it runs in (a Ray worker)."""

        name = "dies-once"

        def __init__(self, marker):
            self.marker = str(marker)

        def graph_for(self, image_id):
            import os

            from parsers.image import caption_scene_graph

            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return caption_scene_graph("a man holding a dog")
            os._exit(1)

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": f"Obama visits city {i}", "image": f"{i}.jpg"}) + "\n"
                           for i in range(12)))
    marker = tmp_path / "killed"
    counts = write_records(src, tmp_path / "ray.jsonl", lambda rows: extract_rows(
        rows, str(model_dir), num_workers=1, batch_size=4, detector=DiesOnce(marker)))
    assert marker.exists(), "no worker was killed"
    assert counts == {"done": 12, "errors": 0, "skipped": 0}
    local = graphie.load(model_dir, detector=DiesOnce(marker))
    write_records(src, tmp_path / "local.jsonl", lambda rows: __import__("graphie.batch").batch.extract_rows(
        local, rows, progress=False))
    assert (tmp_path / "ray.jsonl").read_text() == (tmp_path / "local.jsonl").read_text()


def test_extract_dataset_maps_records_over_an_actor_pool(cluster, model_dir):
    from graphie.distributed import extract_dataset

    records = [{"id": i, "text": f"Obama visits Paris on day {i}"} for i in range(30)] + [{"id": 30, "text": "  "}]
    ds = extract_dataset(ray.data.from_items(records), str(model_dir), num_workers=2, batch_size=8,
                         detector="caption")
    rows = ds.take_all()
    expected = graphie.load(model_dir, detector="caption").extract_batch(records)
    assert [r["id"] for r in rows] == list(range(31))
    assert rows == expected
    assert rows[-1]["error"]["field"] == "text"


def test_worker_ships_its_recipe_not_its_model(model_dir):
    from graphie.distributed import Worker

    worker = Worker(str(model_dir), batch_size=4, detector="caption")
    assert worker.extract_batch([{"id": "a", "text": "Obama in Paris"}])[0]["id"] == "a"
    assert worker._extractor is not None
    clone = pickle.loads(pickle.dumps(worker))
    assert clone._extractor is None and len(pickle.dumps(worker)) < 2000
    assert clone.extract_batch([{"id": "a", "text": "Obama in Paris"}]) == \
        worker.extract_batch([{"id": "a", "text": "Obama in Paris"}])


def test_importing_graphie_does_not_import_ray():
    code = "import sys, graphie, graphie.distributed, graphie.cli; print('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
