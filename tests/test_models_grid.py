import pytest
import torch

from graphie.models.grid import (
    GridHead,
    decode_entities,
    decode_relations,
    encode_entities,
    encode_relations,
    entity_cell_mask,
    entity_loss,
    relation_block,
    relation_loss,
)

TYPES = ["LOC", "ORG", "PER"]
LABELS = ["member_of", "present_in"]


def roundtrip(entities, relations, n, nested=False, mode="block", both_directions=False):
    ent = encode_entities(entities, TYPES, n)
    rel = encode_relations(relations, LABELS, n, mode)
    rel_probs = torch.nn.functional.one_hot(rel, len(LABELS) + 1).float()
    found = decode_entities(ent, n, TYPES, max_entity_len=8, nested=nested)
    rels = decode_relations(rel_probs, found, LABELS, mode, both_directions=both_directions)
    keys = [(s, e, t) for s, e, t, _ in found]
    return keys, {(keys[a], keys[b], LABELS[k]) for a, b, k, _ in rels}


def test_entity_block_layout():
    grid = encode_entities([(1, 3, "PER")], TYPES, 5)
    per = grid[:, :, TYPES.index("PER")]
    assert per[1, 1] == per[1, 2] == per[2, 2] == 1
    assert per[2, 1] == 0  # lower triangle stays empty
    assert per.sum() == 3 and grid.sum() == 3


def test_roundtrip_adjacent_same_type_entities_stay_separate():
    ents = [(0, 2, "PER"), (2, 3, "PER"), (4, 5, "LOC")]
    keys, _ = roundtrip(ents, [], 6)
    assert keys == sorted(ents)


def test_roundtrip_nested_entities_of_different_types():
    ents = [(0, 3, "ORG"), (2, 3, "LOC")]  # [Bank of [America]]
    keys, _ = roundtrip(ents, [], 4, nested=True)
    assert sorted(keys) == sorted(ents)
    flat, _ = roundtrip(ents, [], 4, nested=False)
    assert len(flat) == 1  # flat decoding keeps one of two overlapping spans


def test_roundtrip_relations_in_both_directions():
    a, b, c = (0, 2, "PER"), (3, 4, "ORG"), (5, 7, "LOC")
    rels = [(a, b, "member_of"), (b, a, "present_in"), (c, a, "present_in")]
    for mode in ("block", "first"):
        keys, found = roundtrip([a, b, c], rels, 8, mode=mode, both_directions=True)
        assert sorted(keys) == sorted([a, b, c])
        assert found == set(rels)
        _, one_way = roundtrip([a, b, c], rels, 8, mode=mode)
        assert len(one_way) == 2 and (c, a, "present_in") in one_way


def test_relation_cells_are_directed():
    rel = encode_relations([((0, 1, "PER"), (2, 3, "ORG"), "member_of")], LABELS, 4)
    assert rel[0, 2] == 1 and rel[2, 0] == 0


def test_relation_vote_is_a_mean_over_the_block():
    probs = torch.zeros(4, 4, 3)
    probs[..., 0] = 1.0
    # 3 of 4 cells between [0,2) and [2,4) say label 1: the vote says label 1
    for i, j in [(0, 2), (0, 3), (1, 2)]:
        probs[i, j] = torch.tensor([0.0, 1.0, 0.0])
    ents = [(0, 2, "PER", 1.0), (2, 4, "ORG", 1.0)]
    rels = decode_relations(probs, ents, LABELS)
    assert rels == [(0, 1, 0, pytest.approx(0.75))]
    w = relation_block((0, 2), (2, 4), 4)
    assert w.sum() == pytest.approx(1.0) and w[0, 2] == 0.25


def test_decode_respects_threshold_length_and_max_len():
    probs = torch.zeros(6, 6, 3)
    probs[0:6, 0:6, 2] = 0.9  # one long PER block over all 6 words
    found = decode_entities(probs, 4, TYPES, max_entity_len=3)
    assert [(s, e) for s, e, _, _ in found] == [(0, 3), (3, 4)]  # capped at 3 words, cut at length 4
    assert decode_entities(probs * 0.5, 6, TYPES, 8) == []


