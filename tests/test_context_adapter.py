"""The context adapter: a LoRA adapter that only posts with a context pass through, trained on
top of a saved text-only model (``training.init_from``) whose weights stay fixed. A post without
context then gets exactly the text-only model's answer; one with context reads the adapter."""

import json

import pytest
import torch
from safetensors.torch import load_file

import graphie
from graphie.cli import main
from graphie.errors import InvalidInputError
from graphie.models import GraphieModel, ModelConfig
from graphie.models.encoder import create_encoder, plain_key
from graphie.training.evaluate import evaluate
from graphie.training.trainer import load_posts
from graphie.types import Post
from test_training import write_fixture_files


def _nonzero_adapter(encoder) -> None:
    """LoRA's B starts at zero (the adapter starts as the identity): give it weights to see it."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if "lora_B" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def test_rows_without_context_read_the_encoder_with_the_adapter_off():
    torch.manual_seed(0)
    encoder = create_encoder("minilm", context_adapter=4, max_length=32).eval()
    _nonzero_adapter(encoder)
    plain = create_encoder("minilm", max_length=32).eval()  # the same pretrained weights, no adapter
    words = [["Obama", "visits", "Paris"], ["Merkel", "in", "Berlin", "today"]]
    with torch.no_grad():
        mixed = encoder(encoder.encode(words, [None, "a woman at a podium"]))
        alone = plain(plain.encode(words[:1]))
        read = encoder(encoder.encode(words[1:], ["a woman at a podium"]))
        without = encoder(encoder.encode(words))
    assert torch.allclose(mixed[0, :3], alone[0], atol=1e-5)  # no context: the encoder's own weights
    assert torch.allclose(without[0, :3], alone[0], atol=1e-5)
    assert torch.allclose(mixed[1], read[0], atol=1e-5)  # context: through the adapter
    assert not torch.allclose(without[1], read[0], atol=1e-3)


def test_config_needs_a_context_to_read_and_one_adapter():
    with pytest.raises(InvalidInputError, match="context_adapter reads a context"):
        ModelConfig(task="ner", head="bio", context_adapter=8)
    with pytest.raises(InvalidInputError, match="set one"):
        ModelConfig(task="ner", head="bio", context_adapter=8, lora_rank=8, context=["notes"])


@pytest.fixture(scope="module")
def base_and_data(tmp_path_factory):
    """A trained text-only joint model (one epoch of the fixture data) and captions for its images."""
    root = tmp_path_factory.mktemp("adapter")
    data, captions = write_fixture_files(root)
    model = {"task": "jmere", "head": "bio", "max_length": 48, "pair_channels": ["pos", "distance"],
             "none_weight": 0.3}
    training = {"epochs": 1, "batch_size": 4, "head_lr": 3e-3, "lr": 1e-4, "warmup": 0.0, "num_threads": 1,
                "max_dev": 8}
    base_cfg = root / "base.json"
    base_cfg.write_text(json.dumps({"data": {"format": "jmere_from_mnre", "train": str(data), "dev": str(data)},
                                    "model": model, "training": training}), encoding="utf-8")
    assert main(["train", str(base_cfg), "--output", str(root / "base"), "--no-progress"]) == 0
    adapter_cfg = root / "adapter.json"
    adapter_cfg.write_text(json.dumps({
        "data": {"format": "jmere_from_mnre", "train": str(data), "dev": str(data), "captions": str(captions),
                 "image_context": True},
        "model": {**model, "context": ["caption"], "context_adapter": 4},
        "training": {**training, "lr": 5e-3, "init_from": str(root / "base")}}), encoding="utf-8")
    return root, adapter_cfg


def test_an_adapter_run_trains_the_adapter_only_and_keeps_the_text_only_answers(base_and_data, capsys):
    root, adapter_cfg = base_and_data
    assert main(["train", str(adapter_cfg), "--output", str(root / "reader"), "--no-progress"]) == 0
    capsys.readouterr()
    base, reader = load_file(str(root / "base" / "model.safetensors")), load_file(str(root / "reader" / "model.safetensors"))
    adapter = [k for k in reader if "lora_" in k]
    assert adapter and all(plain_key(k) in base for k in reader if "lora_" not in k)
    assert all(torch.equal(reader[k], base[plain_key(k)]) for k in reader if "lora_" not in k)  # nothing else moved
    assert any(reader[k].abs().sum() > 0 for k in adapter if "lora_B" in k)  # the adapter learnt

    text_only, with_adapter = graphie.load(root / "base"), graphie.load(root / "reader")
    assert with_adapter.model.config.context == ["caption"] and with_adapter.model.config.context_adapter == 4
    post = "Obama works for Google in Paris ."
    plain, same = text_only.extract(post), with_adapter.extract(post)
    assert [(e.text, e.type, e.score) for e in same.entities] == [(e.text, e.type, e.score) for e in plain.entities]
    read = with_adapter.model.predict([Post(tokens=post.split(), caption="x",
                                            context="caption: a person at work in the city")])[0]
    unread = with_adapter.model.predict([Post(tokens=post.split())])[0]
    assert [e.score for e in read.entities] != [e.score for e in unread.entities]


def test_init_from_names_a_model_that_predicts_other_labels(base_and_data, tmp_path, capsys):
    root, adapter_cfg = base_and_data
    config = json.loads(adapter_cfg.read_text())
    config["model"]["entity_types"] = ["ENT"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(config), encoding="utf-8")
    assert main(["train", str(bad), "--output", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "init_from" in err[0] and "entity_types" in err[0]


def test_an_adapter_learns_from_tweets_with_notes_and_selects_on_their_entities(base_and_data, tmp_path, capsys):
    """A joint model's notes adapter trained on NER data (tweets and their LLM notes): the labels
    are the saved model's (the tweets show only two of its types and none of its relations), and
    validation scores entities, as ``evaluate --task twitter`` does."""
    root, _ = base_and_data
    tweets, notes = tmp_path / "tweets.txt", tmp_path / "notes.txt"
    rows = [("Obama", "B-PER"), ("visits", "O"), ("Paris", "B-LOC")]
    tweets.write_text("".join(f"IMGID:{i}\n" + "".join(f"{w}\t{t}\n" for w, t in rows) + "\n" for i in range(6)),
                      encoding="utf-8")
    notes.write_text("".join(f"{w}\t{t}\n" for w, t in rows) + "<EOS>\tX\nBarack\tX\nObama\tX\nin\tX\nFrance\tX\n\n",
                     encoding="utf-8")
    config = tmp_path / "notes_adapter.json"
    config.write_text(json.dumps({
        "data": {"format": "twitter", "train": str(tweets), "dev": str(tweets), "notes": [str(notes)],
                 "entities_only": True},
        "model": {"task": "jmere", "head": "bio", "max_length": 48, "pair_channels": ["pos", "distance"],
                  "none_weight": 0.3, "context": ["notes"], "context_adapter": 4},
        "training": {"epochs": 1, "batch_size": 4, "lr": 5e-3, "warmup": 0.0, "num_threads": 1,
                     "init_from": str(root / "base")}}), encoding="utf-8")
    assert main(["train", str(config), "--output", str(tmp_path / "reader"), "--no-progress"]) == 0
    capsys.readouterr()
    base = GraphieModel.from_pretrained(root / "base")
    reader = GraphieModel.from_pretrained(tmp_path / "reader")
    assert reader.config.relation_labels == base.config.relation_labels and reader.config.relation_labels
    assert reader.config.entity_types == base.config.entity_types
    metrics = json.loads((tmp_path / "reader" / "metrics.json").read_text())
    posts = load_posts({"format": "twitter", "dev": str(tweets), "notes": [str(notes)]}, "dev")
    scores, _ = evaluate(reader, posts, "twitter")
    assert metrics["history"][0]["f1"] == round(scores["f1"], 4)


def test_a_new_adapter_starts_afresh_on_a_model_that_has_one(base_and_data, capsys):
    """``init_from`` a model that already reads context through an adapter (the shipped default
    does): its other weights are taken, its adapter is not, so the run starts where it would on
    the text-only model, whatever the new adapter's rank."""
    from graphie.training.trainer import start_from

    root, adapter_cfg = base_and_data
    if not (root / "reader" / "model.safetensors").is_file():
        assert main(["train", str(adapter_cfg), "--output", str(root / "reader"), "--no-progress"]) == 0
        capsys.readouterr()
    config = GraphieModel.from_pretrained(root / "reader").config
    config.context_adapter = 8
    model = start_from(config, str(root / "reader"))
    base = load_file(str(root / "base" / "model.safetensors"))
    state = model.state_dict()
    lora_b = [k for k in state if "lora_B" in k]
    assert lora_b and all(state[k].abs().sum() == 0 for k in lora_b)  # LoRA's fresh B: the identity
    assert all(torch.equal(state[k], base[plain_key(k)]) for k in state if "lora_" not in k)
