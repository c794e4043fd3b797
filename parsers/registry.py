"""Component registries: components are chosen by name.

:class:`Registry` and the image-side registries (``detectors``, ``taggers``) live in ``parsers`` (the
bottom layer); :mod:`graphie.registry` re-exports them and adds the model-side ones
(encoders, alignments, heads, ...).

    @detectors.register("default")
    class DefaultDetector: ...

    detector = detectors.create("default", max_objects=10)
"""

from __future__ import annotations

import importlib
import json
import threading
from typing import Any, Callable, Generic, Sequence, TypeVar

from .errors import UnknownComponentError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table of factories (classes or functions) for one kind of component.

    ``builtins`` is the one list of the modules that register the built-in components: they are
    imported on the first lookup (:meth:`get`, :meth:`names`, ``in``), so a registry never
    depends on what else happens to have been imported. Components from elsewhere register
    themselves with :meth:`register` before they are looked up.
    """

    def __init__(self, kind: str, builtins: Sequence[str] = ()):
        self.kind = kind
        self.builtins = tuple(builtins)
        self._factories: dict[str, Callable[..., T]] = {}
        self._loaded = not self.builtins
        self._shared: dict[str, T] = {}
        self._shared_lock = threading.Lock()

    def _load(self) -> None:
        """Import the :attr:`builtins` modules once (their imports register the built-ins)."""
        if not self._loaded:
            self._loaded = True
            for module in self.builtins:
                importlib.import_module(module)

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator adding a factory under ``name``; registering another factory under a taken
        name raises ``ValueError``.

            @alignments.register("my_alignment")
            class MyAlignment(nn.Module): ...
        """

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories and self._factories[name] is not factory:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._factories[name] = factory
            return factory

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``.

        Raises:
            UnknownComponentError: no such name; the message lists the known ones.
        """
        self._load()
        try:
            return self._factories[name]
        except KeyError:
            known = ", ".join(sorted(self._factories)) or "none"
            raise UnknownComponentError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def create(self, name: str, **kwargs: Any) -> T:
        """A new component: the factory ``name`` called with ``kwargs``, e.g.
        ``detectors.create("default", ocr="full")``."""
        return self.get(name)(**kwargs)

    def shared(self, name: str, **kwargs: Any) -> T:
        """The component ``name`` built with ``kwargs`` once per process and reused by every later
        call with the same name and arguments (models load on first use, not on every image)."""
        key = json.dumps([name, kwargs], sort_keys=True, default=str)
        with self._shared_lock:
            if key not in self._shared:
                self._shared[key] = self.create(name, **kwargs)
            return self._shared[key]

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self._load()
        return sorted(self._factories)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._factories


#: Image → objects backends (the modules of ``parsers.image.detectors``).
detectors: Registry = Registry("detector")
#: Image → ImageNet tags backends (:mod:`parsers.image.tags`).
taggers: Registry = Registry("tagger")
#: Image → a grid of feature vectors from its pixels (:mod:`parsers.image.features`): what the
#: ``pixels`` source of graphie's fusion components reads.
feature_maps: Registry = Registry("feature map", builtins=["parsers.image.features"])
