"""The ``queries`` head (MRC-MNER: entity types asked as questions, span pointers per question):
rows and masks, decoding back to posts, training, saving, and its one-line errors."""

import json

import pytest
import torch

from graphie.errors import InvalidInputError
from graphie.models import GraphieModel, ModelConfig
from graphie.models.batching import make_examples, parse_posts
from graphie.models.queries import DEFAULT_QUERIES, QueryHead
from graphie.types import Entity, Post, Span
from test_models_model import jmere_post, scene

TYPES = ["LOC", "PER"]


def tiny(**kw) -> GraphieModel:
    torch.manual_seed(0)
    return GraphieModel(ModelConfig(**{"task": "ner", "head": "queries", "entity_types": TYPES, "max_length": 64,
                                       "gnn_layers": 0, **kw}))


def short_post() -> Post:
    post = Post(tokens="Paris says hi".split())
    post.entities = [Entity(Span(0, 1, "Paris"), "LOC")]
    return post


def test_each_post_is_read_once_per_question_with_its_targets_and_masks():
    model = tiny()
    assert isinstance(model.head, QueryHead) and {n for n, _ in model.named_children()} == {"encoder", "queries"}
    posts = [jmere_post(), short_post()]
    batch = model.collator()(make_examples(posts, parse_posts(posts)))
    R, n, L = 4, 7, model.config.max_entity_len
    assert batch.word_mask.shape == (R, n)
    assert batch.extra["query_post"].tolist() == [0, 0, 1, 1] and batch.extra["query_type"].tolist() == [0, 1, 0, 1]
    # the question is the second segment, after the post's words; the post's words are the same in its rows
    tok = model.encoder.tokenizer
    for r in range(R):
        second = batch.encoded.input_ids[r][batch.encoded.context_mask[r]]
        assert tok.decode(second) == tok.decode(tok(DEFAULT_QUERIES[TYPES[r % 2]], add_special_tokens=False)["input_ids"])
    assert batch.word_mask.sum(1).tolist() == [7, 7, 3, 3]
    # gold of each row's type only: LOC "White House" (5:7), PER "Obama" and "Michelle"; "Paris" in row 2
    x = batch.extra
    assert x["start"][0].nonzero().flatten().tolist() == [5] and x["end"][0].nonzero().flatten().tolist() == [6]
    assert x["start"][1].nonzero().flatten().tolist() == [0, 2] and x["end"][1].nonzero().flatten().tolist() == [0, 2]
    assert x["spans"].nonzero().tolist() == [[0, 5, 1], [1, 0, 0], [1, 2, 0], [2, 0, 0]]
    assert x["start"][3].sum() == 0 and x["known"].tolist() == batch.word_mask.tolist()
    out = model(batch)
    assert out.extra["start"].shape == out.extra["end"].shape == (R, n)
    assert out.extra["match"].shape == out.extra["band"].shape == (R, n, L)
    band = out.extra["band"]
    # span (i, i + k) inside the real words only: the short post's rows end at word 3
    assert band[2].nonzero().max(0).values.tolist() == [2, 2] and not band[2, 3:].any()
    assert band[0, 0].tolist() == [True] * 7 + [False] * (L - 7) and band[0, 6].tolist() == [True] + [False] * (L - 1)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.queries.match_out.weight.grad.abs().sum() > 0
    assert model.encoder.model.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_partially_annotated_posts_learn_boundaries_only_around_their_entities():
    model = tiny()
    posts = [jmere_post()]
    examples = make_examples(posts, parse_posts(posts), entities_known=False)
    examples[0].entities = [(0, 1, "PER")]
    batch = model.collator()(examples)
    assert batch.extra["known"].tolist() == [[True, True, False, False, False, False, False]] * 2


