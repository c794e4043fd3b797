import pytest

from graphie.errors import InvalidInputError
from graphie.image_context import image_context
from parsers.scene import SceneEdge, SceneGraph, SceneObject


def _graph():
    return SceneGraph(
        [SceneObject("image", 1.0, tags={"stadium": 0.62, "scoreboard": 0.1}),
         SceneObject("person", 0.7, (0, 0, 10, 10), text="Maya"),
         SceneObject("text", 0.95, (0, 0, 5, 5), text="FALCONS"),
         SceneObject("Person", 0.9, (5, 5, 20, 20), tags={"ballplayer": 0.4, "stadium": 0.9}),
         SceneObject("ball", 0.8, (1, 1, 3, 3)),
         SceneObject("text", 0.5, (0, 0, 5, 5), text="falcons  ")],
        [SceneEdge(1, "hold", 4)], 100, 100, "a.jpg")


def test_sections_order_dedup_and_counts():
    out = image_context(_graph(), caption="  a player  holding a ball ")
    assert out == ("caption: a player holding a ball | objects: Person (2), ball | text: FALCONS, Maya"
                   " | tags: stadium, ballplayer")
    assert image_context(_graph(), caption="a player holding a ball") == out.replace("  ", " ")  # deterministic


def test_limits_cut_at_item_boundaries():
    out = image_context(_graph(), max_items=1)
    assert out == "objects: Person (2) | text: FALCONS | tags: stadium"
    short = image_context(_graph(), max_chars=30)
    assert short == "objects: Person (2), ball"
    assert len(image_context(_graph(), caption="x " * 50, max_chars=60)) <= 60
    assert image_context(_graph(), min_tag_probability=0.95).endswith("text: FALCONS, Maya")


def test_empty_inputs_and_errors():
    assert image_context(None) == "" and image_context(SceneGraph([SceneObject("image")])) == ""
    assert image_context(None, caption="a dog") == "caption: a dog"
    with pytest.raises(InvalidInputError, match="SceneGraph"):
        image_context({"objects": []})
    with pytest.raises(InvalidInputError, match="max_items"):
        image_context(_graph(), max_items=0)


def test_a_caption_longer_than_the_budget_is_cut_at_a_word_not_lost():
    """A paragraph-long caption (mPLUG-Owl, MiniCPM-V) used to leave the whole context empty."""
    from graphie.image_context import CONTEXT_CHARS

    caption = " ".join(f"word{i}" for i in range(100))
    short = image_context(None, caption=caption, max_chars=60)
    assert short.startswith("caption: word0 word1") and len(short) <= 60
    assert short.split()[-1].startswith("word") and caption.startswith(short[len("caption: "):])
    assert image_context(None, caption=caption, max_chars=CONTEXT_CHARS) == f"caption: {caption}"
