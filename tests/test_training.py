"""End to end: train a tiny model on a generated MNRE-format fixture, save, reload, predict the same."""

import json
import shutil

import pytest

from graphie.cli import main
from graphie.errors import InvalidInputError, ModelLoadError
from graphie.models import GraphieModel
from graphie.training.evaluate import evaluate
from graphie.training.trainer import load_posts, train

PEOPLE = ["Alice", "Bob", "Carol", "Dave"]
ORGS = ["Acme", "Globex", "Initech"]
PLACES = ["Paris", "Berlin", "Tokyo"]


def fixture_lines():
    """MNRE lines (dict literals): '<per> works for <org> in <loc> .' with two relations each."""
    lines = []
    for i, (p, o, l) in enumerate((p, o, l) for p in PEOPLE for o in ORGS for l in PLACES[:1 + len(p) % 2]):
        tokens = [p, "works", "for", o, "in", l, "."]
        img = f"img{i}.jpg"
        lines.append({"token": tokens, "h": {"name": p, "pos": [0, 1]}, "t": {"name": o, "pos": [3, 4]},
                      "img_id": img, "relation": "/per/org/member_of"})
        lines.append({"token": tokens, "h": {"name": o, "pos": [3, 4]}, "t": {"name": l, "pos": [5, 6]},
                      "img_id": img, "relation": "/org/loc/locate_at"})
        lines.append({"token": tokens, "h": {"name": l, "pos": [5, 6]}, "t": {"name": p, "pos": [0, 1]},
                      "img_id": img, "relation": "None"})
    return lines


def write_fixture_files(root):
    """The fixture lines as an MNRE file and a caption for each of their images (to use as
    context): ``(data, captions)`` paths under ``root``."""
    data, captions = root / "mini.txt", root / "captions.txt"
    lines = fixture_lines()
    data.write_text("\n".join(repr(d) for d in lines) + "\n", encoding="utf-8")
    captions.write_text("".join(f"{img} :a person at work in the city\n" for img in sorted({d["img_id"] for d in lines})),
                        encoding="utf-8")
    return data, captions


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data = root / "mini.txt"
    data.write_text("\n".join(repr(d) for d in fixture_lines()) + "\n", encoding="utf-8")
    config = {
        "data": {"format": "jmere_from_mnre", "train": str(data), "dev": str(data)},
        "model": {"task": "jmere", "max_length": 24, "gnn_layers": 1, "grid_dim": 32, "pair_dim": 8,
                  "entity_pos_weight": 3.0, "none_weight": 0.3},
        "training": {"epochs": 3, "batch_size": 4, "head_lr": 3e-3, "lr": 1e-4, "warmup": 0.0, "patience": 5,
                     "freeze_encoder_layers": 4},
    }
    summary = train(config, root / "model", progress=False)
    return root, data, summary


def test_training_learns_and_saves_the_best_validation_checkpoint(trained):
    root, data, summary = trained
    history = summary["history"]
    assert history[-1]["loss"] < history[0]["loss"]
    assert (root / "model" / "config.json").is_file() and (root / "model" / "model.safetensors").is_file()
    assert (root / "model" / "train.log").read_text().count("epoch") >= 3
    model = GraphieModel.from_pretrained(root / "model")
    posts = load_posts({"format": "jmere_from_mnre", "dev": str(data)}, "dev")
    scores, preds = evaluate(model, posts, "jmere")
    best = summary["dev"]
    assert scores["f1"] == pytest.approx(best["f1"]) and scores["entity_f1"] == pytest.approx(best["entity_f1"])
    assert scores["entity_f1"] > 0  # a few steps on a repetitive fixture find entities


def test_reload_gives_identical_predictions(trained, tmp_path):
    root, data, _ = trained
    posts = load_posts({"format": "jmere_from_mnre", "dev": str(data)}, "dev")[:6]
    a = GraphieModel.from_pretrained(root / "model")
    a.save_pretrained(tmp_path / "again")
    b = GraphieModel.from_pretrained(tmp_path / "again")
    for pa, pb in zip(a.predict(posts), b.predict(posts)):
        assert pa.to_dict() == pb.to_dict()
    out = a.predict(posts[:1])[0]
    for e in out.entities:
        assert out.text[e.span.start_char:e.span.end_char] == e.span.text


