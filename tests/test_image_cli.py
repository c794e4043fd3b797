"""`graphie parse-image`: JSON on stdout, drawing, caption-only graphs, one-line errors."""

import json

from PIL import Image

from graphie.cli import main


def test_parse_image_cli(tmp_path, capsys):
    Image.new("RGB", (64, 48), "white").save(tmp_path / "blank.png")
    assert main(["parse-image", str(tmp_path / "blank.png"), "--no-features", "--option", "ocr=false",
                 "--draw", str(tmp_path / "out.png")]) == 0
    graph = json.loads(capsys.readouterr().out)
    assert graph["image_id"] == "blank.png" and (graph["width"], graph["height"]) == (64, 48)
    assert graph["objects"][0]["label"] == "image"
    assert (tmp_path / "out.png").read_bytes()[:4] == b"\x89PNG"


def test_caption_only(capsys):
    assert main(["parse-image", "--caption", "a man riding a horse", "--max-objects", "1"]) == 0
    graph = json.loads(capsys.readouterr().out)
    assert [o["label"] for o in graph["objects"]] == ["image", "man"]


def test_errors_are_one_line(tmp_path, capsys):
    cases = [
        ["parse-image", "https://example.com/x.jpg"],
        ["parse-image", str(tmp_path / "missing.jpg")],
        ["parse-image"],
        ["parse-image", "x.jpg", "--detector", "nope"],
        ["parse-image", "x.jpg", "--option", "novalue"],
        ["parse-image", str(tmp_path), "--option", "faces=sometimes"],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("graphie parse-image: error:") and err.count("\n") == 1, err
