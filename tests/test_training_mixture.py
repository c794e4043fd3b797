"""Entity-only training sets mixed into a joint model teach entities, never "no relation"."""

from __future__ import annotations

import pytest

from graphie.models import GraphieModel, ModelConfig
from graphie.models.batching import make_examples, parse_posts
from graphie.types import Entity, Post, Relation, Span


@pytest.fixture(scope="module")
def collate():
    config = ModelConfig(task="jmere", entity_types=["ORG", "PER"], relation_labels=["member_of"],
                         pair_channels=["pos", "distance"])
    return GraphieModel(config).collator()


def post(words: list[str], ents: list[tuple[int, int, str]], rels=()) -> Post:
    entities = [Entity(Span(s, e, " ".join(words[s:e])), t) for s, e, t in ents]
    relations = [Relation(entities[h], entities[t], label) for h, t, label in rels]
    return Post(tokens=words, entities=entities, relations=relations)


def test_relation_cells_of_entity_only_posts_are_masked(collate):
    joint = post(["Kane", "plays", "for", "Bayern"], [(0, 1, "PER"), (3, 4, "ORG")], [(0, 1, "member_of")])
    ner = post(["Messi", "joins", "Inter", "Miami"], [(0, 1, "PER"), (2, 4, "ORG")])
    examples = (make_examples([joint], parse_posts([joint]))
                + make_examples([ner], parse_posts([ner]), relations_known=False))
    batch = collate(examples)
    assert batch.relation_mask[0].any() and not batch.relation_mask[1].any()
    assert batch.relation_targets[0, 0, 3] == 1  # the joint post still teaches its relation
    assert batch.entity_mask[1].any() and batch.entity_targets[1].sum() > 0  # and the NER post its entities
