"""Text graphs: the spaCy dependency parse of a post as a tree of words with labelled arcs.

A :class:`TextParser` parses raw text or **pre-tokenised** words (token ``i`` of the input
is token ``i`` of the graph; nothing is re-tokenised) into a :class:`TextGraph`, which
exports to numpy (adjacency, tree distances), ``networkx`` and ``torch_geometric``.

Tweets as the benchmarks see them. On raw text an ``@mention`` or ``#hashtag`` becomes two
tokens, the sign and the name, as Twitter-2017 writes them (and MNRE writes hashtags):
``Thanks @Ryanair`` gives ``Thanks``, ``@``, ``Ryanair``, with ``Ryanair`` at character 8 of the
text. The name is the longest run of word characters after the sign (``\\w+``: ``Bundesliga_EN``
stays whole); a hashtag needs a letter (``#1`` is a number) and ``a@b.com`` is no mention. spaCy
reads a space after a lone sign whatever the text holds, so a raw post and its benchmark form
give the same tokens *and* the same graph (all 1,273 Twitter-2017 training posts with a mention
or hashtag whose other words spaCy splits as the benchmark does), and a model reads a mention's
name as the word the benchmark labels (``@ Bundesliga_EN`` → ``B-ORG``). Pre-tokenised words are
kept as given: Twitter-2015's and MNRE's whole ``@user`` stays one word.

Off-the-shelf English pipelines are trained on edited text; on tweets they split emoji
sequences and make URLs and emoji extra roots or glue them into noun compounds. The parser
therefore

* keeps URLs, HTML entities (``&amp;``) and emoji (including ZWJ sequences, skin tones and
  flags) as single tokens on raw text;
* parses only the *syntactic* words: URLs, emoji, the retweet marker ``RT`` and the
  whole-word mentions/hashtags (``@user``, ``#tbt`` in pre-tokenised input) of a leading
  ``RT @user:`` block or a trailing block are left out of the model's input and attached to
  the main root afterwards with the label ``discourse`` (UD's label for such material) and a
  fixed tag (URL and hashtag ``X/ADD``, mention ``PROPN/NNP``, emoji ``SYM/NFP``, ``RT``
  ``X/XX``); a split sign and its name are parsed as words, as in the benchmarks;
* strips the ``#``/``@`` of whole-word hashtags and mentions used inside a sentence from the
  model's input (``I love #NYC`` is parsed as ``I love NYC``) while the graph keeps the token;
* re-attaches every further root (one per sentence) to the main root, the root of the
  largest tree, with ``parataxis``, so that every graph is a single tree.

Odd characters. On raw text, control and format characters (but the joiners inside emoji)
separate words like spaces and belong to no token. Pre-tokenised words are kept as given;
a word of only whitespace, control, format or combining characters (the benchmarks hold
U+00A0 and a lone U+FE0F as words) stays a token but is left out of the parse (``X/XX``,
``discourse``); whitespace inside a visible word is an :class:`InvalidInputError`.
"""

from __future__ import annotations

import html
import unicodedata
from collections import deque
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np
import regex

from .errors import InvalidInputError
from .nlp import DEFAULT_SPACY_MODEL, load_nlp

if TYPE_CHECKING:  # heavy imports only where used
    import networkx as nx
    import torch_geometric.data

PAD = "<pad>"
ROOT = "ROOT"
#: label of URLs, emoji, ``RT`` and non-syntactic mentions/hashtags attached to the main root
MARKUP_LABEL = "discourse"
#: label of further sentence roots attached to the main root
EXTRA_ROOT_LABEL = "parataxis"
#: label of the self loops :meth:`TextGraph.to_pyg` adds on request
SELF_LABEL = "self"
#: label an unknown arc label (from another pipeline) maps to in :meth:`TextGraph.to_pyg`
FALLBACK_LABEL = "dep"

