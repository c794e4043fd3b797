import pytest
import torch

from graphie.errors import InvalidInputError
from graphie.models import GraphieModel, ModelConfig
from graphie.models.batching import make_examples, parse_posts
from graphie.types import Entity, Post, Relation, Span
from parsers.scene import SceneEdge, SceneGraph, SceneObject


def jmere_post():
    post = Post(tokens="Obama and Michelle at the White House".split())
    obama, michelle, house = (Entity(Span(0, 1, "Obama"), "PER"), Entity(Span(2, 3, "Michelle"), "PER"),
                              Entity(Span(5, 7, "White House"), "LOC"))
    post.entities = [obama, michelle, house]
    post.relations = [Relation(obama, michelle, "couple"), Relation(michelle, house, "present_in")]
    return post


def scene():
    objects = [SceneObject("image", box=(0, 0, 100, 100)), SceneObject("man", 0.9, (10, 10, 40, 90)),
               SceneObject("woman", 0.8, (50, 10, 80, 90))]
    return SceneGraph(objects, [SceneEdge(1, "near", 2)], 100, 100)


def test_config_rejects_bad_values():
    with pytest.raises(InvalidInputError):
        ModelConfig(task="nope")
    with pytest.raises(InvalidInputError, match="head"):
        ModelConfig(task="jmere", head="crf")
    with pytest.raises(InvalidInputError, match="marker"):
        ModelConfig(task="jmere", head="marker")
    with pytest.raises(InvalidInputError, match="crf"):
        ModelConfig(task="ner", head="grid", crf=True)
    with pytest.raises(InvalidInputError, match="colour"):
        ModelConfig.from_dict({"task": "ner", "colour": "red"}, where="model")
    with pytest.raises(InvalidInputError):
        ModelConfig.from_dict({"task": "ner", "colour": "red"})
    assert ModelConfig.from_dict(ModelConfig(task="ner").to_dict()) == ModelConfig(task="ner")


@pytest.mark.parametrize("alignment", ["none", "eega"])
def test_joint_model_forward_backward_with_and_without_images(alignment):
    torch.manual_seed(0)
    cfg = ModelConfig(task="jmere", entity_types=["LOC", "PER"], relation_labels=["couple", "present_in"],
                      alignment=alignment, max_length=32, pair_channels=["pos", "distance"])
    model = GraphieModel(cfg)
    posts = [jmere_post(), jmere_post()]
    graphs = parse_posts(posts)
    batch = model.collator()(make_examples(posts, graphs, [scene(), None]))
    out = model(batch)
    assert out.entity_logits.shape == (2, 7, 7, 2) and out.relation_logits.shape == (2, 7, 7, 3)
    out.loss.backward()
    assert model.grid.rel_row.weight.grad.abs().sum() > 0
    assert model.text_gnn.layers[0].out.weight.grad.abs().sum() > 0
    assert model.encoder.model.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    if alignment == "eega":
        assert out.alignment.shape[:2] == (2, 7) and out.graph_loss is not None
        assert model.scene_encoder.geometry.weight.grad is not None
    preds = model.predict(posts, scene_graphs=[scene(), None])
    assert len(preds) == 2 and preds[0].tokens == posts[0].tokens


def test_mnre_model_labels_every_given_pair():
    torch.manual_seed(0)
    cfg = ModelConfig(task="mnre", relation_labels=["/per/per/couple"], max_length=32, pair_channels=["pos"])
    model = GraphieModel(cfg)
    post = jmere_post()
    a, b = (Entity(e.span, "ENT") for e in post.entities[:2])
    post.entities = [a, b]
    post.relations = [Relation(a, b, "/per/per/couple"), Relation(b, a, "None")]
    batch = model.collator()(make_examples([post], parse_posts([post])))
    out = model(batch)
    assert out.pair_logits.shape == (2, 2) and torch.isfinite(out.loss)
    (pred,) = model.predict([post])
    assert [(r.head.key, r.tail.key) for r in pred.relations] == [(a.key, b.key), (b.key, a.key)]
    assert all(r.label in ("None", "/per/per/couple") for r in pred.relations)
    with pytest.raises(InvalidInputError):
        model.predict([Post(tokens=["no", "pairs"])])


@pytest.mark.parametrize("crf", [False, True])
def test_bio_ner_model_predicts_spans_with_char_offsets(crf):
    torch.manual_seed(0)
    cfg = ModelConfig(task="ner", head="bio", crf=crf, entity_types=["LOC", "PER"], max_length=32, gnn_layers=0)
    model = GraphieModel(cfg)
    post = Post(text="Obama visited  Paris")
    (pred,) = model.predict([post])
    assert pred.tokens == ["Obama", "visited", "Paris"]
    for e in pred.entities:
        assert post.text[e.span.start_char:e.span.end_char] == e.span.text


