"""SceneGraph: predicate vocabulary, top-k selection, JSON, networkx and PyG export."""

import json

import pytest
import torch

from parsers.scene import IMAGE_LABEL, PREDICATES, SceneEdge, SceneGraph, SceneObject, predicate_id


def make_graph() -> SceneGraph:
    objects = [
        SceneObject(IMAGE_LABEL, 1.0, (0, 0, 100, 80), "image", feature=[1.0, 0.0], tags={"lakeside": 0.5, "valley": 0.1}),
        SceneObject("person", 0.4, (0, 0, 10, 10), "ssdlite", feature=[0.5, 0.5], tags={"ballplayer": 0.4}),
        SceneObject("face", 0.9, (2, 2, 6, 6), "haar"),
        SceneObject("text", 0.7, (50, 50, 90, 60), "ppocr", text="BREAKING NEWS", feature=[0.0, 1.0]),
    ]
    edges = [SceneEdge(1, "contains", 2), SceneEdge(2, "inside", 1), SceneEdge(3, "right of", 1),
             SceneEdge(0, "contains", 3), SceneEdge(2, "sit beside", 3)]
    return SceneGraph(objects, edges, 100, 80, "x.jpg")


def test_predicate_vocabulary():
    assert PREDICATES[0] == "<pad>" and PREDICATES[-1] == "other"
    assert PREDICATES[1:9] == ("left of", "right of", "above", "below", "overlaps", "contains", "inside", "near")
    assert len(set(PREDICATES)) == len(PREDICATES)
    assert predicate_id("Left  Of") == 1
    assert PREDICATES[predicate_id("stand in front of")] == "in front of"  # verb dropped
    assert PREDICATES[predicate_id("hold up")] == "hold"                   # particle dropped
    assert PREDICATES[predicate_id("sit beside")] == "beside"
    assert PREDICATES[predicate_id("teleport")] == "other"
    assert PREDICATES[predicate_id("")] == "other"
    assert predicate_id("<pad> nonsense") == predicate_id("other")
    assert [PREDICATES[predicate_id(p)] for p in ("Holding", "carrying", "riding", "wearing")] == ["hold", "carry", "ride", "wear"]


def test_top_keeps_image_node_and_best_objects_and_remaps_edges():
    top = make_graph().top(2)
    assert [o.label for o in top.objects] == [IMAGE_LABEL, "face", "text"]
    assert {(e.subject, e.predicate, e.object) for e in top.edges} == {(0, "contains", 2), (1, "sit beside", 2)}
    assert make_graph().top(0).objects[0].label == IMAGE_LABEL and len(make_graph().top(0)) == 1
    assert len(make_graph().top(10)) == 4
    with pytest.raises(ValueError):
        make_graph().top(-1)


def test_json_round_trip():
    g = make_graph()
    again = SceneGraph.from_dict(json.loads(json.dumps(g.to_dict())))
    assert again.to_dict() == g.to_dict()
    assert again.objects[3].text == "BREAKING NEWS"
    assert list(again.objects[0].tags.items()) == [("lakeside", 0.5), ("valley", 0.1)]  # order kept
    assert again.objects[2].tags is None and "tags" not in g.objects[2].to_dict()


def test_networkx_export_keeps_parallel_edges():
    g = make_graph()
    g.edges.append(SceneEdge(1, "near", 2))
    nxg = g.to_networkx()
    assert nxg.number_of_nodes() == 4 and nxg.number_of_edges() == 6
    assert {d["predicate"] for _, _, d in nxg.edges(1, data=True)} == {"contains", "near"}
    assert nxg.nodes[3]["text"] == "BREAKING NEWS" and nxg.nodes[1]["tags"] == {"ballplayer": 0.4}


def test_pyg_export():
    data = make_graph().to_pyg()
    assert data.num_nodes == 4
    assert data.x.shape == (4, 2) and data.x[2].tolist() == [0.0, 0.0]  # the face has no feature
    assert data.box.shape == (4, 4) and data.box[3].tolist() == [50, 50, 90, 60]
    assert data.edge_index.tolist() == [[1, 2, 3, 0, 2], [2, 1, 1, 3, 3]]
    assert [PREDICATES[i] for i in data.edge_type] == ["contains", "inside", "right of", "contains", "beside"]
    assert data.labels[3] == "text" and data.texts[3] == "BREAKING NEWS"
    assert data.tags[1] == {"ballplayer": 0.4} and data.tags[2] is None


def test_pyg_export_without_features_or_boxes():
    g = SceneGraph([SceneObject(IMAGE_LABEL), SceneObject("dog", source="caption")], [], None, None)
    data = g.to_pyg()
    assert data.x is None
    assert data.has_box.tolist() == [False, False]
    assert data.edge_index.shape == (2, 0) and data.edge_type.dtype == torch.long
    bad = make_graph()
    bad.objects[2].feature = [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="mixes feature sizes"):
        bad.to_pyg()
