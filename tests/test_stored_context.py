"""Captions and notes stored in files reach a model post by post: ``StoredContext`` joins them as
training does (captions by image file name, PGIM notes by the tweet's words), and
``graphie extract-file --captions/--notes`` gives a context-reading model the same input as the
API given the caption and notes by hand."""

import json
import shutil
from pathlib import Path

import pytest
import torch

import graphie
from graphie.cli import main
from graphie.datasets import StoredContext
from graphie.errors import DatasetFormatError
from graphie.models import GraphieModel, ModelConfig
from graphie.types import Post

PHOTO = Path(__file__).resolve().parent.parent / "examples" / "data" / "astronaut.jpg"
NOTE = "Obama is a politician ; Paris is a city ."


@pytest.fixture
def files(tmp_path):
    captions = tmp_path / "captions.txt"
    captions.write_text("a.jpg :a man waving at a crowd\nb.jpg :a rocket on a launch pad\n", encoding="utf-8")
    notes = tmp_path / "notes.txt"  # PGIM's format: the tweet's tagged tokens, <EOS>, the note's tokens
    notes.write_text("".join(f"{w}\t{t}\n" for w, t in [("Obama", "B-PER"), ("visits", "O"), ("Paris", "B-LOC"),
                                                      ("<EOS>", "X")] + [(w, "X") for w in NOTE.split()]) + "\n",
                     encoding="utf-8")
    return captions, notes


def test_stored_context_joins_captions_by_image_name_and_notes_by_words(files):
    captions, notes = files
    stored = StoredContext(captions, [notes])
    post = Post(text="Obama visits Paris", image="/photos/2018/a.jpg")
    filled = stored(post)
    assert (filled.caption, filled.context) == ("a man waving at a crowd", NOTE)
    assert post.caption is None and post.context is None  # the caller's post is not changed
    assert stored(Post(tokens=["Obama", "visits", "Paris"])).context == NOTE  # tokens join too
    kept = stored(Post(text="Obama visits Paris", image="a.jpg", caption="mine", context="my note"))
    assert (kept.caption, kept.context) == ("mine", "my note")  # what a post has, it keeps
    nothing = Post(text="Merkel in Berlin", image="c.jpg")
    assert stored(nothing) is nothing
    assert stored.found == {"caption": 1, "notes": 2}


def test_stored_context_names_a_bad_file(tmp_path):
    bad = tmp_path / "captions.txt"
    bad.write_text("no separator here\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match="captions.txt"):
        StoredContext(bad)
    with pytest.raises(DatasetFormatError, match="no such file"):
        StoredContext(notes=[tmp_path / "missing.txt"])


def test_extract_file_gives_a_context_reading_model_its_stored_caption_and_notes(files, tmp_path, capsys):
    captions, notes = files
    reader = tmp_path / "reader"  # an untrained tagger that reads captions and notes: the plumbing, not quality
    torch.manual_seed(0)
    GraphieModel(ModelConfig(task="ner", head="bio", entity_types=["LOC", "ORG", "PER"],
                             context=["caption", "notes"])).save_pretrained(reader)
    shutil.copy(PHOTO, tmp_path / "a.jpg")
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": 1, "text": "Obama visits Paris", "image": "a.jpg"}) + "\n"
                   + json.dumps({"id": 2, "text": "Merkel in Berlin"}) + "\n", encoding="utf-8")
    common = ["--model", str(reader), "--images", str(tmp_path), "--quiet"]
    out, plain = tmp_path / "out.jsonl", tmp_path / "plain.jsonl"
    assert main(["extract-file", str(src), "--output", str(out), "--captions", str(captions), "--notes", str(notes),
                 *common]) == 0
    assert main(["extract-file", str(src), "--output", str(plain), *common]) == 0
    capsys.readouterr()
    got = [json.loads(line) for line in out.read_text().splitlines()]
    without = [json.loads(line) for line in plain.read_text().splitlines()]
    assert [r["id"] for r in got] == [1, 2] and not any(r["error"] for r in got)
    # the API given the same caption and notes by hand: the same entities and scores
    ex = graphie.load(reader)
    by_hand = ex.extract("Obama visits Paris", str(tmp_path / "a.jpg"), caption="a man waving at a crowd",
                         context=NOTE).to_record()
    assert got[0]["entities"] == by_hand["entities"] and got[0]["entities"]
    assert got[0]["entities"] != without[0]["entities"]  # the context changed what the model read
    assert got[1]["entities"] == without[1]["entities"]  # a post with nothing stored reads as before
