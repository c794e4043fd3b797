"""Precision as a setting: names and fallbacks of :mod:`graphie.models.precision`, prediction
under autocast through ``graphie.load(dtype=...)``, and ``--dtype`` on the command line."""

import ast
import json
import threading
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import graphie
from graphie.cli import main
from graphie.errors import InvalidInputError
from graphie.models import precision
from graphie.models.precision import autocast_dtype, autocast_forward, precision_name

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("value, name", [
    (None, "auto"), ("auto", "auto"), ("float32", "fp32"), ("fp32", "fp32"), (torch.float32, "fp32"),
    ("bfloat16", "bf16"), ("BF16", "bf16"), (torch.bfloat16, "bf16"),
    ("float16", "fp16"), ("fp16", "fp16"), (torch.float16, "fp16"),
])
def test_precision_names(value, name):
    assert precision_name(value) == name


@pytest.mark.parametrize("value", ["int8", "", "fp64", torch.float64, torch.int8, 16, True])
def test_unknown_precisions_are_typed_errors(value):
    with pytest.raises(InvalidInputError, match="dtype must be one of"):
        precision_name(value)


def test_auto_is_fp32_on_cpu_and_bf16_on_cuda(monkeypatch):
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: True)  # even a CPU with native bf16
    assert autocast_dtype("auto", "cpu") is None
    assert autocast_dtype(None, torch.device("cuda")) is torch.bfloat16
    assert autocast_dtype("auto", "cuda", amp=False) is None
    assert autocast_dtype("fp32", "cuda") is None
    assert autocast_dtype("fp16", "cuda") is torch.float16
    assert autocast_dtype("bf16", "cpu") is torch.bfloat16


def test_bf16_without_native_support_and_fp16_off_cuda_fall_back_to_fp32_with_a_warning(monkeypatch):
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: False)
    with pytest.warns(UserWarning, match="no native bf16"):
        assert autocast_dtype("bfloat16", "cpu") is None
    with pytest.warns(UserWarning, match="'fp16' needs CUDA"):
        assert autocast_dtype(torch.float16, "cpu") is None
    said = []
    assert autocast_dtype("bf16", "cpu", warn=said.append) is None  # the trainer logs instead
    assert len(said) == 1 and "running in fp32" in said[0]
    assert autocast_dtype("bf16", "cuda") is torch.bfloat16  # the CPU check is for CPUs only


class _Tiny(nn.Module):
    """A linear layer whose forward opens its own autocast, off, as GraphieModel.predict_batch does on CPU."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.fail = False

    def forward(self, x):
        if self.fail:
            raise ValueError("boom")
        return self.linear(x)


def _run(model, x):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=False):
        return model(x)


def test_autocast_forward_overrides_the_models_own_autocast_and_only_inside_the_block():
    model, x = _Tiny(), torch.randn(2, 4)
    assert _run(model, x).dtype == torch.float32
    with autocast_forward(model, torch.bfloat16):
        assert _run(model, x).dtype == torch.bfloat16
        with autocast_forward(model, None):  # blocks nest
            assert _run(model, x).dtype == torch.float32
        assert _run(model, x).dtype == torch.bfloat16
        other = []
        worker = threading.Thread(target=lambda: other.append(_run(model, x).dtype))
        worker.start()
        worker.join()
        assert other == [torch.float32]  # another thread is not inside the block
        model.fail = True
        with pytest.raises(ValueError):
            model(x)
        assert not torch.is_autocast_enabled("cpu")  # a failed forward closed its autocast
        model.fail = False
    assert _run(model, x).dtype == torch.float32
    assert model(x).dtype == torch.float32 and not torch.is_autocast_enabled("cpu")


def _linear_output_dtypes(extractor):
    """Record the dtype of every Linear output of the model's encoder while ``extractor`` predicts."""
    seen = []
    handles = [m.register_forward_hook(lambda _m, _a, out: seen.append(out.dtype))
               for m in extractor.model.encoder.modules() if isinstance(m, nn.Linear)]
    try:
        result = extractor.extract("Alice met Bob in Paris .")
    finally:
        for h in handles:
            h.remove()
    return set(seen), result


def test_load_with_dtype_predicts_under_autocast(model_dir, monkeypatch):
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: True)
    fp32 = graphie.load(model_dir, detector="caption")
    bf16 = graphie.load(model_dir, detector="caption", dtype="bfloat16")
    assert fp32.dtype == torch.float32 and bf16.dtype == torch.bfloat16
    dtypes, a = _linear_output_dtypes(bf16)
    assert dtypes == {torch.bfloat16}
    dtypes, b = _linear_output_dtypes(fp32)
    assert dtypes == {torch.float32}
    assert a.tokens == b.tokens
    assert graphie.Extractor.from_pretrained(model_dir, dtype=torch.bfloat16, detector="caption").dtype == torch.bfloat16
    with pytest.raises(InvalidInputError, match="quantize=True"):
        graphie.load(model_dir, dtype="bf16", quantize=True)


def test_load_with_bf16_on_a_cpu_without_it_warns_and_runs_fp32(model_dir, monkeypatch):
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: False)
    with pytest.warns(UserWarning, match="no native bf16"):
        extractor = graphie.load(model_dir, detector="caption", dtype="bf16")
    assert extractor.dtype == torch.float32
    assert _linear_output_dtypes(extractor)[0] == {torch.float32}
    with pytest.raises(InvalidInputError, match="dtype must be one of"):
        graphie.load(model_dir, dtype="int8")


def test_extract_command_takes_dtype(model_dir, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # bf16 may fall back to fp32 on this CPU
        code = main(["extract", "--model", str(model_dir), "--detector", "caption", "--dtype", "bf16",
                     "--text", "Alice met Bob in Paris .", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["text"] == "Alice met Bob in Paris ."
    with pytest.raises(SystemExit):
        main(["extract", "--model", str(model_dir), "--dtype", "int8", "--text", "x"])


def test_evaluate_command_predicts_in_the_given_dtype(model_dir, tmp_path, monkeypatch, capsys):
    from test_training import fixture_lines

    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: True)
    data = tmp_path / "mini.txt"
    data.write_text("\n".join(repr(d) for d in fixture_lines()[:6]) + "\n", encoding="utf-8")
    seen = []
    monkeypatch.setattr(nn.Linear, "forward", _recording(nn.Linear.forward, seen))
    for dtype, expected in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        seen.clear()
        assert main(["evaluate", str(model_dir), "--task", "jmere", "--data", str(data), "--dtype", dtype]) == 0
        assert "f1" in json.loads(capsys.readouterr().out)
        assert set(seen) == {expected}, dtype


def _recording(forward, seen):
    def wrapped(self, x):
        out = forward(self, x)
        seen.append(out.dtype)
        return out
    return wrapped


def test_api_and_precision_do_not_import_training():
    """Layers point down: the front door and the precision module need nothing of graphie.training."""
    for path in (ROOT / "graphie" / "api.py", ROOT / "graphie" / "models" / "precision.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert "training" not in (node.module or ""), f"{path.name} imports {node.module}"
            elif isinstance(node, ast.Import):
                assert not any("training" in a.name for a in node.names), path.name
