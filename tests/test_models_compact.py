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


def test_lora_model_ships_adapters_and_heads_only_and_reloads(tmp_path):
    torch.manual_seed(0)
    config = ModelConfig(task="ner", head="bio", entity_types=["PER"], gnn_layers=0, lora_rank=4)
    model = GraphieModel(config)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or not n.startswith("encoder.") for n in trainable)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.add_(0.01)  # as if trained: the adapters moved, the base weights did not
    model.save_pretrained(tmp_path / "lora", compact=True)
    assert (tmp_path / "lora" / "model.safetensors").stat().st_size < 2_000_000  # MiniLM alone is 45 MB in fp16

    reloaded = GraphieModel.from_pretrained(tmp_path / "lora")
    assert reloaded.config.lora_rank == 4
    original = model.state_dict()
    for name, value in reloaded.state_dict().items():
        torch.testing.assert_close(value, original[name], atol=2e-3, rtol=1e-3)
