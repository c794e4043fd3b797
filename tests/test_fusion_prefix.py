"""HVPNet's visual prefixes (fusion ``visual_prefix``, graphie.fusion.prefix): the prefixes' shapes
and masks, the prefixed attention against attention written out by hand, posts without image
units read exactly as by the text-only encoder, the LoRA wrapper, the refusals (MPNet, the context
adapter), a tiny training and the save/load round trip (docs/fusion.md)."""

from types import SimpleNamespace

import pytest
import torch

from graphie.errors import InvalidInputError
from graphie.fusion.base import SOURCES, ImageRepresentation, LayerPrefixes, create_fusion
from graphie.models import GraphieModel, ModelConfig
from graphie.models.batching import make_examples, parse_posts
from graphie.models.encoder import PREFIX_ATTENTION, TransformerEncoder, create_encoder, prefixed_sdpa, resolve_encoder
from test_fusion import posts_with_and_without_image, train_steps

D, LAYERS, HEADS = 16, 3, 4


def units(seed: int = 0) -> ImageRepresentation:
    """Three rows: 4 units (2 objects, 2 context sub-words), 2 objects, none; noise in the padded slots."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[0, :4], mask[1, :2] = True, True
    source = torch.zeros(3, 5, dtype=torch.long)
    source[0, 2:4] = SOURCES.index("context")
    return ImageRepresentation(torch.randn(3, 5, D, generator=g), mask, source)


def prefix_fusion(**options):
    return create_fusion("visual_prefix", D, options, encoder_layers=LAYERS, encoder_heads=HEADS)


def test_prefixes_have_one_key_and_value_per_layer_split_into_the_heads():
    torch.manual_seed(0)
    fusion = prefix_fusion(levels=3).eval()
    image = units()
    prefix = fusion.prefix(image)
    assert len(prefix.keys) == len(prefix.values) == LAYERS
    for k, v in zip(prefix.keys, prefix.values):
        assert k.shape == v.shape == (3, HEADS, 5, D // HEADS)
    assert torch.equal(prefix.mask, image.mask) and prefix.rows.tolist() == [True, True, False]
    assert not torch.allclose(prefix.keys[0], prefix.keys[1])  # each layer its own gate and map
    # what sits in a padded slot changes neither the real slots nor the gates (the mean is over real units)
    noisy = ImageRepresentation(image.states + 5.0 * (~image.mask)[..., None], image.mask, image.source)
    again = fusion.prefix(noisy)
    for a, b in zip(prefix.keys + prefix.values, again.keys + again.values):
        torch.testing.assert_close(a[image.mask[:, None, :].expand_as(a[..., 0])],
                                   b[image.mask[:, None, :].expand_as(b[..., 0])])


def test_the_gate_mixes_the_levels_per_layer():
    """Every layer given the same key/value map: the layers' keys then differ by their gates alone,
    which have nothing to choose with one level."""
    torch.manual_seed(0)

    def keys(levels: int) -> list[torch.Tensor]:
        fusion = prefix_fusion(levels=levels, dropout=0.0)
        for layer in fusion.key_values:
            layer.load_state_dict(fusion.key_values[0].state_dict())
        return fusion.prefix(units()).keys

    one, four = keys(1), keys(4)
    assert torch.equal(one[0], one[2])
    assert not torch.allclose(four[0], four[2])  # same map, different gates over 4 levels


def test_after_the_encoder_the_component_passes_the_word_states_through():
    fusion = prefix_fusion()
    text, text_mask = torch.randn(3, 7, D), torch.ones(3, 7, dtype=torch.bool)
    out = fusion(text, text_mask, units())
    assert torch.equal(out.states, text) and out.loss == 0 and out.diagnostics == {}
    assert fusion.enters_encoder and not create_fusion("umt", D, {"heads": 2}).enters_encoder


def test_the_encoders_shape_comes_from_the_model_not_the_options():
    with pytest.raises(InvalidInputError, match="'encoder_layers' is not a fusion option"):
        create_fusion("visual_prefix", D, {"encoder_layers": 2})
    with pytest.raises(InvalidInputError, match="layers and heads are not known"):
        create_fusion("visual_prefix", D, {})
    with pytest.raises(InvalidInputError, match="not divisible"):
        create_fusion("visual_prefix", D, {}, encoder_layers=2, encoder_heads=3)
    with pytest.raises(InvalidInputError, match="bad fusion_options"):
        prefix_fusion(heads=2)
    assert create_fusion("umt", D, {"heads": 2}, encoder_layers=2, encoder_heads=3) is not None  # not taken: not given


def by_hand(query, keys, values, allowed):
    """softmax(Q K^T / sqrt(d_h) masked) V, written out: ``[B, L, heads, d_h]`` like transformers' attention."""
    scores = query @ keys.transpose(-1, -2) / query.size(-1) ** 0.5
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
    return (weights @ values).transpose(1, 2)


