"""Text graphs: tweet-aware spaCy parses, pre-tokenised alignment, exports, bad input."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest

from graphie.errors import InvalidInputError
from parsers.text import DEP_LABELS, POS_TAGS, TextGraph, TextParser, parse_text

NASA = "RT @NASA: Astronaut Scott Kelly lands in Kazakhstan after a year in space https://t.co/x #YearInSpace"


@pytest.fixture(scope="module")
def parser() -> TextParser:
    return TextParser()


def assert_well_formed(g: TextGraph) -> None:
    """Tokens sit at their offsets, one tree, finite distances equal to networkx's."""
    for tok, start in zip(g.tokens, g.starts):
        assert tok and g.text[start : start + len(tok)] == tok
    assert len(g.roots) == 1 and g.deps[g.roots[0]] == "ROOT"
    assert len(g.arcs) == len(g) - 1
    dist = g.distance_matrix()
    assert (dist >= 0).all()
    shortest = dict(nx.all_pairs_shortest_path_length(g.to_networkx().to_undirected()))
    expected = np.array([[shortest[i][j] for j in range(len(g))] for i in range(len(g))])
    np.testing.assert_array_equal(dist, expected)


def test_issue_tweet(parser):
    g = parser.parse(NASA)
    assert g.tokens == [
        "RT", "@", "NASA", ":", "Astronaut", "Scott", "Kelly", "lands", "in", "Kazakhstan",
        "after", "a", "year", "in", "space", "https://t.co/x", "#", "YearInSpace",
    ]  # fmt: skip
    assert_well_formed(g)
    kelly, lands, in_, kazakhstan = 6, 7, 8, 9
    assert (g.heads[kelly], g.deps[kelly]) == (lands, "nsubj")
    assert (g.heads[kazakhstan], g.deps[kazakhstan]) == (in_, "pobj")
    assert g.roots == [lands]
    # The URL hangs from the main root and is tagged as such.
    assert (g.heads[15], g.deps[15], g.pos[15], g.tags[15]) == (lands, "discourse", "X", "ADD")
    assert g.char_span(4, 7) == (NASA.index("Astronaut"), NASA.index(" lands"))


def test_tweet_markup_stays_whole(parser):
    text = "I love #NYC!! 😍😍 👍🏽 👨‍👩‍👧 🇺🇸 mail a@b.com &amp; see www.x.co/a?b=1. #tbt @jane_doe"
    g = parser.parse(text)
    assert_well_formed(g)
    for word in ["👍🏽", "👨‍👩‍👧", "🇺🇸", "&amp;", "www.x.co/a?b=1", "a@b.com"]:
        assert word in g.tokens, word
    assert g.tokens.count("😍") == 2
    # Mentions and hashtags are split as the benchmarks split them (tests/test_tweet_tokens.py).
    assert g.tokens[2:4] == ["#", "NYC"] and g.tokens[-4:] == ["#", "tbt", "@", "jane_doe"]
    nyc = g.tokens.index("NYC")
    assert g.pos[nyc] in ("PROPN", "NOUN") and g.deps[nyc] != "discourse"
    for emoji in ("👍🏽", "👨‍👩‍👧", "🇺🇸"):
        i = g.tokens.index(emoji)
        assert (g.pos[i], g.deps[i], g.heads[i]) == ("SYM", "discourse", g.roots[0])


def test_extra_sentence_roots_are_reattached(parser):
    g = parser.parse("Thanks!! See you at the stadium tomorrow. Bye")
    assert_well_formed(g)
    assert g.deps.count("parataxis") >= 1


def test_pretokenised_alignment(parser):
    words = ["RT", "@user_1", ":", "Can't", "wait", "for", "#SXSW2016", "w/", "U.S.", "fans",
             "&amp;", "Obama", "!", "!", "😍😍", "...", "http://t.co/abc", "#blessed"]  # fmt: skip
    g = parser.parse(words)
    assert g.tokens == words
    assert g.text == " ".join(words)
    assert_well_formed(g)
    assert g.tags[words.index("😍😍")] == "NFP" and g.pos[words.index("http://t.co/abc")] == "X"
    assert len(parser.parse(tuple(words))) == len(words)


def test_invisible_pretokenised_words_are_kept_outside_the_parse(parser):
    words = ["Love", "\u00a0", "it", "\ufe0f", "\u200b", "!"]
    g = parser.parse(words)
    assert g.tokens == words
    assert_well_formed(g)
    for i in (1, 3, 4):
        assert (g.pos[i], g.deps[i], g.heads[i]) == ("X", "discourse", g.roots[0])
    assert g.tokens[g.roots[0]] == "Love"


def test_pipe_equals_parse(parser):
    inputs = [NASA, ["Obama", "visited", "Harvard", "#tbt"], "Hi", "Two sentences. Here 😍", NASA.split()]
    piped = list(parser.pipe(inputs, batch_size=2))
    assert [g.to_dict() for g in piped] == [parser.parse(x).to_dict() for x in inputs]


