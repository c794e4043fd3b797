"""GPU by default: ``device=None`` is the first CUDA GPU when torch sees one, else the CPU, for
graphie.load / extract, extract-file, evaluate (``--device``) and train. The selection logic on
this CPU machine, with torch's view of CUDA set both ways; the CUDA path itself runs on a GPU."""

from __future__ import annotations

import pytest
import torch

import graphie
from graphie.api import select_device
from graphie.cli import build_parser


def test_none_is_cuda_when_torch_sees_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device(None) == torch.device("cuda")
    assert select_device() == torch.device("cuda")


def test_none_is_the_cpu_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device(None) == torch.device("cpu")


def test_an_explicit_device_is_kept_and_checked(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("cpu") == torch.device("cpu")  # asked for the CPU: the GPU is not taken
    assert select_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(graphie.InvalidInputError, match="no CUDA GPU"):
        select_device("cuda")
    with pytest.raises(graphie.InvalidInputError, match="unknown device"):
        select_device("gpu0")


def test_precision_follows_the_device():
    from graphie.models.precision import autocast_dtype

    assert autocast_dtype(None, select_device("cpu")) is None  # fp32 on the CPU
    assert autocast_dtype(None, torch.device("cuda")) == torch.bfloat16  # auto: bf16 on CUDA


def test_load_without_a_device_uses_the_selection():
    extractor = graphie.load("default")
    assert extractor.model.device == select_device(None)
    assert extractor.dtype == (torch.bfloat16 if extractor.model.device.type == "cuda" else torch.float32)


@pytest.mark.parametrize("command", [["extract", "--text", "x"], ["extract-file", "in.jsonl", "--output", "o.jsonl"],
                                     ["evaluate", "default", "--task", "jmere", "--data", "d.txt"]])
def test_cli_commands_default_to_the_selection(command):
    args = build_parser().parse_args(command)
    assert args.device is None  # None: select_device picks cuda when available
    assert build_parser().parse_args(command + ["--device", "cpu"]).device == "cpu"

