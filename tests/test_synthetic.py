import json
from collections import Counter

from graphie.datasets import read_jmere
from graphie.synthetic import RELATIONS, ROLE_TAGS, ROLES, make_synthetic, write_synthetic
from parsers.image.detectors.base import coco_labels
from parsers.image.predicates import WEIGHTS
from parsers.scene import SceneGraph

ROLE_OF_OBJECT = {label: role for role, objs in ROLES.items() for label, _ in objs}


def _role_from_scene(graph, name):
    """Read a person's role off the scene graph: the objects their person node wears or holds."""
    person = next(i for i, o in enumerate(graph.objects) if o.label == "person" and o.text == name)
    votes = Counter(ROLE_OF_OBJECT[graph.objects[e.object].label] for e in graph.edges
                    if e.subject == person and graph.objects[e.object].label in ROLE_OF_OBJECT)
    return votes.most_common(1)[0][0]


def test_seeded_and_well_formed():
    a, b = make_synthetic(30, seed=4), make_synthetic(30, seed=4)
    assert [p.to_dict() for p, _ in a] == [p.to_dict() for p, _ in b]
    assert [g.to_dict() for _, g in a] == [g.to_dict() for _, g in b]
    assert [p.tokens for p, _ in a] != [p.tokens for p, _ in make_synthetic(30, seed=5)]
    for post, graph in a:
        assert graph.objects[0].label == "image" and len(graph) <= 11 and graph.image_id == post.image
        assert [e.type for e in post.entities].count("PER") == 2 and len(post.relations) == 2
        for e in post.entities:
            assert e.text == " ".join(post.tokens[e.span.start:e.span.end])


def test_graphs_speak_the_image_parsers_vocabulary():
    """Labels, predicates and tags are what the default image parser produces, so a model trained
    here reads real scene graphs with the same words."""
    for _, graph in make_synthetic(50, seed=2):
        assert {o.label for o in graph.objects[1:]} <= set(coco_labels()) | {"text"}
        assert {e.predicate for e in graph.edges} <= set(WEIGHTS)
        for o in graph.objects:
            if o.label == "person":
                (tag, p), = o.tags.items()
                assert 0.3 <= p <= 1 and any(tag in tags for tags in ROLE_TAGS.values())


def test_labels_follow_from_the_scene_graph_only():
    samples = make_synthetic(2000, seed=0)  # large enough that chance spreads the rates below by < 0.05
    labels = Counter(r.label for p, _ in samples for r in p.relations)
    assert set(labels) == set(RELATIONS) and min(labels.values()) > 900  # about uniform over 4000
    for post, graph in samples:  # the scene graph decides every label ...
        for r in post.relations:
            assert _role_from_scene(graph, r.head.text) == r.label
    # ... and the words do not: each template word is about equally frequent under every label
    by_label = {label: Counter() for label in RELATIONS}
    for post, _ in samples:
        names = {i for e in post.entities for i in range(e.span.start, e.span.end)}
        words = {w for i, w in enumerate(post.tokens) if i not in names}
        for r in post.relations:
            by_label[r.label].update(words)
    for word in ("game", "match", "stadium"):
        rates = [by_label[l][word] / labels[l] for l in RELATIONS]
        assert max(rates) - min(rates) < 0.1, (word, rates)


def test_writer_round_trips(tmp_path):
    counts = write_synthetic(tmp_path, train=12, valid=5, seed=1)
    assert counts["train"]["posts"] == 12 and counts["scene_graphs"] == 17
    posts = read_jmere(tmp_path / "train.json")
    graphs = json.loads((tmp_path / "scene_graphs.json").read_text())
    expected = make_synthetic(12, 1, prefix="syntrain")
    assert [p.tokens for p in posts] == [p.tokens for p, _ in expected]
    assert [sorted(r.key for r in p.relations) for p in posts] == [sorted(r.key for r in p.relations) for p, _ in expected]
    assert SceneGraph.from_dict(graphs[posts[0].image]).to_dict() == expected[0][1].to_dict()
    valid = read_jmere(tmp_path / "valid.json")
    assert not {p.image for p in valid} & {p.image for p in posts}
