"""HVPNet's visual prefixes (fusion ``visual_prefix``, graphie.fusion.prefix): the prefixes' shapes
and masks, units packed and shared between rows, the prefixed attention against attention written
out by hand, posts without image units read exactly as by the text-only encoder, the context read
alone (in runs of similar length; with or without gradient), the LoRA wrapper, the refusals (MPNet,
the context adapter), a tiny training and the save/load round trip (docs/fusion.md)."""

import random
from types import SimpleNamespace

import pytest
import torch

from graphie.errors import InvalidInputError
from graphie.fusion.base import SOURCES, ImageRepresentation, LayerPrefixes, create_fusion
from graphie.fusion.prefix import distinct_rows
from graphie.models import GraphieModel, ModelConfig
from graphie.models.batching import make_examples, parse_posts
from graphie.models import encoder as encoder_module
from graphie.models.encoder import (CALL_COST, PREFIX_ATTENTION, TransformerEncoder, create_encoder, length_runs,
                                    prefixed_sdpa, resolve_encoder)
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
    for k, v in zip(prefix.keys, prefix.values):  # as many slots as the most units a row has
        assert k.shape == v.shape == (3, HEADS, 4, D // HEADS)
    assert torch.equal(prefix.mask, image.mask[:, :4]) and prefix.rows.tolist() == [True, True, False]
    assert not torch.allclose(prefix.keys[0], prefix.keys[1])  # each layer its own gate and map
    # what sits in a padded slot changes neither the real slots nor the gates (the mean is over real units)
    noisy = ImageRepresentation(image.states + 5.0 * (~image.mask)[..., None], image.mask, image.source)
    again = fusion.prefix(noisy)
    for a, b in zip(prefix.keys + prefix.values, again.keys + again.values):
        torch.testing.assert_close(a[prefix.mask[:, None, :].expand_as(a[..., 0])],
                                   b[prefix.mask[:, None, :].expand_as(b[..., 0])])


def real_slots(prefix: LayerPrefixes, row: int) -> list[torch.Tensor]:
    """Every layer's keys and values at row ``row``'s real slots: ``[heads, units, d_h]`` each."""
    return [x[row][:, prefix.mask[row]] for x in prefix.keys + prefix.values]


def test_units_scattered_over_the_slots_give_the_prefix_of_the_same_units_packed():
    """The context's sub-words sit where the segment sits in the row (a [B, L] mask, mostly padding):
    the prefix keeps a row's real units, in their order, in as many slots as the most units a row has."""
    torch.manual_seed(0)
    fusion = prefix_fusion().eval()
    packed = units()
    where = torch.tensor([[1, 2, 5, 6], [4, 7, 0, 0]])  # row 0's 4 units, row 1's 2, in 9 slots
    states, mask = torch.randn(3, 9, D), torch.zeros(3, 9, dtype=torch.bool)  # noise in the padded slots
    for b, count in ((0, 4), (1, 2)):
        states[b, where[b, :count]] = packed.states[b, :count]
        mask[b, where[b, :count]] = True
    scattered = fusion.prefix(ImageRepresentation(states, mask, torch.zeros_like(mask, dtype=torch.long)))
    reference = fusion.prefix(packed)
    assert scattered.mask.shape == (3, 4) and torch.equal(scattered.mask, reference.mask)
    for row in (0, 1):
        for a, b in zip(real_slots(scattered, row), real_slots(reference, row)):
            torch.testing.assert_close(a, b)


def test_rows_with_the_same_units_share_one_prefix_and_draw_their_own_dropout():
    """The marker head's rows of one post hold the same units: the levels run once per distinct set
    of units, and each row gets the prefix it gets alone; in training each row draws its own dropout."""
    torch.manual_seed(0)
    fusion = prefix_fusion()
    image = units()
    rows = torch.tensor([0, 1, 0, 2, 0, 1])
    noise = torch.randn(6, 5, D) * (~image.mask[rows])[..., None]  # padded slots differ between the copies
    copies = ImageRepresentation(image.states[rows] + noise, image.mask[rows], image.source[rows])
    sets = []  # the rows the levels are computed for, call by call
    fusion.level_maps.register_forward_hook(lambda module, args, out: sets.append(args[0].shape[0]))
    fusion.eval()
    together = fusion.prefix(copies)
    for b, row in enumerate(rows.tolist()):
        alone = fusion.prefix(ImageRepresentation(*(t[row:row + 1] for t in (image.states, image.mask, image.source))))
        for a, c in zip(real_slots(together, b), real_slots(alone, 0)):
            torch.testing.assert_close(a, c)
    fusion.train()
    drawn = fusion.prefix(copies)
    assert sets == [3] + [1] * 6 + [3]  # three distinct sets (row 2's: none), in eval and in training
    assert not torch.allclose(drawn.keys[-1][0], drawn.keys[-1][2])  # one post's rows, dropout apart


def test_distinct_rows_ignore_what_sits_in_padded_slots_but_not_the_mask():
    a, b = torch.randn(2, D)
    states = torch.stack([torch.stack(pair) for pair in [(a, b), (a, b + 1), (a, b), (a, torch.zeros(D)), (a, b - 1)]])
    mask = torch.tensor([[1, 1], [1, 0], [1, 1], [1, 1], [1, 0]], dtype=torch.bool)
    index, first = distinct_rows(states, mask)
    assert first[index].tolist() == [0, 1, 0, 3, 1]  # row 3's zero unit is real, rows 1 and 4 pad theirs
    assert distinct_rows(states[:2], mask[:2])[1] is None  # no row shared: no index to hand on


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
    with pytest.raises(InvalidInputError, match=r"^visual_prefix: context_grad must be true or false, got 'no'$"):
        prefix_fusion(context_grad="no")
    assert create_fusion("umt", D, {"heads": 2}, encoder_layers=2, encoder_heads=3) is not None  # not taken: not given


def by_hand(query, keys, values, allowed):
    """softmax(Q K^T / sqrt(d_h) masked) V, written out: ``[B, L, heads, d_h]`` like transformers' attention."""
    scores = query @ keys.transpose(-1, -2) / query.size(-1) ** 0.5
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
    return (weights @ values).transpose(1, 2)


def test_prefixed_attention_is_attention_over_prefix_and_tokens():
    torch.manual_seed(0)
    B, H, L, m, dh = 5, 2, 6, 4, 8
    module = SimpleNamespace(layer_idx=1, is_causal=False, training=False)
    q, k, v = (torch.randn(B, H, L, dh) for _ in range(3))
    own = torch.ones(B, 1, L, L, dtype=torch.bool)
    own[1, ..., 4:], own[3, ..., 5:] = False, False  # padded tokens in a row with slots and in one without
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0]], dtype=torch.bool)
    slotted = mask.any(-1)
    prefix = LayerPrefixes([torch.randn(B, H, m, dh) for _ in range(2)], [torch.randn(B, H, m, dh) for _ in range(2)], mask)
    out, _ = prefixed_sdpa(module, q, k, v, own, graphie_prefix=prefix, dropout=0.0, scaling=dh ** -0.5)
    keys, values = torch.cat([prefix.keys[1], k], 2), torch.cat([prefix.values[1], v], 2)
    allowed = torch.cat([mask[:, None, None, :].expand(B, 1, L, m), own], -1)
    torch.testing.assert_close(out[slotted], by_hand(q, keys, values, allowed)[slotted])
    plain, _ = prefixed_sdpa(module, q, k, v, own, dropout=0.0, scaling=dh ** -0.5)
    assert torch.equal(out[~slotted], plain[~slotted])  # no slot: as the plain call on the whole batch, bit for bit
    torch.testing.assert_close(plain, by_hand(q, k, v, own))
    # a batch whose rows all have slots, and no padding mask (sdpa's None)
    full = LayerPrefixes([x[slotted] for x in prefix.keys], [x[slotted] for x in prefix.values], mask[slotted])
    out, _ = prefixed_sdpa(module, q[slotted], k[slotted], v[slotted], None, graphie_prefix=full, dropout=0.0,
                           scaling=dh ** -0.5)
    allowed[:, :, :, m:] = True
    torch.testing.assert_close(out, by_hand(q, keys, values, allowed)[slotted])


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


