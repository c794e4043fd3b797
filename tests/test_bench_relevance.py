"""The statistics of ``benchmarks/bench_relevance_gmner.py`` on hand-made gates (no data, no models)."""

import importlib.util
import itertools
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_relevance_gmner", ROOT / "benchmarks" / "bench_relevance_gmner.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench
_spec.loader.exec_module(bench)


def brute_auc(pos, neg):
    pairs = list(itertools.product(pos, neg))
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)


@pytest.mark.parametrize("pos, neg", [
    ([0.9, 0.8], [0.1, 0.2, 0.3]),           # perfectly separated: 1
    ([0.1], [0.9]),                          # reversed: 0
    ([0.5, 0.5], [0.5]),                     # all tied: one half
    ([0.2, 0.7, 0.7, 0.4], [0.7, 0.1, 0.4, 0.4, 0.9]),  # ties across and within the sides
])
def test_auc_is_the_pairwise_probability_with_ties_half(pos, neg):
    assert bench.auc(pos, neg) == pytest.approx(brute_auc(pos, neg))


def test_auc_of_an_empty_side_is_none():
    assert bench.auc([], [0.3]) is None and bench.auc([0.3], []) is None


def test_gmner_verdicts_group_tweets_by_boxed_entities():
    rows = [
        {"img_id": "1", "dataset": "twitter2017", "type": "PER", "visible": True},
        {"img_id": "1", "dataset": "twitter2017", "type": "LOC", "visible": False},
        {"img_id": "2", "dataset": "twitter2017", "type": "ORG", "visible": False},
        {"img_id": "3", "dataset": "twitter2015", "type": "PER", "visible": True},  # another dataset
    ]
    verdicts = bench.gmner_verdicts([json.dumps(r) for r in rows] + [""], "twitter2017")
    assert verdicts == {"1": {"PER"}, "2": set()}
    assert [bench.group_of(i, verdicts) for i in ("1", "2", "3")] == ["visible", "none visible", "no GMNER row"]
    with pytest.raises(ValueError, match="line 2"):
        bench.gmner_verdicts(['{"img_id": "1"}', "{not json"], "twitter2017")


def test_report_counts_each_group_and_type():
    verdicts = {"a": {"PER"}, "b": {"PER", "LOC"}, "c": set(), "d": set()}
    gates = {"a": 0.9, "b": 0.6, "c": 0.2, "d": 0.7, "e": 0.4}
    lines = bench.report(gates, verdicts, uncaptioned=3)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines if line.startswith("| ")}
    # visible: 0.9, 0.6 against none visible 0.2, 0.7 -> pairs won 1 + 1 + 0 + 1 of 4
    assert rows["visible (an entity boxed)"] == "| visible (an entity boxed) | 2 | 0.750 | 0.750 | 100.0 % | 0.750 |"
    assert rows["none visible"] == "| none visible | 2 | 0.450 | 0.450 | 50.0 % | – |"
    assert rows["no GMNER row"] == "| no GMNER row | 1 | 0.400 | 0.400 | 0.0 % | – |"
    assert rows["boxed: LOC"] == "| boxed: LOC | 1 | 0.600 | 0.600 | 100.0 % | 0.500 |"
    assert "boxed: ORG" not in rows
    assert lines[-1].startswith("\n3 posts without a caption")
