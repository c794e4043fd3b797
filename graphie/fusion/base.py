"""The contract every fusion component keeps, the image representation they share, and ``none``.

A fusion component reads a batch's word states and the post's *image representation* — a set of
units in the text encoder's space: the scene graph's object states (from the detector on a real
image, or from a caption's scene graph), the sub-word states of the post's context segment (its
caption, notes) and/or the cells of a CNN's feature grid over the post's pixels (:class:`PixelUnits`)
— and returns new word states, an auxiliary loss and per-post diagnostics
(e.g. the relevance gate's value). Posts without any image unit get their text states back
unchanged, bit for bit, and diagnostics of 0 (a gate closed).

The representation is an input the components share (:class:`ImageRepresentation`), so each
fusion works with each source; the model builds it (:mod:`graphie.models.model`), the components
here work on plain tensors and import nothing of ``graphie.models``.

A component may instead enter the encoder (``enters_encoder``, HVPNet's visual prefixes): it turns
the image representation into keys and values for every layer's self-attention
(:class:`LayerPrefixes`), which the model hands to the encoder before the post is read.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ..errors import InvalidInputError
from ..registry import fusions

#: What an image unit can come from: a scene-graph object, a sub-word of the context segment, or a
#: cell of the image's feature grid.
SOURCES: tuple[str, ...] = ("objects", "context", "pixels")


@dataclass
class ImageRepresentation:
    """The image side of a batch, as every fusion reads it: ``m`` units per post."""

    states: Tensor  # [B, m, d] unit states in the text encoder's space (zeros at padding)
    mask: Tensor  # [B, m] bool, True = a real unit
    source: Tensor  # [B, m] long, index into SOURCES of each unit
    group: Tensor | None = None  # [B] long: rows with equal values show the same image (None: each its own)

    @property
    def present(self) -> Tensor:
        """``[B]`` bool: posts with at least one unit."""
        return self.mask.any(-1)

    @classmethod
    def join(cls, parts: dict[str, tuple[Tensor, Tensor]], group: Tensor | None = None) -> "ImageRepresentation":
        """Units of several sources side by side: ``parts[name] = (states [B, m_k, d], mask [B, m_k])``
        for names in :data:`SOURCES`, concatenated along the unit axis in the order given;
        ``group`` [B] as in the field of that name.

        Raises:
            InvalidInputError: an unknown source, no source, or parts whose batch or width differ.
        """
        if not parts:
            raise InvalidInputError("an image representation needs at least one source")
        states, masks, sources = [], [], []
        for name, (x, mask) in parts.items():
            if name not in SOURCES:
                raise InvalidInputError(f"image source {name!r} is not one of {SOURCES}")
            if x.dim() != 3 or tuple(mask.shape) != tuple(x.shape[:2]):
                raise InvalidInputError(f"image source {name!r}: states [B, m, d] and mask [B, m] expected, "
                                        f"got {tuple(x.shape)} and {tuple(mask.shape)}")
            states.append(x)
            masks.append(mask.bool())
            sources.append(torch.full(mask.shape, SOURCES.index(name), dtype=torch.long, device=mask.device))
        if len({(x.shape[0], x.shape[2]) for x in states}) > 1:
            raise InvalidInputError(f"image sources differ in batch or width: {[tuple(x.shape) for x in states]}")
        dtype = functools.reduce(torch.promote_types, (x.dtype for x in states))
        return cls(torch.cat([x.to(dtype) for x in states], 1), torch.cat(masks, 1), torch.cat(sources, 1), group)


class PixelUnits(nn.Module):
    r"""The ``pixels`` source: each cell of an image's feature grid (a CNN's last convolutional
    map, :class:`parsers.scene.FeatureGrid`) becomes an image unit in the text encoder's space,
    through a learned projection and a learned embedding of the cell's position.

    .. math::
        u_c = \mathrm{LN}\big(\mathrm{Drop}(W f_c + b + p_c)\big) \qquad (c = 1 \dots R \cdot C_g)

    :math:`f_c` is cell :math:`c`'s feature vector (row-major over the grid's :math:`R` rows and
    :math:`C_g` columns) and :math:`p_c` its position embedding. A post without a grid has no unit.

    This is the visual input the fusion papers read: UMT (Yu et al., ACL 2020; :mod:`graphie.fusion.umt`)
    projects ResNet-152's 7×7×2048 grid linearly into the text's width, one unit per cell.

    Deviations from UMT:
        - the grid is EfficientNet-Lite3's int8 9×9×1280 map (:class:`parsers.image.features.EfficientNetLite3Grid`),
          frozen, the network the tagger already runs; no ResNet-152 weights install here;
        - a learned position embedding per cell and a LayerNorm put the units on the scale of the
          text encoder's states (UMT adds no position); the effect is unmeasured (no benchmark has images here).

    Args:
        channels (int): width of a cell's feature vector (1280 for EfficientNet-Lite3).
        cells (int): cells of the grid, rows × cols (81 for EfficientNet-Lite3's 9×9).
        dim (int): width of the text encoder's states.
        dropout (float): dropout before the LayerNorm (default 0.1).

    Shapes:
        - **features:** :math:`(B, k, \text{channels})` with :math:`k` = ``cells``, or :math:`k = 0`
          when no post of the batch has a grid; **mask:** :math:`(B, k)` (True = a cell of a post with a grid)
        - **output:** unit states :math:`(B, k, d)` (zeros where the mask is False) and the mask
    """

    def __init__(self, channels: int, cells: int, dim: int, dropout: float = 0.1):
        super().__init__()
        if channels <= 0 or cells <= 0:
            raise InvalidInputError(f"pixel units need a grid of cells and channels, got {cells} cells of {channels}")
        self.proj = nn.Linear(channels, dim)
        self.position = nn.Parameter(torch.zeros(cells, dim))
        nn.init.normal_(self.position, std=0.02)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, features: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        cells = self.position.shape[0]
        if features.dim() != 3 or features.shape[1] not in (0, cells) or tuple(mask.shape) != tuple(features.shape[:2]):
            raise InvalidInputError(f"pixel features must be [B, {cells} (or 0), channels] with a mask [B, cells], "
                                    f"got {tuple(features.shape)} and {tuple(mask.shape)}")
        if features.shape[1] == 0:
            return features.new_zeros(features.shape[0], 0, self.position.shape[1]), mask.bool()
        x = self.norm(self.dropout(self.proj(features.to(self.proj.weight.dtype)) + self.position))
        return x * mask[..., None].to(x.dtype), mask.bool()


@dataclass
class LayerPrefixes:
    """Keys and values put in front of the encoder's own in the self-attention of every layer (HVPNet's
    visual prefixes): the words of row ``b`` attend over ``[prefix_b ; own tokens]``. A row whose
    ``mask`` has no slot reads its own tokens only, exactly as the encoder without prefixes."""

    keys: list[Tensor]  # one per encoder layer, [B, heads, m, head_dim]
    values: list[Tensor]  # one per encoder layer, [B, heads, m, head_dim]
    mask: Tensor  # [B, m] bool, True = a real prefix slot

    @property
    def rows(self) -> Tensor:
        """``[B]`` bool: rows with at least one prefix slot."""
        return self.mask.any(-1)


@dataclass
class FusionOutput:
    """What a fusion component returns for a batch."""

    states: Tensor  # [B, n, d] word states after fusion (exactly the input for posts without image units)
    loss: Tensor  # scalar auxiliary loss, already weighted by the component's own option: callers add it
    diagnostics: dict[str, Tensor] = field(default_factory=dict)  # per-post values [B] (0 for posts without units)


def key_padding(mask: Tensor) -> Tensor:
    """``nn.MultiheadAttention``'s ``key_padding_mask`` (True = ignore) for unit ``mask`` [B, m]; a
    row without any unit keeps its first slot, so its softmax has a key and stays finite (the base
    class throws that row's result away)."""
    ignore = ~mask
    empty = ~mask.any(-1)
    if bool(empty.any()):
        ignore = ignore.clone()
        ignore[empty, 0] = False
    return ignore


def mean_units(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` [B, k, d] over the slots where ``mask`` [B, k] is True: ``[B, d]`` (0 for none)."""
    weights = mask.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class CrossAttention(nn.Module):
    r"""A cross-modal transformer block (UMT's CMT): queries attend over another sequence, then a
    feed-forward layer, each with a residual and LayerNorm (post-norm, as BERT).

    .. math::
        z = \mathrm{LN}(x + \mathrm{MHA}(x, y, y)),\qquad x' = \mathrm{LN}(z + \mathrm{FFN}(z))

    Args:
        dim (int): width of both sequences.
        heads (int): attention heads (default 4).
        ffn (bool): add the feed-forward layer of width ``4 * dim`` (default True).
        dropout (float): attention, residual and FFN dropout (default 0.1).

    Shapes:
        - **x:** :math:`(B, n, d)` queries; **y:** :math:`(B, m, d)` keys/values;
          **ignore:** :math:`(B, m)` bool, True = a padded key (:func:`key_padding`)
        - **output:** :math:`(B, n, d)`; with ``weights=True`` also the head-averaged attention :math:`(B, n, m)`
    """

    def __init__(self, dim: int, heads: int = 4, ffn: bool = True, dropout: float = 0.1):
        super().__init__()
        if dim % heads:
            raise InvalidInputError(f"fusion width {dim} is not divisible by heads={heads}")
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.ffn = (nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))
                    if ffn else None)
        self.ffn_norm = nn.LayerNorm(dim) if ffn else None

    def forward(self, x: Tensor, y: Tensor, ignore: Tensor, weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        attended, attn = self.attention(x, y, y, key_padding_mask=ignore, need_weights=weights)
        z = self.norm(x + self.dropout(attended))
        if self.ffn is not None:
            z = self.ffn_norm(z + self.dropout(self.ffn(z)))
        return (z, attn) if weights else z


class Fusion(nn.Module):
    """Base class: checks inputs, keeps posts without image units unchanged, and calls :meth:`fuse`.

    Subclasses implement :meth:`fuse` for a batch in which at least one post has image units; the
    base class then restores the exact text states of the posts that have none and sets their
    diagnostics to 0. :meth:`text_loss` (e.g. UMT's text-only span detection) runs on every batch.
    A subclass names its per-post diagnostics in ``diagnostics``, names in ``relevance`` the one
    that is a probability that the post's image is let in (a relevance gate: the model reports it
    as the ``image_relevance`` of each post's :class:`~graphie.types.Extraction`), and sets
    ``reads_spans`` when it wants the untyped entity-span tags of the batch (``spans`` of :meth:`forward`).

    A component that sets ``enters_encoder`` fuses inside the encoder instead: the model builds the
    image representation before the encoder pass, gives :meth:`prefix`'s keys and values to every
    layer's attention, and the component's :meth:`fuse` leaves the word states as the encoder gave
    them. Its constructor takes ``encoder_layers`` and ``encoder_heads`` (the model passes them).
    """

    diagnostics: tuple[str, ...] = ()
    relevance: str | None = None
    reads_spans: bool = False
    #: Whether the component acts inside the encoder (per-layer prefixes, :meth:`prefix`) rather than after it.
    enters_encoder: bool = False

    def __init__(self, dim: int):
        super().__init__()
        if dim <= 0:
            raise InvalidInputError(f"fusion dim must be positive, got {dim}")
        self.dim = dim

    def forward(self, text: Tensor, text_mask: Tensor, image: ImageRepresentation,
                spans: Tensor | None = None) -> FusionOutput:
        """Fused word states of a batch.

        Args:
            text: word states ``[B, n, d]``; text_mask ``[B, n]`` (True = a real word).
            image: the batch's :class:`ImageRepresentation` (``m`` may be 0).
            spans: ``[B, n]`` long, untyped entity-span tags of the words (0 = O, 1 = B, 2 = I,
                −100 = not annotated), given in training to a component that ``reads_spans``.

        Returns:
            :class:`FusionOutput`: states ``[B, n, d]`` (exactly ``text`` for posts without image
            units), the weighted auxiliary loss, and each of ``diagnostics`` as ``[B]``.

        Raises:
            InvalidInputError: shapes that do not fit together.
        """
        _check(text, text_mask, image, spans)
        text_mask = text_mask.bool()
        loss = self.text_loss(text, text_mask, spans)
        present = image.present
        if not bool(present.any()):
            B = text.shape[0]
            return FusionOutput(text, loss, {k: text.new_zeros(B) for k in self.diagnostics})
        out = self.fuse(text, text_mask, image)
        keep = present[:, None, None]
        return FusionOutput(
            states=torch.where(keep, out.states.to(text.dtype), text),
            loss=loss + out.loss,
            diagnostics={k: torch.where(present, v, torch.zeros_like(v)) for k, v in out.diagnostics.items()},
        )

    def fuse(self, text: Tensor, text_mask: Tensor, image: ImageRepresentation) -> FusionOutput:
        """The method's own fusion, for a batch in which at least one post has image units."""
        raise NotImplementedError

    def text_loss(self, text: Tensor, text_mask: Tensor, spans: Tensor | None) -> Tensor:
        """An auxiliary loss on the text states alone (every post, with or without image): 0 here."""
        return text.new_zeros((), dtype=torch.float32)

    def prefix(self, image: ImageRepresentation) -> LayerPrefixes:
        """Per-layer keys and values for the encoder's self-attention (a component that ``enters_encoder``)."""
        raise NotImplementedError(f"{type(self).__name__} does not enter the encoder")


@fusions.register("none")
class NoFusion(Fusion):
    """Text only: ``states = text``; the image representation is ignored."""

    def __init__(self, dim: int, **_: object):
        super().__init__(dim)

    def fuse(self, text, text_mask, image) -> FusionOutput:
        return FusionOutput(text, text.new_zeros((), dtype=torch.float32))


def create_fusion(name: str, dim: int, options: dict[str, Any], sources: Sequence[str] | None = None,
                  encoder_layers: int | None = None, encoder_heads: int | None = None) -> Fusion:
    """The fusion ``name`` from :data:`graphie.registry.fusions`, built with ``options``. What the
    model gives rather than the options, to a component whose constructor takes it: ``sources``
    (its config's ``fusion_sources``, to a component with a part per source, as ``experts``), and
    ``encoder_layers``, ``encoder_heads`` (its encoder's layers and attention heads, to a component
    that enters the encoder, as ``visual_prefix``).

    Raises:
        UnknownComponentError: no fusion of that name.
        InvalidInputError: an option the component does not take, or one the model gives among the
            options (one line naming it).
    """
    factory = fusions.get(name)
    given = {"sources": list(sources) if sources is not None else None,
             "encoder_layers": encoder_layers, "encoder_heads": encoder_heads}
    for key in given:
        if key in options:
            by = "the model config's fusion_sources names them" if key == "sources" else "the model's encoder gives it"
            raise InvalidInputError(f"fusion {name!r}: {key!r} is not a fusion option; {by}")
    takes = inspect.signature(factory).parameters
    kwargs = {**options, **{k: v for k, v in given.items() if v is not None and k in takes}}
    try:
        inspect.signature(factory).bind(dim=dim, **kwargs)
    except TypeError as exc:
        raise InvalidInputError(f"fusion {name!r}: bad fusion_options ({exc})") from None
    return factory(dim=dim, **kwargs)


def _check(text: Tensor, text_mask: Tensor, image: ImageRepresentation, spans: Tensor | None) -> None:
    if text.dim() != 3:
        raise InvalidInputError(f"text states must be [B, n, d], got shape {tuple(text.shape)}")
    B, n, d = text.shape
    if tuple(text_mask.shape) != (B, n):
        raise InvalidInputError(f"text_mask must have shape {(B, n)}, got {tuple(text_mask.shape)}")
    x = image.states
    if x.dim() != 3 or x.shape[0] != B or (x.shape[1] and x.shape[2] != d):
        raise InvalidInputError(f"image states must be [B={B}, m, d={d}], got shape {tuple(x.shape)}")
    for name, t in (("image mask", image.mask), ("image source", image.source)):
        if tuple(t.shape) != tuple(x.shape[:2]):
            raise InvalidInputError(f"{name} must have shape {tuple(x.shape[:2])}, got {tuple(t.shape)}")
    if image.group is not None and tuple(image.group.shape) != (B,):
        raise InvalidInputError(f"image group must have shape {(B,)}, got {tuple(image.group.shape)}")
    if spans is not None and tuple(spans.shape) != (B, n):
        raise InvalidInputError(f"spans must have shape {(B, n)}, got {tuple(spans.shape)}")
