"""Fusion components (graphie.fusion): shapes and masks of each on plain tensors, posts without
image units left as they were, the shared image representation (objects, context), the model hook,
a fusion registered outside the package, and tiny trainings (docs/fusion.md)."""

import json

import pytest
import torch

from graphie.errors import InvalidInputError, UnknownComponentError
from graphie.fusion.base import SOURCES, Fusion, FusionOutput, ImageRepresentation, create_fusion, key_padding, mean_units
from graphie.fusion.relevance import swapped_images
from graphie.models import GraphieModel, ModelConfig
from graphie.models.batching import make_examples, parse_posts
from graphie.registry import fusions
from graphie.types import Entity, Post, Relation
from test_models_model import jmere_post, scene

BUILTIN = ["relevance_gate", "umt", "hybrid", "experts"]  # after the encoder; visual_prefix enters it: test_fusion_prefix.py
D = 16


def tensors(seed: int = 0):
    """Three posts: post 0 with 4 image units (2 objects, 2 context sub-words), post 1 with 2
    objects (and padded words), post 2 with none."""
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(3, 7, D, generator=g)
    text_mask = torch.ones(3, 7, dtype=torch.bool)
    text_mask[1, 5:] = False
    units = torch.randn(3, 5, D, generator=g)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[0, :4] = True
    mask[1, :2] = True
    source = torch.zeros(3, 5, dtype=torch.long)
    source[0, 2:4] = SOURCES.index("context")
    image = ImageRepresentation(units * mask[..., None], mask, source, torch.tensor([0, 1, 2]))
    return text, text_mask, image


def span_targets():
    """Untyped span tags for :func:`tensors`' words: an entity at words 0-1 of each post, −100 at padding."""
    spans = torch.zeros(3, 7, dtype=torch.long)
    spans[:, 0], spans[:, 1] = 1, 2
    spans[1, 5:] = -100
    return spans


@pytest.mark.parametrize("name", BUILTIN)
def test_shapes_masks_and_posts_without_image_units(name):
    torch.manual_seed(0)
    fusion = create_fusion(name, D, {"heads": 2}).eval()
    text, text_mask, image = tensors()
    with torch.no_grad():
        out = fusion(text, text_mask, image)
        # what sits in a padded unit slot is never read
        noisy = ImageRepresentation(image.states + 5.0 * (~image.mask)[..., None], image.mask, image.source, image.group)
        again = fusion(text, text_mask, noisy)
    assert out.states.shape == text.shape and out.loss.dim() == 0
    assert torch.equal(out.states[2], text[2])  # no image units: the text states, bit for bit
    assert not torch.allclose(out.states[0], text[0])  # units: fused
    torch.testing.assert_close(again.states, out.states)
    assert set(out.diagnostics) == set(fusion.diagnostics)
    for value in out.diagnostics.values():
        assert value.shape == (3,) and value[2] == 0


@pytest.mark.parametrize("name", BUILTIN)
def test_a_batch_without_any_image_unit_passes_the_text_through(name):
    fusion = create_fusion(name, D, {"heads": 2})
    text, text_mask, _ = tensors()
    empty = ImageRepresentation(torch.zeros(3, 0, D), torch.zeros(3, 0, dtype=torch.bool), torch.zeros(3, 0, dtype=torch.long))
    out = fusion(text, text_mask, empty)
    assert torch.equal(out.states, text) and all(v.abs().sum() == 0 for v in out.diagnostics.values())


@pytest.mark.parametrize("name", BUILTIN)
def test_gradients_reach_the_fusion_and_both_inputs(name):
    torch.manual_seed(0)
    fusion = create_fusion(name, D, {"heads": 2})
    text, text_mask, image = tensors()
    text.requires_grad_(True)
    image.states.requires_grad_(True)
    out = fusion(text, text_mask, image, span_targets() if fusion.reads_spans else None)
    (out.states[text_mask].pow(2).mean() + out.loss).backward()
    assert text.grad.abs().sum() > 0 and image.states.grad[0].abs().sum() > 0
    assert image.states.grad[~image.mask].abs().sum() == 0  # padded units get nothing
    assert all(p.grad is not None for p in fusion.parameters()), [n for n, p in fusion.named_parameters() if p.grad is None]