def test_evaluate_command_prints_scores_and_writes_predictions(trained, tmp_path, capsys):
    root, data, _ = trained
    pred_file = tmp_path / "pred.jsonl"
    code = main(["evaluate", str(root / "model"), "--task", "jmere", "--data", str(data), "--predictions", str(pred_file)])
    assert code == 0
    scores = json.loads(capsys.readouterr().out)
    assert {"precision", "recall", "f1", "entity_f1"} <= set(scores)
    lines = pred_file.read_text().splitlines()
    assert len(lines) == len(load_posts({"format": "jmere_from_mnre", "dev": str(data)}, "dev"))
    assert {"gold", "pred", "tokens"} <= set(json.loads(lines[0]))
    assert main(["evaluate", str(root / "model"), "--task", "mnre", "--data", str(data)]) == 2  # wrong task


def test_broken_model_folders_raise_model_load_error(trained, tmp_path):
    root, _, _ = trained
    with pytest.raises(ModelLoadError, match="not a model folder"):
        GraphieModel.from_pretrained(tmp_path / "missing")
    broken = tmp_path / "broken"
    shutil.copytree(root / "model", broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="model.safetensors is missing"):
        GraphieModel.from_pretrained(broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelLoadError, match="unreadable"):
        GraphieModel.from_pretrained(broken)
    shutil.copy(root / "model" / "model.safetensors", broken / "model.safetensors")
    meta = json.loads((broken / "config.json").read_text())
    meta["model"]["grid_dim"] = 64
    (broken / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="does not match"):
        GraphieModel.from_pretrained(broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not a graphie model config"):
        GraphieModel.from_pretrained(broken)


def test_freeze_encoder_layers_fixes_the_lowest_layers():
    from graphie.errors import InvalidInputError
    from graphie.models.encoder import TransformerEncoder
    from graphie.training.trainer import freeze_encoder_layers

    enc = TransformerEncoder("minilm")
    freeze_encoder_layers(enc, 2)
    layers = enc.model.encoder.layer
    assert not any(p.requires_grad for p in enc.model.embeddings.parameters())
    assert not any(p.requires_grad for p in layers[1].parameters())
    assert all(p.requires_grad for p in layers[2].parameters())
    with pytest.raises(InvalidInputError):
        freeze_encoder_layers(enc, len(layers) + 1)


def test_evaluate_reads_pgim_notes_joined_on_the_tokens(trained, tmp_path, capsys):
    """``--notes``: PGIM's note of each tweet becomes its context; a notes file of other tweets is
    a one-line error naming it, not a silent evaluation without context."""
    root, _, _ = trained
    tweets = tmp_path / "valid.txt"
    tweets.write_text("IMGID:1\nObama\tB-PER\nvisits\tO\nParis\tB-LOC\n\n", encoding="utf-8")
    notes = tmp_path / "pgim_valid.txt"
    notes.write_text("Obama\tB-PER\nvisits\tO\nParis\tB-LOC\n<EOS>\tX\nBarack\tX\nObama\tX\nis\tX\na\tX\npolitician\tX\n\n",
                     encoding="utf-8")
    posts = load_posts({"format": "twitter", "dev": str(tweets), "notes": [str(notes)]}, "dev")
    assert posts[0].context == "Barack Obama is a politician"
    assert main(["evaluate", str(root / "model"), "--task", "twitter", "--data", str(tweets), "--notes", str(notes)]) == 0
    assert "f1" in json.loads(capsys.readouterr().out)
    other = tmp_path / "pgim_other.txt"
    other.write_text("Hello\tO\nworld\tO\n<EOS>\tX\nnote\tX\n\n", encoding="utf-8")
    assert main(["evaluate", str(root / "model"), "--task", "twitter", "--data", str(tweets), "--notes", str(other)]) == 2
    assert "pgim_other.txt" in capsys.readouterr().err


def test_evaluate_joins_a_context_providers_text_as_training_does(trained, tmp_path, capsys):
    """``--context-provider``/``--context-options``: the provider a model was trained with
    (``data.context_provider``) gives each evaluated post its context; bad options are one line."""
    root, _, _ = trained
    tweets = tmp_path / "valid.txt"
    tweets.write_text("IMGID:1\nObama\tB-PER\nvisits\tO\nParis\tB-LOC\n\n", encoding="utf-8")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"title": "Paris", "text": "Paris is the capital of France."}) + "\n"
                      + json.dumps({"title": "Rome", "text": "Rome is the capital of Italy."}) + "\n", encoding="utf-8")
    options = {"corpus": str(corpus), "k": 1}
    posts = load_posts({"format": "twitter", "dev": str(tweets), "context_provider": "retrieval",
                        "context_options": options}, "dev")
    assert "capital of France" in posts[0].context
    model = ["evaluate", str(root / "model"), "--task", "twitter", "--data", str(tweets)]
    assert main([*model, "--context-provider", "retrieval", "--context-options", json.dumps(options)]) == 0
    assert "f1" in json.loads(capsys.readouterr().out)
    # the provider really runs: a corpus that is not there stops the evaluation, naming it
    missing = json.dumps({"corpus": str(tmp_path / "nowhere.jsonl")})
    assert main([*model, "--context-provider", "retrieval", "--context-options", missing]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere.jsonl" in err
    with pytest.raises(SystemExit):  # argparse's one-line usage error
        main([*model, "--context-provider", "retrieval", "--context-options", "[1]"])
    assert "expected a JSON object" in capsys.readouterr().err


def test_captions_join_mnre_posts_on_their_image(tmp_path):
    from graphie.datasets import attach_captions, read_captions
    from graphie.errors import DatasetFormatError
    from graphie.types import Post

    captions = tmp_path / "captions.txt"
    captions.write_text("a.jpg :two men on a stage\nb.jpg :\n", encoding="utf-8")
    posts = [Post(tokens=["x"], image="a.jpg"), Post(tokens=["y"], image="b.jpg"), Post(tokens=["z"])]
    attach_captions(posts, read_captions(captions), captions)
    assert [p.caption for p in posts] == ["two men on a stage", None, None]
    with pytest.raises(DatasetFormatError, match="captions.txt: none of 1 posts"):
        attach_captions([Post(tokens=["x"], image="c.jpg")], read_captions(captions), captions)


def test_a_data_section_reads_several_caption_files(tmp_path):
    """``data.captions`` as a list (several captioners): each post's caption is its image's
    captions joined in the files' order; ``graphie train --captions A B`` writes that list."""
    from graphie.cli import build_parser
    from graphie.cli.train import load_config

    data, captions = write_fixture_files(tmp_path)
    other = tmp_path / "other.txt"
    images = sorted({d["img_id"] for d in fixture_lines()})
    other.write_text(f"{images[0]} :a podium\n", encoding="utf-8")
    posts = load_posts({"format": "mnre", "dev": str(data), "captions": [str(captions), str(other)]}, "dev")
    first = next(p for p in posts if p.image == images[0])
    assert first.caption == "a person at work in the city | a podium"
    assert all(p.caption == "a person at work in the city" for p in posts if p.image != images[0])
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data": {"format": "mnre", "train": str(data)}, "model": {"task": "mnre"}}))
    args = build_parser().parse_args(["train", str(config), "--output", str(tmp_path / "o"),
                                      "--captions", str(captions), str(other)])
    assert load_config(args)["data"]["captions"] == [str(captions), str(other)]
    args = build_parser().parse_args(["train", str(config), "--output", str(tmp_path / "o"), "--captions", str(captions)])
    assert load_config(args)["data"]["captions"] == str(captions)  # one file: a string, as before


def test_a_context_provider_writes_each_training_posts_context(tmp_path):
    """``data.context_provider``: BM25 passages of a corpus (MoRe's text retrieval) join the
    posts' contexts after their notes; an unknown option is a one-line error."""
    pytest.importorskip("bm25s")
    tweets = tmp_path / "train.txt"
    tweets.write_text("IMGID:1\nMessi\tB-PER\nscores\tO\nagain\tO\n\nIMGID:2\nRain\tO\nin\tO\nParis\tB-LOC\n\n",
                      encoding="utf-8")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"title": "Lionel Messi", "text": "Lionel Messi is an Argentine footballer who scores goals."}\n'
                      '{"title": "Paris", "text": "Paris is the capital of France, known for rain in spring."}\n'
                      '{"title": "Tokyo", "text": "Tokyo is the capital of Japan."}\n', encoding="utf-8")
    data = {"format": "twitter", "train": str(tweets), "context_provider": "retrieval",
            "context_options": {"corpus": str(corpus), "k": 1}}
    posts = load_posts(data, "train")
    assert "Argentine footballer" in posts[0].context and "capital of France" in posts[1].context
    with pytest.raises(InvalidInputError, match="takes no option 'top'"):
        load_posts({**data, "context_options": {"corpus": str(corpus), "top": 1}}, "train")
