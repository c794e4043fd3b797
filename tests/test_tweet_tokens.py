"""Raw tweets tokenised as the benchmarks tokenise them: ``@``/``#`` split from the name, offsets
into the raw text, and the same graph as the benchmark form (so the same entities)."""

from __future__ import annotations

import re

import pytest

from graphie.cli import main
from parsers.text import TextParser

# Posts written as Twitter-2017 writes them (``@`` and ``#`` separate words), each with the raw
# text a user would post. Made up for the tests, in the shape of the benchmark's lines.
BENCHMARK_FORM = [
    ["@", "Bundesliga_EN", "title", "for", "Bayern", "!"],
    ["Great", "night", "with", "@", "FirestoneWalker", "and", "@", "GreenFlashBeer", "."],
    ["#", "NBA", ":", "Kawhi", "Leonard", "wins", "the", "fan", "vote", "!", "#", "NBAAwards"],
    ["Done", "before", "RT", "@", "ABC7Chicago", ":", "storm", "over", "#", "Chicago", "tonight"],
    ["People", "lining", "up", "in", "Seattle", ".", "#", "GoSun", "#", "WNBA20"],
]


def raw_form(words: list[str]) -> str:
    """The tweet as posted: a sign glued to the name after it."""
    return re.sub(r"(^|\s)([@#]) (?=\w)", r"\1\2", " ".join(words))


@pytest.fixture(scope="module")
def parser() -> TextParser:
    return TextParser()


def test_raw_form_of_the_fixtures():
    assert raw_form(BENCHMARK_FORM[1]) == "Great night with @FirestoneWalker and @GreenFlashBeer ."


@pytest.mark.parametrize("words", BENCHMARK_FORM, ids=lambda w: " ".join(w[:4]))
def test_raw_post_parses_like_its_benchmark_form(parser, words):
    text = raw_form(words)
    raw, given = parser.parse(text), parser.parse(words)
    assert raw.tokens == words
    assert raw.text == text and all(text[s:s + len(t)] == t for t, s in zip(raw.tokens, raw.starts))
    # The graph too: spaCy reads "@ name" in both, so tags, heads and labels agree word for word.
    for name in ("pos", "tags", "lemmas", "heads", "deps"):
        assert getattr(raw, name) == getattr(given, name), name


def test_offsets_point_into_the_raw_text(parser):
    g = parser.parse("Thanks @Ryanair for the flight to Dublin #travel")
    assert g.tokens == ["Thanks", "@", "Ryanair", "for", "the", "flight", "to", "Dublin", "#", "travel"]
    assert g.starts[1:3] == [7, 8] and g.starts[-2:] == [41, 42]
    assert g.char_span(2, 3) == (8, 15)


@pytest.mark.parametrize("text,word", [
    ("mail me at jo@example.com today", "jo@example.com"),       # an address is no mention
    ("read https://x.co/a#top now", "https://x.co/a#top"),       # a URL keeps its fragment
    ("it&#39;s &amp; more", "&amp;"),                             # HTML entities are not hashtags
    ("press #\ufe0f\u20e3 now", "#\ufe0f\u20e3"),                 # a keycap emoji stays one emoji
])
def test_what_is_not_a_mention_or_hashtag_stays_whole(parser, text, word):
    assert word in parser.parse(text).tokens


def test_number_after_hash_is_not_a_hashtag(parser):
    g = parser.parse("the #1 fan")
    assert "1" in g.tokens and not any(t == "#" and g.tokens[i + 1].isalpha()
                                       for i, t in enumerate(g.tokens[:-1]))


def test_unicode_names_and_possessives(parser):
    g = parser.parse("Merci @Zoé_K for #café's best")
    assert g.tokens[:3] == ["Merci", "@", "Zoé_K"] and g.tokens[4:6] == ["#", "café"]
    assert g.tokens[6] == "'s"


def test_pretokenised_whole_mentions_stay_whole(parser):
    words = ["RT", "@PaulStrangwood", ":", "the", "Magat", "Dam", "near", "Cauayan"]  # MNRE's form
    g = parser.parse(words)
    assert g.tokens == words and g.deps[1] == "discourse"


def test_shipped_model_finds_the_mentioned_airline_and_the_city(capsys):
    assert main(["extract", "--text", "Thanks @Ryanair for the flight to Dublin"]) == 0
    out = capsys.readouterr().out
    found = {(m.group(1), m.group(2)) for m in re.finditer(r"entity\s+'([^']+)'\s+(\w+)", out)}
    assert ("Ryanair", "ORG") in found and ("Dublin", "LOC") in found, out
