import pytest
import torch

from graphie.models.bio import BIOTagger, bio_labels, bio_to_entities, spans_to_bio

TYPES = ["LOC", "PER"]


def test_bio_roundtrip_with_adjacent_entities():
    spans = [(0, 2, "PER"), (2, 3, "PER"), (4, 5, "LOC")]
    tags = spans_to_bio(spans, TYPES, 6)
    assert [bio_labels(TYPES)[t] for t in tags] == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "O"]
    assert bio_to_entities(tags, TYPES) == spans


def test_bio_orphan_inside_and_type_switch():
    # I-PER without B starts an entity; I-LOC after I-PER starts another
    labels = bio_labels(TYPES)
    tags = [labels.index(t) for t in ["I-PER", "I-PER", "I-LOC", "O"]]
    assert bio_to_entities(tags, TYPES) == [(0, 2, "PER"), (2, 3, "LOC")]


@pytest.mark.parametrize("crf", [False, True])
def test_tagger_learns_and_respects_mask(crf):
    torch.manual_seed(0)
    tagger = BIOTagger(dim=6, types=TYPES, dropout=0.0, crf=crf)
    h = torch.randn(2, 4, 6, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    tags = torch.tensor([spans_to_bio([(0, 2, "PER")], TYPES, 4), spans_to_bio([(1, 2, "LOC")], TYPES, 4)])
    opt = torch.optim.Adam([*tagger.parameters()], lr=0.1)
    for _ in range(50):
        opt.zero_grad()
        loss = tagger.loss(tagger(h.detach()), tags, mask)
        loss.backward()
        opt.step()
    tagger.loss(tagger(h), tags, mask).backward()
    assert h.grad.abs().sum() > 0
    decoded = tagger.decode(tagger(h), mask)
    assert [[s[:3] for s in post] for post in decoded] == [[(0, 2, "PER")], [(1, 2, "LOC")]]
    assert all(0.5 < s[3] <= 1.0 for post in decoded for s in post)
