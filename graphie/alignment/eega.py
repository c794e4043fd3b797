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
    r"""Edge-enhanced graph alignment: OT on nodes, Gromov-Wasserstein on edges (Yuan et al., AAAI 2023).

    .. math::
        C_{ij} = 1 - \cos(h_i, v_j),\qquad
        T = \operatorname*{argmin}_{T \in \Pi(p, q)} \langle T, C \rangle - \varepsilon H(T)

        C^t_{ik} = (1 - \cos(h_i, h_k))\,A^t_{ik},\quad C^v_{jl} = (1 - \cos(v_j, v_l))\,A^v_{jl},\quad
        \mathrm{GW}(T') = \sum_{ijkl} (C^t_{ik} - C^v_{jl})^2\, T'_{ij} T'_{kl}

        \mathcal{L}_g = \alpha \langle T, C \rangle + (1 - \alpha)\,\mathrm{GW}(T'),\qquad
        H' = \mathrm{LN}\big(H + \mathrm{MHA}(H, V, V)\big)

    :math:`p, q` are uniform over the real tokens and objects; :math:`T` and :math:`T'` (entropic
    GW plan) come from batched log-domain Sinkhorn iterations without gradient.

    Args:
        dim (int): width of token and object states.
        heads (int): attention heads of the image → text cross-attention (default 4).
        alpha (float): :math:`\alpha`, node vs edge weight (EEGA's 0.4).
        epsilon (float): :math:`\varepsilon` of the node plan (default 0.1).
        sinkhorn_iters (int): Sinkhorn iterations per plan (default 30).
        gw_epsilon (float): entropic :math:`\varepsilon` of the GW plan (default 0.02).
        gw_iters (int): GW outer iterations (default 3).
        dropout (float): attention and residual dropout (default 0.1).

    Shapes:
        - **text:** :math:`(B, n, d)`, **text_mask:** :math:`(B, n)` (True = real token),
          **text_adj:** :math:`(B, n, n)`
        - **objects:** :math:`(B, m, d)`, **object_mask:** :math:`(B, m)`, **object_adj:** :math:`(B, m, m)`
        - **output:** token states :math:`(B, n, d)`; alignment = rows of :math:`T` rescaled to sum
          to 1, :math:`(B, n, m)` (0 on padding); scalar :math:`\mathcal{L}_g` (mean over posts
          with an image), unweighted: the model adds :math:`\lambda \mathcal{L}_g`

    Deviations from the paper:
        - none in the loss; its trivial minimiser (all states one way) is real: minimising it alone
          takes the mean token cosine from 0.00 to 0.98 (``bench_alignment.py collapse``), and on
          Twitter it collapsed the tagger to no entity. :class:`~graphie.alignment.routed.RoutedAlignment`
          is the variant that cannot collapse;
        - costs, plans and loss are computed in float32 with autocast off (half precision safe).
    """

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