def test_a_long_post_leaves_room_for_its_question():
    model = tiny(max_length=40)
    reserve = model.head.reserved(model.encoder)
    assert model.post_budget == model.encoder.post_budget - reserve
    post = Post(tokens=[f"word{i}" for i in range(40)])
    with pytest.warns(UserWarning, match="truncated"):
        batch = model.collator()(make_examples([post], parse_posts([post])))
    assert int(batch.encoded.attention_mask[0].sum()) <= 40
    questions = [int(batch.encoded.context_mask[r].sum()) for r in range(2)]
    tok = model.encoder.tokenizer
    assert questions == [len(tok(DEFAULT_QUERIES[t], add_special_tokens=False)["input_ids"]) for t in TYPES]
    # the front door cuts such a post into windows of the smaller budget: every word is read
    from graphie.pipeline import split

    pieces = [len(p) for p in model.word_pieces([post.tokens])[0]]
    windows = split(parse_posts([post])[0], pieces, model.post_budget, 4)
    assert all(sum(pieces[s:e]) <= model.post_budget for s, e in windows.spans)


def test_decoding_joins_each_posts_answers_by_score():
    model = tiny().eval()
    posts = [jmere_post(), short_post()]
    batch = model.collator()(make_examples(posts, parse_posts(posts)), with_targets=False)
    out = model(batch)
    big = 10.0
    x = out.extra
    for key in ("start", "end", "match"):
        x[key] = torch.full_like(x[key], -big)

    def answer(row, s, e, logit=big):
        x["start"][row, s] = x["end"][row, e - 1] = logit
        x["match"][row, s, e - 1 - s] = logit

    answer(0, 5, 7)            # LOC question: "White House"
    answer(1, 0, 1)            # PER question: "Obama"
    answer(1, 5, 6, 1.0)       # PER question: "White", weaker than LOC's "White House": dropped
    answer(3, 0, 1, 2.0)       # second post, PER question: "Paris"
    answer(2, 0, 1, 3.0)       # ... LOC question, more sure: "Paris" is LOC
    out.image_relevance = torch.tensor([0.1, 0.7, 0.2, 0.3])  # a relevance gate's value per row
    first, second = model.head.decode(batch, out, 0.5, 0.0)
    assert (first.image_relevance, second.image_relevance) == pytest.approx((0.7, 0.3))  # the largest of its rows
    assert [(e.span.text, e.type) for e in first.entities] == [("Obama", "PER"), ("White House", "LOC")]
    assert first.entities[1].span.start_char == posts[0].text.index("White House")
    assert [(e.span.text, e.type) for e in second.entities] == [("Paris", "LOC")]
    assert second.entities[0].score == pytest.approx(torch.sigmoid(torch.tensor(3.0)).item(), abs=1e-5)
    # a start and an end that the match score does not join give no entity: LOC's "White House"
    # goes, and PER's weaker "White", which it overlapped, is kept
    x["match"][0] = -big
    found = model.head.decode(batch, out, 0.5, 0.0)[0]
    assert [(e.span.text, e.type) for e in found.entities] == [("Obama", "PER"), ("White", "PER")]
    x["match"][0, 5, 1] = big
    # nested: spans of different types may overlap, an identical span keeps one type
    nested = tiny(nested_entities=True).eval()
    answer(0, 5, 7)
    answer(1, 5, 7, 1.0)
    found = nested.head.decode(batch, out, 0.5, 0.0)[0]
    assert [(e.span.text, e.type) for e in found.entities] == [("Obama", "PER"), ("White", "PER"), ("White House", "LOC")]


def test_the_image_reaches_every_row_and_each_entity_keeps_its_rows_evidence():
    model = tiny(alignment="routed", max_objects=4)
    posts = [jmere_post()]
    batch = model.collator()(make_examples(posts, parse_posts(posts), [scene()]))
    assert batch.scene is not None and len(batch.scene_graphs) == 2 and batch.text_adj.shape == (2, 7, 7)
    out = model(batch)
    assert out.alignment.shape[:2] == (2, 7)
    out.loss.backward()
    (pred,) = model.predict(posts, scene_graphs=[scene()], threshold=0.0)
    assert pred.entities and pred.scene_graph is not None


