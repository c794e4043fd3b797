import json

import pytest

from graphie.datasets import (
    JMERE_ENTITY_TYPES,
    JMERE_RELATIONS,
    MNRE_NONE,
    dataset_stats,
    jmere_from_mnre,
    read_captions,
    read_dataset,
    read_jmere,
    read_mnre,
    read_pgim,
    read_twitter,
    write_jmere,
)
from graphie.errors import DatasetFormatError, InvalidInputError

A = ["JFK", "and", "Obama", "at", "Harvard", "campus"]
B = ["Sunny", "Sweden", "today"]
C = ["Apple", "aka", "AAPL", "rises"]


def mnre_line(tokens, h, t, label, img="a.jpg"):
    return repr({"token": tokens, "h": {"name": "x", "pos": list(h)}, "t": {"name": "y", "pos": list(t)},
                 "img_id": img, "relation": label})


@pytest.fixture
def mnre_file(tmp_path):
    lines = [
        mnre_line(A, (0, 1), (4, 5), "/per/org/member_of"),
        mnre_line(A, (0, 1), (2, 3), "None"),
        mnre_line(A, (2, 3), (0, 1), "/per/per/alternate_names"),
        mnre_line(B, (0, 1), (1, 2), "None", img="b.jpg"),
        mnre_line(C, (0, 1), (2, 3), "/org/org/alternate_names", img="c.jpg"),
        mnre_line(A, (2, 3), (4, 5), "/per/org/member_of"),  # sentence A again, after others
        mnre_line(A, (0, 1), (4, 5), "/per/loc/place_of_residence", img="other.jpg"),  # same words, other image
    ]
    path = tmp_path / "mnre_train.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_mnre(mnre_file):
    posts = read_mnre(mnre_file)
    assert len(posts) == 7
    p = posts[0]
    assert p.tokens == A and p.image == "a.jpg" and p.id == "mnre_train-1"
    assert [e.key for e in p.entities] == [(0, 1, "ENT"), (4, 5, "ENT")]
    assert p.entities[1].text == "Harvard"
    assert p.relations[0].label == "/per/org/member_of" and p.relations[0].head is p.entities[0]
    assert posts[1].relations[0].label == MNRE_NONE


def test_read_mnre_version1_line(tmp_path):
    v1 = ("{'token': ['Chinatown', ',', 'Cali'], 'h': {'name': 'Cali', 'pos': [2, 3]}, "
          "'t': {'name': 'Chinatown', 'pos': [0, 1]}, 'relation': 'none', 'img_id': '2019_01_23_561.jpg'}")
    path = tmp_path / "mnre_org_val.txt"
    path.write_text(v1 + "\n" + v1.replace("'none'", "'/loc/loc/contain'") + "\n")
    posts = read_mnre(path)
    assert [p.relations[0].label for p in posts] == [MNRE_NONE, "/loc/loc/contain"]
    assert posts[1].image == "2019_01_23_561.jpg"


def test_jmere_clean_merge(mnre_file):
    samples = jmere_from_mnre(read_mnre(mnre_file))
    assert len(samples) == 3  # A (a.jpg), C, A (other.jpg); B has only a None pair
    a = samples[0]
    assert a.tokens == A and a.image == "a.jpg" and a.id == "mnre_train-1"
    assert [r.key for r in a.relations] == [
        ((0, 1, "PER"), (4, 5, "ORG"), "member_of"),
        ((2, 3, "PER"), (0, 1, "PER"), "alternate_names"),
        ((2, 3, "PER"), (4, 5, "ORG"), "member_of"),
    ]
    assert [e.key for e in a.entities] == [(0, 1, "PER"), (4, 5, "ORG"), (2, 3, "PER")]
    # per and org alternate_names become one label
    assert samples[1].relations[0].key == ((0, 1, "ORG"), (2, 3, "ORG"), "alternate_names")
    assert samples[2].image == "other.jpg" and samples[2].relations[0].label == "place_of_residence"
    assert sum(len(s.relations) for s in samples) == 5


def test_jmere_eega_compatible_split(mnre_file):
    samples = jmere_from_mnre(read_mnre(mnre_file), eega_compatible=True)
    # the None line splits A's first run; A's late line is a sample of its own
    assert [(s.id, len(s.relations)) for s in samples] == [
        ("mnre_train-1", 1), ("mnre_train-3", 1), ("mnre_train-5", 1), ("mnre_train-6", 1), ("mnre_train-7", 1)
    ]
    assert sum(len(s.relations) for s in samples) == 5


def test_jmere_from_mnre_rejects_foreign_posts(mnre_file):
    posts = read_mnre(mnre_file)
    posts[0].relations.append(posts[0].relations[0])
    with pytest.raises(InvalidInputError, match="mnre_train-1"):
        jmere_from_mnre(posts)


def test_jmere_constants():
    assert len(JMERE_RELATIONS) == 21 and len(set(JMERE_RELATIONS)) == 21
    assert JMERE_ENTITY_TYPES == ("PER", "ORG", "LOC", "MISC")


