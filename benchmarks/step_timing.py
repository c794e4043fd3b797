"""The interleaved training-step timer that ``bench_fusion_step.py`` and ``bench_head_step.py`` share.

Every model trains on the same batches, one batch at a time for all models in turn (so a load
change on a shared machine slows them alike), after one warm-up batch; a step is collation,
forward, backward and an AdamW step, timed with the device synchronised.
"""

from __future__ import annotations

import time
import json
from pathlib import Path
from typing import Any, Sequence

import torch


def training_posts(config_path: str, batch_size: int | None, batches: int) -> tuple[dict[str, Any], int, torch.device, list]:
    """The config (a dict), the batch size (``batch_size``, or the config's), the device (the first
    GPU when torch sees one) and enough training posts of the config's data for ``batches`` batches
    plus the warm-up one (four times over, so that length batching has posts to choose from)."""
    from graphie.training.trainer import load_posts

    config = json.loads(Path(config_path).read_text())
    batch_size = batch_size or config.get("training", {}).get("batch_size", 16)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    root = Path(config_path).resolve().parent.parent
    posts = load_posts(config["data"], "train", root)[: batch_size * (batches + 1) * 4]
    return config, batch_size, device, posts


def time_steps(models: dict[str, Any], batches: Sequence[Sequence[Any]], device: torch.device,
               lr: float = 1e-5) -> tuple[dict[str, list[float]], dict[str, list[tuple[int, int]]]]:
    """Seconds of each model's training step on ``batches[1:]`` (``batches[0]`` warms up), and the
    encoder rows and sub-words of each of those batches: ``(times, sizes)`` keyed by model name."""
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=lr) for name, model in models.items()}
    sizes: dict[str, list[tuple[int, int]]] = {name: [] for name in models}

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step(name: str, chunk: Sequence[Any]) -> float:
        model, optimizer = models[name], optimizers[name]
        sync()
        t = time.perf_counter()
        batch = model.collator()(chunk).to(device)
        out = model(batch)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        sync()
        sizes[name].append((batch.encoded.input_ids.size(0), int(batch.encoded.attention_mask.sum())))
        return time.perf_counter() - t

    for name in models:
        step(name, batches[0])
    times: dict[str, list[float]] = {name: [] for name in models}
    for chunk in batches[1:]:
        for name in models:
            times[name].append(step(name, chunk))
    return times, {name: s[1:] for name, s in sizes.items()}

