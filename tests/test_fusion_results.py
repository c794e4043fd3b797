"""A fusion's relevance gate reaches the user: ``Extraction.image_relevance`` through decoding (one
value per post, the largest over the marker head's pair rows), the windows of a long post, the
output record, ``to_dict`` and the HTML view; ``None`` for a model without a gate (docs/fusion.md)."""

import pytest
import torch

from graphie.api import Extractor
from graphie.models import GraphieModel, ModelConfig
from graphie.models.batching import make_examples, parse_posts
from graphie.pipeline import Windows, merge
from graphie.records import record_fields
from graphie.types import Entity, Extraction, Relation, Span
from test_fusion import posts_with_and_without_image, tiny_config, train_steps
from test_models_model import jmere_post, scene
from test_records import assert_follows, full_extraction

TEXT = "Obama and Michelle at the White House"
CAPTION = "caption: a man and a woman in front of a white house"


def test_the_extractor_reports_the_gate_of_a_trained_model_and_none_without_a_gate():
    torch.manual_seed(0)
    model = GraphieModel(tiny_config("relevance_gate", fusion_sources=["context"]))
    posts, scenes = posts_with_and_without_image()
    train_steps(model, model.collator()(make_examples(posts, parse_posts(posts), scenes)), 3)
    extractor = Extractor(model.eval(), detector="caption")
    read = extractor.extract(TEXT, context=CAPTION)
    assert 0.0 < read.image_relevance <= 1.0
    assert read.to_record()["image_relevance"] == round(read.image_relevance, 4)
    assert extractor.extract(TEXT).image_relevance == 0.0  # nothing to read: the gate stays shut
    with torch.no_grad():  # the value is the gate the model computed for that post
        gate = model(model.prepare([posts[1]])).fusion["gate"]  # the same words and context
    assert read.image_relevance == pytest.approx(float(gate[0]), abs=1e-6)

    plain = Extractor(GraphieModel(tiny_config("none")).eval(), detector="caption")
    result = plain.extract(TEXT, context=CAPTION)
    assert result.image_relevance is None and result.to_record()["image_relevance"] is None
    hybrid = Extractor(GraphieModel(tiny_config("hybrid", fusion_sources=["context"])).eval(), detector="caption")
    assert hybrid.extract(TEXT, context=CAPTION).image_relevance is None  # a fusion, but no relevance gate


def test_a_post_gets_the_largest_gate_of_its_marker_rows():
    torch.manual_seed(0)
    config = ModelConfig(task="mnre", head="marker", gnn_layers=0, relation_labels=["/per/per/couple"],
                         max_length=48, pair_channels=[], fusion="relevance_gate",
                         fusion_options={"heads": 2}, fusion_sources=["context"])
    model = GraphieModel(config).eval()
    posts = []
    for context in (CAPTION, "caption: a crowd at a stadium", None):
        post = jmere_post()
        a, b, c = (Entity(e.span, "ENT") for e in post.entities)
        post.entities, post.context = [a, b, c], context
        post.relations = [Relation(a, b, "/per/per/couple"), Relation(b, c, "None"), Relation(a, c, "None")]
        posts.append(post)
    batch = model.prepare(posts)
    with torch.no_grad():
        out = model(batch)
        results = model.head.decode(batch, out, 0.5, 0.5)
    rows = out.image_relevance.view(3, 3)  # three pairs a post, in post order
    assert not torch.equal(rows[0, 0], rows[0, 1])  # each pair's marked text scores its own gate
    assert [r.image_relevance for r in results] == pytest.approx(rows.amax(1).tolist())
    assert results[2].image_relevance == 0.0


def test_windows_of_a_long_post_report_their_largest_gate():
    from parsers.text import TextParser

    graph = TextParser().parse("Barack Obama and Michelle Obama met Angela Merkel in Berlin on Monday")
    cut = Windows(graph, [(0, 8), (4, 12)], [graph.window(0, 8), graph.window(4, 12)], False)

    def results(*gates):
        return [Extraction(graph.text, g.tokens, text_graph=g, image_relevance=v) for g, v in zip(cut.graphs, gates)]

    assert merge(cut, results(0.2, 0.7)).image_relevance == 0.7
    assert merge(cut, results(0.0, 0.0)).image_relevance == 0.0
    assert merge(cut, results(None, None)).image_relevance is None
    whole = Windows(graph, [(0, len(graph))], [graph], False)
    assert merge(whole, [Extraction(graph.text, graph.tokens, image_relevance=0.4)]).image_relevance == 0.4


def test_the_record_dict_and_html_carry_the_relevance():
    result = full_extraction()
    result.image_relevance = 0.83125
    record = result.to_record()
    assert_follows(record, record_fields())
    assert record["image_relevance"] == 0.8313
    again = Extraction.from_dict(result.to_dict())
    assert again.image_relevance == pytest.approx(0.83125) and "image_relevance=0.83" in repr(again)
    assert 'class="graphie-relevance" data-value="0.8313"' in result._repr_html_()
    result.image_relevance = None
    assert "image_relevance" not in result.to_dict() and "graphie-relevance" not in result.to_html()
    assert "image_relevance" not in repr(Extraction("a", ["a"], [Entity(Span(0, 1, "a"), "PER")]))