def test_bad_inputs_and_options_are_one_line_errors():
    text, text_mask, image = tensors()
    fusion = create_fusion("relevance_gate", D, {"heads": 2})
    with pytest.raises(InvalidInputError, match="image states"):
        fusion(text, text_mask, ImageRepresentation(image.states[:2], image.mask[:2], image.source[:2]))
    with pytest.raises(InvalidInputError, match="text_mask"):
        fusion(text, text_mask[:, :3], image)
    with pytest.raises(InvalidInputError, match="fusion_options"):
        create_fusion("relevance_gate", D, {"colour": "red"})
    with pytest.raises(InvalidInputError, match="divisible"):
        create_fusion("relevance_gate", D, {"heads": 3})
    with pytest.raises(UnknownComponentError):
        create_fusion("nope", D, {})
    with pytest.raises(InvalidInputError, match="fusion 'nope' is not registered"):
        ModelConfig(fusion="nope")
    with pytest.raises(InvalidInputError, match="fusion_sources"):
        ModelConfig(fusion="relevance_gate", fusion_sources=[])
    with pytest.raises(InvalidInputError, match="image source"):
        ImageRepresentation.join({"sound": (image.states, image.mask)})


def test_join_puts_sources_side_by_side():
    objects, context = torch.randn(2, 3, D), torch.randn(2, 4, D)
    om, cm = torch.tensor([[1, 1, 0], [0, 0, 0]], dtype=torch.bool), torch.tensor([[0, 1, 1, 0], [1, 0, 0, 0]], dtype=torch.bool)
    image = ImageRepresentation.join({"objects": (objects, om), "context": (context, cm)})
    assert image.states.shape == (2, 7, D) and image.source.tolist()[0] == [0, 0, 0, 1, 1, 1, 1]
    assert image.present.tolist() == [True, True]  # post 1: its context alone
    assert key_padding(torch.tensor([[False, False]])).tolist() == [[False, True]]  # an empty row keeps one key


def test_swapped_images_pick_the_next_post_with_another_image():
    present = torch.tensor([True, True, False, True, True])
    partner, has = swapped_images(present, torch.tensor([0, 0, 1, 2, 2]))
    assert has.tolist() == [True, True, False, True, True]
    assert partner.tolist() == [3, 3, 2, 0, 0]  # rows 0, 1 show one image, 3 and 4 another
    _, has = swapped_images(torch.tensor([True, True]), torch.tensor([7, 7]))
    assert not has.any()  # one image in the batch: no negative


def test_the_relevance_gate_learns_which_image_belongs_to_its_text():
    """Image units that are noisy copies of their post's words: after a few steps of the
    relevance loss alone, the gate opens on a post's own image and closes on a swapped one."""
    torch.manual_seed(0)
    fusion = create_fusion("relevance_gate", D, {"heads": 2, "hidden": 32})
    optimizer = torch.optim.Adam(fusion.parameters(), lr=1e-2)
    B = 8

    def data():
        text = torch.randn(B, 5, D)
        units = text[:, :3] + 0.3 * torch.randn(B, 3, D)
        return text, torch.ones(B, 5, dtype=torch.bool), ImageRepresentation(
            units, torch.ones(B, 3, dtype=torch.bool), torch.zeros(B, 3, dtype=torch.long), torch.arange(B))

    losses = []
    for _ in range(60):
        out = fusion(*data())
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    fusion.eval()
    text, text_mask, image = data()
    with torch.no_grad():
        own = fusion(text, text_mask, image).diagnostics["gate"]
        swapped = ImageRepresentation(image.states.roll(1, 0), image.mask, image.source, image.group)
        other = fusion(text, text_mask, swapped).diagnostics["gate"]
    assert own.mean() > 0.8 and other.mean() < 0.2


