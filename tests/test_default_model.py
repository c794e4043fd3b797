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


# A Twitter-2017 validation post (id O_3328) and PGIM's LLM note of it
# (``../shared/data/pgim2017/valid.txt``): the example of the model card and the quickstart.
FRANCO = "Lucy Liu and Snoop Dogg join James Franco's Future World..."
FRANCO_NOTES = ("Named entities:1. Lucy Liu (person/actress)2. Snoop Dogg (person/musician)3. James Franco "
                "(person/actor/director)4. Future World (title of a movie)Reasoning:The sentence mentions Lucy Liu "
                "and Snoop Dogg, who are both famous individuals in the entertainment industry. James Franco is "
                "mentioned as the creator or director of the movie \"Future World\" which is likely the movie being "
                "referred to. The image does not seem to be related to the sentence as it only shows a man sitting "
                "with his hands on his head and does not provide any context or clues.")


def spans(result):
    return sorted((e.text, e.type) for e in result.entities)


def test_default_model_reads_notes_through_its_context_adapter(default):
    """The shipped default reads LLM notes (its context adapter), and only notes: a caption alone
    does not reach it (captions cost about 1 F1 on JMERE, benchmarks/RESULTS_context.md)."""
    assert default.model.config.context == ["notes"] and default.model.config.context_adapter > 0
    people = [("James Franco", "PER"), ("Lucy Liu", "PER"), ("Snoop Dogg", "PER")]
    alone = default.extract(FRANCO)
    assert spans(alone) == sorted(people + [("World", "MISC")])
    assert spans(default.extract(FRANCO, context=FRANCO_NOTES)) == sorted(people + [("Future World", "MISC")])  # gold
    captioned = default.extract(FRANCO, caption="a man sitting with his hands on his head")
    assert spans(captioned) == spans(alone)
    assert [round(e.score, 6) for e in captioned.entities] == [round(e.score, 6) for e in alone.entities]
