"""Batched, masked entropic optimal transport in plain torch (CPU and GPU alike).

Every function takes a batch of problems padded to a common size, with boolean masks saying
which rows (source nodes) and columns (target nodes) are real. Marginals are uniform over the
real nodes; padded rows and columns get exactly zero mass. Iterations run in the log domain, so a
small ``epsilon`` does not underflow, and padded entries use a large finite negative instead of
``-inf`` so that an all-padded problem stays NaN-free (its plan is all zeros).

Half precision: the iterations always run in float32 (or float64 when given float64) with
autocast switched off, whatever the input dtype or an enclosing ``torch.autocast``; plans come
back in the cost's dtype. In float16, ``exp(-cost / epsilon)`` and the "log zero" sentinel
would overflow to ``-inf`` and the GW products would lose the small transport masses.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor

_NEG = -1e9  # "log zero" (finite in float32) that keeps logsumexp finite when a whole row is padded


def _work_dtype(t: Tensor) -> torch.dtype:
    """float64 stays float64; every other floating dtype is computed in float32."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


@contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Switch autocast off on ``device`` (bf16/fp16 autocast would cast the matmuls back down);
    the alignment modules compute their costs, routing and losses inside it, in float32."""
    with torch.autocast(device_type=device.type, enabled=False):
        yield


def uniform_marginal(mask: Tensor) -> Tensor:
    """Uniform weights over the real entries of ``mask`` [B, k]; zero on padding."""
    mask = mask.to(torch.get_default_dtype()) if not mask.is_floating_point() else mask
    return mask / mask.sum(-1, keepdim=True).clamp(min=1.0)


def _logsumexp(x: Tensor, dim: int) -> Tensor:
    """``log Σ exp(x)`` with terms below e^-80 of the largest dropped: they cannot change the sum in
    float32, and exp() of very negative inputs yields denormals that are slow on CPUs."""
    top = x.amax(dim, keepdim=True)
    return top.squeeze(dim) + torch.exp((x - top).clamp(min=-80.0)).sum(dim).log()


def _masked_log(weights: Tensor, mask: Tensor) -> Tensor:
    """``log(weights)`` on real entries, the finite sentinel on padding."""
    return torch.where(mask, weights.clamp(min=1e-30).log(), torch.full_like(weights, _NEG))


def sinkhorn(
    cost: Tensor,
    row_mask: Tensor,
    col_mask: Tensor,
    epsilon: float = 0.1,
    num_iters: int = 100,
    tol: float | None = None,
    a: Tensor | None = None,
    b: Tensor | None = None,
) -> Tensor:
    """Entropic OT plan ``argmin_T <T, C> - eps H(T)`` s.t. ``T 1 = a, T^T 1 = b`` (log-domain Sinkhorn).

    cost [B, n, m]; row_mask [B, n] and col_mask [B, m] bool; a [B, n], b [B, m] default to
    uniform over the real entries. Returns the plan [B, n, m], zero on padded rows/columns.
    ``tol`` stops early once the column marginals are within ``tol`` (L1, worst problem).
    """
    if cost.dim() != 3:
        raise ValueError(f"cost must be [B, n, m], got shape {tuple(cost.shape)}")
    row_mask, col_mask = row_mask.bool(), col_mask.bool()
    dtype = _work_dtype(cost)
    with full_precision(cost.device):
        c = cost.to(dtype)
        a = uniform_marginal(row_mask).to(c) if a is None else a.to(c)
        b = uniform_marginal(col_mask).to(c) if b is None else b.to(c)
        log_a, log_b = _masked_log(a, row_mask), _masked_log(b, col_mask)
        pair = row_mask[:, :, None] & col_mask[:, None, :]
        log_k = torch.where(pair, -c / epsilon, torch.full_like(c, _NEG))  # [B, n, m]
        log_u = torch.zeros_like(log_a)
        log_v = torch.zeros_like(log_b)
        for _ in range(num_iters):
            # columns first, rows last: every row of the returned plan has exactly its mass
            log_v = log_b - _logsumexp(log_k + log_u[:, :, None], dim=1)
            log_u = log_a - _logsumexp(log_k + log_v[:, None, :], dim=2)
            if tol is not None:  # rows are exact; stop once the columns are close enough
                plan_cols = torch.exp(log_u[:, :, None] + log_k + log_v[:, None, :]).sum(1)
                if (plan_cols - b).abs().sum(-1).max() < tol:
                    break
        plan = torch.exp(log_u[:, :, None] + log_k + log_v[:, None, :]) * pair
    return plan.to(cost.dtype)


def sinkhorn_unbalanced(
    cost: Tensor,
    row_mask: Tensor,
    col_mask: Tensor,
    epsilon: float = 0.1,
    rho: float = 1.0,
    num_iters: int = 100,
    a: Tensor | None = None,
    b: Tensor | None = None,
) -> Tensor:
    """Unbalanced entropic OT plan (Chizat et al., 2018), log-domain scaling iterations:

    ``argmin_T <T, C> - eps H(T) + rho KL(T 1 | a) + rho KL(Tᵀ 1 | b)``

    The marginals are soft: a token whose cheapest object is still expensive sends less than its
    share of mass, so not every word has to be matched. ``rho → ∞`` gives :func:`sinkhorn`.
    Same as ``ot.unbalanced.sinkhorn_knopp_unbalanced(a, b, C, eps, rho, reg_type="entropy")``.
    Shapes as :func:`sinkhorn`; returns the plan [B, n, m], zero on padded rows/columns.
    """
    if cost.dim() != 3:
        raise ValueError(f"cost must be [B, n, m], got shape {tuple(cost.shape)}")
    if rho <= 0 or epsilon <= 0:
        raise ValueError(f"sinkhorn_unbalanced needs epsilon > 0 and rho > 0, got {epsilon}, {rho}")
    row_mask, col_mask = row_mask.bool(), col_mask.bool()
    fi = rho / (rho + epsilon)
    with full_precision(cost.device):
        c = cost.to(_work_dtype(cost))
        a = uniform_marginal(row_mask).to(c) if a is None else a.to(c)
        b = uniform_marginal(col_mask).to(c) if b is None else b.to(c)
        log_a, log_b = _masked_log(a, row_mask), _masked_log(b, col_mask)
        pair = row_mask[:, :, None] & col_mask[:, None, :]
        log_k = torch.where(pair, -c / epsilon, torch.full_like(c, _NEG))
        log_u = torch.zeros_like(log_a)
        log_v = torch.zeros_like(log_b)
        for _ in range(num_iters):
            log_u = fi * (log_a - _logsumexp(log_k + log_v[:, None, :], dim=2))
            log_v = fi * (log_b - _logsumexp(log_k + log_u[:, :, None], dim=1))
        # padded rows/columns: log_k holds the sentinel there, so exp() gives exactly 0
        plan = torch.exp(log_u[:, :, None] + log_k + log_v[:, None, :]) * pair
    return plan.to(cost.dtype)


def gw_tensor_product(c1: Tensor, c2: Tensor, plan: Tensor, p: Tensor, q: Tensor) -> Tensor:
    """Square-loss GW gradient term ``L(C1, C2) ⊗ T = C1² p 1ᵀ + 1 q ᵀC2²ᵀ - 2 C1 T C2ᵀ`` [B, n, m]."""
    const = (c1**2 @ p[:, :, None]) + ((c2**2) @ q[:, :, None]).transpose(1, 2)
    return const - 2.0 * c1 @ plan @ c2.transpose(1, 2)


def gw_cost(c1: Tensor, c2: Tensor, plan: Tensor, p: Tensor | None = None, q: Tensor | None = None) -> Tensor:
    """GW objective ``Σ_ijkl (C1_ik − C2_jl)² T_ij T_kl`` per problem [B] (p, q default to the plan's marginals)."""
    p = plan.sum(2) if p is None else p
    q = plan.sum(1) if q is None else q
    return (gw_tensor_product(c1, c2, plan, p, q) * plan).sum((1, 2))


def entropic_gromov_wasserstein(
    c1: Tensor,
    c2: Tensor,
    row_mask: Tensor,
    col_mask: Tensor,
    epsilon: float = 0.1,
    outer_iters: int = 10,
    inner_iters: int = 50,
    tol: float | None = None,
) -> Tensor:
    """Entropic GW plan by projected gradient: ``T ← Sinkhorn(2 L(C1, C2) ⊗ T, eps)`` from ``T = p qᵀ``.

    c1 [B, n, n] and c2 [B, m, m] are symmetric intra-graph cost (or adjacency) matrices. This is
    the square-loss PGD scheme of Peyré et al. (2016), the same as ``ot.gromov.entropic_gromov_wasserstein``.
    Returns the plan [B, n, m], zero on padded rows/columns.
    """
    row_mask, col_mask = row_mask.bool(), col_mask.bool()
    out_dtype = c1.dtype
    with full_precision(c1.device):
        c1, c2 = c1.to(_work_dtype(c1)), c2.to(_work_dtype(c1))
        p = uniform_marginal(row_mask).to(c1)
        q = uniform_marginal(col_mask).to(c1)
        pair = row_mask[:, :, None] & col_mask[:, None, :]
        c1 = c1 * (row_mask[:, :, None] & row_mask[:, None, :])
        c2 = c2 * (col_mask[:, :, None] & col_mask[:, None, :])
        plan = p[:, :, None] * q[:, None, :]
        for _ in range(outer_iters):
            previous = plan
            cost = 2.0 * gw_tensor_product(c1, c2, plan, p, q)  # the GW objective's gradient in T
            plan = sinkhorn(cost, row_mask, col_mask, epsilon, inner_iters, a=p, b=q) * pair
            if tol is not None and (plan - previous).abs().sum((1, 2)).max() < tol:
                break
    return plan.to(out_dtype)