def test_a_tiny_model_learns_its_answers_and_survives_saving(tmp_path):
    torch.manual_seed(0)
    queries = {"PER": "who is named?"}
    model = tiny(head_options={"queries": queries, "match_dim": 32}, dropout=0.0)
    posts = [jmere_post(), short_post()]
    batch = model.collator()(make_examples(posts, parse_posts(posts)))
    optimizer = torch.optim.AdamW([{"params": model.encoder.parameters(), "lr": 1e-4},
                                   {"params": model.queries.parameters(), "lr": 3e-3}])
    first = None
    for _ in range(40):
        loss = model(batch).loss
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 5
    preds = model.predict(posts)
    assert [[(e.span.text, e.type) for e in p.entities] for p in preds] == [
        [("Obama", "PER"), ("Michelle", "PER"), ("White House", "LOC")], [("Paris", "LOC")]]
    model.save_pretrained(tmp_path / "m")
    again = GraphieModel.from_pretrained(tmp_path / "m")
    assert again.config.head_options == {"queries": queries, "match_dim": 32}
    assert again.head.questions[TYPES.index("PER")] == "who is named?"
    reread = again.predict(posts)
    assert [[(e.key, round(e.score, 4)) for e in p.entities] for p in reread] == \
        [[(e.key, round(e.score, 4)) for e in p.entities] for p in preds]


@pytest.mark.parametrize("change, message", [
    ({"head_options": {"top_k": 3}}, "head 'queries' takes no head_options 'top_k'; it takes: queries, keep_context"),
    ({"head_options": {"match_dim": 0}}, "match_dim must be a positive integer"),
    ({"head_options": {"match_weight": "high"}}, "match_weight must be a number"),
    ({"head_options": {"queries": {"PER": ""}}}, "must map entity types to non-empty questions"),
    ({"head_options": {"keep_context": "yes"}}, "keep_context must be true or false"),
    ({"entity_types": ["LOC", "EVENT"]}, "no question for entity type(s) EVENT"),
    ({"task": "jmere", "relation_labels": ["couple"]}, "task must be 'ner', not 'jmere'"),
    ({"fusion": "umt"}, "set fusion_sources [\"objects\"]"),
    ({"context": ["notes"], "context_adapter": 4}, "context_adapter would always be on"),
    ({"head_options": {"queries": {"PER": "who " * 40}}}, "the question for PER does not fit in 36 sub-words"),
])
def test_bad_settings_are_one_line_typed_errors(change, message):
    with pytest.raises(InvalidInputError) as err:
        model = tiny(max_length=40, **change)
        model.post_budget  # the questions are measured against the encoder's budget on first use
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_head_without_options_refuses_them():
    with pytest.raises(InvalidInputError, match="head 'bio' takes no head_options 'queries'; it takes: none"):
        GraphieModel(ModelConfig(task="ner", head="bio", entity_types=TYPES, max_length=32,
                                 head_options={"queries": {}}))


def test_training_from_a_config_with_the_queries_head(tmp_path):
    """The queued config's road (Twitter format, task ner, Twitter-2015's OTHER read as MISC) on a tiny file."""
    from graphie.cli import main

    tweets = tmp_path / "train.txt"
    tweets.write_text("IMGID:1\nObama\tB-PER\nin\tO\nParis\tB-LOC\n\nIMGID:2\nApple\tB-ORG\nat\tO\nCES\tB-OTHER\n\n",
                      encoding="utf-8")
    config = json.loads(open("configs/twitter2017_queries.json", encoding="utf-8").read())
    config["data"] = {"format": "twitter", "train": str(tweets), "dev": str(tweets), "scene": "none"}
    config["model"]["max_length"] = 64
    config["training"].update(epochs=1, batch_size=2, num_threads=1, freeze_encoder_layers=5)
    path = tmp_path / "queries.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    assert main(["train", str(path), "--output", str(tmp_path / "model"), "--no-progress"]) == 0
    model = GraphieModel.from_pretrained(tmp_path / "model")
    assert model.config.head == "queries" and model.config.entity_types == ["LOC", "MISC", "ORG", "PER"]
    assert model.post_budget < model.encoder.post_budget