def test_joint_bio_model_learns_entities_only_where_they_are_known():
    torch.manual_seed(0)
    cfg = ModelConfig(task="jmere", head="bio", entity_types=["LOC", "PER"], relation_labels=["couple", "present_in"],
                      max_length=32, pair_channels=["pos"], gnn_layers=0)
    model = GraphieModel(cfg)
    assert model.grid.entities is False and model.grid.relations is True
    posts = [jmere_post(), jmere_post()]
    examples = make_examples(posts[:1], parse_posts(posts[:1]), entities_known=False)
    examples += make_examples(posts[1:], parse_posts(posts[1:]), relations_known=False)
    batch = model.collator()(examples)
    # partial annotation: the entities' words and their neighbours ("Obama and Michelle at the White House")
    assert batch.bio_mask[0].tolist() == [True, True, True, True, True, True, True]
    examples[0].entities = [(0, 1, "PER")]
    assert model.collator()(examples).bio_mask[0].tolist() == [True, True, False, False, False, False, False]
    assert batch.bio_mask[1].sum() == 7
    out = model(batch)
    out.loss.backward()
    assert model.bio.emissions.weight.grad.abs().sum() > 0 and model.grid.rel_out.weight.grad.abs().sum() > 0
    (pred,) = model.predict(posts[:1])
    assert all(e.type in ("LOC", "PER") for e in pred.entities)


def test_marker_model_reads_each_pair_from_its_own_marked_sequence():
    torch.manual_seed(0)
    cfg = ModelConfig(task="mnre", head="marker", relation_labels=["/per/per/couple"], max_length=48, gnn_layers=0,
                      pair_channels=[])
    model = GraphieModel(cfg)
    assert {name for name, _ in model.named_children()} == {"encoder", "marker"}  # no grid, no pair features
    post = jmere_post()
    a, b = (Entity(e.span, "ENT") for e in post.entities[:2])
    post.entities = [a, b]
    post.relations = [Relation(a, b, "/per/per/couple"), Relation(b, a, "None")]
    batch = model.collator()(make_examples([post], parse_posts([post])))
    # two sequences, each with its own markers: "@" before the head, "#" before the tail
    assert batch.encoded.word_mask.shape[0] == 2 and batch.marker_index.tolist() == [[0, 4], [4, 0]]
    out = model(batch)
    assert out.pair_logits.shape == (2, 2) and torch.isfinite(out.loss)
    out.loss.backward()
    assert model.encoder.model.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    (pred,) = model.predict([post])
    assert [(r.head.key, r.tail.key) for r in pred.relations] == [(a.key, b.key), (b.key, a.key)]


def test_marker_model_aligns_each_marked_sequence_with_its_posts_scene_graph():
    """marker + routed: rows are pairs, each with its post's scene graph and the post's
    dependency arcs moved to the marked words (markers have none)."""
    torch.manual_seed(0)
    cfg = ModelConfig(task="mnre", head="marker", relation_labels=["/per/per/couple"], max_length=48, gnn_layers=0,
                      pair_channels=[], alignment="routed", max_objects=4)
    model = GraphieModel(cfg)
    post = jmere_post()
    a, b = (Entity(e.span, "ENT") for e in post.entities[:2])
    post.entities = [a, b]
    post.relations = [Relation(a, b, "/per/per/couple"), Relation(b, a, "None")]
    graphs = parse_posts([post])
    batch = model.collator()(make_examples([post], graphs, [scene()]))
    assert batch.scene.mask.shape[0] == 2 and batch.text_adj.shape[0] == 2
    # row 0 is "@ Obama @ and # Michelle # at the White House": word i of the post sits at where[i]
    where = [1, 3, 5, 7, 8, 9, 10]
    arcs = torch.as_tensor(graphs[0].adjacency(), dtype=torch.bool)
    moved = batch.text_adj[0][torch.tensor(where)][:, torch.tensor(where)]
    assert torch.equal(moved, arcs) and batch.text_adj[0].sum() == arcs.sum()  # markers carry no arc
    out = model(batch)
    assert out.alignment.shape[:2] == (2, batch.word_mask.shape[1]) and torch.isfinite(out.loss)
    out.loss.backward()
    assert model.alignment.value.weight.grad.abs().sum() > 0
    (pred,) = model.predict([post], [scene()])
    assert len(pred.relations) == 2 and all(not e.evidence for e in pred.entities)
