"""The front door: graphie.load / Extractor.extract / extract_many / batch files / CLI.

A small randomly initialised model (real encoder, real parsers) is enough to check the
plumbing: one outcome per input, in order, typed error records, streaming, resume."""

from __future__ import annotations

import io
import itertools
import json

import pytest
import torch
from PIL import Image

import graphie
from graphie.api import PARSE_WINDOW
from graphie.batch import ErrorRecord, finished, run_file
from graphie.cli import main
from parsers.scene import SceneGraph, SceneObject


def photo_bytes(size=(96, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 80, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def test_extract_returns_aligned_result(extractor):
    text = "RT @jo: Barack Obama and Michelle Obama at the White House #DC"
    result = extractor.extract(text, caption="a man and a woman in front of a white building")
    assert result.text == text
    assert result.tokens == result.text_graph.tokens
    assert all(text[s:s + len(t)] == t for t, s in zip(result.tokens, result.text_graph.starts))
    for ent in result.entities:
        assert text[ent.span.start_char:ent.span.end_char] == ent.text
    labels = [o.label for o in result.scene_graph.objects]
    assert "man" in labels and "woman" in labels
    assert graphie.Extraction.from_dict(json.loads(json.dumps(result.to_dict()))).tokens == result.tokens


def test_image_free_post_has_no_scene_graph(extractor):
    assert extractor.extract("Obama visits Paris").scene_graph is None


def test_precomputed_scene_graph_is_used_as_given(extractor):
    graph = SceneGraph([SceneObject("image", box=(0, 0, 10, 10)), SceneObject("trophy", 0.9, (1, 1, 5, 5))],
                       width=10, height=10)
    result = extractor.extract("Messi lifts the cup", graph)
    assert [o.label for o in result.scene_graph.objects] == ["image", "trophy"]


@pytest.mark.parametrize("text", ["", "   \n\t", None, 42])
def test_bad_text_is_a_typed_error(extractor, text):
    with pytest.raises(graphie.InvalidInputError):
        extractor.extract(text)


def test_extract_many_yields_one_outcome_per_input_in_order(model_dir):
    ex = graphie.load(model_dir)  # default image parser for the image inputs
    inputs = [
        "Obama visits Paris",
        {"id": "d", "text": "Merkel meets Macron in Berlin"},
        graphie.Post(text="", id="empty"),
        12345,
        {"id": "img", "text": "Kelly lands in Kazakhstan", "image": photo_bytes()},
        {"id": "gone", "text": "a post", "image": "/no/such/file.jpg"},
        {"id": "broken", "text": "a post", "image": b"\xff\xd8\xff\xe0 not really a jpeg"},
        graphie.Post(text="Harvard welcomes JFK", id="last"),
    ]
    out = list(ex.extract_many(inputs, batch_size=3, progress=False))
    assert [o.id for o in out] == [0, "d", "empty", 3, "img", "gone", "broken", "last"]
    kinds = [type(o).__name__ if not isinstance(o, ErrorRecord) else o.type for o in out]
    assert kinds == ["Extraction", "Extraction", "InvalidInputError", "InvalidInputError", "Extraction",
                     "ImageError", "ImageError", "Extraction"]
    assert out[4].scene_graph is not None and out[4].scene_graph.width == 96


def test_extract_many_matches_extract(extractor):
    texts = ["Obama and Michelle at the White House", "Messi joins Inter Miami", "JFK studied at Harvard"]
    many = list(extractor.extract_many(texts, batch_size=2, progress=False))
    for text, got in zip(texts, many):
        one = extractor.extract(text)
        assert [e.key for e in got.entities] == [e.key for e in one.entities]
        assert [r.key for r in got.relations] == [r.key for r in one.relations]


def test_extract_many_streams(extractor):
    consumed = itertools.count()

    def endless():
        for i in itertools.count():
            next(consumed)
            yield f"post number {i} from Paris"

    stream = extractor.extract_many(endless(), batch_size=4, progress=False)
    first = next(stream)
    assert first.id == 0
    assert next(consumed) <= 2 * max(4, PARSE_WINDOW)  # at most two windows read ahead, whatever the input size
    stream.close()


def test_extract_between_steps_of_a_stream(extractor):
    # extract() shares the parser and model with a stream suspended in the middle of its window
    texts = [f"Obama visits Paris for day {i}" for i in range(12)]
    stream = extractor.extract_many(texts, batch_size=4, progress=False)
    first = next(stream)
    alone = extractor.extract(texts[0])
    rest = list(stream)
    assert [e.key for e in alone.entities] == [e.key for e in first.entities]
    assert [o.id for o in [first, *rest]] == list(range(12))


def test_jsonl_batch_resumes_and_never_drops_a_line(extractor, tmp_path):
    src = tmp_path / "in.jsonl"
    lines = [json.dumps({"id": f"p{i}", "text": f"Obama visits city {i}"}) for i in range(5)]
    lines.insert(2, "{not json")
    src.write_bytes(("\n".join(lines) + "\n").encode() + b'{"id": "u", "text": "caf\xe9"}\n')
    out = tmp_path / "out.jsonl"
    counts = run_file(extractor, src, out, progress=False)
    assert counts == {"done": 5, "errors": 2, "skipped": 0}
    first = out.read_text().splitlines()
    assert [(json.loads(x)["id"], json.loads(x)["line"]) for x in first] == [
        ("p0", 1), ("p1", 2), (None, 3), ("p2", 4), ("p3", 5), ("p4", 6), (None, 7)]

    # A run killed mid-way: three whole lines and a torn one. Rerunning completes the file.
    out.write_text("\n".join(first[:3]) + "\n" + first[3][:20])
    done = finished(out)
    assert (done.ids, done.lines) == ({"p0", "p1"}, {3})
    counts = run_file(extractor, src, out, progress=False)
    assert counts == {"done": 3, "errors": 1, "skipped": 3}
    again = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["line"] for x in again] == [1, 2, 3, 4, 5, 6, 7]
    assert "not valid UTF-8" in again[-1]["error"]["message"]


def test_cli_extract_json_and_errors(model_dir, capsys):
    assert main(["extract", "--model", str(model_dir), "--text", "Obama visits Paris", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tokens"] == ["Obama", "visits", "Paris"]
    assert main(["extract", "--model", str(model_dir), "--text", " "]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "text is empty" in err
    assert main(["extract", "--model", "no-such-model", "--text", "x"]) == 2
    assert "no model 'no-such-model'" in capsys.readouterr().err


def test_cli_draw_writes_a_picture(model_dir, tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(photo_bytes((160, 120)))
    png = tmp_path / "out.png"
    assert main(["draw", "--model", str(model_dir), "--text", "Obama and Michelle in Paris",
                 "--image", str(photo), "--output", str(png)]) == 0
    picture = Image.open(png)
    assert picture.format == "PNG" and picture.height > 120
    jpg = tmp_path / "out.jpg"
    assert main(["draw", "--model", str(model_dir), "--text", "Obama in Paris", "--output", str(jpg)]) == 0
    assert Image.open(jpg).format == "JPEG"
    assert main(["draw", "--model", str(model_dir), "--text", "Obama in Paris", "--output", str(tmp_path / "x.foo")]) == 2


def test_unknown_model_name_is_a_load_error():
    with pytest.raises(graphie.ModelLoadError, match="no model"):
        graphie.load("not-a-model")


def test_very_long_text_is_read_in_windows_not_truncated(extractor):
    text = " ".join(["Obama", "visits", "Paris", "today"] * 1250)  # 5,000 words
    result = extractor.extract(text)
    assert len(result.tokens) == 5000 and result.windows > 1 and not result.truncated
    assert all(text[e.span.start_char:e.span.end_char] == e.text for e in result.entities)


def test_control_characters_do_not_break_offsets(extractor):
    text = "Obama\x00 visits\x1b Paris\u200b today"
    result = extractor.extract(text)
    assert all(text[s:s + len(t)] == t for t, s in zip(result.tokens, result.text_graph.starts))
    assert "Paris" in result.tokens


def test_extractor_is_callable_saves_and_reloads(extractor, tmp_path):
    text = "Obama and Michelle at the White House"
    one = extractor(text)
    assert [o.id for o in extractor([text, {"id": "b", "text": text}])] == [0, "b"]
    extractor.save_pretrained(tmp_path / "saved")
    again = graphie.load(tmp_path / "saved", detector="caption")(text)
    assert [(e.key, round(e.score, 4)) for e in again.entities] == [(e.key, round(e.score, 4)) for e in one.entities]
    assert "Extractor(task='jmere'" in repr(extractor) and len(repr(one)) < 300


def test_quantize_makes_the_encoder_int8_and_still_extracts(model_dir):
    ex = graphie.load(model_dir, detector="caption", quantize=True)
    modules = list(ex.model.encoder.model.modules())
    assert not any(type(m) is torch.nn.Linear for m in modules)
    assert sum(type(m).__module__.startswith("torch.ao.nn.quantized.dynamic") for m in modules) >= 6 * 6  # 6 per layer
    result = ex.extract("Obama and Michelle at the White House")
    assert result.tokens[0] == "Obama"


def test_a_model_that_reads_captions_gets_the_caption_in_its_context(model_dir):
    """The front door writes a post's caption into the context segment as training does, only for
    a model whose config says it learnt to read captions; the caller's post is left unchanged."""
    import graphie
    from graphie.types import Post

    ex = graphie.load(model_dir)
    post = Post(text="Obama visits Paris", caption="a man waving at a crowd", context="Obama is a politician.")
    assert ex.model_input(post) is post  # a text-only model: the caption is only a scene graph
    ex.model.config.context = ["caption", "notes"]
    read = ex.model_input(post)
    assert read.context == "caption: a man waving at a crowd | notes: Obama is a politician."
    assert post.context == "Obama is a politician."
    assert ex.model_input(Post(text="Obama visits Paris", caption="a man")).context == "caption: a man"
    assert ex("Obama visits Paris", caption="a man waving at a crowd").tokens == ["Obama", "visits", "Paris"]


def test_stages_compose_parse_once_and_tokenise_once(extractor, monkeypatch):
    """predict takes what parse returned (no second parse), and every word of every post, long
    ones read in several windows included, goes through the tokenizer once."""
    from graphie.types import Post

    posts = [Post(text="Obama and Michelle at the White House", id="a"),
             Post(text=" ".join(["Obama", "visits", "Paris", "today"] * 100), id="b")]  # 400 words
    graphs = extractor.parse(posts)
    expected = [r.to_record() for r in extractor.predict(posts, [None, None], graphs=graphs)]

    parsed, tokenised = [], []
    encoder = extractor.model.encoder
    real_pieces = encoder.word_pieces
    monkeypatch.setattr(extractor.text_parser, "pipe", lambda items: parsed.extend(items) or [])
    monkeypatch.setattr(encoder, "word_pieces",
                        lambda words: tokenised.extend(w for post in words for w in post) or real_pieces(words))
    results = extractor.predict(posts, [None, None], graphs=graphs)
    assert parsed == []
    assert results[1].windows > 1 and len(tokenised) == sum(len(g) for g in graphs)
    assert [r.to_record() for r in results] == expected
    with pytest.raises(graphie.InvalidInputError, match="2 posts but 1 text graphs"):
        extractor.predict(posts, [None, None], graphs=graphs[:1])


def test_windows_stage_sizes_windows_by_the_models_budget(extractor):
    (graph,) = extractor.parse([graphie.Post(text=" ".join(["Obama", "visits", "Paris"] * 200))])
    cut = extractor.windows(graph)
    budget = extractor.model.post_budget
    pieces = [len(p) for p in extractor.model.word_pieces([graph.tokens])[0]]
    assert budget == extractor.model.config.max_length - 2 and len(cut.graphs) > 1
    assert all(sum(pieces[s:e]) <= budget for s, e in cut.spans)
    assert cut.spans == extractor.windows(graph, pieces).spans


def test_the_detector_is_cached_once_per_process(model_dir):
    from parsers.image import get_detector

    one, two = graphie.load(model_dir, detector="caption"), graphie.load(model_dir, detector="caption")
    assert one._detector() is two._detector() is get_detector("caption")