def test_prefixed_attention_is_attention_over_prefix_and_tokens():
    torch.manual_seed(0)
    B, H, L, m, dh = 3, 2, 6, 4, 8
    module = SimpleNamespace(layer_idx=1, is_causal=False, training=False)
    q, k, v = (torch.randn(B, H, L, dh) for _ in range(3))
    own = torch.ones(B, 1, L, L, dtype=torch.bool)
    own[1, ..., 4:] = False  # row 1: two padded tokens
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    prefix = LayerPrefixes([torch.randn(B, H, m, dh) for _ in range(2)], [torch.randn(B, H, m, dh) for _ in range(2)], mask)
    out, _ = prefixed_sdpa(module, q, k, v, own, graphie_prefix=prefix, dropout=0.0, scaling=dh ** -0.5)
    keys, values = torch.cat([prefix.keys[1], k], 2), torch.cat([prefix.values[1], v], 2)
    allowed = torch.cat([mask[:, None, None, :].expand(B, 1, L, m), own], -1)
    torch.testing.assert_close(out[:2], by_hand(q, keys, values, allowed)[:2])
    plain, _ = prefixed_sdpa(module, q, k, v, own, dropout=0.0, scaling=dh ** -0.5)
    assert torch.equal(out[2], plain[2])  # no slot: the plain call, bit for bit
    torch.testing.assert_close(plain, by_hand(q, k, v, own))
    # a batch whose rows all have slots, and no padding mask (sdpa's None)
    full = LayerPrefixes([x[:2] for x in prefix.keys], [x[:2] for x in prefix.values], mask[:2])
    out, _ = prefixed_sdpa(module, q[:2], k[:2], v[:2], None, graphie_prefix=full, dropout=0.0, scaling=dh ** -0.5)
    allowed = torch.cat([mask[:2, None, None, :].expand(2, 1, L, m), torch.ones(2, 1, L, L, dtype=torch.bool)], -1)
    torch.testing.assert_close(out, by_hand(q[:2], keys[:2], values[:2], allowed))


# ---------------------------------------------------------------- in the model

def prefix_config(**kw) -> ModelConfig:
    return ModelConfig(**{"task": "jmere", "entity_types": ["LOC", "PER"], "relation_labels": ["couple", "present_in"],
                          "max_length": 48, "pair_channels": ["pos"], "fusion": "visual_prefix", **kw})


def batch_of(model):
    """Post 0 with a scene graph, post 1 with a caption in its context, post 2 with neither."""
    posts, scenes = posts_with_and_without_image()
    return model.collator()(make_examples(posts, parse_posts(posts), scenes))


def text_only_twin(model: GraphieModel) -> TransformerEncoder:
    """A plain encoder (sdpa, no prefix machinery) with the model's encoder weights."""
    twin = create_encoder("minilm", max_length=model.config.max_length)
    twin.model.load_state_dict(model.encoder.model.state_dict())
    return twin.eval()


def test_posts_without_image_units_keep_the_text_only_encoders_states_exactly():
    torch.manual_seed(0)
    model = GraphieModel(prefix_config(gnn_layers=0)).eval()
    assert model.encoder.model.config._attn_implementation == PREFIX_ATTENTION
    batch = batch_of(model)
    with torch.no_grad():
        h, side = model.word_states(batch)
        plain = text_only_twin(model)(batch.encoded)
    assert text_only_twin(model).model.config._attn_implementation == "sdpa"
    assert torch.equal(h[2], plain[2])  # no scene graph, no context: bit for bit
    assert not torch.allclose(h[0], plain[0], atol=1e-3)  # objects in every layer's attention
    assert not torch.allclose(h[1], plain[1], atol=1e-3)  # the caption, read alone, in every layer's attention
    assert side.fusion == {} and side.fusion_loss == 0


def test_a_batch_without_any_image_unit_reads_as_the_text_only_encoder():
    torch.manual_seed(0)
    model = GraphieModel(prefix_config(gnn_layers=0, fusion_sources=["context"])).eval()
    posts, _ = posts_with_and_without_image()
    posts = [posts[0], posts[2]]  # no context: nothing to read
    batch = model.collator()(make_examples(posts, parse_posts(posts), None))
    with torch.no_grad():
        h, _ = model.word_states(batch)
        assert torch.equal(h, text_only_twin(model)(batch.encoded))


