"""The contract every cross-graph alignment module keeps, and the text-only ``none`` module.

An alignment module reads the encoded text graph (tokens and dependency arcs) and the encoded
scene graph (objects and predicate edges) of a batch of posts and returns per-token states that
carry the image evidence, a token×object alignment matrix (what a caller shows as the evidence
behind a word) and an auxiliary loss. Posts without an image, or whose scene graph is empty, get
their text states back unchanged, bit for bit, in every mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import InvalidInputError
from ..registry import alignments


@dataclass
class AlignmentOutput:
    """What an alignment module returns for a batch."""

    states: Tensor  # [B, n, d] text states after fusing image evidence
    alignment: Tensor  # [B, n, m] token x object weights; 0 on padded tokens and masked objects
    loss: Tensor  # scalar auxiliary loss, unweighted (EEGA's graph loss; 0 otherwise): callers add λ·loss


def _check(text: Tensor, text_mask: Tensor, text_adj: Tensor, objects: Tensor, object_mask: Tensor,
           object_adj: Tensor) -> None:
    if text.dim() != 3:
        raise InvalidInputError(f"text states must be [B, n, d], got shape {tuple(text.shape)}")
    B, n, d = text.shape
    if objects.dim() != 3 or objects.shape[0] != B or (objects.shape[1] and objects.shape[2] != d):
        raise InvalidInputError(f"objects must be [B={B}, m, d={d}], got shape {tuple(objects.shape)}")
    m = objects.shape[1]
    for name, t, shape in (("text_mask", text_mask, (B, n)), ("text_adj", text_adj, (B, n, n)),
                           ("object_mask", object_mask, (B, m)), ("object_adj", object_adj, (B, m, m))):
        if tuple(t.shape) != shape:
            raise InvalidInputError(f"{name} must have shape {shape}, got {tuple(t.shape)}")


class Alignment(nn.Module):
    """Base class: validates inputs, handles image-free posts, and calls :meth:`align` on the rest.

    Subclasses implement ``align`` for a batch in which at least one post has objects; the base
    class then restores the exact text states (and zero alignment) of the posts that have none.
    """

    def __init__(self, dim: int):
        super().__init__()
        if dim <= 0:
            raise InvalidInputError(f"alignment dim must be positive, got {dim}")
        self.dim = dim

    def forward(self, text: Tensor, text_mask: Tensor, text_adj: Tensor, objects: Tensor,
                object_mask: Tensor, object_adj: Tensor) -> AlignmentOutput:
        """Aligned word states of a batch.

        Args:
            text: word states ``[B, n, d]``; text_mask ``[B, n]``; text_adj ``[B, n, n]`` (dependency arcs).
            objects: object states ``[B, m, d]``; object_mask ``[B, m]``; object_adj ``[B, m, m]`` (predicates).

        Returns:
            :class:`AlignmentOutput`: states ``[B, n, d]`` (exactly ``text`` for posts without
            objects), alignment ``[B, n, m]`` and the auxiliary graph loss.

        Raises:
            InvalidInputError: shapes that do not fit together.
        """
        _check(text, text_mask, text_adj, objects, object_mask, object_adj)
        text_mask, object_mask = text_mask.bool(), object_mask.bool()
        # only real nodes count: padded tokens / objects have no arcs
        text_adj = text_adj.bool() & text_mask[:, :, None] & text_mask[:, None, :]
        object_adj = object_adj.bool() & object_mask[:, :, None] & object_mask[:, None, :]
        has_image = object_mask.any(-1)  # [B]
        if not bool(has_image.any()):
            return self.passthrough(text, objects.shape[1])
        out = self.align(text, text_mask, text_adj, objects, object_mask, object_adj)
        keep = has_image[:, None, None]
        pair = text_mask[:, :, None] & object_mask[:, None, :]
        return AlignmentOutput(
            states=torch.where(keep, out.states, text),
            alignment=torch.where(keep & pair, out.alignment, torch.zeros_like(out.alignment)),
            loss=out.loss,
        )

    def passthrough(self, text: Tensor, m: int) -> AlignmentOutput:
        """The text-only result: states unchanged, zero alignment, zero loss."""
        B, n, _ = text.shape
        return AlignmentOutput(text, text.new_zeros(B, n, m), text.new_zeros(()))

    def align(self, text: Tensor, text_mask: Tensor, text_adj: Tensor, objects: Tensor, object_mask: Tensor,
              object_adj: Tensor) -> AlignmentOutput:
        """The method's own alignment, for a batch in which at least one post has objects (masks are bool)."""
        raise NotImplementedError


@alignments.register("none")
class NoAlignment(Alignment):
    """Text only: ``states = text``; the scene graph is ignored."""

    def __init__(self, dim: int, **_: object):
        super().__init__(dim)

    def align(self, text, text_mask, text_adj, objects, object_mask, object_adj) -> AlignmentOutput:
        return self.passthrough(text, objects.shape[1])


def normalize_sum(x: Tensor, dim: int) -> Tensor:
    """``x / x.sum(dim)`` with all-zero slices left at 0 in every dtype (the floor is the dtype's
    smallest normal number: a fixed 1e-12 is 0 in float16, and 0 / 0 is NaN)."""
    return x / x.sum(dim, keepdim=True).clamp(min=torch.finfo(x.dtype).tiny)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` [B] over the posts where ``mask`` [B] is True (0 when none is)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)