def test_jmere_write_read_roundtrip(mnre_file, tmp_path):
    samples = jmere_from_mnre(read_mnre(mnre_file))
    out = tmp_path / "train.json"
    write_jmere(samples, out)
    rows = json.loads(out.read_text())  # EEGA's layout: a JSON list
    assert rows[0]["label_list"][0] == [{
        "beg_ent": {"name": "JFK", "pos": [0, 1], "tags": "per"},
        "sec_ent": {"name": "Harvard", "pos": [4, 5], "tags": "org"},
        "relation": "member_of",
    }]
    assert [p.to_dict() for p in read_jmere(out)] == [p.to_dict() for p in samples]


def test_read_jmere_eega_file_and_json_lines(tmp_path):
    row = {"token": B, "img_id": "b.jpg", "label_list": [[{
        "beg_ent": {"name": "Sweden", "pos": [1, 2], "tags": "loc"},
        "sec_ent": {"name": "Sunny", "pos": [0, 1], "tags": "misc"}, "relation": "contain"}]]}
    eega = tmp_path / "val.json"
    eega.write_text(json.dumps([row]))
    lines = tmp_path / "val.jsonl"
    lines.write_text(json.dumps(row) + "\n\n" + json.dumps(row) + "\n")
    (p,) = read_jmere(eega)
    assert p.id == "val-0" and p.image == "b.jpg"
    assert p.relations[0].key == ((1, 2, "LOC"), (0, 1, "MISC"), "contain")
    assert len(read_jmere(lines)) == 2


@pytest.mark.parametrize(
    "content, reason",
    [
        ('[{"token": ["a"], "label_list": [[{"beg_ent": {"pos": [0, 1], "tags": "per"}, '
         '"sec_ent": {"pos": [0, 2], "tags": "per"}, "relation": "peer"}]]}]', "sample 0: sec_ent pos"),
        ('[{"token": ["a"], "label_list": [[{"beg_ent": {"pos": [0, 1], "tags": "dog"}, '
         '"sec_ent": {"pos": [0, 1], "tags": "per"}, "relation": "peer"}]]}]', "type 'dog'"),
        ('[{"token": ["a"]}]', "missing key"),
        ("[{", "invalid JSON"),
        ('{"token": ["a"], "label_list": []}\n{"token": []', ":2: invalid JSON"),
    ],
)
def test_read_jmere_malformed(tmp_path, content, reason):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DatasetFormatError, match=reason):
        read_jmere(path)


@pytest.mark.parametrize(
    "line, reason",
    [
        ("{'token': ['a', 'b'], 'h': {'pos': [0, 1]}", "not a Python dict literal"),
        ("__import__('os').system('echo hi')", "not a Python dict literal"),
        ("['a', 'b']", "expected a dict"),
        ("{'token': ['a', 'b'], 'h': {'pos': [0, 1]}, 't': {'pos': [1, 2]}, 'relation': 'None'}", "'img_id'"),
        (mnre_line(["a", "b"], (0, 1), (1, 3), "None"), "'t' pos \\[1, 3\\] out of range"),
        (mnre_line(["a", "b"], (1, 1), (0, 1), "None"), "'h' pos"),
        (mnre_line(["a", "b"], (0, 1), (1, 2), "member_of"), "relation label 'member_of'"),
        (mnre_line([], (0, 1), (1, 2), "None"), "non-empty list"),
    ],
)
def test_read_mnre_malformed_line_names_file_and_line(tmp_path, line, reason):
    path = tmp_path / "m.txt"
    path.write_text(mnre_line(["a", "b"], (0, 1), (1, 2), "None") + "\n\n" + line + "\n")
    with pytest.raises(DatasetFormatError, match=f"m.txt:3: .*{reason}") as info:
        read_mnre(path)
    assert info.value.line_no == 3


