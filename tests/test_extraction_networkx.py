"""``Extraction.to_networkx``: the entity–relation graph, with scores, offsets and evidence."""

from __future__ import annotations

import json

import networkx as nx

from graphie.types import Entity, Extraction, Relation, Span

TEXT = "Obama and Michelle at the White House"


def result() -> Extraction:
    obama = Entity(Span(0, 1, "Obama", 0, 5), "PER", 0.97, [{"object": 1, "label": "person", "weight": 0.6}])
    michelle = Entity(Span(2, 3, "Michelle", 10, 18), "PER", 0.95)
    house = Entity(Span(5, 7, "White House", 26, 37), "LOC", 0.9)
    lone = Entity(Span(4, 5, "the"), "MISC", 0.3)  # no character offsets: found from the words
    return Extraction(TEXT, TEXT.split(), [obama, michelle, house, lone],
                      [Relation(obama, michelle, "couple", 0.8), Relation(obama, michelle, "peer", 0.4),
                       Relation(michelle, house, "place_of_residence", 0.7)], id="p1")


def test_nodes_are_entities_and_edges_relations():
    g = result().to_networkx()
    assert isinstance(g, nx.MultiDiGraph) and g.graph == {"text": TEXT, "id": "p1"}
    assert sorted(g.nodes) == [0, 1, 2, 3]  # an entity in no relation is a node too
    assert g.nodes[0] == {"text": "Obama", "type": "PER", "score": 0.97, "start": 0, "end": 1, "start_char": 0,
                          "end_char": 5, "evidence": [{"object": 1, "label": "person", "weight": 0.6}]}
    assert (g.nodes[3]["start_char"], g.nodes[3]["end_char"]) == (22, 25)
    # Two labels between one pair are two edges, keyed by label.
    assert g.number_of_edges(0, 1) == 2 and g.edges[0, 1, "peer"] == {"label": "peer", "score": 0.4}
    assert g.edges[1, 2, "place_of_residence"]["score"] == 0.7 and not g.has_edge(1, 0)


def test_graph_of_a_result_read_back_from_json():
    back = Extraction.from_dict(json.loads(json.dumps(result().to_dict())))
    assert back.relations[0].head is not back.entities[0]  # copies, matched by span and type
    g = back.to_networkx()
    assert sorted((u, v, k) for u, v, k in g.edges(keys=True)) == [
        (0, 1, "couple"), (0, 1, "peer"), (1, 2, "place_of_residence")]
