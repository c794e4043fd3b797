import numpy as np
import pytest
import torch

from graphie.alignment.ot import entropic_gromov_wasserstein, gw_cost, sinkhorn, sinkhorn_unbalanced, uniform_marginal

ot = pytest.importorskip("ot")


def _random_problem(seed, n=5, m=4):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, m, generator=g, dtype=torch.float64)


def test_sinkhorn_matches_pot_and_has_uniform_marginals():
    for seed in range(3):
        cost = _random_problem(seed)
        plan = sinkhorn(cost[None], torch.ones(1, 5, dtype=torch.bool), torch.ones(1, 4, dtype=torch.bool),
                        epsilon=0.05, num_iters=2000)[0]
        ref = ot.sinkhorn(np.full(5, 0.2), np.full(4, 0.25), cost.numpy(), 0.05, numItermax=2000, stopThr=1e-12)
        np.testing.assert_allclose(plan.numpy(), ref, atol=1e-8)
        torch.testing.assert_close(plan.sum(1), torch.full((5,), 0.2, dtype=torch.float64))
        torch.testing.assert_close(plan.sum(0), torch.full((4,), 0.25, dtype=torch.float64))


def test_sinkhorn_masked_batch_equals_unpadded_problems():
    cost = torch.rand(2, 6, 5, dtype=torch.float64)
    row_mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    col_mask = torch.tensor([[1, 0, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    plan = sinkhorn(cost, row_mask, col_mask, epsilon=0.1, num_iters=500)
    # padded rows/columns carry no mass; real ones have uniform marginals
    assert plan[0, 4:].abs().sum() == 0 and plan[0, :, [1, 4]].abs().sum() == 0
    torch.testing.assert_close(plan.sum(2), uniform_marginal(row_mask).double())
    torch.testing.assert_close(plan.sum(1), uniform_marginal(col_mask).double())
    small = cost[0][:4][:, [0, 2, 3]]
    ref = ot.sinkhorn(np.full(4, 0.25), np.full(3, 1 / 3), small.numpy(), 0.1, numItermax=500, stopThr=1e-12)
    np.testing.assert_allclose(plan[0][:4][:, [0, 2, 3]].numpy(), ref, atol=1e-8)


def test_sinkhorn_fully_padded_problem_is_zero_not_nan():
    plan = sinkhorn(torch.rand(1, 3, 2), torch.ones(1, 3, dtype=torch.bool), torch.zeros(1, 2, dtype=torch.bool))
    assert torch.isfinite(plan).all() and plan.abs().sum() == 0


def _random_graph(seed, n):
    rng = np.random.default_rng(seed)
    a = (rng.random((n, n)) < 0.4).astype(float)
    a = np.triu(a, 1)
    return a + a.T


def test_entropic_gw_matches_pot():
    for seed in (0,):
        c1, c2 = _random_graph(seed, 6), _random_graph(seed + 10, 5)
        # non-binary symmetric costs as well, like the feature-weighted adjacency EEGA uses
        c2 = c2 * np.random.default_rng(seed).random((5, 5))
        c2 = (c2 + c2.T) / 2
        ref = ot.gromov.entropic_gromov_wasserstein(c1, c2, epsilon=0.05, max_iter=20, tol=0,
                                                    numItermax=500, stopThr=1e-12)
        plan = entropic_gromov_wasserstein(torch.tensor(c1)[None], torch.tensor(c2)[None],
                                           torch.ones(1, 6, dtype=torch.bool), torch.ones(1, 5, dtype=torch.bool),
                                           epsilon=0.05, outer_iters=20, inner_iters=500)[0]
        np.testing.assert_allclose(plan.numpy(), ref, atol=1e-6)


def _perturb(adj, k, seed):
    """Flip ``k`` distinct off-diagonal pairs of a symmetric 0/1 matrix."""
    out = adj.copy()
    rng = np.random.default_rng(seed)
    pairs = [(i, j) for i in range(len(adj)) for j in range(i + 1, len(adj))]
    for idx in rng.choice(len(pairs), size=k, replace=False):
        i, j = pairs[idx]
        out[i, j] = out[j, i] = 1 - out[i, j]
    return out


def test_gw_edge_term_zero_for_identical_graphs_and_grows_with_perturbation():
    # an asymmetric graph (no automorphism but the identity) so the optimal plan is unique
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (2, 6)]
    adj = np.zeros((7, 7))
    for i, j in edges:
        adj[i, j] = adj[j, i] = 1
    mask = torch.ones(1, 7, dtype=torch.bool)
    costs = []
    for k in range(0, 8, 2):
        other = torch.tensor(_perturb(adj, k, seed=3))[None]
        plan = entropic_gromov_wasserstein(torch.tensor(adj)[None], other, mask, mask, epsilon=0.002,
                                           outer_iters=30, inner_iters=200)
        costs.append(gw_cost(torch.tensor(adj)[None], other, plan).item())
    assert costs[0] < 1e-6
    assert all(later > earlier for earlier, later in zip(costs, costs[1:])), costs


def test_unbalanced_sinkhorn_matches_pot_and_relaxes_the_marginals():
    cost = _random_problem(4)
    ones5, ones4 = torch.ones(1, 5, dtype=torch.bool), torch.ones(1, 4, dtype=torch.bool)
    plan = sinkhorn_unbalanced(cost[None], ones5, ones4, epsilon=0.05, rho=0.5, num_iters=3000)[0]
    ref = ot.unbalanced.sinkhorn_knopp_unbalanced(np.full(5, 0.2), np.full(4, 0.25), cost.numpy(), 0.05, 0.5,
                                                  reg_type="entropy", numItermax=3000, stopThr=1e-14)
    np.testing.assert_allclose(plan.numpy(), ref, atol=1e-8)
    assert plan.sum() < 1.0  # mass is dropped where matching is expensive
    # a large rho approaches the balanced plan; padding carries no mass and stays NaN-free
    tight = sinkhorn_unbalanced(cost[None], ones5, ones4, epsilon=0.05, rho=1e4, num_iters=3000)[0]
    balanced = sinkhorn(cost[None], ones5, ones4, epsilon=0.05, num_iters=3000)[0]
    np.testing.assert_allclose(tight.numpy(), balanced.numpy(), atol=1e-3)
    padded = sinkhorn_unbalanced(torch.rand(1, 3, 2), torch.tensor([[1, 1, 0]], dtype=torch.bool),
                                 torch.zeros(1, 2, dtype=torch.bool))
    assert torch.isfinite(padded).all() and padded.abs().sum() == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_plans_are_computed_in_float32_for_half_inputs(dtype):
    cost = _random_problem(5).float()
    rows, cols = torch.tensor([[1, 1, 1, 1, 0]], dtype=torch.bool), torch.ones(1, 4, dtype=torch.bool)
    ref = sinkhorn(cost[None], rows, cols, epsilon=0.01, num_iters=200)
    for half in (sinkhorn(cost[None].to(dtype), rows, cols, epsilon=0.01, num_iters=200),
                 sinkhorn_unbalanced(cost[None].to(dtype), rows, cols, epsilon=0.01, num_iters=200)):
        assert half.dtype == dtype and torch.isfinite(half).all()
    torch.testing.assert_close(sinkhorn(cost[None].to(dtype), rows, cols, epsilon=0.01, num_iters=200).float(), ref,
                               atol=2e-2, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast must not reach the iterations
        inside = sinkhorn(cost[None], rows, cols, epsilon=0.01, num_iters=200)
        c1 = torch.tensor(_random_graph(0, 6))[None].float()
        gw = entropic_gromov_wasserstein(c1, c1, torch.ones(1, 6, dtype=torch.bool), torch.ones(1, 6, dtype=torch.bool))
    assert inside.dtype == torch.float32 and gw.dtype == torch.float32
    torch.testing.assert_close(inside, ref)
