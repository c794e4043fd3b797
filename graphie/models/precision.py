"""Numeric precision of training and prediction: which dtype ``torch.autocast`` runs in.

One vocabulary for both: ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"auto"`` (``training.precision``
in a config; ``dtype=`` of :func:`graphie.load`, where the long names ``"float32"``,
``"bfloat16"``, ``"float16"`` and torch dtypes are accepted as well). Weights stay float32;
autocast runs the matrix products in the lower precision.

``"auto"`` is bf16 on CUDA and fp32 everywhere else. A precision the device cannot run fast
falls back to fp32 with a warning: bf16 on a CPU without native bf16 (AVX512-BF16 or AMX), where
autocast emulates it and a MiniLM training step measured 3x slower than fp32; fp16 off CUDA.

This module sits below ``graphie.training`` and :mod:`graphie.api`, which both use it.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from ..errors import InvalidInputError

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_ALIASES = {"auto": "auto", "fp32": "fp32", "float32": "fp32", "float": "fp32",
            "bf16": "bf16", "bfloat16": "bf16", "fp16": "fp16", "float16": "fp16", "half": "fp16"}
_BY_DTYPE = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def precision_name(value: Any) -> str:
    """The canonical name (``"auto"``, ``"fp32"``, ``"bf16"``, ``"fp16"``) of a precision given as
    a name (``"bfloat16"``, ``"BF16"``, ...), a torch dtype, or ``None`` (``"auto"``).

    Raises:
        InvalidInputError: any other value, e.g. ``"int8"`` or ``torch.float64``.
    """
    if value is None:
        return "auto"
    if isinstance(value, torch.dtype):
        if value in _BY_DTYPE:
            return _BY_DTYPE[value]
    elif isinstance(value, str) and value.strip().lower() in _ALIASES:
        return _ALIASES[value.strip().lower()]
    raise InvalidInputError(f"dtype must be one of float32/fp32, bfloat16/bf16, float16/fp16, auto, "
                            f"a torch dtype of these, or None (auto); got {value!r}")


def dtype_name(dtype: torch.dtype | None) -> str:
    """``"fp32"``, ``"bf16"`` or ``"fp16"`` for an autocast dtype from :func:`autocast_dtype` (``None``: fp32)."""
    return "fp32" if dtype is None else _BY_DTYPE[dtype]


def autocast_dtype(precision: Any, device: torch.device | str, amp: bool = True,
                   warn: Callable[[str], None] | None = None) -> torch.dtype | None:
    """The dtype ``torch.autocast`` runs in for ``precision`` on ``device``; ``None`` is fp32 (no autocast).

    Args:
        precision: a name or dtype accepted by :func:`precision_name` (``None``: ``"auto"``).
        device: where the model runs.
        amp: with ``False``, ``"auto"`` is fp32 on CUDA too (``training.amp``).
        warn: called with a one-line reason when the precision falls back to fp32; default
            :func:`warnings.warn` (a ``UserWarning``).

    ``"auto"`` is bf16 on CUDA, what
    :meth:`~graphie.models.model.GraphieModel.predict_batch` and CUDA training have always used
    (fp32's exponent range, so no loss scaling; tensor-core matrix products), and fp32 on every
    CPU, native bf16 or not (ask for ``"bf16"`` there explicitly). ``"bf16"`` on a CPU without
    native bf16 and ``"fp16"`` off CUDA fall back to fp32.
    """
    name = precision_name(precision)
    device = torch.device(device)
    reason = None
    if name == "auto":
        return torch.bfloat16 if amp and device.type == "cuda" else None
    if name == "fp32":
        return None
    if name == "fp16" and device.type != "cuda":
        reason = f"precision 'fp16' needs CUDA; running in fp32 on {device.type}"
    elif name == "bf16" and device.type == "cpu" and not cpu_supports_bf16():
        reason = ("precision 'bf16': this CPU has no native bf16 (AVX512-BF16 or AMX), where bf16 autocast "
                  "is slower than fp32; running in fp32")
    if reason is not None:
        (warn or (lambda message: warnings.warn(message, UserWarning, stacklevel=3)))(reason)
        return None
    return torch.float16 if name == "fp16" else torch.bfloat16


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), so that bf16 autocast is faster than fp32."""
    try:
        return bool(torch.backends.cpu.get_cpu_capability() in ("AVX512_BF16", "AMX")) or _cpu_flag("avx512_bf16")
    except Exception:  # noqa: BLE001 - a platform without the query: be conservative
        return False


def _cpu_flag(flag: str) -> bool:
    try:
        return flag in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="ignore").split()
    except OSError:
        return False


# ---------------------------------------------------------------- autocast around a model's forward
_UNSET = object()
_local = threading.local()  # .dtypes: {id(model): dtype or None}; .entered: autocasts opened by the pre-hook
_hooked: "weakref.WeakSet[nn.Module]" = weakref.WeakSet()
_hook_lock = threading.Lock()


@contextmanager
def autocast_forward(model: nn.Module, dtype: torch.dtype | None) -> Iterator[None]:
    """Run every forward of ``model`` inside this block (on this thread) under ``torch.autocast``
    in ``dtype``; ``None``: fp32, autocast off.

    The autocast is opened inside the model's ``__call__`` (a forward pre-hook and an
    always-called forward hook), so it overrides an autocast that the model's own code opens
    around its forward: :meth:`~graphie.models.model.GraphieModel.predict_batch` turns bf16 on
    for CUDA and autocast off elsewhere, which an autocast around ``predict`` could not change.
    Blocks nest, and other threads are unaffected; the hooks stay on the model and do nothing
    outside a block.
    """
    _install_hooks(model)
    table = _dtypes()
    key = id(model)
    previous = table.get(key, _UNSET)
    table[key] = dtype
    try:
        yield
    finally:
        if previous is _UNSET:
            del table[key]
        else:
            table[key] = previous


def _dtypes() -> dict[int, torch.dtype | None]:
    if not hasattr(_local, "dtypes"):
        _local.dtypes, _local.entered = {}, []
    return _local.dtypes


def _install_hooks(model: nn.Module) -> None:
    with _hook_lock:
        if model not in _hooked:
            model.register_forward_pre_hook(_enter_autocast)
            model.register_forward_hook(_exit_autocast, always_call=True)
            _hooked.add(model)


def _device_type(model: nn.Module) -> str:
    device = getattr(model, "device", None)
    if isinstance(device, torch.device):
        return device.type
    return next(model.parameters()).device.type


def _enter_autocast(model: nn.Module, args: Any) -> None:
    dtype = _dtypes().get(id(model), _UNSET)
    ctx = None
    if dtype is not _UNSET:
        ctx = torch.autocast(_device_type(model), dtype=dtype or torch.bfloat16, enabled=dtype is not None)
        ctx.__enter__()
    _local.entered.append(ctx)  # one entry per forward (None outside a block): the exit hook pops its own


def _exit_autocast(model: nn.Module, args: Any, output: Any) -> None:
    entered = getattr(_local, "entered", None)
    ctx = entered.pop() if entered else None
    if ctx is not None:
        ctx.__exit__(None, None, None)