def test_a_weak_first_word_linked_to_the_next_joins_the_span():
    probs = torch.zeros(4, 4, 3)
    probs[0, 0, 2], probs[0, 1, 2], probs[1, 1, 2] = 0.36, 0.70, 0.98  # "Barack Obama and ..."
    probs[3, 3, 2] = 0.3  # a weak word linked to nothing stays out
    assert [(s, e) for s, e, _, _ in decode_entities(probs, 4, TYPES, 8)] == [(0, 2)]
    probs[0, 1, 2] = 0.4  # without the link, only the strong word
    assert [(s, e) for s, e, _, _ in decode_entities(probs, 4, TYPES, 8)] == [(1, 2)]


def test_cell_mask_band():
    m = entity_cell_mask(5, 4, 2)
    assert m[0, 0] and m[0, 1] and not m[0, 2] and not m[1, 0] and not m[4, 4]


def test_grid_head_shapes_masks_and_gradients():
    torch.manual_seed(0)
    head = GridHead(dim=16, pair_dim=4, grid_dim=8, num_entity_types=3, num_relations=2, dropout=0.0)
    h = torch.randn(2, 5, 16, requires_grad=True)
    pair = torch.randn(2, 5, 5, 4)
    out = head(h, pair)
    assert out.entity_logits.shape == (2, 5, 5, 3)
    assert out.relation_logits.shape == (2, 5, 5, 3)
    ent_t = torch.stack([encode_entities([(0, 2, "PER")], TYPES, 5)] * 2)
    mask = torch.stack([entity_cell_mask(5, 5, 4), entity_cell_mask(5, 3, 4)])
    rel_t = torch.stack([encode_relations([((0, 1, "PER"), (2, 3, "ORG"), "member_of")], LABELS, 5)] * 2)
    loss = entity_loss(out.entity_logits, ent_t, mask) + relation_loss(out.relation_logits, rel_t, mask)
    loss.backward()
    assert torch.isfinite(loss) and h.grad.abs().sum() > 0
    # masked-out cells get no gradient through the loss
    logits = out.entity_logits.detach().requires_grad_()
    entity_loss(logits, ent_t, mask).backward()
    assert logits.grad[1, 4, 4].abs().sum() == 0 and logits.grad[0, 4, 4].abs().sum() > 0


def test_relation_direction_is_learnable():
    """Separate row/column projections let the head tell A->B from B->A."""
    torch.manual_seed(0)
    head = GridHead(dim=8, pair_dim=2, grid_dim=16, num_entity_types=0, num_relations=1, dropout=0.0)
    h = torch.randn(1, 2, 8)
    pair = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([[[0, 1], [0, 0]]])  # 0 -> 1 related, 1 -> 0 not
    mask = ~torch.eye(2, dtype=torch.bool).unsqueeze(0)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        relation_loss(head(h, pair).relation_logits, target, mask).backward()
        opt.step()
    pred = head(h, pair).relation_logits.argmax(-1)
    assert pred[0, 0, 1] == 1 and pred[0, 1, 0] == 0


def test_relation_decoding_keeps_the_more_confident_direction_of_a_pair():
    probs = torch.zeros(4, 4, 3)
    probs[..., 0] = 1.0
    probs[0, 2] = torch.tensor([0.3, 0.7, 0.0])  # PER -> ORG: member_of 0.7
    probs[2, 0] = torch.tensor([0.4, 0.0, 0.6])  # ORG -> PER: present_in 0.6
    ents = [(0, 2, "PER", 1.0), (2, 4, "ORG", 1.0)]
    probs[1, 2], probs[0, 3], probs[1, 3] = probs[0, 2], probs[0, 2], probs[0, 2]
    probs[2, 1], probs[3, 0], probs[3, 1] = probs[2, 0], probs[2, 0], probs[2, 0]
    assert decode_relations(probs, ents, LABELS) == [(0, 1, 0, pytest.approx(0.7))]
    assert decode_relations(probs, ents, LABELS, threshold=0.8) == []