def test_a_closed_gate_gives_the_text_states_exactly():
    fusion = create_fusion("relevance_gate", D, {"heads": 2, "closed_below": 1.0}).eval()
    text, text_mask, image = tensors()
    with torch.no_grad():
        out = fusion(text, text_mask, image)
    assert torch.equal(out.states, text) and out.diagnostics["gate"].abs().sum() == 0


def test_umt_span_detection_reads_the_text_of_every_post():
    """UMT's auxiliary loss is text-only: it is there in a batch without any image unit, and only
    words with a known tag count."""
    torch.manual_seed(0)
    fusion = create_fusion("umt", D, {"heads": 2, "span_loss_weight": 0.5})
    text, text_mask, image = tensors()
    empty = ImageRepresentation(torch.zeros(3, 0, D), torch.zeros(3, 0, dtype=torch.bool), torch.zeros(3, 0, dtype=torch.long))
    spans = span_targets()
    out = fusion(text, text_mask, empty, spans)
    assert torch.equal(out.states, text) and out.loss > 0
    logits = fusion.spans(text[spans >= 0])
    torch.testing.assert_close(out.loss, 0.5 * torch.nn.functional.cross_entropy(logits, spans[spans >= 0]))
    assert fusion(text, text_mask, empty).loss == 0  # no tags (prediction): no loss
    assert create_fusion("umt", D, {"heads": 2, "span_loss_weight": 0.0})(text, text_mask, empty, spans).loss == 0
    gate = fusion.eval()(text, text_mask, image).diagnostics["gate"]
    assert 0 < gate[0] < 1 and gate[2] == 0


def test_umt_without_feed_forward_layers_keeps_shapes_and_masks():
    """``ffn: false`` drops the three blocks' FFNs (and only them): same output shape, posts
    without image units keep their text states exactly."""
    torch.manual_seed(0)
    full, light = (create_fusion("umt", D, {"heads": 2, "ffn": f}).eval() for f in (True, False))
    assert all(block.ffn is None for block in (light.image_reads_text, light.text_reads_image_aware, light.text_reads_image))
    extra = sum(p.numel() for p in full.parameters()) - sum(p.numel() for p in light.parameters())
    assert extra == 3 * (2 * 4 * D * D + 4 * D + D + 2 * D)  # two linear layers and a LayerNorm per block
    text, text_mask, image = tensors()
    with torch.no_grad():
        out = light(text, text_mask, image)
    assert out.states.shape == text.shape and torch.equal(out.states[2], text[2])
    assert not torch.equal(out.states[0], text[0])


def test_hybrid_focus_lies_between_uniform_and_one_unit():
    torch.manual_seed(0)
    fusion = create_fusion("hybrid", D, {"heads": 2}).eval()
    text, text_mask, image = tensors()
    with torch.no_grad():
        focus = fusion(text, text_mask, image).diagnostics["focus"]
    assert 1 / 4 <= focus[0] <= 1 and 1 / 2 <= focus[1] <= 1 and focus[2] == 0


def test_expert_weights_mix_the_sources_a_post_has():
    torch.manual_seed(0)
    fusion = create_fusion("experts", D, {"heads": 2}).eval()
    assert fusion.diagnostics == ("weight_objects", "weight_context", "weight_pixels")  # one expert a source
    text, text_mask, image = tensors()
    with torch.no_grad():
        weights = fusion(text, text_mask, image).diagnostics
    objects, context = weights["weight_objects"], weights["weight_context"]
    assert weights["weight_pixels"].abs().sum() == 0  # no post has pixel units: that expert gets nothing
    torch.testing.assert_close(objects[0] + context[0], torch.tensor(1.0))
    assert 0 < context[0] < 1  # both sources: a soft mixture
    assert objects[1] == 1 and context[1] == 0  # objects only: that expert whole
    assert objects[2] == 0 and context[2] == 0  # nothing: no weight


