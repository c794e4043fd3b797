import math

import pytest
import torch

from graphie.models.pair_features import NUM_PMI_BUCKETS, CooccurrenceStats, MultiChannelPairFeatures, PairInputs


def test_pmi_from_post_counts():
    posts = [["New", "York", "rain"], ["new", "york"], ["rain", "today"], ["new", "york", "today"]]
    stats = CooccurrenceStats.fit(posts, min_word_count=1, min_pair_count=1)
    # p(new, york) = 3/4, p(new) = p(york) = 3/4 -> PMI = log(4/3)
    assert math.isclose(stats.pmi("NEW", "york"), math.log((3 / 4) / (3 / 4 * 3 / 4)))
    assert stats.pmi("new", "banana") is None and stats.pmi("new", "new") is None
    m = stats.bucket_matrix(["new", "york", "banana"], 4)
    assert m.shape == (4, 4) and torch.equal(m, m.t())
    assert m[0, 1] > 0 and m[0, 2] == 0 and m[3].sum() == 0 and m.max() < NUM_PMI_BUCKETS
    again = CooccurrenceStats.from_dict(stats.to_dict())
    assert again.pmi("new", "york") == stats.pmi("new", "york")


def test_min_counts_prune():
    stats = CooccurrenceStats.fit([["a", "b"], ["a", "c"]], min_word_count=2, min_pair_count=1)
    assert set(stats.word_counts) == {"a"} and stats.pair_counts == {}


def test_multi_channel_shapes_masks_and_gradients():
    torch.manual_seed(0)
    layer = MultiChannelPairFeatures(dim=16, channels=["pos", "distance", "cooccurrence"], num_pos=5, pair_dim=4,
                                     max_distance=3, dropout=0.0)
    torch.nn.init.normal_(layer.node_out.weight)
    h = torch.randn(2, 4, 16, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    pos = torch.randint(0, 5, (2, 4))
    dist = torch.randint(-1, 9, (2, 4, 4))
    pmi = torch.randint(0, NUM_PMI_BUCKETS, (2, 4, 4))
    h2, pair = layer(PairInputs(h, mask, pos, dist, pmi))
    assert h2.shape == (2, 4, 16) and pair.shape == (2, 4, 4, 4)
    assert torch.equal(h2[1, 2:], h[1, 2:])  # padded words unchanged
    # padded words do not leak into real words' convolutions
    h_other = h.detach().clone()
    h_other[1, 2:] = torch.randn(2, 16)
    assert torch.allclose(layer(PairInputs(h_other, mask, pos, dist, pmi))[0][1, :2], h2[1, :2].detach())
    (h2.sum() + pair.sum()).backward()
    assert h.grad.abs().sum() > 0 and layer.embeddings["pos"].weight.grad.abs().sum() > 0


def test_no_channels_gives_zero_pair_features():
    layer = MultiChannelPairFeatures(dim=8, channels=[], num_pos=5, pair_dim=4)
    h = torch.randn(1, 3, 8)
    h2, pair = layer(PairInputs(h, torch.ones(1, 3, dtype=torch.bool), torch.zeros(1, 3, dtype=torch.long),
                                torch.zeros(1, 3, 3, dtype=torch.long), torch.zeros(1, 3, 3, dtype=torch.long)))
    assert torch.equal(h2, h) and pair.abs().sum() == 0


def test_channels_come_from_the_registry(monkeypatch):
    from graphie.errors import UnknownComponentError
    from graphie.registry import pair_channels

    assert {"pos", "distance", "cooccurrence"} <= set(pair_channels.names())
    monkeypatch.setattr(pair_channels, "_factories", dict(pair_channels._factories))  # registration undone after

    @pair_channels.register("same_tag")
    class SameTag(torch.nn.Embedding):  # a user's channel: do the two words share a POS tag?
        def __init__(self, pair_dim, **_sizes):
            super().__init__(2, pair_dim)

        def forward(self, inputs: PairInputs):
            return super().forward((inputs.pos.unsqueeze(2) == inputs.pos.unsqueeze(1)).long())

    layer = MultiChannelPairFeatures(dim=8, channels=["distance", "same_tag"], num_pos=5, pair_dim=4)
    _, pair = layer(PairInputs(torch.randn(1, 3, 8), torch.ones(1, 3, dtype=torch.bool), torch.tensor([[0, 1, 0]]),
                               torch.zeros(1, 3, 3, dtype=torch.long), torch.zeros(1, 3, 3, dtype=torch.long)))
    assert pair.shape == (1, 3, 3, 4) and list(layer.embeddings) == ["distance", "same_tag"]
    with pytest.raises(UnknownComponentError, match="known: .*pos"):
        MultiChannelPairFeatures(dim=8, channels=["pos", "no_such_channel"], num_pos=5)
