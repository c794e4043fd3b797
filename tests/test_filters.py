"""What a user sees, filtered: ``threshold=`` (least entity score) and ``labels=`` (entity types and
relation labels) on graphie.extract, Extractor.extract / extract_many, the CLI and the spaCy
component, with the default model."""

from __future__ import annotations

import json

import pytest

import graphie
from graphie.api import filter_extraction
from graphie.cli import main

TEXT = "Barack Obama and Michelle Obama at the White House"


@pytest.fixture(scope="module")
def default():
    return graphie.load("default", device="cpu")


@pytest.fixture(scope="module")
def whole(default):
    result = default.extract(TEXT)
    assert {e.type for e in result.entities} >= {"PER"} and result.relations
    return result


def keys(result):
    return [e.key for e in result.entities], [r.key for r in result.relations]


def test_labels_keep_entity_types_and_the_relations_among_them(default, whole):
    people = default.extract(TEXT, labels=["PER"])
    assert [e.key for e in people.entities] == [e.key for e in whole.entities if e.type == "PER"]
    assert [r.key for r in people.relations] == [
        r.key for r in whole.relations if r.head.type == "PER" and r.tail.type == "PER"]
    assert people.tokens == whole.tokens and people.text_graph is not None


def test_labels_naming_a_relation_keep_every_entity(default, whole):
    label = whole.relations[0].label
    result = default.extract(TEXT, labels=[label])
    assert [e.key for e in result.entities] == [e.key for e in whole.entities]
    assert [r.key for r in result.relations] == [r.key for r in whole.relations if r.label == label]


def test_threshold_drops_weak_entities_and_their_relations(default, whole):
    cut = sorted(e.score for e in whole.entities)[len(whole.entities) // 2]
    result = default.extract(TEXT, threshold=cut)
    kept = [e for e in whole.entities if e.score >= cut]
    assert [e.key for e in result.entities] == [e.key for e in kept]
    assert 0 < len(result.entities) < len(whole.entities)
    assert all(r.head.score >= cut and r.tail.score >= cut for r in result.relations)
    assert keys(default.extract(TEXT, threshold=0.0)) == keys(whole)


def test_settings_of_the_extractor_and_per_call(default, whole):
    strict = graphie.load("default", device="cpu", labels=["LOC", "ORG"])
    found = strict.extract(TEXT)
    assert {e.type for e in found.entities} <= {"LOC", "ORG"} and found.entities
    assert {e.type for e in strict.extract(TEXT, labels=["PER"]).entities} == {"PER"}  # the call wins
    many = list(strict.extract_many([TEXT, {"text": TEXT}], progress=False))
    assert [keys(m) for m in many] == [keys(found)] * 2
    assert [keys(m) for m in default.extract_many([TEXT], progress=False, labels=["PER"], threshold=0.0)] == [
        keys(default.extract(TEXT, labels=["PER"]))]
    assert [keys(m) for m in default.extract([TEXT], threshold=0.0)] == [keys(whole)]


def test_graphie_extract_takes_the_filters():
    result = graphie.extract(TEXT, labels=["PER"], threshold=0.1)
    assert result.entities and {e.type for e in result.entities} == {"PER"}


@pytest.mark.parametrize("kwargs, message", [
    ({"labels": ["PERSON"]}, "not predicted by this model"),
    ({"labels": []}, "non-empty"),
    ({"labels": [1]}, "non-empty list"),
    ({"threshold": 1.5}, "threshold"),
    ({"threshold": "0.5"}, "threshold"),
])
def test_bad_filters_are_one_line_errors(default, kwargs, message):
    with pytest.raises(graphie.InvalidInputError, match=message) as info:
        default.extract(TEXT, **kwargs)
    assert "\n" not in str(info.value)
    with pytest.raises(graphie.InvalidInputError, match=message):
        default.extract_many([TEXT], **kwargs)


def test_filtering_leaves_the_result_unchanged(whole):
    before = keys(whole)
    filter_extraction(whole, 0.99, frozenset({"LOC"}), frozenset())
    assert keys(whole) == before


def test_cli_threshold_and_labels(capsys, default):
    assert main(["extract", "--device", "cpu", "--text", TEXT, "--labels", "PER", "--threshold", "0.1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["entities"] and {e["type"] for e in out["entities"]} == {"PER"}
    assert main(["extract", "--text", TEXT, "--labels", "NOPE"]) == 2
    assert "NOPE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["extract", "--text", TEXT, "--threshold", "2"])


def test_cli_extract_file_applies_the_filters(tmp_path, capsys):
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"id": 1, "text": TEXT}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["extract-file", str(data), "--output", str(out), "--device", "cpu", "--labels", "LOC,ORG"]) == 0
    record = json.loads(out.read_text().splitlines()[0])
    assert record["entities"] and {e["type"] for e in record["entities"]} <= {"LOC", "ORG"}


def test_spacy_component_config(default):
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    nlp.add_pipe("graphie", config={"labels": ["PER"], "threshold": 0.1})
    doc = nlp(TEXT)
    assert doc.ents and {e.label_ for e in doc.ents} == {"PER"}
    with pytest.raises(graphie.InvalidInputError, match="not predicted"):
        spacy.blank("en").add_pipe("graphie", config={"labels": ["PERSON"]})


def test_spacy_pipeline_with_filters_saves_and_loads(tmp_path):
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    nlp.add_pipe("graphie", config={"labels": ["PER"], "threshold": 0.1})
    nlp.to_disk(tmp_path / "pipeline")  # spaCy reads each component's "labels" when saving
    again = spacy.load(tmp_path / "pipeline")
    assert again.get_pipe("graphie").threshold == 0.1
    assert {e.label_ for e in again(TEXT).ents} == {"PER"}
