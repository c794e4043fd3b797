"""Scoring a model on gold posts exactly as the literature scores each task."""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import InvalidInputError
from ..metrics import entity_scores, jmere_scores, mre_scores
from ..types import Extraction, Post

#: command-line task names -> model task
TASK_ALIASES = {"mnre": "mnre", "jmere": "jmere", "twitter": "ner", "ner": "ner"}


def can_score(model_task: str, task: str | None) -> bool:
    """Whether a model of ``model_task`` can be scored on ``task`` data: its own task, or the
    entities of a joint (jmere) model on NER data."""
    return task == model_task or (task == "ner" and model_task == "jmere")


def score(task: str, gold: Sequence[Post], pred: Sequence[Extraction], none_label: str = "None") -> dict[str, Any]:
    """P/R/F1 (percent) of predictions for gold posts; ``accuracy`` for mnre, entity P/R/F1 for jmere."""
    task = TASK_ALIASES.get(task, task)
    if len(gold) != len(pred):
        raise InvalidInputError(f"{len(gold)} gold posts but {len(pred)} predictions")
    if task == "mnre":
        gold_labels, pred_labels = [], []
        for g, p in zip(gold, pred):
            if len(g.relations) != len(p.relations):
                raise InvalidInputError(f"post {g.id}: {len(g.relations)} given pairs but {len(p.relations)} labelled")
            gold_labels.extend(r.label for r in g.relations)
            pred_labels.extend(r.label for r in p.relations)
        return mre_scores(gold_labels, pred_labels, none_label)
    if task == "jmere":
        return jmere_scores(list(gold), list(pred))
    if task == "ner":
        return entity_scores([g.entities for g in gold], [p.entities for p in pred])
    raise InvalidInputError(f"unknown task {task!r}; choose from mnre, jmere, twitter")


def prediction_record(gold: Post, pred: Extraction) -> dict[str, Any]:
    """One line of ``--predictions``: tokens with gold and predicted entities and relations."""
    return {
        "id": gold.id,
        "tokens": pred.tokens,
        "gold": {"entities": [e.to_dict() for e in gold.entities], "relations": [r.to_dict() for r in gold.relations]},
        "pred": {"entities": [e.to_dict() for e in pred.entities], "relations": [r.to_dict() for r in pred.relations]},
    }


def evaluate(model: Any, posts: Sequence[Post], task: str | None = None, scene_graphs: Sequence[Any] | None = None,
             graphs: Sequence[Any] | None = None, batch_size: int = 32,
             relation_threshold: float | None = None) -> tuple[dict[str, Any], list[Extraction]]:
    """Predict ``posts`` with ``model`` and score them; returns (scores, predictions)."""
    task = TASK_ALIASES.get(task or model.config.task)
    if not can_score(model.config.task, task):
        raise InvalidInputError(f"the model was trained for task {model.config.task!r}, not {task!r}")
    preds = model.predict(posts, scene_graphs=scene_graphs, graphs=graphs, batch_size=batch_size,
                          relation_threshold=relation_threshold)
    return score(task, posts, preds, model.config.none_label), preds
