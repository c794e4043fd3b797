from graphie.models.marker import mark_pair


def test_typed_markers_wrap_head_and_tail_and_point_at_the_opening_marks():
    words = "JFK and Obama at Harvard".split()
    marked, h, t = mark_pair(words, (2, 3, "PER"), (4, 5, "ORG"))
    assert marked == ["JFK", "and", "@", "*", "per", "*", "Obama", "@", "at", "#", "^", "org", "^", "Harvard", "#"]
    assert marked[h] == "@" and marked[t] == "#" and (h, t) == (2, 9)


def test_untyped_and_adjacent_entities_tail_first():
    marked, h, t = mark_pair(["Barack", "Obama", "Michelle"], (2, 3, "ENT"), (0, 2, "ENT"))
    assert marked == ["#", "Barack", "Obama", "#", "@", "Michelle", "@"]
    assert (h, t) == (4, 0)
