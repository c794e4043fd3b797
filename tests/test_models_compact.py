"""Compact saving: the shipped default model stores only what differs from the packaged encoder."""

from __future__ import annotations

import torch

from graphie.models import GraphieModel, ModelConfig


def test_compact_save_keeps_only_changed_weights_and_reloads(tmp_path):
    torch.manual_seed(0)
    config = ModelConfig(task="jmere", entity_types=["PER"], relation_labels=["couple"], pair_channels=["pos"])
    model = GraphieModel(config)
    top = model.encoder.model.encoder.layer[-1].output.dense
    with torch.no_grad():
        top.weight.add_(0.01)  # as if fine-tuned: the top layer changed, the rest is packaged
    model.save_pretrained(tmp_path / "full")
    model.save_pretrained(tmp_path / "compact", compact=True)
    full = (tmp_path / "full" / "model.safetensors").stat().st_size
    compact = (tmp_path / "compact" / "model.safetensors").stat().st_size
    assert compact < full / 4

    reloaded = GraphieModel.from_pretrained(tmp_path / "compact")
    original = model.state_dict()
    for name, value in reloaded.state_dict().items():
        torch.testing.assert_close(value, original[name], atol=2e-3, rtol=1e-3)
