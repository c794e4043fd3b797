"""Caption → scene graph with spaCy, the caption file reader, and the `caption` backend."""

import pytest

from graphie.errors import DatasetFormatError, InvalidInputError
from parsers.image import caption_scene_graph, parse_image
from parsers.image.detectors.caption import read_captions
from parsers.scene import PREDICATES, predicate_id


def triples(graph):
    return {(graph.objects[e.subject].label, e.predicate, graph.objects[e.object].label)
            for e in graph.edges if e.subject and e.object}


@pytest.mark.parametrize("caption, objects, expected", [
    ("a man holding a dog on the beach", ["man", "dog", "beach"], {("man", "hold", "dog")}),
    ("a woman sitting on a bench next to a tree", ["woman", "bench", "tree"],
     {("woman", "sit on", "bench"), ("woman", "sit next to", "tree")}),
    ("two people standing in front of a building", ["two people", "building"],
     {("two people", "stand in front of", "building")}),
    ("the chicago bears and green bay packers are playing in the nfl", ["chicago bears", "green bay packers", "nfl"],
     {("chicago bears", "play in", "nfl"), ("green bay packers", "play in", "nfl")}),
    ("a cup of coffee", ["cup", "coffee"], {("cup", "of", "coffee")}),
])
def test_caption_scene_graph(caption, objects, expected):
    g = caption_scene_graph(caption)
    assert g.objects[0].label == "image" and [o.label for o in g.objects[1:]] == objects
    assert all(o.box is None and o.source == "caption" for o in g.objects[1:])
    assert expected <= triples(g)
    # Every phrase hangs off the whole-image node.
    assert {(e.subject, e.object) for e in g.edges if e.subject == 0} == {(0, i) for i in range(1, len(g))}


def test_caption_predicates_map_into_the_vocabulary():
    g = caption_scene_graph("a woman sitting on a bench next to a tree")
    assert {PREDICATES[predicate_id(e.predicate)] for e in g.edges} <= set(PREDICATES) - {"other"}
    assert g.to_pyg().edge_type.min() > 0


def test_caption_edge_cases():
    assert len(caption_scene_graph("")) == 1
    assert len(caption_scene_graph("person, person, person, person", max_objects=2)) == 3
    with pytest.raises(InvalidInputError):
        caption_scene_graph(None)


def test_caption_backend_from_file(tmp_path):
    path = tmp_path / "captions.txt"
    path.write_text("108911.jpg :a dog on a sofa\n\n17.jpg\ta red car\n", encoding="utf-8")
    assert read_captions(path) == {"108911.jpg": "a dog on a sofa", "17.jpg": "a red car"}
    g = parse_image("/data/images/108911.jpg", "caption", captions=str(path))
    assert g.image_id == "108911.jpg" and ("dog", "on", "sofa") in triples(g)
    with pytest.raises(InvalidInputError, match="no scene graph for image 'x.jpg'"):
        parse_image("x.jpg", "caption", captions={"y.jpg": "a cat"})
    (tmp_path / "bad.txt").write_text("no separator here\n")
    with pytest.raises(DatasetFormatError, match="bad.txt:1"):
        read_captions(tmp_path / "bad.txt")
