"""A seeded synthetic multimodal benchmark whose relation labels only the scene graph decides.

Each post names two people and a team in a sentence that says nothing about their roles
("Maya Ortiz and Leo at the Falcons game tonight"). Each person's relation to the team
(``member_of``, ``fan_of``, ``coach_of``, ``reporter_for``) is drawn uniformly and independently,
and shows only in the image's scene graph, written in the default image parser's vocabulary:
the person node (label ``person``, OCR text = the name on their badge or shirt, so alignment has
something to match, and an ImageNet crop tag of their role such as "ballplayer" or "microphone")
is holding, wearing or carrying two COCO objects of their role (a sports ball and a baseball bat,
an umbrella and a backpack, a tie and a book, a cell phone and a laptop), next to distractor
objects any role may have; the two people stand beside each other, the team's name is an OCR
text line. A text-only model can find the entities but must guess the relations (chance: 1 in
4); a model that aligns each name with its person node and reads that node can get them all.

    from graphie.synthetic import make_synthetic, write_synthetic
    samples = make_synthetic(1000, seed=0)  # [(Post, SceneGraph), ...]
    write_synthetic("runs/synthetic", train=1000, valid=300, seed=0)
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from parsers.scene import IMAGE_LABEL, SceneEdge, SceneGraph, SceneObject

from .errors import InvalidInputError
from .types import Entity, Post, Relation, Span

# role -> (COCO objects the person holds, wears or carries, with the image parser's predicate);
# two of them appear per person
ROLES: dict[str, list[tuple[str, str]]] = {
    "member_of": [("sports ball", "holding"), ("baseball bat", "holding"), ("baseball glove", "holding")],
    "fan_of": [("umbrella", "holding"), ("backpack", "wearing"), ("bottle", "holding")],
    "coach_of": [("tie", "wearing"), ("book", "holding"), ("suitcase", "carrying")],
    "reporter_for": [("cell phone", "holding"), ("laptop", "holding"), ("handbag", "carrying")],
}
RELATIONS: tuple[str, ...] = tuple(ROLES)
"""The relation labels of the synthetic benchmark: one per role a person can have in the picture."""
#: role -> ImageNet classes (readable names) a crop of the person is tagged with; one per person
ROLE_TAGS: dict[str, tuple[str, ...]] = {
    "member_of": ("ballplayer", "football helmet"),
    "fan_of": ("jersey", "sweatshirt"),
    "coach_of": ("whistle", "suit"),
    "reporter_for": ("microphone", "reflex camera"),
}
DISTRACTORS: list[tuple[str, str]] = [("cup", "holding"), ("wine glass", "holding"), ("hot dog", "holding"),
                                      ("frisbee", "holding")]
FIRST_NAMES = ["Maya", "Leo", "Ava", "Noah", "Zoe", "Omar", "Lena", "Ivan", "Nina", "Raj", "Sara", "Tom", "Yuki",
               "Ben", "Lucia", "Amir", "Chloe", "Diego", "Emma", "Felix", "Grace", "Hugo", "Iris", "Jonas", "Kira",
               "Liam", "Mila", "Nico", "Olga", "Pablo", "Rosa", "Sven", "Tara", "Uma", "Victor", "Wen", "Ximena",
               "Yara", "Zane", "Aisha"]
LAST_NAMES = ["Ortiz", "Chen", "Novak", "Haddad", "Kowalski", "Silva", "Okafor", "Berg", "Moreau", "Tanaka",
              "Rossi", "Nguyen", "Fischer", "Patel", "Larsen"]
TEAMS = ["Falcons", "Rovers", "Tigers", "Comets", "Wolves", "Harbor City", "Red Foxes", "Northside", "Titans",
         "Lakeshore", "Mariners", "Blue Owls"]
TEMPLATES = [
    "{a} and {b} at the {t} game tonight",
    "{a} with {b} after the {t} match",
    "Spotted {a} and {b} at the {t} stadium",
    "{a} , {b} and the {t} , what a night",
    "Great afternoon with {a} and {b} , go {t}",
    "{t} weekend : {a} and {b} were there",
    "Look who showed up for {t} : {a} and {b}",
    "{a} and {b} before kickoff , {t} home opener",
]
WIDTH, HEIGHT = 640, 480


def _name(rng: random.Random, taken: set[str]) -> list[str]:
    while True:
        first = rng.choice(FIRST_NAMES)
        words = [first, rng.choice(LAST_NAMES)] if rng.random() < 0.3 else [first]
        if first not in taken:
            taken.add(first)
            return words


def _fill(template: str, slots: dict[str, list[str]]) -> tuple[list[str], dict[str, tuple[int, int]]]:
    tokens: list[str] = []
    spans: dict[str, tuple[int, int]] = {}
    for piece in template.split():
        if piece.startswith("{") and piece.endswith("}"):
            key = piece[1:-1]
            spans[key] = (len(tokens), len(tokens) + len(slots[key]))
            tokens.extend(slots[key])
        else:
            tokens.append(piece)
    return tokens, spans


def _scene(rng: random.Random, people: list[tuple[str, str]], team: str, image_id: str) -> SceneGraph:
    """Whole image, one person node per person (randomly placed, tagged with their role), two
    role objects each, 0-2 distractors and the team's name as a text line; predicates
    person --holding/wearing/carrying--> object and the two people beside each other."""
    objects = [SceneObject(IMAGE_LABEL, 1.0, (0.0, 0.0, float(WIDTH), float(HEIGHT)), source="synthetic")]
    edges: list[SceneEdge] = []
    order = list(range(len(people)))
    rng.shuffle(order)  # image order carries no information about text order
    slot_w = WIDTH / len(people)
    person_nodes: dict[int, int] = {}
    for slot, k in enumerate(order):
        name, role = people[k]
        x0 = slot * slot_w + rng.uniform(10, 40)
        box = (x0, rng.uniform(60, 120), x0 + slot_w * 0.6, float(HEIGHT - rng.uniform(5, 30)))
        person_nodes[k] = len(objects)
        tags = {rng.choice(ROLE_TAGS[role]): round(rng.uniform(0.3, 0.8), 3)}
        objects.append(SceneObject("person", round(rng.uniform(0.8, 0.99), 3), box, "synthetic", text=name, tags=tags))
    for k, (name, role) in enumerate(people):
        p = person_nodes[k]
        px0, py0, px1, py1 = objects[p].box
        for label, predicate in rng.sample(ROLES[role], 2):
            w, h = rng.uniform(30, 80), rng.uniform(30, 80)
            x0, y0 = rng.uniform(px0, max(px0, px1 - w)), rng.uniform(py0, max(py0, py1 - h))
            edges.append(SceneEdge(p, predicate, len(objects)))
            objects.append(SceneObject(label, round(rng.uniform(0.5, 0.95), 3), (x0, y0, x0 + w, y0 + h), "synthetic"))
    for _ in range(rng.randint(0, 2)):
        label, predicate = rng.choice(DISTRACTORS)
        p = rng.choice(list(person_nodes.values()))
        px0, py0, px1, py1 = objects[p].box
        edges.append(SceneEdge(p, predicate, len(objects)))
        objects.append(SceneObject(label, round(rng.uniform(0.5, 0.95), 3), (px0 + 5, py0 + 5, px0 + 45, py0 + 45),
                                   "synthetic"))
    objects.append(SceneObject("text", round(rng.uniform(0.6, 0.9), 3), (250.0, 10.0, 390.0, 50.0), "synthetic",
                               text=team))
    left, right = person_nodes[order[0]], person_nodes[order[-1]]
    edges += [SceneEdge(left, "beside", right), SceneEdge(right, "beside", left)]
    return SceneGraph(objects, edges, WIDTH, HEIGHT, image_id)


def make_synthetic(n: int, seed: int = 0, prefix: str = "syn") -> list[tuple[Post, SceneGraph]]:
    """``n`` (post, scene graph) pairs, the same for the same ``seed``.

    Each post has gold entities (two ``PER``, one ``ORG``) and two relations ``person → team``
    whose labels (:data:`RELATIONS`) are decided only by the scene graph.
    """
    if n < 0:
        raise InvalidInputError(f"make_synthetic needs n >= 0, got {n}")
    rng = random.Random(seed)
    samples = []
    for i in range(n):
        taken: set[str] = set()
        a, b = _name(rng, taken), _name(rng, taken)
        team = rng.choice(TEAMS).split()
        tokens, spans = _fill(rng.choice(TEMPLATES), {"a": a, "b": b, "t": team})
        post = Post(tokens=tokens, id=f"{prefix}-{seed}-{i}", image=f"{prefix}_{seed}_{i}.jpg")
        ents = {k: Entity(Span(s, e, " ".join(tokens[s:e])), "ORG" if k == "t" else "PER")
                for k, (s, e) in spans.items()}
        post.entities = [ents[k] for k in sorted(ents, key=lambda k: spans[k][0])]
        roles = [rng.choice(RELATIONS), rng.choice(RELATIONS)]
        post.relations = [Relation(ents["a"], ents["t"], roles[0]), Relation(ents["b"], ents["t"], roles[1])]
        graph = _scene(rng, [(" ".join(a), roles[0]), (" ".join(b), roles[1])], " ".join(team), post.image)
        samples.append((post, graph))
    return samples


def write_synthetic(folder: str | os.PathLike, train: int = 1000, valid: int = 300, seed: int = 0) -> dict[str, Any]:
    """Write ``train.json`` / ``valid.json`` (JMERE, EEGA's format), ``posts_{split}.jsonl``
    (graphie posts) and ``scene_graphs.json`` (image file name → scene graph, graphie's JSON)
    into ``folder``; returns the counts. Splits use different seeds, so they share no sample."""
    from .datasets import write_jmere

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    graphs: dict[str, Any] = {}
    counts: dict[str, Any] = {}
    for split, size, split_seed in (("train", train, seed), ("valid", valid, seed + 1_000_003)):
        samples = make_synthetic(size, split_seed, prefix=f"syn{split}")
        posts = [p for p, _ in samples]
        write_jmere(posts, out / f"{split}.json")
        with open(out / f"posts_{split}.jsonl", "w", encoding="utf-8") as f:
            for p in posts:
                f.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
        graphs.update({g.image_id: g.to_dict() for _, g in samples})
        counts[split] = {"posts": size, "relations": sum(len(p.relations) for p in posts)}
    (out / "scene_graphs.json").write_text(json.dumps(graphs, ensure_ascii=False), encoding="utf-8")
    counts["scene_graphs"] = len(graphs)
    return counts
