"""The interleaved training-step timer that ``bench_fusion_step.py`` and ``bench_head_step.py`` share.

Every model trains on the same batches, one batch at a time for all models in turn (so a load
change on a shared machine slows them alike), after one warm-up batch; a step is collation,
forward, backward and an AdamW step, timed with the device synchronised.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch


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

