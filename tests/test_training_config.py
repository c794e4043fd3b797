"""The training config travels typed: every shipped config parses, a bad key is a one-line error
naming it, ``--set`` overrides land in the typed sections, and the trainer reads the typed data
section (its defaults in one place) down to each extra training set."""

import json
from pathlib import Path

import pytest

from graphie.cli import main
from graphie.cli.train import _override
from graphie.errors import InvalidInputError
from graphie.models.config import ModelConfig
from graphie.training.trainer import DataConfig, RunConfig, _examples_for, load_posts
from test_training import fixture_lines

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.json"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_parses(path):
    raw = json.loads(path.read_text(encoding="utf-8"))
    run = RunConfig.from_dict(raw)
    assert isinstance(run.data, DataConfig) and all(isinstance(spec, DataConfig) for spec in run.data.extra)
    assert len(run.data.extra) == len(raw["data"].get("extra", []))
    for key, value in raw["data"].items():  # the typed section holds what the file says
        if key != "extra":
            assert getattr(run.data, key) == value, key


@pytest.mark.parametrize("data, named", [
    ({"format": "mnre", "txain": "x.txt"}, "txain"),
    ({"format": "tweets"}, "format"),
    ({"format": "jmere", "extra": [{"format": "twitter", "train": "t.txt", "scene": "photo"}]}, "scene"),
    ({"format": "jmere", "extra": [{"format": "twitter", "train": "t.txt", "dev": "d.txt"}]}, "extra.0.dev"),
    ({"format": "jmere", "extra": [{"format": "twitter", "train": "t.txt", "extra": [{"format": "pgim"}]}]},
     "extra.0.extra"),
])
def test_a_bad_data_section_is_one_typed_line_naming_the_key(data, named):
    with pytest.raises(InvalidInputError, match=named) as info:
        RunConfig.from_dict({"data": data})
    assert "\n" not in str(info.value)
    with pytest.raises(InvalidInputError, match=named):
        load_posts(data, "train")  # a dict given to load_posts is checked as the same section


def test_a_nested_section_problem_reads_once_with_its_dotted_path():
    """pydantic runs each nested section's own check; its message is carried up, not wrapped."""
    with pytest.raises(InvalidInputError) as info:
        RunConfig.from_dict({"data": {"format": "mnre", "train": "x", "colour": 1},
                             "model": {"task": "mnre", "head": "marker", "gnn_layers": 1}})
    assert str(info.value) == ("RunConfig: data.colour: Extra inputs are not permitted; "
                               "model: head 'marker' reads the marked sequence: set gnn_layers 0")


def test_load_posts_names_a_missing_split_and_a_bad_one(tmp_path):
    with pytest.raises(InvalidInputError, match="no 'dev' path"):
        load_posts(DataConfig(format="mnre", train="x.txt"), "dev")
    with pytest.raises(InvalidInputError, match="split must be 'train' or 'dev'"):
        load_posts({"format": "mnre", "train": "x.txt"}, "test")


def test_set_overrides_land_typed_and_a_bad_one_stops_before_any_work(tmp_path, capsys):
    config = {"data": {"format": "jmere_from_mnre", "train": "a.txt", "dev": "a.txt"}}
    for dotted in ("data.scene=caption", "data.image_context=true", "training.max_train=5", "data.notes=[\"n.txt\"]"):
        _override(config, dotted)
    run = RunConfig.from_dict(config)
    data = run.data
    assert (data.scene, data.image_context, run.training.max_train, data.notes) == ("caption", True, 5, ["n.txt"])
    # data.max_train sizes extra sets only: on the main set it is an error, not a silent no-op
    _override(config, "data.max_train=5")
    with pytest.raises(InvalidInputError, match="training.max_train"):
        RunConfig.from_dict(config)

    path = tmp_path / "run.json"
    path.write_text(json.dumps({"data": {"format": "jmere_from_mnre", "train": "a.txt", "dev": "a.txt"}}))
    out = tmp_path / "out"
    assert main(["train", str(path), "--output", str(out), "--set", "data.captoins=c.txt"]) == 2
    assert "captoins" in capsys.readouterr().err and not out.exists()


def test_each_extra_set_is_read_with_its_own_typed_options(tmp_path):
    data = tmp_path / "mini.txt"
    data.write_text("\n".join(repr(d) for d in fixture_lines()[:6]) + "\n", encoding="utf-8")
    run = RunConfig.from_dict({"data": {"format": "jmere_from_mnre", "train": str(data), "extra": [
        {"format": "jmere_from_mnre", "train": str(data), "entities_only": True, "max_train": 1},
        {"format": "jmere_from_mnre", "train": str(data), "relations_only": True}]}})
    cfg = ModelConfig(task="jmere")
    main_set, entities_only, relations_only = (
        _examples_for(load_posts(spec, "train")[: spec.max_train], spec, cfg, None)[0]
        for spec in (run.data, *run.data.extra))
    assert all(ex.relations_known and ex.entities_known for ex in main_set)
    assert len(entities_only) == 1 and not entities_only[0].relations_known and entities_only[0].entities_known
    assert all(ex.relations_known and not ex.entities_known for ex in relations_only)
