"""Long posts: cut into overlapping windows the encoder reads whole, findings merged back by
character offsets, nothing dropped silently (graphie.pipeline, TextGraph.window)."""

from __future__ import annotations

import pytest

import graphie
from graphie.pipeline import Windows, merge, plan_windows, split
from graphie.types import Entity, Extraction, Relation, Span
from parsers.text import TextParser


@pytest.mark.parametrize("pieces,budget,overlap", [
    ([1] * 100, 10, 4), ([1, 3, 2] * 40, 12, 5), ([2] * 7, 62, 16), ([1, 30, 1, 1, 30, 2] * 5, 31, 16),
    ([70, 1, 1], 62, 16),  # a word longer than the budget gets a window of its own
])
def test_windows_cover_every_word_within_budget_and_overlap(pieces, budget, overlap):
    spans = plan_windows(pieces, budget, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == len(pieces)
    for (s, e), (s2, e2) in zip(spans, spans[1:]):
        assert s < s2 <= e < e2  # consecutive, no gap, always moving on
        assert e - s2 <= overlap
    for s, e in spans:
        assert e - s == 1 or sum(pieces[s:e]) <= budget
    windows = plan_windows([1] * 100, 10, 4)
    assert all(e - s2 == 4 for (_, e), (s2, _) in zip(windows, windows[1:]))


@pytest.fixture(scope="module")
def parser():
    return TextParser()


def test_window_of_a_graph_is_a_tree_with_the_whole_texts_offsets(parser):
    text = "Obama met Merkel in Berlin. Then they flew to Paris with Macron and visited the Louvre."
    graph = parser.parse(text)
    for start, end in [(0, 5), (3, 12), (5, len(graph)), (7, 8)]:
        w = graph.window(start, end)
        assert w.tokens == graph.tokens[start:end]
        assert len(w.roots) == 1
        assert all(text[s:s + len(t)] == t for s, t in zip(w.starts, w.tokens))
        assert (w.distance_matrix() >= 0).all()  # one tree: every pair connected
    with pytest.raises(graphie.InvalidInputError):
        graph.window(3, 3)


def _entity(graph, start, end, label, score):
    s, e = graph.char_span(start, end)
    return Entity(Span(start, end, graph.text[s:e], s, e), label, score)


def test_merge_keeps_whole_best_entities_and_their_relations(parser):
    text = "Barack Obama and Michelle Obama met Angela Merkel in Berlin on Monday"
    graph = parser.parse(text)
    cut = Windows(graph, [(0, 8), (4, 12)], [graph.window(0, 8), graph.window(4, 12)], False)
    w0, w1 = cut.graphs
    # window 0: Obamas, and "Angela Merkel" cut at its end ("Angela" alone: word 6-7 of 8 ends at the edge)
    a0 = [_entity(w0, 0, 2, "PER", 0.9), _entity(w0, 3, 5, "PER", 0.6), _entity(w0, 6, 8, "ORG", 0.99)]
    # window 1 (words 4..11): "Obama" (word 4) starts at its inner edge; Merkel whole; Berlin
    a1 = [_entity(w1, 0, 1, "PER", 0.95), _entity(w1, 2, 4, "PER", 0.8), _entity(w1, 5, 6, "LOC", 0.7)]
    r0 = [Relation(a0[0], a0[1], "couple", 0.7)]
    r1 = [Relation(a1[1], a1[2], "present_in", 0.5)]
    results = [Extraction(text, w0.tokens, a0, r0, w0), Extraction(text, w1.tokens, a1, r1, w1)]
    merged = merge(cut, results)
    assert merged.windows == 2 and merged.tokens == graph.tokens and merged.text_graph is graph
    assert [(e.text, e.type, e.span.start) for e in merged.entities] == [
        ("Barack Obama", "PER", 0), ("Michelle Obama", "PER", 3), ("Angela Merkel", "PER", 6), ("Berlin", "LOC", 9)]
    assert all(text[e.span.start_char:e.span.end_char] == e.text for e in merged.entities)
    assert [(r.head.text, r.tail.text, r.label) for r in merged.relations] == [
        ("Barack Obama", "Michelle Obama", "couple"), ("Angela Merkel", "Berlin", "present_in")]
    doc = merged.to_spacy()
    assert [(e.text, e.label_, e.start_char) for e in doc.ents] == [
        (e.text, e.type, e.span.start_char) for e in merged.entities]
    assert doc.text == text and doc._.relations[0] == {"head": 0, "tail": 1, "label": "couple", "score": 0.7}
    assert len(repr(merged)) < 400 and len(repr(graph)) < 100
    record = merged.to_record()
    assert record["relations"] == [{"head": 0, "tail": 1, "label": "couple", "score": 0.7},
                                   {"head": 2, "tail": 3, "label": "present_in", "score": 0.5}]


def test_a_short_post_is_one_window(parser):
    graph = parser.parse("Obama visits Paris")
    cut = split(graph, [1, 2, 1], budget=62)
    assert cut.spans == [(0, 3)] and cut.graphs == [graph] and not cut.truncated
    assert split(graph, [1, 70, 1], budget=62).truncated  # a word the encoder cannot read whole


@pytest.fixture(scope="module")
def default_extractor():
    return graphie.load("default")


def test_names_at_start_middle_and_end_of_a_5000_word_post_are_all_found(default_extractor):
    filler = "the weather was nice and we walked along the river for a while before lunch .".split()
    body = (filler * (5000 // len(filler) + 1))[:5000]
    text = " ".join(["Barack Obama met reporters today ."] + body[:2500] + ["Angela Merkel visited the museum ."]
                    + body[2500:] + ["Lionel Messi scored again ."])
    result = default_extractor.extract(text)
    # every word is read: a window holds at most max_length sub-words, so > 5000 / max_length windows
    max_length = default_extractor.model.config.max_length
    assert len(result.tokens) > 5000 and result.windows > 5000 // max_length and not result.truncated
    found = {(e.text, e.type) for e in result.entities}
    assert {("Barack Obama", "PER"), ("Angela Merkel", "PER"), ("Lionel Messi", "PER")} <= found
    assert all(text[e.span.start_char:e.span.end_char] == e.text for e in result.entities)
    assert len(repr(result)) < 400


def test_language_warning(default_extractor):
    assert default_extractor.extract("Barack Obama and Michelle Obama at the White House").warnings == []
    assert "non-Latin" in default_extractor.extract("Владимир Путин посетил Москву вчера").warnings[0]
    assert "Spanish" in default_extractor.extract("El presidente de la república habló con los periodistas en "
                                                  "Madrid y dijo que la economía está muy bien").warnings[0]
