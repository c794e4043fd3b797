"""Batch extraction on Ray Data: the model loaded once per worker of an actor pool, the same
records as the local engine (:mod:`graphie.batch`). Needs the ``ray`` extra
(``pip install graphie[ray]``); importing this module does not import Ray.

    import ray, graphie.distributed as gd
    ds = ray.data.read_parquet("posts.parquet")          # columns id, text[, image, caption, context]
    gd.extract_dataset(ds, model="default", num_workers=4).write_parquet("out/")

or ``graphie extract-file posts.jsonl --output out.jsonl --engine ray --num-workers 4``.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .errors import GraphieError, MissingDependencyError
from .records import check_count, record_schema

if TYPE_CHECKING:
    import pyarrow
    import ray.data

    from .batch import Row
    from .records import ErrorRecord
    from .types import Post


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError("the Ray engine needs Ray: pip install 'graphie[ray]'") from exc
    return ray


class Worker:
    """A picklable extraction function: it carries only how to load the model, and loads it once,
    on first use, in whichever process runs it (a Ray actor, a Spark executor, a Dask worker).

    Args:
        model: a shipped model name or a saved model folder.
        images_dir: folder that relative image paths of file rows are resolved against.
        batch_size: posts per model call.
        fill: gives each decoded file row's post what it lacks (a picklable callable, e.g. a
            :class:`graphie.datasets.StoredContext`: captions and notes from files, shipped to
            each worker with the recipe), as in :func:`graphie.batch.extract_rows`.
        **load_options: passed to :func:`graphie.load` (``device``, ``quantize``, ``detector``, ...).
    """

    def __init__(self, model: str = "default", *, images_dir: str | None = None, batch_size: int = 16,
                 fill: "Callable[[Post], Post | ErrorRecord] | None" = None, **load_options: Any):
        self.model = str(model)
        self.images_dir = images_dir
        self.batch_size = check_count("batch_size", batch_size)
        self.fill = fill
        self.load_options = load_options
        self._extractor = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_extractor": None}  # ship the recipe, not the weights

    @property
    def extractor(self) -> Any:
        if self._extractor is None:
            from .api import load

            self._extractor = load(self.model, **self.load_options)
        return self._extractor

    def check(self) -> None:
        """Load the model here once, on the CPU, and drop it: a missing or broken model is one
        :class:`~graphie.errors.ModelLoadError` before a cluster starts, not a traceback per worker."""
        from .api import load

        load(self.model, **{**self.load_options, "device": "cpu", "quantize": False})

    def extract_batch(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`graphie.Extractor.extract_batch`: plain input records in, plain output records out."""
        return self.extractor.extract_batch(records, batch_size=self.batch_size)

    def extract_rows(self, rows: list["Row"]) -> list[dict[str, Any]]:
        """Output records of file rows (``line``, ``raw``, ``dup_of``), as the local engine makes them."""
        from .batch import extract_rows

        return list(extract_rows(self.extractor, rows, images_dir=self.images_dir, batch_size=self.batch_size,
                                 progress=False, fill=self.fill))


class _RowsActor:
    """Ray Data callable class over file rows: one :class:`Worker` (one model) per actor."""

    def __init__(self, worker: Worker):
        self.worker = worker

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        rows = [{"line": int(line), "raw": bytes(raw), "dup_of": int(dup), "problem": str(problem)}
                for line, raw, dup, problem in zip(batch["line"], batch["raw"], batch["dup_of"], batch["problem"])]
        records = self.worker.extract_rows(rows)
        return {"line": [r["line"] for r in records], "record": [json.dumps(r, ensure_ascii=False) for r in records]}


class _PostsActor:
    """Ray Data callable class over a dataset of input records: one :class:`Worker` per actor."""

    def __init__(self, worker: Worker, schema: "pyarrow.Schema"):
        self.worker, self.schema = worker, schema

    def __call__(self, table: "pyarrow.Table") -> "pyarrow.Table":
        import pyarrow as pa

        records = [{k: v for k, v in row.items() if v is not None} for row in table.to_pylist()]
        return pa.Table.from_pylist(self.worker.extract_batch(records), schema=self.schema)


def _strategy(num_workers: int) -> Any:
    ray = _ray()
    check_count("num_workers", num_workers)
    if not ray.is_initialized():  # a local cluster; quiet, as a library should be
        ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # one record per input, in input order
    ctx.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # after ray.data configured its loggers
    return ray.data.ActorPoolStrategy(size=num_workers)


def extract_dataset(ds: "ray.data.Dataset", model: str = "default", *, num_workers: int = 1,
                    batch_size: int = 16, **load_options: Any) -> "ray.data.Dataset":
    """Output records (:meth:`graphie.Extractor.extract_batch`) of a Ray Dataset of input
    records (columns ``id``, ``text``, optional ``tokens``, ``image``, ``caption``, ``context``),
    over ``num_workers`` actors that each load the model once. Lazy, like every Ray Dataset."""
    import pyarrow as pa

    worker = Worker(model, batch_size=batch_size, **load_options)
    worker.check()
    compute = _strategy(num_workers)
    schema = ds.schema()
    id_type = schema.base_schema.field("id").type if schema is not None and "id" in schema.names else pa.string()
    return ds.map_batches(_PostsActor, fn_constructor_args=(worker, record_schema(id_type)),
                          batch_size=max(batch_size, 32), batch_format="pyarrow", compute=compute, num_cpus=1)


def extract_rows(rows: Iterator["Row"], model: str = "default", *, num_workers: int = 1, batch_size: int = 16,
                 images_dir: str | os.PathLike | None = None, fill: "Callable[[Post], Post | ErrorRecord] | None" = None,
                 **load_options: Any) -> Iterator[dict[str, Any]]:
    """The Ray engine of ``graphie extract-file``: file rows in, one record per row out, in order.
    The driver checks the model (before Ray starts) and reads the file (and checks ids for
    resumption and duplicates); workers decode, validate, ``fill`` (see :class:`Worker`) and extract. A worker killed mid-batch is
    restarted by Ray and its batch done again, so every row still gets its one record.

    Raises:
        ModelLoadError: a missing or broken model, before Ray starts.
        GraphieError: one that a worker raised, unwrapped from Ray's task error.
    """
    ray = _ray()
    worker = Worker(model, images_dir=None if images_dir is None else str(images_dir), batch_size=batch_size,
                    fill=fill, **load_options)
    items = list(rows)
    if not items:
        return
    worker.check()
    compute = _strategy(num_workers)
    ds = ray.data.from_items(items).map_batches(
        _RowsActor, fn_constructor_args=(worker,), batch_size=max(batch_size, 32), batch_format="numpy",
        compute=compute, num_cpus=1)
    try:
        for row in ds.iter_rows():
            yield json.loads(row["record"])
    except Exception as exc:  # noqa: BLE001 - Ray wraps a worker's error in its own types
        cause = _graphie_cause(exc)
        if cause is None:
            raise
        raise cause from None


def _graphie_cause(exc: BaseException | None) -> GraphieError | None:
    """The :class:`GraphieError` that a worker raised, found through Ray's wrappers, if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, GraphieError):
            return exc
        seen.add(id(exc))
        exc = getattr(exc, "cause", None) or exc.__cause__
    return None