#: Arc-label vocabulary for embedding ids: ``<pad>`` (0), the labels of en_core_web_sm 3.8's
#: parser (ClearNLP style, lower-case, ``ROOT`` kept), then the labels graphie adds.
DEP_LABELS: tuple[str, ...] = (
    PAD, ROOT, "acl", "acomp", "advcl", "advmod", "agent", "amod", "appos", "attr", "aux",
    "auxpass", "case", "cc", "ccomp", "compound", "conj", "csubj", "csubjpass", "dative", "dep",
    "det", "dobj", "expl", "intj", "mark", "meta", "neg", "nmod", "npadvmod", "nsubj",
    "nsubjpass", "nummod", "oprd", "parataxis", "pcomp", "pobj", "poss", "preconj", "predet",
    "prep", "prt", "punct", "quantmod", "relcl", "xcomp", MARKUP_LABEL, SELF_LABEL,
)  # fmt: skip
#: ``<pad>`` (0) and the 17 Universal POS tags.
POS_TAGS: tuple[str, ...] = (
    PAD, "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
    "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
DEP_LABEL_IDS: dict[str, int] = {label: i for i, label in enumerate(DEP_LABELS)}
POS_TAG_IDS: dict[str, int] = {tag: i for i, tag in enumerate(POS_TAGS)}

#: Longest input in words; guards memory (a parse is linear, a distance matrix quadratic).
DEFAULT_MAX_WORDS = 100_000

# --- tweet markup ------------------------------------------------------------------------
# A URL ends before trailing punctuation that is followed by whitespace or the end.
_URL = r"(?:https?://|www\.)\S+?(?=[.,;:!?)\]}\"'…]*(?:\s|$))"
_MENTION = r"(?<![\w@])@\w+"
_HASHTAG = r"(?<![\w#&])#\w*[^\W\d]\w*"  # needs a letter: "#1 fan" is a number
_ENTITY = r"&(?:amp|lt|gt|quot|apos|#\d+);"
# One emoji grapheme: keycaps, ZWJ sequences, skin tones, flags; not (c), (r), TM.
_EMOJI = r"(?:[0-9#*]\uFE0F?\u20E3|(?![\u00a9\u00ae\u2122])(?=[\p{Extended_Pictographic}\p{Regional_Indicator}])\X)"
_ENTITY_RE = regex.compile(_ENTITY)
_PROTECTED_RE = regex.compile(
    f"{_URL}|{_EMOJI}|(?P<sign>{_MENTION}|{_HASHTAG})|{_ENTITY}", regex.V1)  # a keycap #️⃣ is an emoji
_KINDS = (
    ("url", regex.compile(r"(?:https?://|www\.)\S+", regex.IGNORECASE)),
    ("mention", regex.compile(r"@\w+")),
    ("hashtag", regex.compile(r"#\w*[^\W\d]\w*")),
    ("emoji", regex.compile(f"{_EMOJI}+\uFE0F?")),
)
# Fixed (UPOS, tag) of markup left out of the parse.
_MARKUP_TAGS = {
    "url": ("X", "ADD"),
    "hashtag": ("X", "ADD"),
    "mention": ("PROPN", "NNP"),
    "emoji": ("SYM", "NFP"),
    "rt": ("X", "XX"),
    "invisible": ("X", "XX"),
}
_NEVER_PARSED = frozenset({"url", "emoji", "rt", "invisible"})
_INVISIBLE_RE = regex.compile(r"[[\p{Cc}\p{Cf}]--[\u200c\u200d\U000e0020-\U000e007f]]", regex.V1)


def _markup_kind(word: str) -> str | None:
    """``url``, ``mention``, ``hashtag``, ``emoji`` or ``invisible`` (only whitespace, control,
    format or combining characters: the benchmarks hold words like U+00A0 and U+FE0F) when
    the whole word is one, else None."""
    if all(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Mn", "Me") for ch in word):
        return "invisible"
    for kind, pattern in _KINDS:
        if pattern.fullmatch(word):
            return kind
    return None


def _is_punct(word: str) -> bool:
    return all(unicodedata.category(ch)[0] in "PS" for ch in word)


@dataclass
class TextGraph:
    """A dependency tree over the words of a text.

    ``heads[i]`` is the index of word ``i``'s head (the root points to itself) and
    ``deps[i]`` the label of that arc (``"ROOT"`` for the root). ``starts[i]`` is the
    character offset of ``tokens[i]`` in ``text``.
    """

    text: str
    tokens: list[str]
    starts: list[int]
    pos: list[str]
    tags: list[str]
    lemmas: list[str]
    heads: list[int]
    deps: list[str]

    def __post_init__(self) -> None:
        n = len(self.tokens)
        for name in ("starts", "pos", "tags", "lemmas", "heads", "deps"):
            if len(getattr(self, name)) != n:
                raise InvalidInputError(f"TextGraph.{name} has {len(getattr(self, name))} entries for {n} tokens")
        for i, (tok, start) in enumerate(zip(self.tokens, self.starts)):
            if self.text[start : start + len(tok)] != tok:
                raise InvalidInputError(f"TextGraph token {i} {tok!r} is not at offset {start} of the text")
        for i, h in enumerate(self.heads):
            if not 0 <= h < n:
                raise InvalidInputError(f"TextGraph head of token {i} is {h}, outside [0, {n})")
        self._depths()  # raises on cycles

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        head = " ".join(self.tokens[:8]) + (" ..." if len(self) > 8 else "")
        return f"TextGraph({len(self)} words: {head!r})"

    def window(self, start: int, end: int) -> "TextGraph":
        """The tree over words ``start..end-1`` alone, so that long texts are modelled a window at
        a time and nothing quadratic is built over the whole text.

        The text (and so every character offset) is the whole text's. Words whose head lies
        outside the window become roots; the root of the largest tree is the main root and the
        others hang from it with ``parataxis``, as further sentence roots do in a parse.
        """
        if not 0 <= start < end <= len(self):
            raise InvalidInputError(f"window [{start}, {end}) is not inside a text of {len(self)} words")
        heads = [h - start if start <= h < end else i for i, h in enumerate(self.heads[start:end])]
        deps = list(self.deps[start:end])
        roots = [i for i, h in enumerate(heads) if h == i]
        size = dict.fromkeys(roots, 0)
        for i in range(len(heads)):
            r = i
            while heads[r] != r:
                r = heads[r]
            size[r] += 1
        main = max(roots, key=lambda r: (size[r], -r))
        for r in roots:
            if r != main:
                heads[r] = main
                if deps[r] != MARKUP_LABEL:
                    deps[r] = EXTRA_ROOT_LABEL
        deps[main] = ROOT
        return TextGraph(self.text, self.tokens[start:end], self.starts[start:end], self.pos[start:end],
                         self.tags[start:end], self.lemmas[start:end], heads, deps)

    @property
    def arcs(self) -> list[tuple[int, int, str]]:
        """``(head, dependent, label)`` for every word but the root(s)."""
        return [(h, d, label) for d, (h, label) in enumerate(zip(self.heads, self.deps)) if h != d]

    @property
    def roots(self) -> list[int]:
        """Words that are their own head (one for graphs made by :class:`TextParser`)."""
        return [i for i, h in enumerate(self.heads) if h == i]

    def char_span(self, start: int, end: int) -> tuple[int, int]:
        """Character offsets ``[start_char, end_char)`` in ``text`` of words ``start..end-1``."""
        if not 0 <= start < end <= len(self):
            raise InvalidInputError(f"word span [{start}, {end}) is not inside a text of {len(self)} words")
        return self.starts[start], self.starts[end - 1] + len(self.tokens[end - 1])

    def adjacency(self, self_loops: bool = False) -> np.ndarray:
        """Undirected adjacency ``[n, n]`` (bool) of the tree, optionally with self loops."""
        n = len(self)
        adj = np.zeros((n, n), dtype=bool)
        arcs = np.array([(h, d) for h, d, _ in self.arcs], dtype=np.int64).reshape(-1, 2)
        adj[arcs[:, 0], arcs[:, 1]] = True
        adj[arcs[:, 1], arcs[:, 0]] = True
        if self_loops:
            np.fill_diagonal(adj, True)
        return adj

    def _depths(self) -> list[int]:
        """Depth of each word below its root; raises InvalidInputError on a cycle."""
        depth = [-1] * len(self)
        for i in range(len(self)):
            path = []
            j = i
            while depth[j] < 0:
                if j in path:
                    raise InvalidInputError(f"TextGraph heads contain a cycle through token {j}")
                path.append(j)
                if self.heads[j] == j:
                    depth[j] = 0
                    path.pop()
                    break
                j = self.heads[j]
            for k in reversed(path):
                depth[k] = depth[self.heads[k]] + 1
        return depth

    def distance_matrix(self) -> np.ndarray:
        """Tree distance in arcs ``[n, n]`` (int64) between any two words; -1 between two
        trees of a forest (never for graphs made by :class:`TextParser`)."""
        n = len(self)
        children: list[list[int]] = [[] for _ in range(n)]
        for h, d, _ in self.arcs:
            children[h].append(d)
        # Euler tour: the subtree of node v is order[tin[v]:tout[v]].
        order: list[int] = []
        tin, tout = [0] * n, [0] * n
        for root in self.roots:
            stack = [(root, False)]
            while stack:
                v, done = stack.pop()
                if done:
                    tout[v] = len(order)
                    continue
                tin[v] = len(order)
                order.append(v)
                stack.append((v, True))
                stack.extend((c, False) for c in reversed(children[v]))
        # Rows in tour order: d(c, x) = d(parent, x) + 1, minus 2 for x inside c's subtree.
        tour_depth = np.asarray(self._depths(), dtype=np.int64)[np.asarray(order, dtype=np.int64)]
        dist = np.empty((n, n), dtype=np.int64)
        for p, v in enumerate(order):
            if self.heads[v] == v:
                dist[p] = -1
                dist[p, tin[v] : tout[v]] = tour_depth[tin[v] : tout[v]]
            else:
                row = dist[tin[self.heads[v]]].copy()
                row[row >= 0] += 1
                row[tin[v] : tout[v]] -= 2
                dist[p] = row
        perm = np.empty(n, dtype=np.int64)
        perm[np.asarray(order, dtype=np.int64)] = np.arange(n)
        return dist[perm][:, perm]

    def to_networkx(self) -> "nx.DiGraph":
        """Directed graph ``head -> dependent`` with edge attribute ``label``; nodes carry
        ``token``, ``pos``, ``tag``, ``lemma`` and ``start``; graph attribute ``text``."""
        import networkx as nx

        g = nx.DiGraph(text=self.text)
        for i in range(len(self)):
            g.add_node(i, token=self.tokens[i], pos=self.pos[i], tag=self.tags[i], lemma=self.lemmas[i], start=self.starts[i])
        g.add_edges_from((h, d, {"label": label}) for h, d, label in self.arcs)
        return g

    def to_pyg(self, self_loops: bool = False) -> "torch_geometric.data.Data":
        """A ``torch_geometric`` graph: ``x`` [n] UPOS ids into :data:`POS_TAGS`;
        ``edge_index`` [2, E] with every arc in both directions (then self loops, if asked);
        ``edge_type`` [E] ids into :data:`DEP_LABELS` (both directions share the arc's label,
        self loops ``self``, labels outside the vocabulary ``dep``); ``edge_dir`` [E]
        (0 head->dependent, 1 dependent->head, 2 self loop); ``num_nodes``; ``tokens``."""
        import torch
        from torch_geometric.data import Data

        n = len(self)
        arcs = self.arcs
        heads = [h for h, _, _ in arcs]
        dependents = [d for _, d, _ in arcs]
        fallback = DEP_LABEL_IDS[FALLBACK_LABEL]
        types = [DEP_LABEL_IDS.get(label, fallback) for _, _, label in arcs]
        src, dst = heads + dependents, dependents + heads
        edge_type, edge_dir = types + types, [0] * len(arcs) + [1] * len(arcs)
        if self_loops:
            src, dst = src + list(range(n)), dst + list(range(n))
            edge_type += [DEP_LABEL_IDS[SELF_LABEL]] * n
            edge_dir += [2] * n
        x = torch.tensor([POS_TAG_IDS.get(p, POS_TAG_IDS["X"]) for p in self.pos], dtype=torch.long)
        return Data(
            x=x,
            edge_index=torch.tensor([src, dst], dtype=torch.long).reshape(2, -1),
            edge_type=torch.tensor(edge_type, dtype=torch.long),
            edge_dir=torch.tensor(edge_dir, dtype=torch.long),
            num_nodes=n,
            tokens=list(self.tokens),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types; :meth:`from_dict` reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TextGraph":
        """The object :meth:`to_dict` wrote (missing optional keys take their defaults)."""
        try:
            return cls(**{name: d[name] for name in ("text", "tokens", "starts", "pos", "tags", "lemmas", "heads", "deps")})
        except KeyError as exc:
            raise InvalidInputError(f"TextGraph dict lacks the field {exc.args[0]!r}") from None


@dataclass
class _Prepared:
    """A text split into words, ready for the pipeline (words, offsets, markup kinds)."""

    text: str
    words: list[str]
    starts: list[int]
    kinds: list[str | None]
    core: list[int]  # indices of the words the model parses


class TextParser:
    """Parses texts into :class:`TextGraph` s with a spaCy pipeline (default: en_core_web_sm 3.8).

    >>> g = TextParser().parse("Obama visited Harvard")
    >>> g.deps
    ['nsubj', 'ROOT', 'dobj']
    """

    def __init__(self, model: str = DEFAULT_SPACY_MODEL, max_words: int = DEFAULT_MAX_WORDS):
        self.nlp = load_nlp(model)
        self.model = model
        self.max_words = max_words
        # Entities are not part of the graph; skipping NER halves the time per post.
        self._disable = [name for name in ("ner",) if name in self.nlp.pipe_names]

    def parse(self, text: str | Sequence[str]) -> TextGraph:
        """Parse raw text (``str``) or pre-tokenised words (a sequence of ``str``)."""
        return next(self.pipe([text], batch_size=1))

    def pipe(self, texts: Iterable[str | Sequence[str]], batch_size: int = 64) -> Iterator[TextGraph]:
        """Parse many texts with ``nlp.pipe``; yields one graph per input, in order, equal to
        what :meth:`parse` gives for it."""
        from spacy.tokens import Doc

        prepared: deque[_Prepared] = deque()

        def core_docs() -> Iterator[Doc]:
            for item in texts:
                prep = self._prepare(item)
                prepared.append(prep)
                words = [self._model_word(prep.words[i], prep.kinds[i]) for i in prep.core]
                spaces = [self._space_after(prep, i) for i in prep.core]
                yield Doc(self.nlp.vocab, words=words, spaces=spaces)

        for doc in self.nlp.pipe(core_docs(), batch_size=batch_size, disable=self._disable):
            yield self._assemble(prepared.popleft(), doc)

    # --- internals ----------------------------------------------------------------------
    def _prepare(self, item: str | Sequence[str]) -> _Prepared:
        if isinstance(item, str):
            text, words, starts = self._tokenise(item)
        else:
            text, words, starts = self._check_words(item)
        kinds: list[str | None] = [_markup_kind(w) for w in words]
        for i, w in enumerate(words):  # the retweet marker: "RT" before a mention
            if w == "RT" and i + 1 < len(words) and kinds[i + 1] == "mention":
                kinds[i] = "rt"
        return _Prepared(text, words, starts, kinds, self._core(words, kinds))

    def _tokenise(self, text: str) -> tuple[str, list[str], list[int]]:
        """Words and offsets of raw text: URLs, HTML entities and emoji match whole, a mention or
        hashtag as its sign and its name (the benchmarks' form), the rest by spaCy's tokenizer."""
        if not text.strip():
            raise InvalidInputError("text is empty or only whitespace")
        if len(text) > self.nlp.max_length:
            raise InvalidInputError(
                f"text has {len(text):,} characters, more than the {self.nlp.max_length:,} "
                f"spaCy pipeline {self.model!r} accepts (nlp.max_length)"
            )
        words: list[str] = []
        starts: list[int] = []

        # Control and format characters (but the joiners inside emoji and scripts) separate
        # words like spaces; replacing them one for one keeps the offsets.
        clean = _INVISIBLE_RE.sub(" ", text)

        def add_plain(begin: int, end: int) -> None:
            if begin < end and not clean[begin:end].isspace():
                for tok in self.nlp.tokenizer(clean[begin:end]):
                    if not tok.is_space:
                        words.append(tok.text)
                        starts.append(begin + tok.idx)

        last = 0
        for match in _PROTECTED_RE.finditer(clean):
            add_plain(last, match.start())
            if match.group("sign") is not None:  # "@Ryanair" -> "@", "Ryanair"
                words.extend((match.group()[0], match.group()[1:]))
                starts.extend((match.start(), match.start() + 1))
            else:
                words.append(match.group())
                starts.append(match.start())
            last = match.end()
        add_plain(last, len(text))
        if not words:
            raise InvalidInputError(f"text {text[:50]!r} contains no visible word")
        self._check_length(len(words))
        return text, words, starts

    def _check_words(self, words: Sequence[str]) -> tuple[str, list[str], list[int]]:
        """Validate pre-tokenised words; the text is the words joined by single spaces.

        A word made only of whitespace (the benchmarks hold U+00A0 as a word) is kept as a
        token outside the parse; whitespace inside a visible word is an error."""
        if isinstance(words, (bytes, bytearray)) or not isinstance(words, Sequence):
            raise InvalidInputError(f"expected a str or a sequence of str, got {type(words).__name__}")
        if len(words) == 0:
            raise InvalidInputError("the list of pre-tokenised words is empty")
        for i, w in enumerate(words):
            if not isinstance(w, str):
                raise InvalidInputError(f"pre-tokenised word {i} is a {type(w).__name__}, not a str")
            if not w:
                raise InvalidInputError(f"pre-tokenised word {i} is an empty string")
            if any(ch.isspace() for ch in w) and not w.isspace():
                raise InvalidInputError(f"pre-tokenised word {i} {w!r} contains whitespace")
        self._check_length(len(words))
        starts, offset = [], 0
        for w in words:
            starts.append(offset)
            offset += len(w) + 1
        return " ".join(words), list(words), starts

    def _check_length(self, n: int) -> None:
        if n > self.max_words:
            raise InvalidInputError(f"text has {n:,} words, more than max_words={self.max_words:,}")

    @staticmethod
    def _core(words: list[str], kinds: list[str | None]) -> list[int]:
        """Indices of the words the model parses: all but URLs, emoji, ``RT`` and the
        mentions/hashtags of the leading and trailing markup blocks."""
        n = len(words)
        skip = [k in _NEVER_PARSED for k in kinds]
        i = 0  # leading block: "RT @a @b: ...", "@a thanks"
        while i < n and kinds[i] is not None and kinds[i] != "hashtag":
            skip[i] = True
            i += 1
        j = n - 1  # trailing block: "... #tbt #fun 😍 http://..." (punctuation is parsed)
        while j >= i and (kinds[j] is not None or _is_punct(words[j])):
            if kinds[j] is not None:
                skip[j] = True
            j -= 1
        core = [k for k in range(n) if not skip[k]]
        if not any(kinds[k] is None and not _is_punct(words[k]) for k in core):
            # Markup and punctuation only (e.g. "@NASA #tbt!"): parse what a model can read.
            core = [k for k in range(n) if kinds[k] not in _NEVER_PARSED]
        return core

    @staticmethod
    def _model_word(word: str, kind: str | None) -> str:
        """What the model reads for a word: ``#NYC``/``@NASA`` as ``NYC``/``NASA``, ``&amp;`` as ``&``."""
        if kind in ("hashtag", "mention"):
            return word[1:]
        return html.unescape(word) if _ENTITY_RE.fullmatch(word) else word

    @staticmethod
    def _space_after(prep: _Prepared, i: int) -> bool:
        """Whether the model reads a space after word ``i`` (spaCy's tagger and parser see it): as
        in the text, but a lone sign ``@``/``#`` always has one, so that ``@Ryanair`` is read as
        the benchmarks' ``@ Ryanair`` and a raw post parses like its benchmark form."""
        if prep.words[i] in ("@", "#"):
            return True
        end = prep.starts[i] + len(prep.words[i])
        return end < len(prep.text) and prep.text[end].isspace()

    def _assemble(self, prep: _Prepared, doc) -> TextGraph:
        n = len(prep.words)
        pos = [_MARKUP_TAGS[k][0] if k else "X" for k in prep.kinds]
        tags = [_MARKUP_TAGS[k][1] if k else "XX" for k in prep.kinds]
        lemmas = list(prep.words)
        heads = list(range(n))
        deps = [MARKUP_LABEL] * n
        for tok, i in zip(doc, prep.core):
            heads[i] = prep.core[tok.head.i]
            deps[i] = ROOT if tok.head.i == tok.i else tok.dep_
            if prep.kinds[i] is None:
                pos[i], tags[i], lemmas[i] = tok.pos_ or "X", tok.tag_ or "XX", tok.lemma_ or tok.text
            elif prep.kinds[i] == "hashtag" and tok.pos_ in ("NOUN", "PROPN", "VERB", "ADJ", "NUM"):
                pos[i], tags[i] = tok.pos_, tok.tag_  # a hashtag used as a word ("I love #NYC")
            elif prep.kinds[i] == "mention" and tok.pos_ in ("PROPN", "NOUN", "PRON"):
                pos[i], tags[i] = tok.pos_, tok.tag_
        # The main root is the root of the largest tree; every other root and every word
        # outside the parse hangs from it.
        parsed_roots = [i for i in prep.core if heads[i] == i]
        if parsed_roots:
            size = {r: 0 for r in parsed_roots}
            for i in prep.core:
                r = i
                while heads[r] != r:
                    r = heads[r]
                size[r] += 1
            main = max(parsed_roots, key=lambda r: (size[r], -r))
        else:
            main = 0
        deps[main] = ROOT
        for i in range(n):
            if i == main:
                continue
            if heads[i] == i:
                heads[i] = main
                if deps[i] == ROOT:
                    deps[i] = MARKUP_LABEL if prep.kinds[i] else EXTRA_ROOT_LABEL
        return TextGraph(prep.text, prep.words, prep.starts, pos, tags, lemmas, heads, deps)


@lru_cache(maxsize=2)
def _default_parser(model: str) -> TextParser:
    return TextParser(model)


def parse_text(text: str | Sequence[str], model: str = DEFAULT_SPACY_MODEL) -> TextGraph:
    """Parse one text (raw ``str`` or pre-tokenised words) with a parser cached per model."""
    return _default_parser(model).parse(text)