def test_the_prefix_enters_every_layer_and_gradients_reach_the_units():
    torch.manual_seed(0)
    model = GraphieModel(prefix_config())
    batch = batch_of(model)
    losses, _ = train_steps(model, batch, 1)
    fusion = model.fusion
    assert len(fusion.key_values) == model.encoder.attention_shape[0] == 6
    missing = [n for n, p in fusion.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing  # every layer's map, the gates, the levels
    assert model.scene_encoder.geometry.weight.grad is not None  # objects built before the encoder
    assert model.encoder.model.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_read_context_reads_each_context_alone_in_its_place():
    torch.manual_seed(0)
    encoder = create_encoder("minilm", max_length=48).eval()
    caption = "caption: a man and a woman"
    batch = encoder.encode([["Obama", "smiles"], ["hi"], ["Michelle", "waves"]], [caption, None, caption])
    with torch.no_grad():
        states = encoder.read_context(batch)
        ids = encoder.tokenizer(caption, return_tensors="pt")
        alone = encoder._run(ids["input_ids"], ids["attention_mask"], None)[0, 1:-1]
    mask = batch.context_mask
    assert states.shape == (*mask.shape, encoder.dim)
    assert states[~mask].abs().sum() == 0  # zeros outside the context segment
    torch.testing.assert_close(states[0][mask[0]], alone)
    torch.testing.assert_close(states[2][mask[2]], alone)
    assert not mask[1].any()


def test_the_lora_wrapper_hands_the_prefixes_on():
    torch.manual_seed(0)
    model = GraphieModel(prefix_config(gnn_layers=0, lora_rank=4))
    batch = batch_of(model)
    losses, _ = train_steps(model, batch, 3)
    assert losses[-1] < losses[0]
    lora = [p for n, p in model.encoder.model.named_parameters() if "lora_" in n and ".layer." in n]
    assert lora and all(p.grad is not None for p in lora)  # the layers' adapters (the unused pooler's get none)
    assert model.fusion.key_values[5].weight.grad.abs().sum() > 0  # the last layer read its prefix through PEFT
    model.eval()
    with torch.no_grad():
        h, _ = model.word_states(batch)
        plain = model.encoder(batch.encoded)  # the same wrapped encoder, no prefix
    assert torch.equal(h[2], plain[2]) and not torch.allclose(h[0], plain[0], atol=1e-3)


def test_mpnet_and_the_context_adapter_are_refused(tmp_path):
    from transformers import AutoTokenizer, MPNetConfig

    with pytest.raises(InvalidInputError, match="context_adapter reads in two passes"):
        prefix_config(context_adapter=8, context=["notes"])
    # a tiny MPNet (random weights): its attention is computed by hand, with a relative position bias
    AutoTokenizer.from_pretrained(resolve_encoder("minilm")).save_pretrained(tmp_path)
    MPNetConfig(vocab_size=30527, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=64).save_pretrained(tmp_path)
    encoder = TransformerEncoder(str(tmp_path), path=str(tmp_path), weights=False)
    with pytest.raises(InvalidInputError, match=r"\(mpnet\) computes its attention by hand"):
        GraphieModel(prefix_config(encoder=str(tmp_path)), encoder=encoder)
    with pytest.raises(InvalidInputError, match="take_prefixes"):
        encoder.encode([["hi"]])  # fine; a prefix without take_prefixes is not
        encoder(encoder.encode([["hi"]]), LayerPrefixes([], [], torch.ones(1, 1, dtype=torch.bool)))


def test_a_text_only_model_keeps_transformers_own_attention():
    model = GraphieModel(prefix_config(fusion="umt", fusion_options={"heads": 2}))
    assert model.encoder.model.config._attn_implementation == "sdpa"


def test_training_from_a_config_lowers_the_loss_and_the_model_reloads_exactly(tmp_path):
    """The queued configs' road (MNRE marker head, caption scene graphs and the caption as
    context) on the fixture; the trained model saved again and reloaded predicts the same."""
    from graphie.training.trainer import add_image_context, load_posts, scene_graphs_for, train
    from test_training import write_fixture_files

    data, captions = write_fixture_files(tmp_path)
    config = {"data": {"format": "mnre", "train": str(data), "dev": str(data), "scene": "caption",
                       "captions": str(captions), "image_context": True},
              "model": {"task": "mnre", "head": "marker", "gnn_layers": 0, "pair_channels": [], "max_length": 40,
                        "context": ["caption"], "fusion": "visual_prefix", "fusion_options": {"levels": 2}},
              "training": {"epochs": 3, "batch_size": 8, "head_lr": 3e-3, "lr": 1e-4, "warmup": 0.0, "patience": 5,
                           "num_threads": 1, "max_dev": 8, "freeze_encoder_layers": 5}}
    summary = train(config, tmp_path / "model", progress=False)
    history = [epoch["loss"] for epoch in summary["history"]]
    assert history[-1] < history[0], history
    model = GraphieModel.from_pretrained(tmp_path / "model")
    assert model.config.fusion == "visual_prefix" and model.fusion.levels == 2
    model.save_pretrained(tmp_path / "again")
    again = GraphieModel.from_pretrained(tmp_path / "again")
    posts = load_posts(config["data"], "dev")[:6]
    scenes = scene_graphs_for(posts, "caption", 10)
    add_image_context(posts, scenes)
    assert any(p.context for p in posts) and any(s is not None for s in scenes)
    batch = model.prepare(posts, scenes)
    with torch.no_grad():
        a, b = model(batch), again(batch)
    assert torch.equal(a.pair_logits, b.pair_logits)
    assert [r.to_dict() for r in model.predict(posts, scenes)] == [r.to_dict() for r in again.predict(posts, scenes)]
