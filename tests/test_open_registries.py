"""The registries are open: a component registered from outside the package (here, in this
test file) is built by name from the model config and trains like a built-in one: a pair channel,
a head, an alignment, and a context provider that a training config names.
(docs/architecture.md points here for each recipe.)"""

import torch
import torch.nn.functional as F

from graphie.models import GraphieModel, Head, ModelConfig, ModelOutput
from graphie.models.batching import make_examples, parse_posts
from graphie.models.pair_features import PairInputs
from graphie.registry import heads, pair_channels
from graphie.types import Entity, Extraction, Post, Span
from test_models_model import jmere_post, scene


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


def test_a_head_registered_outside_the_package_trains_and_decodes(monkeypatch):
    monkeypatch.setattr(heads, "_factories", dict(heads._factories))  # registration undone after

    @heads.register("inside")
    class InsideHead(Head):
        """Is each word inside a gold entity? Its own targets, loss and decoding (one-word entities)."""

        def __init__(self, config: ModelConfig, dim: int):
            super().__init__(config, dim)
            self.score = torch.nn.Linear(dim, 1)

        def targets(self, batch, kept):
            inside = torch.zeros(batch.word_mask.shape)
            for b, ex in enumerate(batch.examples):
                for start, end, _ in ex.entities:
                    inside[b, start:end] = 1.0
            batch.extra["inside"] = inside

        def forward(self, h, batch):
            logits = self.score(h).squeeze(-1)
            out = ModelOutput(loss=None, emissions=logits)
            if "inside" in batch.extra:
                mask = batch.word_mask
                out.loss = F.binary_cross_entropy_with_logits(logits[mask].float(), batch.extra["inside"][mask])
            return out

        def decode(self, batch, out, threshold, relation_threshold):
            found = []
            for b, ex in enumerate(batch.examples):
                words = ((torch.sigmoid(out.emissions[b].float()) >= threshold) & batch.word_mask[b]).nonzero()
                entities = [Entity(Span(i, i + 1, ex.graph.tokens[i]), "ENT") for i in words.flatten().tolist()]
                found.append(Extraction(text=ex.graph.text, tokens=list(ex.graph.tokens), entities=entities,
                                        id=ex.post.id))
            return found

    torch.manual_seed(0)
    model = GraphieModel(ModelConfig(task="ner", head="inside", entity_types=["LOC", "PER"], max_length=32))
    assert isinstance(model.head, InsideHead) and "score" in dict(model.named_children())
    posts = [jmere_post(), jmere_post()]
    batch = model.collator()(make_examples(posts, parse_posts(posts)))
    assert batch.extra["inside"][0].tolist() == [1, 0, 1, 0, 0, 1, 1]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before = model.score.weight.detach().clone()
    model(batch).loss.backward()
    optimizer.step()
    assert not torch.equal(before, model.score.weight)
    (pred,) = model.predict(posts[:1], threshold=0.0)
    assert [e.span.text for e in pred.entities] == list(posts[0].tokens)


