"""The registries are open: a component registered from outside the package (here, in this
test file) is built by name from the model config and trains like a built-in one."""

import torch

from graphie.models import GraphieModel, ModelConfig
from graphie.models.batching import make_examples, parse_posts
from graphie.models.pair_features import PairInputs
from graphie.registry import pair_channels
from test_models_model import jmere_post


def test_a_pair_channel_registered_outside_the_package_trains(monkeypatch):
    monkeypatch.setattr(pair_channels, "_factories", dict(pair_channels._factories))  # registration undone after
    seen = []

    @pair_channels.register("both_capitalised")
    class BothCapitalised(torch.nn.Embedding):
        """Are both words capitalised? Read from the text graphs that :class:`PairInputs` carries."""

        def __init__(self, pair_dim: int, **_sizes: int):
            super().__init__(2, pair_dim)

        def forward(self, inputs: PairInputs) -> torch.Tensor:
            B, n = inputs.mask.shape
            capital = torch.zeros(B, n, dtype=torch.bool, device=inputs.mask.device)
            for b, graph in enumerate(inputs.graphs):
                words = list(graph.tokens)[:n]
                capital[b, :len(words)] = torch.tensor([w[:1].isupper() for w in words])
            seen.append(inputs.states.shape)
            return super().forward((capital.unsqueeze(2) & capital.unsqueeze(1)).long())

    torch.manual_seed(0)
    config = ModelConfig(task="jmere", entity_types=["LOC", "PER"], relation_labels=["couple", "present_in"],
                         max_length=32, pair_channels=["pos", "both_capitalised"])
    model = GraphieModel(config)
    assert isinstance(model.pairs.embeddings["both_capitalised"], BothCapitalised)
    posts = [jmere_post(), jmere_post()]
    batch = model.collator()(make_examples(posts, parse_posts(posts)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before = model.pairs.embeddings["both_capitalised"].weight.detach().clone()
    out = model(batch)
    out.loss.backward()
    optimizer.step()
    assert seen and seen[0][:2] == (2, 7)
    assert not torch.equal(before, model.pairs.embeddings["both_capitalised"].weight)
    assert len(model.predict(posts)) == 2
