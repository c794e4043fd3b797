import random
import warnings

import pytest

from graphie.errors import InvalidInputError
from graphie.metrics import bio_to_spans, entity_scores, jmere_scores, mre_scores, prf
from graphie.types import Entity, Extraction, Post, Relation, Span

seqeval = pytest.importorskip("seqeval")
from seqeval.metrics import f1_score, precision_score, recall_score  # noqa: E402
from seqeval.metrics.sequence_labeling import get_entities  # noqa: E402


def test_prf_hand_worked():
    s = prf(3, 4, 6)
    assert s["precision"] == pytest.approx(75.0)
    assert s["recall"] == pytest.approx(50.0)
    assert s["f1"] == pytest.approx(2 * 75 * 50 / 125)  # 60.0
    assert prf(0, 0, 5)["f1"] == 0.0 and prf(0, 3, 0)["precision"] == 0.0
    with pytest.raises(InvalidInputError):
        prf(5, 4, 6)


def test_mre_scores_none_handling_and_accuracy():
    gold = ["/per/per/peer", "None", "/loc/loc/contain", "None", "/per/org/member_of"]
    pred = ["/per/per/peer", "/per/per/peer", "None", "None", "/per/per/couple"]
    s = mre_scores(gold, pred)
    # tp: only pair 0; predicted non-None: pairs 0, 1, 4; gold non-None: 0, 2, 4
    assert (s["tp"], s["n_pred"], s["n_gold"]) == (1, 3, 3)
    assert s["precision"] == pytest.approx(100 / 3)
    assert s["recall"] == pytest.approx(100 / 3)
    assert s["f1"] == pytest.approx(100 / 3)
    # accuracy counts the correctly predicted None pair too: pairs 0 and 3
    assert s["accuracy"] == pytest.approx(40.0)
    assert mre_scores(["none", "x"], ["none", "none"], none_label="none")["n_pred"] == 0
    with pytest.raises(InvalidInputError):
        mre_scores(["None"], [])


def test_bio_to_spans_hand_worked():
    assert bio_to_spans(["B-PER", "I-PER", "O", "B-LOC"]) == [(0, 2, "PER"), (3, 4, "LOC")]
    assert bio_to_spans(["O", "I-PER", "I-PER"]) == [(1, 3, "PER")]  # I- without B- starts
    assert bio_to_spans(["B-PER", "I-LOC"]) == [(0, 1, "PER"), (1, 2, "LOC")]  # type change
    assert bio_to_spans(["B-ORG", "B-ORG"]) == [(0, 1, "ORG"), (1, 2, "ORG")]
    assert bio_to_spans([]) == []
    with pytest.raises(InvalidInputError):
        bio_to_spans(["B-PER", "X"])


def _random_tags(rng, types, prefixes=("B", "I")):
    tags = ["O"] + [f"{p}-{t}" for p in prefixes for t in types]
    return [rng.choice(tags) for _ in range(rng.randint(0, 15))]


def test_bio_to_spans_matches_seqeval_on_random_sequences():
    rng = random.Random(13)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(600):
            types = ("PER", "LOC", "ORG")[: 2 + i % 2]
            prefixes = ("B", "I") if i < 400 else ("B", "I", "E", "S")
            tags = _random_tags(rng, types, prefixes)
            expected = [(s, e + 1, t) for t, s, e in get_entities(tags)]
            assert bio_to_spans(tags) == expected, tags


def test_entity_scores_match_seqeval_on_random_corpora():
    rng = random.Random(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(40):
            gold, pred = [], []
            for _ in range(rng.randint(1, 10)):
                g = _random_tags(rng, ("PER", "LOC", "ORG"))
                # predictions: the gold with some tags resampled, so there is overlap
                p = [t if rng.random() < 0.7 else rng.choice(["O", "B-PER", "I-PER", "B-LOC", "I-ORG"]) for t in g]
                gold.append(g)
                pred.append(p)
            s = entity_scores([bio_to_spans(g) for g in gold], [bio_to_spans(p) for p in pred])
            assert s["precision"] == pytest.approx(100 * precision_score(gold, pred))
            assert s["recall"] == pytest.approx(100 * recall_score(gold, pred))
            assert s["f1"] == pytest.approx(100 * f1_score(gold, pred))


def _ent(s, e, t):
    return Entity(Span(s, e), t)


def test_entity_scores_accept_entities_and_tuples():
    gold = [[_ent(0, 2, "PER"), (3, 4, "LOC")], []]
    pred = [[(0, 2, "PER"), (3, 4, "ORG")], [_ent(1, 2, "PER")]]
    s = entity_scores(gold, pred)
    assert (s["tp"], s["n_pred"], s["n_gold"]) == (1, 3, 2)
    with pytest.raises(InvalidInputError):
        entity_scores([["PER"]], [[]])


def test_jmere_scores_quintuple_needs_all_five():
    jfk, obama, harvard = _ent(0, 1, "PER"), _ent(2, 3, "PER"), _ent(5, 6, "ORG")
    gold = [
        Post(tokens="JFK and Obama at the Harvard".split(), id="a", entities=[jfk, obama, harvard],
             relations=[Relation(jfk, obama, "alumi"), Relation(jfk, harvard, "member_of")])
    ]
    harvard_loc = _ent(5, 6, "LOC")
    pred = [
        Extraction(text=gold[0].text, tokens=gold[0].tokens, id="a", entities=[jfk, obama, harvard_loc],
                   relations=[Relation(jfk, obama, "alumi"), Relation(jfk, harvard_loc, "member_of"),
                              Relation(obama, jfk, "alumi")])
    ]
    s = jmere_scores(gold, pred)
    # only JFK-alumi-Obama matches: the tail type is wrong in the 2nd, direction in the 3rd
    assert (s["tp"], s["n_pred"], s["n_gold"]) == (1, 3, 2)
    assert s["f1"] == pytest.approx(2 * (100 / 3) * 50 / (100 / 3 + 50))
    assert s["entity_precision"] == pytest.approx(200 / 3)
    assert s["entity_recall"] == pytest.approx(200 / 3)
    # EEGA's protocol: direction free, so JFK->Obama and Obama->JFK are one prediction, and correct
    assert s["eega_precision"] == pytest.approx(50.0) and s["eega_recall"] == pytest.approx(50.0)
    with pytest.raises(InvalidInputError):
        jmere_scores(gold, [Post(tokens=["x"], id="b")])
    with pytest.raises(InvalidInputError):
        jmere_scores(gold, [])
