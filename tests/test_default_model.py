"""The default model shipped in the package: what a newcomer's first command relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import graphie
from graphie.cli import main

EXAMPLE_IMAGE = Path(__file__).resolve().parent.parent / "examples" / "data" / "astronaut.jpg"


@pytest.fixture(scope="module")
def default():
    return graphie.load("default")


def test_default_model_finds_people_place_and_their_relation(default):
    result = default.extract("Barack Obama and Michelle Obama at the White House")
    people = [e for e in result.entities if e.type == "PER"]
    assert {e.text for e in people} == {"Barack Obama", "Michelle Obama"}
    assert any(e.text.endswith("White House") and e.type in ("LOC", "ORG") for e in result.entities)
    assert any(r.head in people and r.tail in people and r.head is not r.tail for r in result.relations)


def test_default_model_on_the_bundled_example_post(default):
    text = "Astronaut Eileen Collins of NASA poses before the launch of Columbia at Kennedy Space Center"
    result = default.extract(text, str(EXAMPLE_IMAGE))
    assert any(e.text.endswith("Eileen Collins") and e.type == "PER" for e in result.entities)
    assert "person" in [o.label for o in result.scene_graph.objects]
    for e in result.entities:  # evidence points at real objects of this scene graph
        assert all(0 <= ev["object"] < len(result.scene_graph.objects) for ev in e.evidence)


def test_graphie_extract_function_uses_the_default_model():
    result = graphie.extract("Lionel Messi scored for Inter Miami in Florida")
    assert any(e.type == "PER" and "Messi" in e.text for e in result.entities)


def test_evaluate_default_on_a_small_mnre_file(tmp_path, capsys):
    lines = [
        {"token": ["Barack", "Obama", "and", "Michelle", "Obama", "at", "the", "White", "House"],
         "h": {"name": "Barack Obama", "pos": [0, 2]}, "t": {"name": "Michelle Obama", "pos": [3, 5]},
         "img_id": "a.jpg", "relation": "/per/per/couple"},
        {"token": ["Kane", "scores", "again", "for", "Bayern", "Munich"],
         "h": {"name": "Kane", "pos": [0, 1]}, "t": {"name": "Bayern Munich", "pos": [4, 6]},
         "img_id": "b.jpg", "relation": "/per/org/member_of"},
    ]
    data = tmp_path / "mnre_val.txt"
    data.write_text("\n".join(repr(x) for x in lines) + "\n")
    assert main(["evaluate", "default", "--task", "jmere", "--data", str(data)]) == 0
    scores = json.loads(capsys.readouterr().out)
    for key in ("precision", "recall", "f1", "entity_precision", "entity_recall", "entity_f1"):
        assert 0.0 <= scores[key] <= 100.0
    assert scores["entity_n_gold"] == 4


def test_relation_threshold_drops_weak_relations_only(default):
    text = "Barack Obama and Michelle Obama at the White House"
    strict = graphie.load("default", relation_threshold=0.95).extract(text)
    loose = default.extract(text)
    assert [e.key for e in strict.entities] == [e.key for e in loose.entities]
    assert [r.key for r in strict.relations] == [r.key for r in loose.relations if r.score >= 0.95]
    assert len(strict.relations) < len(loose.relations)
    with pytest.raises(graphie.InvalidInputError):
        graphie.load("default", relation_threshold=1.5)
