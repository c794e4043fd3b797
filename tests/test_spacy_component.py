"""graphie inside spaCy: the ``graphie`` factory (found through the package's entry point), what
it writes on a Doc, and :meth:`Extraction.to_spacy` with the parse and the scores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy import displacy
from spacy.tokens import Doc, DocBin

import graphie
from graphie.spacy_component import GraphieComponent
from graphie.spacy_doc import SPAN_KEY, write_extraction

EXAMPLE_IMAGE = Path(__file__).resolve().parent.parent / "examples" / "data" / "astronaut.jpg"


@pytest.fixture(scope="module")
def nlp():
    """A blank English pipeline with graphie's default model as its only component."""
    nlp = spacy.blank("en")
    nlp.add_pipe("graphie", config={"model": "default"})
    return nlp


@pytest.fixture(scope="module")
def default(nlp):
    """The component's extractor, for the tests that call graphie directly."""
    return nlp.get_pipe("graphie").extractor


def test_add_pipe_in_a_fresh_interpreter_through_the_entry_point():
    """The issue's command, verbatim: graphie is never imported by hand, spaCy finds the factory."""
    code = "import spacy; nlp = spacy.blank('en'); nlp.add_pipe('graphie'); print(nlp('Barack Obama visited Paris').ents)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(Barack Obama, Paris)"


