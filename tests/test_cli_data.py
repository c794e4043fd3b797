import json

import pytest

from graphie.cli import main
from graphie.datasets import read_jmere


def mnre_line(tokens, h, t, label, img="a.jpg"):
    return repr({"token": tokens, "h": {"name": "x", "pos": list(h)}, "t": {"name": "y", "pos": list(t)},
                 "img_id": img, "relation": label})


A = ["JFK", "and", "Obama", "at", "Harvard"]
B = ["Sunny", "Sweden", "today"]


@pytest.fixture
def mnre_dir(tmp_path):
    d = tmp_path / "mnre"
    d.mkdir()
    (d / "mnre_train.txt").write_text("\n".join([
        mnre_line(A, (0, 1), (4, 5), "/per/org/member_of"),
        mnre_line(A, (0, 1), (2, 3), "None"),
        mnre_line(A, (2, 3), (4, 5), "/per/org/member_of"),
        mnre_line(B, (1, 2), (0, 1), "/loc/loc/contain", img="b.jpg"),
    ]) + "\n")
    # the original release's name for the validation file, with a space
    (d / "mnre_val .txt").write_text(mnre_line(B, (1, 2), (0, 1), "None", img="b.jpg") + "\n"
                                     + mnre_line(B, (0, 1), (1, 2), "/per/loc/place_of_birth", img="b.jpg") + "\n")
    return d


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_jmere_from_mnre_clean(capsys, mnre_dir, tmp_path):
    code, out, err = run(capsys, "data", "jmere-from-mnre", str(mnre_dir), str(tmp_path / "out"))
    assert code == 0
    result = json.loads(out)
    assert result["mode"] == "clean"
    assert {k: (v["sentences"], v["quintuples"]) for k, v in result["splits"].items()} == {
        "train": (2, 3), "val": (1, 1)
    }
    assert "test" in result["skipped"] and "test split skipped" in err
    train = read_jmere(tmp_path / "out" / "train.json")
    assert [len(p.relations) for p in train] == [2, 1]
    assert read_jmere(tmp_path / "out" / "val.json")[0].id == "mnre_val-2"


def test_jmere_from_mnre_eega_compatible(capsys, mnre_dir, tmp_path):
    code, out, _ = run(capsys, "data", "jmere-from-mnre", str(mnre_dir), str(tmp_path / "out"), "--eega-compatible")
    assert code == 0
    result = json.loads(out)
    assert result["mode"] == "eega-compatible"
    assert result["splits"]["train"]["sentences"] == 3 and result["splits"]["train"]["quintuples"] == 3


def test_jmere_from_mnre_errors(capsys, tmp_path):
    code, out, err = run(capsys, "data", "jmere-from-mnre", str(tmp_path / "nope"), str(tmp_path / "out"))
    assert code == 2 and out == "" and "not a directory" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "data", "jmere-from-mnre", str(tmp_path / "empty"), str(tmp_path / "out"))
    assert code == 2 and "mnre_train.txt" in err


def test_stats_mnre_and_jmere(capsys, mnre_dir, tmp_path):
    code, out, _ = run(capsys, "data", "stats", "mnre", str(mnre_dir / "mnre_train.txt"))
    stats = json.loads(out)
    assert code == 0 and stats["sentences"] == 4 and stats["relations_by_label"]["None"] == 1
    run(capsys, "data", "jmere-from-mnre", str(mnre_dir), str(tmp_path / "out"))
    code, out, _ = run(capsys, "data", "stats", "jmere", str(tmp_path / "out" / "train.json"))
    stats = json.loads(out)
    assert stats["relations_by_label"] == {"contain": 1, "member_of": 2}
    assert stats["entities_by_type"] == {"LOC": 2, "ORG": 1, "PER": 2}


def test_stats_twitter_and_pgim(capsys, tmp_path):
    tw = tmp_path / "train.txt"
    tw.write_text("IMGID:1\nObama\tB-PER\nin\tO\nEurope\tB-OTHER\n\nIMGID:2\nhi\tO\n")
    caps = tmp_path / "caps.txt"
    caps.write_text("1.jpg :a man\n")
    code, out, _ = run(capsys, "data", "stats", "twitter", str(tw), "--captions", str(caps))
    stats = json.loads(out)
    assert code == 0 and stats["sentences"] == 2 and stats["captions"] == 1
    assert stats["entities_by_type"] == {"MISC": 1, "PER": 1}
    _, out, _ = run(capsys, "data", "stats", "twitter", str(tw), "--keep-other")
    assert json.loads(out)["entities_by_type"] == {"OTHER": 1, "PER": 1}
    pg = tmp_path / "pgim.txt"
    pg.write_text("Obama\tB-PER\n<EOS>\tX\nPresident\tX\n")
    _, out, _ = run(capsys, "data", "stats", "pgim", str(pg))
    assert json.loads(out)["contexts"] == 1


def test_stats_bad_file_is_one_line_error(capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("IMGID:1\nObama B-PER\n")
    code, out, err = run(capsys, "data", "stats", "twitter", str(bad))
    assert code == 2 and out == ""
    assert err.strip().endswith("bad.txt:2: expected 'token<TAB>label', got 'Obama B-PER'")
    code, _, err = run(capsys, "data", "stats", "mnre", str(bad), "--captions", str(bad))
    assert code == 2 and "--captions" in err