def test_the_collator_fills_pmi_for_the_channels_that_read_it(monkeypatch):
    """A channel says which PairInputs fields it reads; the collator fills the PMI buckets for any
    channel that reads them (not for one channel by name), and leaves them out when none does."""
    from graphie.models.pair_features import CooccurrenceStats, fields_read

    monkeypatch.setattr(pair_channels, "_factories", dict(pair_channels._factories))

    @pair_channels.register("pmi_squared")
    class PmiSquared(torch.nn.Embedding):
        reads = ("pmi",)

        def __init__(self, pair_dim: int, **_sizes: int):
            super().__init__(64, pair_dim)

        def forward(self, inputs: PairInputs) -> torch.Tensor:
            return super().forward(inputs.pmi * inputs.pmi)

    @pair_channels.register("says_nothing")
    class SaysNothing(torch.nn.Embedding):
        def __init__(self, pair_dim: int, **_sizes: int):
            super().__init__(1, pair_dim)

        def forward(self, inputs: PairInputs) -> torch.Tensor:
            return super().forward(torch.zeros_like(inputs.distance))

    assert fields_read(["pos", "cooccurrence"]) == {"pos", "pmi"}
    assert fields_read(["says_nothing"]) == {"pos", "distance", "pmi", "graphs"}  # unsaid: every field
    posts = [jmere_post(), jmere_post()]
    graphs = parse_posts(posts)
    stats = CooccurrenceStats.fit([g.tokens for g in graphs] * 3, min_word_count=1, min_pair_count=1)
    pmi = {}
    for channels in (["pos", "pmi_squared"], ["pos", "distance"], ["says_nothing"]):
        config = ModelConfig(task="jmere", entity_types=["LOC", "PER"], relation_labels=["couple", "present_in"],
                             max_length=32, pair_channels=channels)
        batch = GraphieModel(config, stats).collator()(make_examples(posts, graphs))
        pmi[channels[-1]] = batch.pmi
    assert pmi["pmi_squared"].any() and torch.equal(pmi["pmi_squared"], pmi["says_nothing"])
    assert not pmi["distance"].any()


def test_an_alignment_registered_outside_the_package_trains_and_gives_evidence(monkeypatch):
    from graphie.alignment.base import Alignment, AlignmentOutput
    from graphie.registry import alignments

    monkeypatch.setattr(alignments, "_factories", dict(alignments._factories))

    @alignments.register("mean_object")
    class MeanObject(Alignment):
        """Each word attends to every object alike: ``h_i + W mean_k o_k``."""

        def __init__(self, dim: int, **_options):
            super().__init__(dim)
            self.proj = torch.nn.Linear(dim, dim)

        def align(self, text, text_mask, text_adj, objects, object_mask, object_adj):
            weights = (text_mask[:, :, None] & object_mask[:, None, :]).to(text.dtype)
            weights = weights / weights.sum(-1, keepdim=True).clamp(min=1)
            return AlignmentOutput(text + self.proj(weights @ objects), weights, text.new_zeros(()))

    torch.manual_seed(0)
    config = ModelConfig(task="jmere", entity_types=["LOC", "PER"], relation_labels=["couple", "present_in"],
                         alignment="mean_object", max_length=32, pair_channels=["pos"])
    model = GraphieModel(config)
    assert isinstance(model.alignment, MeanObject)
    posts = [jmere_post(), jmere_post()]
    batch = model.collator()(make_examples(posts, parse_posts(posts), [scene(), None]))
    before = model.alignment.proj.weight.detach().clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    out = model(batch)
    out.loss.backward()
    optimizer.step()
    assert not torch.equal(before, model.alignment.proj.weight)
    assert out.alignment[0].sum() > 0 and out.alignment[1].sum() == 0  # the post without an image: none
    assert len(model.predict(posts, scene_graphs=[scene(), None])) == 2


def test_a_context_provider_registered_outside_the_package_writes_training_context(monkeypatch):
    from graphie.context import ContextProvider, contexts_for, create
    from graphie.registry import contexts
    from graphie.training.trainer import add_provided_context

    monkeypatch.setattr(contexts, "_factories", dict(contexts._factories))

    @contexts.register("first_word")
    class FirstWord(ContextProvider):
        """The post's first word, as a note."""

        name = "first_word"

        def __init__(self, prefix: str = "about", cache=None, workers: int = 1):
            super().__init__(cache, workers)
            self.prefix = prefix
            self.settings = {"prefix": prefix}

        def compute(self, post):
            return f"{self.prefix} {post.text.split()[0]}"

    posts = [Post(text="Obama visits Paris", context="a note"), Post(text="Merkel in Berlin")]
    assert contexts_for(posts, create("first_word", prefix="on")) == ["on Obama", "on Merkel"]
    add_provided_context(posts, "first_word", {"prefix": "on"})  # what data.context_provider does in training
    assert [p.context for p in posts] == ["a note | on Obama", "on Merkel"]