def test_a_missing_source_is_read_as_if_it_were_never_there():
    """Post 0 without its context units gives exactly what an image of its objects alone gives."""
    torch.manual_seed(0)
    fusion = create_fusion("experts", D, {"heads": 2}).eval()
    text, text_mask, image = tensors()
    mask = image.mask.clone()
    mask[0, 2:4] = False
    without = ImageRepresentation(image.states * mask[..., None], mask, image.source, image.group)
    objects_only = ImageRepresentation(image.states[:, :2], image.mask[:, :2], image.source[:, :2], image.group)
    with torch.no_grad():
        a, b = fusion(text, text_mask, without), fusion(text, text_mask, objects_only)
    assert a.diagnostics["weight_context"][0] == 0 and a.diagnostics["weight_objects"][0] == 1
    torch.testing.assert_close(a.states, b.states, rtol=0, atol=1e-6)


def test_experts_follow_the_models_sources():
    fusion = create_fusion("experts", D, {"heads": 2}, sources=["context"])
    assert list(fusion.experts) == ["context"] and fusion.diagnostics == ("weight_context",)
    text, text_mask, image = tensors()
    with pytest.raises(InvalidInputError, match=r"image units of \['objects'\] but experts only for \['context'\]"):
        fusion(text, text_mask, image)
    with pytest.raises(InvalidInputError, match="not a fusion option"):
        create_fusion("experts", D, {"sources": ["context"]})
    for bad in (["sound"], ["context", "context"], []):
        with pytest.raises(InvalidInputError, match="sources must be distinct"):
            create_fusion("experts", D, {}, sources=bad)
    model = GraphieModel(tiny_config("experts", fusion_sources=["context"]))
    assert model.fusion.sources == ["context"] and model.scene_encoder is None
    assert create_fusion("umt", D, {"heads": 2}, sources=["context"]) is not None  # takes no sources: not given


def test_the_expert_gate_learns_which_source_informs():
    """Targets that are the mean of a post's objects, and context units that are noise: a few steps
    of a regression on the fused states move the gate's weight onto the objects' expert."""
    torch.manual_seed(0)
    fusion = create_fusion("experts", D, {"heads": 2, "dropout": 0.0})
    optimizer = torch.optim.Adam(fusion.parameters(), lr=1e-2)
    B = 8
    source = torch.tensor([0, 0, 0, 1, 1, 1]).repeat(B, 1)

    def data():
        units = torch.randn(B, 6, D)
        return (torch.randn(B, 5, D), torch.ones(B, 5, dtype=torch.bool),
                ImageRepresentation(units, torch.ones(B, 6, dtype=torch.bool), source), units[:, :3].mean(1))

    def weights():
        fusion.eval()
        with torch.no_grad():
            text, text_mask, image, _ = data()
            w = fusion(text, text_mask, image).diagnostics["weight_objects"].mean()
        fusion.train()
        return w

    before = weights()
    for _ in range(90):
        text, text_mask, image, target = data()
        out = fusion(text, text_mask, image)
        loss = (out.states - text - target[:, None]).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert weights() > max(0.65, before + 0.2)  # from about a half


def test_span_tags_mark_fully_annotated_posts_only():
    from graphie.models.model import span_tags

    model = GraphieModel(tiny_config("umt"))
    posts, scenes = posts_with_and_without_image()
    examples = make_examples(posts, parse_posts(posts), scenes)
    examples[2].entities_known = False
    tags = span_tags(model.collator()(examples))
    assert tags[0].tolist() == [1, 0, 1, 0, 0, 1, 2]  # Obama, Michelle, White House
    assert (tags[2] == -100).all()


# ---------------------------------------------------------------- the model hook

def tiny_config(fusion: str, **kw) -> ModelConfig:
    return ModelConfig(task="jmere", entity_types=["LOC", "PER"], relation_labels=["couple", "present_in"],
                       max_length=48, pair_channels=["pos"], fusion=fusion, fusion_options={"heads": 2}, **kw)