@pytest.mark.parametrize("call_cost", [CALL_COST, 0])
def test_read_context_reads_each_context_alone_in_its_place(monkeypatch, call_cost):
    """Each distinct context read once, in runs of similar length: at the default call cost the
    two captions share a run; at 0 each length is a run of its own."""
    torch.manual_seed(0)
    monkeypatch.setattr(encoder_module, "length_runs", lambda lengths: length_runs(lengths, call_cost))
    encoder = create_encoder("minilm", max_length=64).eval()
    calls = []
    run = encoder._run
    monkeypatch.setattr(encoder, "_run", lambda ids, *rest: calls.append(tuple(ids.shape)) or run(ids, *rest))
    short, long = "caption: a man and a woman", "caption: a man and a woman in front of a white house with two dogs"
    batch = encoder.encode([["Obama", "smiles"], ["hi"], ["Michelle", "waves"], ["Joe"]], [long, None, short, long])
    with torch.no_grad():
        states = encoder.read_context(batch)
    assert [rows for rows, _ in calls] == ([2] if call_cost else [1, 1])
    mask = batch.context_mask
    assert states.shape == (*mask.shape, encoder.dim)
    assert states[~mask].abs().sum() == 0 and not mask[1].any()  # zeros outside the context segment
    for row, caption in ((0, long), (2, short), (3, long)):
        ids = encoder.tokenizer(caption, return_tensors="pt")
        with torch.no_grad():
            alone = run(ids["input_ids"], ids["attention_mask"], None)[0, 1:-1]
        torch.testing.assert_close(states[row][mask[row]], alone)


