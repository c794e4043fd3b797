"""``caption``: a caption string → scene graph, with spaCy. Noun phrases become objects
(no box), and the verbs and prepositions linking them become predicates:

    "a man holding a dog on the beach"
    → image, man, dog, beach;  man -hold-> dog,  man -on-> beach   (edges between phrases)

Predicates are lemmatised verbs (``hold``), verb + preposition (``sit on``), or bare
prepositions (``on``); compound prepositions (``in front of``, ``next to``) are kept whole.
Every phrase is also linked to the whole-image node (``image contains o``, ``o inside image``).
"""

from __future__ import annotations

import os
from typing import Iterable

from PIL import Image

from ...errors import DatasetFormatError, InvalidInputError
from ...registry import detectors
from ...scene import IMAGE_LABEL, SceneEdge, SceneGraph, SceneObject

SUBJECT_DEPS = {"nsubj", "nsubjpass", "csubj", "expl"}
OBJECT_DEPS = {"dobj", "obj", "attr", "oprd", "dative"}
# Nouns that head a compound preposition: "in front of", "on top of", "at the side of".
RELATIONAL_NOUNS = {"front", "top", "side", "middle", "back", "bottom", "edge", "center", "centre", "behalf"}
DROP_FROM_LABEL = {"DET", "PRON", "PUNCT"}


def _phrase_label(span) -> str:
    words = [t.text.lower() for t in span if t.pos_ not in DROP_FROM_LABEL]
    return " ".join(words) or span.text.lower()


def _with_conjuncts(token) -> list:
    """``token`` and the nouns coordinated with it ("the bears and the packers")."""
    return [token, *[c for c in token.conjuncts if c.pos_ in ("NOUN", "PROPN", "PRON", "NUM")]]


def caption_scene_graph(caption: str, max_objects: int = 10, nlp=None, image_id: str | None = None) -> SceneGraph:
    """Scene graph of a caption: whole-image node (no box), noun phrases in order of
    mention (score 1.0, ``source="caption"``), and predicate edges between them."""
    if not isinstance(caption, str):
        raise InvalidInputError(f"caption must be a string, got {type(caption).__name__}")
    if nlp is None:
        from ...nlp import load_nlp

        nlp = load_nlp()
    doc = nlp(" ".join(caption.split()))
    objects = [SceneObject(IMAGE_LABEL, 1.0, None, source="image")]
    node_of: dict[int, int] = {}  # token index → object index, for every token of a phrase
    for chunk in doc.noun_chunks:
        if chunk.root.pos_ == "PRON" and chunk.root.lower_ in ("it", "this", "that", "there"):
            continue
        if chunk.root.lemma_ in RELATIONAL_NOUNS and any(c.dep_ == "prep" for c in chunk.root.children):
            continue  # "front" in "in front of X" is part of the predicate
        objects.append(SceneObject(_phrase_label(chunk), 1.0, None, source="caption"))
        for t in chunk:
            node_of[t.i] = len(objects) - 1

    triples: list[tuple[int, str, int]] = []

    def link(heads: Iterable, predicate: str, tails: Iterable) -> None:
        for h in heads:
            for t in tails:
                a, b = node_of.get(h.i), node_of.get(t.i)
                if a is not None and b is not None and a != b:
                    triples.append((a, predicate, b))

    def preposition_targets(prep) -> tuple[str, list]:
        """(preposition text, its object tokens), joining compound prepositions."""
        words, objs = [prep.lower_], [c for c in prep.children if c.dep_ == "pobj"]
        if prep.lower_ == "next" or prep.lower_ == "close":  # "next to X": next -prep-> to -pobj-> X
            for c in prep.children:
                if c.dep_ == "prep":
                    return f"{prep.lower_} {c.lower_}", [p for p in c.children if p.dep_ == "pobj"]
        for obj in list(objs):
            if obj.lemma_ in RELATIONAL_NOUNS:
                for c in obj.children:
                    if c.dep_ == "prep":
                        words += [obj.lower_, c.lower_]
                        objs = [p for p in c.children if p.dep_ == "pobj"]
        return " ".join(words), [x for o in objs for x in _with_conjuncts(o)]

    for token in doc:
        if token.pos_ in ("VERB", "AUX") and token.dep_ not in ("aux", "auxpass"):
            if token.dep_ in ("acl", "relcl") and token.head.i in node_of:
                subjects = _with_conjuncts(token.head)  # "a man holding a dog"
            else:
                subjects = [x for c in token.children if c.dep_ in SUBJECT_DEPS for x in _with_conjuncts(c)]
                if not subjects and token.dep_ == "conj" and token.head.pos_ in ("VERB", "AUX"):
                    subjects = [x for c in token.head.children if c.dep_ in SUBJECT_DEPS for x in _with_conjuncts(c)]
            verb = token.lemma_.lower()
            if verb == "be":  # "a dog is on the beach" → on
                verb = ""
            for c in token.children:
                if c.dep_ in OBJECT_DEPS:
                    link(subjects, verb or "be", _with_conjuncts(c))
                elif c.dep_ in ("prep", "agent") or (c.dep_ == "advmod" and c.lower_ in ("next", "close")):
                    prep, targets = preposition_targets(c)
                    link(subjects, f"{verb} {prep}".strip(), targets)
        elif token.dep_ == "prep" and token.head.i in node_of:  # "a man on a beach", "a cup of tea"
            prep, targets = preposition_targets(token)
            link(_with_conjuncts(token.head), prep, targets)
        elif token.dep_ == "conj" and token.i in node_of and token.head.i in node_of and token.pos_ != "VERB":
            link([token.head], "and", [token])

    seen: set[tuple[int, str, int]] = set()
    edges = []
    for triple in triples:
        if triple not in seen:
            seen.add(triple)
            edges.append(SceneEdge(*triple))
    for i in range(1, len(objects)):
        edges += [SceneEdge(0, "contains", i), SceneEdge(i, "inside", 0)]
    return SceneGraph(objects, edges, None, None, image_id).top(max_objects)


