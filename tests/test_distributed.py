"""The Ray engine on a local cluster (ray.init(num_cpus=2)): the same records as the local engine,
one per input, ids kept; a picklable worker; no import-time cost for users without Ray."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

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


def test_ray_engine_gives_the_local_engines_records(cluster, model_dir, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(LINES) + b"\n")
    common = ["--model", str(model_dir), "--detector", "caption", "--batch-size", "8", "--quiet"]
    assert main(["extract-file", str(src), "--output", str(tmp_path / "local.jsonl"), *common]) == 0
    local_counts = json.loads(capsys.readouterr().out)
    assert main(["extract-file", str(src), "--output", str(tmp_path / "ray.jsonl"), *common,
                 "--engine", "ray", "--num-workers", "2"]) == 0
    assert json.loads(capsys.readouterr().out) == local_counts == {"done": 41, "errors": 6, "skipped": 0}
    local = [json.loads(x) for x in (tmp_path / "local.jsonl").read_text().splitlines()]
    remote = [json.loads(x) for x in (tmp_path / "ray.jsonl").read_text().splitlines()]
    assert remote == local
    assert [r["line"] for r in remote] == list(range(1, len(LINES) + 1))
    assert [r["id"] for r in remote[:3]] == [0, 1, 2] and remote[40]["id"] == "40"

    # Parquet out, and a rerun resumes (nothing left to do).
    assert main(["extract-file", str(src), "--output", str(tmp_path / "ray.parquet"), *common,
                 "--engine", "ray", "--num-workers", "1"]) == 0
    capsys.readouterr()
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "ray.parquet")
    rows = table.to_pylist()
    assert [r["line"] for r in rows] == [r["line"] for r in local]
    assert [r["error"] for r in rows] == [r["error"] for r in local]
    assert [r["id"] for r in rows] == [None if r["id"] is None else str(r["id"]) for r in local]  # mixed ids: strings
    assert main(["extract-file", str(src), "--output", str(tmp_path / "ray.parquet"), *common,
                 "--engine", "ray"]) == 0
    assert json.loads(capsys.readouterr().out) == {"done": 0, "errors": 0, "skipped": len(LINES)}


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