def test_context_grad_false_reads_the_same_context_without_gradient():
    torch.manual_seed(0)
    model = GraphieModel(prefix_config(gnn_layers=0, fusion_sources=["context"], fusion_options={"context_grad": False}))
    batch = batch_of(model)
    model.eval()  # no dropout: the two reads comparable
    read, unread = (model.encoder.read_context(batch.encoded, grad) for grad in (True, False))
    assert torch.equal(read, unread) and read.requires_grad and not unread.requires_grad
    model.train()
    assert not model.image_before_encoder(batch)[1].states.requires_grad  # the model passes the option on
    model.fusion.context_grad = True
    assert model.image_before_encoder(batch)[1].states.requires_grad


def partitions(items: list[int]):
    """Every split of ``items`` into non-empty groups."""
    if not items:
        yield []
        return
    for rest in partitions(items[1:]):
        yield [[items[0]], *rest]
        for k in range(len(rest)):
            yield [*rest[:k], [items[0], *rest[k]], *rest[k + 1:]]


@pytest.mark.parametrize("call_cost", [0, 5, 30, CALL_COST])
def test_length_runs_read_the_fewest_sub_words(call_cost):
    """Against every split of up to 7 sequences: a run costs its rows times its longest, plus a call."""
    def cost(runs):
        return sum(len(run) * max(lengths[i] for i in run) + call_cost for run in runs)

    rng = random.Random(call_cost)
    for _ in range(40):
        lengths = [rng.randint(3, 98) for _ in range(rng.randint(1, 7))]
        runs = length_runs(lengths, call_cost)
        assert sorted(i for run in runs for i in run) == list(range(len(lengths)))
        widths = [max(lengths[i] for i in run) for run in runs]
        assert widths == sorted(widths)  # shortest first
        assert cost(runs) == min(cost(split) for split in partitions(list(range(len(lengths)))))
    assert length_runs([]) == []
    assert length_runs([5, 50, 6], 100) == [[0, 2, 1]] and length_runs([5, 50, 6], 0) == [[0], [2], [1]]


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