def test_making_a_spacy_pipeline_stays_cheap():
    """spaCy imports every spacy_factories entry point whenever it makes a pipeline: ours must
    not load graphie's models or image parsers then."""
    code = ("import sys, spacy; spacy.blank('en'); "
            "print(*('graphie.spacy_component' in sys.modules, 'graphie.models' in sys.modules, "
            "'parsers.image' in sys.modules, 'parsers.text' in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "False", "False", "False"]


def test_doc_gets_entities_spans_scores_and_relations(nlp):
    doc = nlp("Barack Obama and Michelle Obama at the White House")
    assert [(e.text, e.label_) for e in doc.ents][:2] == [("Barack Obama", "PER"), ("Michelle Obama", "PER")]
    group = doc.spans[SPAN_KEY]
    assert len(group.attrs["scores"]) == len(group) >= len(doc.ents)
    assert all(0.0 < s <= 1.0 for s in group.attrs["scores"])
    assert doc._.relations, "the default model relates the two people"
    for r in doc._.relations:
        assert set(r) == {"head", "tail", "label", "score"}
        assert 0 <= r["head"] < len(group) and 0 <= r["tail"] < len(group) and 0.0 < r["score"] <= 1.0
    people = {group[r["head"]].text for r in doc._.relations} | {group[r["tail"]].text for r in doc._.relations}
    assert {"Barack Obama", "Michelle Obama"} <= people
    assert doc._.scene_graph is None  # no image


def test_findings_are_plain_data_that_survive_serialisation(nlp):
    doc = nlp("Thanks @Ryanair for the flight to Dublin")
    store = DocBin(store_user_data=True, docs=[doc])
    (back,) = DocBin().from_bytes(store.to_bytes()).get_docs(nlp.vocab)
    assert list(back._.relations) == doc._.relations  # msgpack reads arrays back as tuples
    assert list(back.spans[SPAN_KEY].attrs["scores"]) == doc.spans[SPAN_KEY].attrs["scores"]
    assert [(e.text, e.label_) for e in back.ents] == [(e.text, e.label_) for e in doc.ents]


def test_other_tokenisation_is_mapped_by_character_offsets(nlp, default):
    """The blank tokenizer keeps "@Ryanair" as one token; graphie's entity is "Ryanair"."""
    text = "Thanks @Ryanair for the flight to Dublin"
    doc = nlp(text)
    assert "@Ryanair" in [t.text for t in doc]
    assert [(e.text, e.label_) for e in doc.ents] == [("@Ryanair", "ORG"), ("Dublin", "LOC")]  # expanded
    contract = write_extraction(nlp.make_doc(text), default.extract(text), alignment_mode="contract")
    assert [e.text for e in contract.ents] == ["Dublin"]  # no whole token inside "Ryanair"
    assert contract._.relations == []  # the relation lost its head with it
    with pytest.raises(graphie.InvalidInputError, match="alignment_mode"):
        write_extraction(nlp.make_doc(text), default.extract(text), alignment_mode="loose")
    with pytest.raises(graphie.InvalidInputError, match="another text"):
        write_extraction(nlp.make_doc("Other text"), default.extract(text))


def test_pipe_equals_one_by_one_and_empty_docs_pass(nlp):
    texts = ["Barack Obama visited Paris", "   ", "Lionel Messi scored for Inter Miami", ""]
    piped = list(nlp.pipe(texts, batch_size=3))
    single = [nlp(t) for t in texts]
    for a, b in zip(piped, single):
        assert [(e.start_char, e.end_char, e.label_) for e in a.ents] == [(e.start_char, e.end_char, e.label_) for e in b.ents]
        assert a._.relations == b._.relations
    assert piped[1].ents == () and piped[1]._.relations == [] and len(piped[3].spans[SPAN_KEY]) == 0


def test_image_in_doc_gives_scene_graph(nlp):
    doc = nlp.make_doc("Astronaut Eileen Collins of NASA poses before the launch of Columbia")
    doc._.image = str(EXAMPLE_IMAGE)
    doc = nlp.get_pipe("graphie")(doc)
    assert doc._.scene_graph["objects"][0]["label"] == "image"
    assert "person" in [o["label"] for o in doc._.scene_graph["objects"]]
    assert all("feature" not in o for o in doc._.scene_graph["objects"])
    json.dumps(doc._.scene_graph)  # plain data
    bad = nlp.make_doc("Obama")
    bad._.image = b"not an image"
    with pytest.raises(graphie.ImageError):
        nlp.get_pipe("graphie")(bad)


def test_bad_settings_are_typed_errors(default):
    with pytest.raises(graphie.InvalidInputError, match="alignment_mode"):
        GraphieComponent(alignment_mode="nearest", extractor=default)
    with pytest.raises(graphie.InvalidInputError, match="batch_size"):
        GraphieComponent(batch_size=0, extractor=default)
    with pytest.raises(graphie.ModelLoadError):
        spacy.blank("en").add_pipe("graphie", config={"model": "no-such-model"})


def test_to_spacy_keeps_the_parse_and_the_scores(default):
    result = default.extract("Barack Obama and Michelle Obama at the White House #DC")
    doc = result.to_spacy()
    graph = result.text_graph
    assert [t.text for t in doc] == result.tokens
    assert [t.head.i for t in doc] == graph.heads and [t.dep_ for t in doc] == graph.deps
    assert [t.pos_ for t in doc] == graph.pos and [t.lemma_ for t in doc] == graph.lemmas
    assert doc.spans[SPAN_KEY].attrs["scores"] == [round(e.score, 6) for e in result.entities]
    assert [(s.start, s.end, s.label_) for s in doc.spans[SPAN_KEY]] == [e.key for e in result.entities]
    assert [(r["head"], r["tail"], r["label"]) for r in doc._.relations] == [
        (result.entities.index(r.head), result.entities.index(r.tail), r.label) for r in result.relations]
    # displaCy draws both views of it.
    assert "Barack Obama" in displacy.render(doc, style="ent") and "<svg" in displacy.render(doc, style="dep")
    # A result read back from JSON holds copies of its entities in the relations: still matched.
    back = graphie.Extraction.from_dict(json.loads(json.dumps(result.to_dict()))).to_spacy()
    assert back._.relations == doc._.relations


def test_to_spacy_of_a_result_without_graph():
    e = graphie.Entity(graphie.Span(0, 2, "Barack Obama"), "PER", 0.9)
    result = graphie.Extraction("Barack Obama  visited", ["Barack", "Obama", "visited"], [e])
    doc = result.to_spacy(spacy.blank("en").vocab)
    # The Doc's text is the words and single spaces; the entity sits on its words.
    assert isinstance(doc, Doc) and doc.text == "Barack Obama visited" and [e.text for e in doc.ents] == ["Barack Obama"]