@pytest.mark.parametrize("reader", [read_mnre, read_twitter, read_pgim, read_captions, read_jmere])
def test_missing_and_empty_files(tmp_path, reader):
    with pytest.raises(DatasetFormatError, match="no such file"):
        reader(tmp_path / "absent.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(DatasetFormatError, match="empty"):
        reader(empty)
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n")
    with pytest.raises(DatasetFormatError, match="blank.txt"):
        reader(blank)


TWITTER = """IMGID:1015799
RT\tO
George\tB-PER
Zimmerman\tI-PER
at\tO
Old\tI-OTHER
Trafford\tI-OTHER

IMGID:42
Chicago\tB-ORG
Bears\tI-ORG
"""


def test_read_twitter_with_captions(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(TWITTER)
    caps = tmp_path / "caps.txt"
    caps.write_text("1015799.jpg :a man in a suit\n42.jpg :\n7.jpg :two bears: playing\n")
    captions = read_captions(caps)
    assert captions == {"1015799.jpg": "a man in a suit", "7.jpg": "two bears: playing"}
    posts = read_twitter(path, captions=captions)
    assert [p.id for p in posts] == ["1015799", "42"]
    assert posts[0].image == "1015799.jpg" and posts[0].caption == "a man in a suit"
    assert posts[1].caption is None
    # I- after O starts an entity, as in seqeval
    assert [e.key for e in posts[0].entities] == [(1, 3, "PER"), (4, 6, "MISC")]
    assert posts[0].entities[1].text == "Old Trafford"
    keep = read_twitter(path, other_as_misc=False)
    assert keep[0].entities[1].type == "OTHER"
    assert read_dataset("twitter", path, other_as_misc=False)[0].entities[1].type == "OTHER"


@pytest.mark.parametrize(
    "content, where, reason",
    [
        ("IMGID:1\nRT O\n", 2, "token<TAB>label"),
        ("IMGID:1\nRT\tB_PER\n", 2, "unknown BIO tag"),
        ("IMGID:1\nRT\tB-\n", 2, "no entity type"),
        ("IMGID:1\nRT\tO\n\nRT\tO\n", 4, "IMGID"),
        ("IMGID:1\nRT\tO\nIMGID:2\nx\tO\n", 3, "IMGID line inside"),
        ("IMGID:1\n\nIMGID:2\nx\tO\n", 1, "no token lines"),
    ],
)
def test_read_twitter_malformed(tmp_path, content, where, reason):
    path = tmp_path / "t.txt"
    path.write_text(content)
    with pytest.raises(DatasetFormatError, match=f"t.txt:{where}: .*{reason}"):
        read_twitter(path)


def test_read_captions_of_several_captioners_joins_them_per_image(tmp_path):
    short, long = tmp_path / "blip2.txt", tmp_path / "qwen.txt"
    short.write_text("1.jpg :a man\n2.jpg :\n3.jpg :a dog\n")
    long.write_text("1.jpg :Barack Obama speaks at a podium.\n2.jpg :A crowd in a stadium.\n")
    assert read_captions([short, long]) == {"1.jpg": "a man | Barack Obama speaks at a podium.",
                                            "2.jpg": "A crowd in a stadium.", "3.jpg": "a dog"}
    assert read_captions([long, short])["1.jpg"] == "Barack Obama speaks at a podium. | a man"  # the files' order
    assert read_captions([short]) == read_captions(short)
    long.write_text("1.jpg :x\nbad line\n")
    with pytest.raises(DatasetFormatError, match="qwen.txt:2"):
        read_captions([short, long])


def test_read_captions_malformed(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("1.jpg :a cat\n2.jpg a dog\n")
    with pytest.raises(DatasetFormatError, match="c.txt:2"):
        read_captions(path)
    path.write_text("1.jpg :a cat\n1.jpg :a dog\n")
    with pytest.raises(DatasetFormatError, match="c.txt:2: second caption"):
        read_captions(path)


def test_read_pgim(tmp_path):
    path = tmp_path / "valid.txt"
    path.write_text(
        "Kelly\tB-PER\nlands\tO\n<EOS>\tX\nNamed\tX\nentities:1.\tX\nKelly\tX\n\n"
        "Paris\tB-LOC\nFC\tI-OTHER\n<EOS>\tX\n"
    )
    a, b = read_pgim(path)
    assert a.tokens == ["Kelly", "lands"] and a.context == "Named entities:1. Kelly" and a.id == "valid-1"
    assert [e.key for e in a.entities] == [(0, 1, "PER")]
    assert b.context is None and b.id == "valid-8"
    assert [e.key for e in b.entities] == [(0, 1, "LOC"), (1, 2, "MISC")]
    path.write_text("Kelly\tB-PER\nlands\tQ\n<EOS>\tX\n")
    with pytest.raises(DatasetFormatError, match="valid.txt:2: unknown BIO tag"):
        read_pgim(path)
    path.write_text("<EOS>\tX\nsome\tX\n")
    with pytest.raises(DatasetFormatError, match="valid.txt:1: no tweet tokens"):
        read_pgim(path)


def test_dataset_stats(mnre_file):
    stats = dataset_stats(read_mnre(mnre_file))
    assert stats["sentences"] == 7 and stats["entities"] == 14
    assert stats["relations_by_label"]["None"] == 2
    jm = dataset_stats(jmere_from_mnre(read_mnre(mnre_file)))
    assert jm["sentences"] == 3 and jm["relations"] == 5
    assert jm["entities_by_type"] == {"LOC": 1, "ORG": 3, "PER": 3}
    assert jm["relations_by_label"] == {"alternate_names": 2, "member_of": 2, "place_of_residence": 1}


def test_read_dataset_unknown_format(mnre_file):
    with pytest.raises(InvalidInputError, match="unknown dataset format 'conll'"):
        read_dataset("conll", mnre_file)
    with pytest.raises(InvalidInputError, match="format 'mnre'"):
        read_dataset("mnre", mnre_file, other_as_misc=False)
