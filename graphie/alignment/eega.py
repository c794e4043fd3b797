"""EEGA (Yuan et al., AAAI 2023): edge-enhanced graph alignment.

Nodes of the dependency graph and of the scene graph are aligned by entropic optimal transport
on the cost 1 − cos(h_i, v_j); edges by Gromov-Wasserstein between the two graphs' intra-graph
costs (1 − cos over adjacent pairs, 0 elsewhere), both solved by batched Sinkhorn iterations. The
transport plans are computed without gradient (the OT value's gradient with respect to the costs
is the plan itself), and the graph loss ``α·W + (1 − α)·GW`` pulls aligned nodes and edges
together. ``out.loss`` is that graph loss *unweighted*: the caller adds ``λ·out.loss`` to its
task loss (λ = 0.6 in EEGA; ``ModelConfig.graph_loss_weight`` in graphie's model). Image evidence then enters the tokens through image→text multi-head cross-attention
with a residual and LayerNorm.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InvalidInputError
from ..registry import alignments
from .base import Alignment, AlignmentOutput, masked_mean
from .ot import entropic_gromov_wasserstein, full_precision, gw_cost, sinkhorn, uniform_marginal


def cosine_cost(x: Tensor, y: Tensor) -> Tensor:
    """``C_ij = 1 − cos(x_i, y_j)`` [B, n, m]."""
    return 1.0 - nn.functional.normalize(x, dim=-1) @ nn.functional.normalize(y, dim=-1).transpose(1, 2)


@alignments.register("eega")
class EEGAAlignment(Alignment):
    """``h' = LN(h + MHA(h, V, V))``; ``loss = α Σ T_ij C_ij + (1−α) GW(C_text·A_text, C_obj·A_obj; T_gw)``."""

    def __init__(self, dim: int, heads: int = 4, alpha: float = 0.4, epsilon: float = 0.1,
                 sinkhorn_iters: int = 30, gw_epsilon: float = 0.02, gw_iters: int = 3, dropout: float = 0.1):
        super().__init__(dim)
        if not 0.0 <= alpha <= 1.0:
            raise InvalidInputError(f"eega alpha must lie in [0, 1], got {alpha}")
        if epsilon <= 0 or gw_epsilon <= 0:
            raise InvalidInputError(f"eega epsilon and gw_epsilon must be > 0, got {epsilon}, {gw_epsilon}")
        if dim % heads:
            raise InvalidInputError(f"eega dim {dim} is not divisible by heads {heads}")
        self.alpha = alpha
        self.epsilon, self.sinkhorn_iters = epsilon, sinkhorn_iters
        self.gw_epsilon, self.gw_iters = gw_epsilon, gw_iters
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def graph_loss(self, text, text_mask, text_adj, objects, object_mask, object_adj) -> tuple[Tensor, Tensor]:
        """Per-post ``α·W_node + (1−α)·GW_edge`` [B] and the node transport plan [B, n, m], in float32."""
        with full_precision(text.device):
            text, objects = text.float(), objects.float()
            node_cost = cosine_cost(text, objects)  # [B, n, m]
            edge_text = cosine_cost(text, text) * text_adj  # intra-graph costs on arcs only
            edge_obj = cosine_cost(objects, objects) * object_adj
            with torch.no_grad():
                plan = sinkhorn(node_cost, text_mask, object_mask, self.epsilon, self.sinkhorn_iters)
                gw_plan = entropic_gromov_wasserstein(edge_text, edge_obj, text_mask, object_mask,
                                                      self.gw_epsilon, self.gw_iters, self.sinkhorn_iters)
            node = (plan * node_cost).sum((1, 2))
            p, q = uniform_marginal(text_mask).to(edge_text), uniform_marginal(object_mask).to(edge_text)
            edge = gw_cost(edge_text, edge_obj, gw_plan, p, q)
        return self.alpha * node + (1.0 - self.alpha) * edge, plan

    def align(self, text, text_mask, text_adj, objects, object_mask, object_adj) -> AlignmentOutput:
        has_image = object_mask.any(-1)
        per_post, plan = self.graph_loss(text, text_mask, text_adj, objects, object_mask, object_adj)
        loss = masked_mean(per_post, has_image & text_mask.any(-1))
        # image-free posts in a mixed batch: let them attend to one dummy slot (their output is discarded)
        padding = ~object_mask
        padding[:, 0] &= has_image
        fused, _ = self.attention(text, objects, objects, key_padding_mask=padding, need_weights=False)
        states = self.norm(text + self.dropout(fused))
        # each token's row of the plan, rescaled to sum to 1 over the objects
        alignment = plan.to(text.dtype) * text_mask.sum(-1).clamp(min=1)[:, None, None].to(text.dtype)
        return AlignmentOutput(states, alignment, loss)
