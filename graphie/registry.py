"""Component registries: detectors, taggers, encoders, alignments, heads, pair channels and context providers are chosen by name.

    @alignments.register("my_alignment")
    class MyAlignment(nn.Module): ...

    alignment = alignments.create("my_alignment", dim=384)

The image-side registries (``detectors``, ``taggers``) and :class:`Registry` live in :mod:`parsers.registry`
(``parsers`` imports nothing of graphie) and are re-exported here.
"""

from __future__ import annotations

from parsers.registry import Registry, detectors, taggers

encoders: Registry = Registry("encoder")
alignments: Registry = Registry("alignment")
heads: Registry = Registry("head")
pair_channels: Registry = Registry("pair channel")
#: Context providers (:mod:`graphie.context`), registered from the one list in ``graphie/context/__init__.py``.
contexts: Registry = Registry("context provider")

__all__ = ["Registry", "alignments", "contexts", "detectors", "encoders", "heads", "pair_channels", "taggers"]