def train_steps(model: GraphieModel, batch, steps: int) -> tuple[list[float], object]:
    """``steps`` AdamW steps on one batch: the losses, and the output of the last step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        out = model(batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    return losses, out


def posts_with_and_without_image():
    """Post 0: a scene graph; post 1: a caption in its context, no scene graph; post 2: neither."""
    posts = [jmere_post(), jmere_post(), jmere_post()]
    posts[0].image, posts[1].context = "a.jpg", "caption: a man and a woman in front of a white house"
    return posts, [scene(), None, None]


@pytest.mark.parametrize("name", BUILTIN)
def test_a_model_with_a_fusion_trains_reports_and_leaves_imageless_posts_alone(name):
    torch.manual_seed(0)
    model = GraphieModel(tiny_config(name))
    assert model.alignment is None and model.scene_encoder is not None and model.fusion is not None
    posts, scenes = posts_with_and_without_image()
    batch = model.collator()(make_examples(posts, parse_posts(posts), scenes))
    losses, out = train_steps(model, batch, 6)
    assert losses[-1] < losses[0]
    assert out.fusion_loss is not None and set(out.fusion) == set(model.fusion.diagnostics)
    assert (out.fusion_loss > 0) == (name in ("umt", "relevance_gate"))  # span detection; swapped images
    assert model.scene_encoder.geometry.weight.grad is not None  # the objects were read
    model.eval()
    with torch.no_grad():
        h, side = model.word_states(batch)
        plain = model.encoder(batch.encoded)
        plain = plain.masked_scatter(batch.word_mask[..., None],
                                     model.text_gnn(plain[batch.word_mask], batch.edge_index, batch.edge_type))
    assert torch.equal(h[2], plain[2])  # no scene graph, no context: the text-only states
    assert not torch.allclose(h[0], plain[0]) and not torch.allclose(h[1], plain[1])  # objects; context
    for value in side.fusion.values():
        assert value[2] == 0
    assert len(model.predict(posts, scene_graphs=scenes)) == 3


def test_a_context_only_fusion_builds_no_scene_encoder():
    model = GraphieModel(tiny_config("relevance_gate", fusion_sources=["context"]))
    assert model.scene_encoder is None and not model.config.reads_scene
    posts, scenes = posts_with_and_without_image()
    batch = model.collator()(make_examples(posts, parse_posts(posts), scenes))
    assert batch.scene is None
    out = model.eval()(batch)
    assert out.fusion["gate"][0] == 0 and out.fusion["gate"][1] > 0  # post 0 has objects only, post 1 context


def marked_posts() -> list[Post]:
    """Two posts for the ``marker`` head (images ``a.jpg`` and ``b.jpg``), each with two given
    entities and a pair each way: four rows, two a post."""
    posts = []
    for image in ("a.jpg", "b.jpg"):
        post = jmere_post()
        a, b = (Entity(e.span, "ENT") for e in post.entities[:2])
        post.entities, post.image = [a, b], image
        post.relations = [Relation(a, b, "/per/per/couple"), Relation(b, a, "None")]
        posts.append(post)
    return posts


def test_marker_rows_of_one_post_share_its_image_group():
    torch.manual_seed(0)
    config = ModelConfig(task="mnre", head="marker", gnn_layers=0, relation_labels=["/per/per/couple"],
                         max_length=48, pair_channels=[], fusion="relevance_gate", fusion_options={"heads": 2})
    model = GraphieModel(config)
    posts = marked_posts()
    batch = model.collator()(make_examples(posts, parse_posts(posts), [scene(), scene()]))
    objects = model.scene_encoder(batch.scene, model.encoder.embed_phrases)
    _, sub_words = model.encoder.read(batch.encoded)
    image = model.image_representation(batch, objects, sub_words)
    assert image.group.tolist() == [0, 0, 1, 1]
    out = model(batch)
    assert out.pair_logits.shape == (4, 2) and out.fusion["gate"].shape == (4,) and torch.isfinite(out.loss)


def test_a_fusion_model_saves_and_reloads(tmp_path):
    torch.manual_seed(0)
    model = GraphieModel(tiny_config("relevance_gate")).eval()
    posts, scenes = posts_with_and_without_image()
    model.save_pretrained(tmp_path / "m")
    again = GraphieModel.from_pretrained(tmp_path / "m")
    batch = model.collator()(make_examples(posts, parse_posts(posts), scenes))
    with torch.no_grad():
        assert torch.equal(model(batch).fusion["gate"], again(batch).fusion["gate"])


def test_a_fusion_registered_outside_the_package_trains(monkeypatch):
    monkeypatch.setattr(fusions, "_factories", dict(fusions._factories))  # registration undone after

    @fusions.register("mean_unit")
    class MeanUnit(Fusion):
        """Each word adds the mean of its post's image units: ``h_i + W mean_j u_j``; reports the unit count."""

        diagnostics = ("units",)

        def __init__(self, dim: int, heads: int = 1):
            super().__init__(dim)
            self.proj = torch.nn.Linear(dim, dim)

        def fuse(self, text, text_mask, image):
            weights = image.mask.to(text.dtype) / image.mask.sum(-1, keepdim=True).clamp(min=1)
            mean = (weights.unsqueeze(-1) * image.states).sum(1)
            return FusionOutput(text + self.proj(mean)[:, None], text.new_zeros(()),
                                {"units": image.mask.sum(-1).float()})

    torch.manual_seed(0)
    model = GraphieModel(tiny_config("mean_unit"))
    assert isinstance(model.fusion, MeanUnit)
    posts, scenes = posts_with_and_without_image()
    batch = model.collator()(make_examples(posts, parse_posts(posts), scenes))
    before = model.fusion.proj.weight.detach().clone()
    _, out = train_steps(model, batch, 1)
    assert not torch.equal(before, model.fusion.proj.weight)
    units = out.fusion["units"].tolist()
    assert units[0] == 3 and units[1] > 0 and units[2] == 0  # 3 objects; the caption's sub-words; nothing