def test_distance_matrix_hand_checked(parser):
    g = parser.parse("The cat sat on the mat")
    assert g.heads == [1, 2, 2, 2, 5, 3]  # The<-cat<-sat->on->mat->the
    assert g.deps == ["det", "nsubj", "ROOT", "prep", "det", "pobj"]
    expected = [
        [0, 1, 2, 3, 5, 4],
        [1, 0, 1, 2, 4, 3],
        [2, 1, 0, 1, 3, 2],
        [3, 2, 1, 0, 2, 1],
        [5, 4, 3, 2, 0, 1],
        [4, 3, 2, 1, 1, 0],
    ]
    np.testing.assert_array_equal(g.distance_matrix(), expected)
    adj = g.adjacency()
    assert adj.dtype == bool and (adj == adj.T).all() and adj.sum() == 2 * 5 and not adj.diagonal().any()
    assert g.adjacency(self_loops=True).diagonal().all()


def test_distance_matrix_of_a_forest():
    g = TextGraph("a b c", ["a", "b", "c"], [0, 2, 4], ["X"] * 3, ["XX"] * 3, ["a", "b", "c"], [0, 0, 2], ["ROOT", "dep", "ROOT"])
    np.testing.assert_array_equal(g.distance_matrix(), [[0, 1, -1], [1, 0, -1], [-1, -1, 0]])


def test_networkx_and_pyg_exports(parser):
    g = parser.parse(NASA)
    n = len(g)
    dg = g.to_networkx()
    assert dg.number_of_nodes() == n and dg.number_of_edges() == n - 1 and nx.is_arborescence(dg)
    assert dg.nodes[6]["token"] == "Kelly" and dg.edges[7, 6]["label"] == "nsubj"
    data = g.to_pyg()
    assert data.num_nodes == n and data.x.shape == (n,) and data.x.dtype.is_floating_point is False
    assert data.edge_index.shape == (2, 2 * (n - 1)) and data.edge_type.shape == (2 * (n - 1),)
    assert set(data.edge_dir.tolist()) == {0, 1}
    for (src, dst), etype, edir in zip(data.edge_index.t().tolist(), data.edge_type.tolist(), data.edge_dir.tolist()):
        head, dep = (src, dst) if edir == 0 else (dst, src)
        assert g.heads[dep] == head and DEP_LABELS[etype] == g.deps[dep]
    assert [POS_TAGS[i] for i in data.x.tolist()] == g.pos
    looped = g.to_pyg(self_loops=True)
    assert looped.edge_index.shape == (2, 2 * (n - 1) + n)
    assert DEP_LABELS[looped.edge_type[-1]] == "self" and looped.edge_dir[-1] == 2


def test_vocabularies_cover_the_pipeline(parser):
    assert DEP_LABELS[0] == POS_TAGS[0] == "<pad>"
    assert set(parser.nlp.get_pipe("parser").labels) <= set(DEP_LABELS)
    assert len(set(DEP_LABELS)) == len(DEP_LABELS) and len(POS_TAGS) == 18


def test_dict_round_trip_and_validation(parser):
    g = parser.parse(NASA)
    d = json.loads(json.dumps(g.to_dict()))
    assert TextGraph.from_dict(d) == g
    with pytest.raises(InvalidInputError, match="heads"):
        TextGraph.from_dict({k: v for k, v in d.items() if k != "heads"})
    with pytest.raises(InvalidInputError, match="cycle"):
        TextGraph.from_dict({**d, "heads": [1, 0] + d["heads"][2:]})
    with pytest.raises(InvalidInputError, match="outside"):
        TextGraph.from_dict({**d, "heads": [99] + d["heads"][1:]})
    with pytest.raises(InvalidInputError, match="offset"):
        TextGraph.from_dict({**d, "starts": [1] + d["starts"][1:]})


@pytest.mark.parametrize(
    "bad, message",
    [
        ("", "empty"),
        (" \n\t ", "empty"),
        ("\u200b\x00", "no visible word"),
        (None, "NoneType"),
        (5, "int"),
        (b"bytes", "bytes"),
        ([], "empty"),
        (["a", ""], "word 1 is an empty string"),
        (["a", "b c"], "word 1 'b c' contains whitespace"),
        (["a", "b", "c\n"], "word 2"),
        (["a", 3], "word 1 is a int"),
    ],
)
def test_bad_input(parser, bad, message):
    with pytest.raises(InvalidInputError, match=message):
        parser.parse(bad)


def test_control_characters_and_odd_whitespace(parser):
    text = "Hello\x00 world\x07 \u200b \u202eok\n\n\tnew  line\u00a0here"
    g = parser.parse(text)
    assert_well_formed(g)
    assert "world" in g.tokens and "new" in g.tokens and "here" in g.tokens


def test_long_texts(parser):
    g = parser.parse("The astronaut lands in Kazakhstan after a year in space . " * 500)
    assert len(g) == 5500 and len(g.roots) == 1
    with pytest.raises(InvalidInputError, match="max_length"):
        parser.parse("x" * (parser.nlp.max_length + 1))
    with pytest.raises(InvalidInputError, match="max_words=3"):
        TextParser(max_words=3).parse(["a", "b", "c", "d"])


def test_parse_text_helper():
    assert parse_text("Obama visited Harvard").deps == ["nsubj", "ROOT", "dobj"]
