"""Component registries: detectors, taggers, feature maps, encoders, alignments, fusions, heads, pair channels and context providers are chosen by name.

    @alignments.register("my_alignment")
    class MyAlignment(nn.Module): ...

    alignment = alignments.create("my_alignment", dim=384)

The image-side registries (``detectors``, ``taggers``, ``feature_maps``) and :class:`Registry` live in :mod:`parsers.registry`
(``parsers`` imports nothing of graphie) and are re-exported here.
"""

from __future__ import annotations

from parsers.registry import Registry, detectors, feature_maps, taggers

# One list per registry: the modules whose import registers the built-in components, imported
# on the first lookup. A new built-in joins its registry's list; a component from outside the
# package registers itself (``@heads.register("my_head")``) before it is looked up.
encoders: Registry = Registry("encoder", builtins=["graphie.models.encoder"])
alignments: Registry = Registry("alignment", builtins=["graphie.alignment.base", "graphie.alignment.mega",
                                                      "graphie.alignment.eega", "graphie.alignment.routed"])
heads: Registry = Registry("head", builtins=["graphie.models.heads", "graphie.models.queries"])
#: Fusion components (:mod:`graphie.fusion`): word states meet the image representation.
fusions: Registry = Registry("fusion", builtins=["graphie.fusion.base", "graphie.fusion.relevance",
                                                "graphie.fusion.umt", "graphie.fusion.hybrid",
                                                "graphie.fusion.experts", "graphie.fusion.prefix"])
pair_channels: Registry = Registry("pair channel", builtins=["graphie.models.pair_features"])
#: Context providers (:mod:`graphie.context`), registered from the one list in ``graphie/context/__init__.py``.
contexts: Registry = Registry("context provider")

__all__ = ["Registry", "alignments", "contexts", "detectors", "encoders", "feature_maps", "fusions", "heads", "pair_channels", "taggers"]