def test_a_fusion_registered_outside_the_package_gets_the_models_sources(monkeypatch):
    monkeypatch.setattr(fusions, "_factories", dict(fusions._factories))  # registration undone after

    @fusions.register("per_source")
    class PerSource(Fusion):
        """Each word adds a projection of the mean unit of each source: one layer a source."""

        def __init__(self, dim: int, sources=SOURCES, heads: int = 1):
            super().__init__(dim)
            self.proj = torch.nn.ModuleDict({s: torch.nn.Linear(dim, dim) for s in sources})

        def fuse(self, text, text_mask, image):
            added = sum(layer(mean_units(image.states, image.mask & (image.source == SOURCES.index(s))))
                        for s, layer in self.proj.items())
            return FusionOutput(text + added[:, None], text.new_zeros(()))

    model = GraphieModel(tiny_config("per_source", fusion_sources=["context"]))
    assert list(model.fusion.proj) == ["context"]


@pytest.mark.parametrize("name", BUILTIN)
def test_training_from_a_config_with_a_fusion_and_caption_scene_graphs(name, tmp_path):
    """The queued configs' road (MNRE marker head, caption scene graphs, alignment none) on the fixture."""
    from graphie.cli import main
    from test_training import write_fixture_files

    data, captions = write_fixture_files(tmp_path)
    config = {"data": {"format": "mnre", "train": str(data), "dev": str(data), "scene": "caption",
                       "captions": str(captions)},
              "model": {"task": "mnre", "head": "marker", "gnn_layers": 0, "pair_channels": [], "max_length": 32,
                        "alignment": "none", "fusion": name, "fusion_options": {"heads": 2}},
              "training": {"epochs": 1, "batch_size": 8, "head_lr": 3e-3, "lr": 1e-4, "warmup": 0.0,
                           "num_threads": 1, "max_dev": 8, "freeze_encoder_layers": 5}}
    path = tmp_path / "fusion.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    assert main(["train", str(path), "--output", str(tmp_path / "model"), "--no-progress"]) == 0
    model = GraphieModel.from_pretrained(tmp_path / "model")
    assert model.config.fusion == name and model.fusion is not None and model.scene_encoder is not None