def read_captions(path: str | os.PathLike) -> dict[str, str]:
    """``{image file name: caption}`` from lines ``108911.jpg :the caption`` (the BLIP-2
    caption files of the Twitter benchmarks) or ``name<TAB>caption``."""
    captions: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if "\t" in line:
                name, text = line.split("\t", 1)
            elif " :" in line:
                name, text = line.split(" :", 1)
            else:
                raise DatasetFormatError(path, line_no, "expected 'IMAGE :caption' or 'IMAGE<TAB>caption'")
            captions[name.strip()] = text.strip()
    return captions


@detectors.register("caption")
class CaptionDetector:
    """Caption scene graphs looked up by image file name, from a captions file or dict;
    ``parse_image("108911.jpg", detector="caption", captions=".../blip2_captions.txt")``."""

    name = "caption"

    def __init__(self, captions: str | os.PathLike | dict[str, str] | None = None, nlp: str | None = None):
        self.source = captions if isinstance(captions, (str, os.PathLike)) else None
        self.captions = read_captions(captions) if self.source is not None else dict(captions or {})
        self.nlp_name = nlp

    def settings(self) -> dict:
        return {"captions": os.fspath(self.source) if self.source else len(self.captions), "nlp": self.nlp_name}

    def _nlp(self):
        from ...nlp import DEFAULT_SPACY_MODEL, load_nlp

        return load_nlp(self.nlp_name or DEFAULT_SPACY_MODEL)

    def graph_for(self, image_id: str) -> SceneGraph | None:
        caption = self.captions.get(image_id)
        if caption is None:
            return None
        return caption_scene_graph(caption, max_objects=10**6, nlp=self._nlp(), image_id=image_id)

    def detect(self, image: Image.Image) -> list[SceneObject]:
        name = os.path.basename(getattr(image, "filename", "") or "")
        graph = self.graph_for(name) if name else None
        if graph is None:
            raise InvalidInputError(f"no caption for image {name or '<unnamed>'!r}")
        return graph.objects[1:]
