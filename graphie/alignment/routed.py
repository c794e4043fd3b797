r"""Routed EEGA: EEGA's node-OT + edge-GW graph loss made collapse-proof, and token → object
routing with a "no object" slot (graphie's own variant; EEGA: Yuan et al., AAAI 2023; image-swap
contrast: MAF, Xu et al., WSDM 2022; unbalanced OT: Chizat et al., Math. Comp. 2018).

EEGA's graph loss, on ``1 − cos`` of the tagger's own states with uniform marginals and no
negatives, is smallest when every token and object state points one way, and its gradient reaches
the tagger. Here (1) costs live on separate projection heads fed with *detached* states, so the
graph loss cannot move the tagger's states at all; (2) an image-swap contrastive term makes the
post's own image cheaper to transport onto than any other image of the batch, which a collapsed
head cannot do; (3) the node plan is unbalanced OT, so function words need not be matched; (4) the
graph loss can be warmed up. The same heads score the routing that carries object states into the
tokens, so what the contrast teaches (a name goes to the person node that shows it) is what
the tagger reads and what :func:`graphie.extract` reports as evidence.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InvalidInputError
from ..registry import alignments
from .base import Alignment, AlignmentOutput, masked_mean
from .ot import entropic_gromov_wasserstein, full_precision, gw_cost, sinkhorn_unbalanced, uniform_marginal


@alignments.register("routed")
class RoutedAlignment(Alignment):
    r"""EEGA's graph alignment on projection heads, with image-swap contrast and routing.

    .. math::
        z_i = \frac{P_t h_i}{\lVert P_t h_i \rVert},\quad u_j = \frac{P_v v_j}{\lVert P_v v_j \rVert},\quad
        C_{ij} = 1 - z_i^\top u_j

        a_{ij} = \operatorname{softmax}_{j \in \{1..m, \varnothing\}}\big([z_i^\top u_j / \tau;\ b_\varnothing]\big),\qquad
        h_i' = \mathrm{LN}\Big(h_i + W_o \sum_{j=1}^{m} a_{ij} W_v v_j\Big)

        T = \operatorname*{argmin}_T \langle T, C\rangle - \varepsilon H(T) + \rho\,\mathrm{KL}(T\mathbf{1}\,|\,p)
            + \rho\,\mathrm{KL}(T^\top\mathbf{1}\,|\,q),\qquad
        W(C) = \frac{\langle T, C \rangle}{\langle T, \mathbf{1} \rangle}

        \mathcal{L}_g = \min(1, s / s_0)\Big[\alpha\, W(C^{bb}) + (1 - \alpha)\, GW(C^t \odot A^t, C^v \odot A^v)
            + \gamma\, \tfrac12\big(\mathrm{CE}_{b'}(-W(C^{bb'})/\tau_c, b) + \mathrm{CE}_{b}(-W(C^{bb'})/\tau_c, b')\big)\Big]

    :math:`C^{bb'}` is the cost between post :math:`b`'s tokens and image :math:`b'`'s objects;
    :math:`C^t, C^v` are the intra-graph costs :math:`1 - z^\top z`, :math:`1 - u^\top u` on the
    dependency arcs :math:`A^t` and predicate edges :math:`A^v`; :math:`s` counts training steps.
    Plans are computed without gradient (the gradient of an OT value in the cost is its plan);
    in the loss, :math:`z, u` come from detached :math:`h, v`.

    Args:
        dim (int): width of token and object states.
        proj_dim (int): width of the projection heads :math:`P_t, P_v` (default 128).
        temperature (float): :math:`\tau` of the routing softmax (default 0.1).
        alpha (float): :math:`\alpha`, node vs edge weight, EEGA's 0.4.
        contrast_weight (float): :math:`\gamma` (default 1.0; 0 turns the image swap off).
        contrast_temperature (float): :math:`\tau_c` (default 0.05).
        epsilon (float): entropic :math:`\varepsilon` of the node plans (default 0.05).
        rho (float): marginal relaxation :math:`\rho` of the unbalanced node plans (default 0.5).
        sinkhorn_iters (int): scaling iterations per plan (default 30).
        gw_epsilon (float): entropic :math:`\varepsilon` of the GW plan (default 0.02).
        gw_iters (int): GW outer iterations (default 3).
        warmup_steps (int): :math:`s_0`, training steps over which :math:`\mathcal{L}_g` ramps
            up linearly from 0 (default 0: no warm-up).
        detach_states (bool): feed the loss's heads detached states (default True).
        dropout (float): on the routed message (default 0.1).

    Shapes:
        - **text:** :math:`(B, n, d)`, **text_mask:** :math:`(B, n)` (True = real token),
          **text_adj:** :math:`(B, n, n)`
        - **objects:** :math:`(B, m, d)`, **object_mask:** :math:`(B, m)`, **object_adj:** :math:`(B, m, m)`
        - **output:** token states :math:`(B, n, d)`; alignment :math:`a_{ij}` :math:`(B, n, m)`
          (rows sum to :math:`1 - a_{i\varnothing} \le 1`; 0 on padding); scalar float32
          :math:`\mathcal{L}_g` (0 under ``torch.no_grad()``: it is a training signal only)

    Deviations from the paper (EEGA):
        - costs on projection heads of detached states, not on the tagger's states; EEGA's loss
          drove MiniLM + grid tagging to predict no entity on Twitter (F1 0.5 / 0.0,
          ``benchmarks/RESULTS_alignment.md``);
        - unbalanced (KL-relaxed) node OT instead of uniform marginals;
        - the contrastive image-swap term (MAF) is new; rows showing the same image (two pairs
          of one post) are not each other's negatives;
        - routing attention with a null slot instead of EEGA's image → text multi-head
          cross-attention, so the evidence weights are the weights the tokens actually read.
    """

    def __init__(self, dim: int, proj_dim: int = 128, temperature: float = 0.1, alpha: float = 0.4,
                 contrast_weight: float = 1.0, contrast_temperature: float = 0.05, epsilon: float = 0.05,
                 rho: float = 0.5, sinkhorn_iters: int = 30, gw_epsilon: float = 0.02, gw_iters: int = 3,
                 warmup_steps: int = 0, detach_states: bool = True, dropout: float = 0.1):
        super().__init__(dim)
        if not 0.0 <= alpha <= 1.0:
            raise InvalidInputError(f"routed alpha must lie in [0, 1], got {alpha}")
        for name, value in (("proj_dim", proj_dim), ("temperature", temperature), ("epsilon", epsilon),
                            ("rho", rho), ("gw_epsilon", gw_epsilon), ("contrast_temperature", contrast_temperature)):
            if value <= 0:
                raise InvalidInputError(f"routed {name} must be > 0, got {value}")
        if contrast_weight < 0 or warmup_steps < 0:
            raise InvalidInputError(f"routed contrast_weight and warmup_steps must be >= 0, got "
                                    f"{contrast_weight}, {warmup_steps}")
        self.temperature, self.alpha = temperature, alpha
        self.contrast_weight, self.contrast_temperature = contrast_weight, contrast_temperature
        self.epsilon, self.rho, self.sinkhorn_iters = epsilon, rho, sinkhorn_iters
        self.gw_epsilon, self.gw_iters = gw_epsilon, gw_iters
        self.warmup_steps, self.detach_states = warmup_steps, detach_states
        self.steps = 0  # training forward passes seen (for the warm-up); not saved with the weights
        self.text_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, proj_dim))
        self.object_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, proj_dim))
        self.null_logit = nn.Parameter(torch.zeros(()))
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def project(self, text: Tensor, objects: Tensor) -> tuple[Tensor, Tensor]:
        """Unit-length head outputs ``z`` [B, n, k] and ``u`` [B, m, k], float32 (the heads run in
        their own dtype, e.g. float16 after ``model.half()``)."""
        dtype = self.text_head[1].weight.dtype
        return (nn.functional.normalize(self.text_head(text.to(dtype)).float(), dim=-1),
                nn.functional.normalize(self.object_head(objects.to(dtype)).float(), dim=-1))

    def route(self, z: Tensor, u: Tensor, object_mask: Tensor) -> Tensor:
        """Routing weights ``a`` [B, n, m]: softmax over the objects and the null slot, null dropped."""
        logits = z @ u.transpose(1, 2) / self.temperature  # [B, n, m], float32
        logits = logits.masked_fill(~object_mask[:, None, :], torch.finfo(logits.dtype).min)
        null = self.null_logit.float().expand(*logits.shape[:2], 1)
        return torch.cat([logits, null], -1).softmax(-1)[..., :-1]

    def graph_loss(self, z: Tensor, u: Tensor, text_mask: Tensor, text_adj: Tensor, object_mask: Tensor,
                   object_adj: Tensor) -> Tensor:
        """Unweighted ``α·W_node + (1−α)·GW_edge + γ·contrast`` over the posts with an image (scalar)."""
        B, n, m = z.shape[0], z.shape[1], u.shape[1]
        has_image = object_mask.any(-1) & text_mask.any(-1)
        # every text against every image: C[b, b'] = 1 − z_b u_b'ᵀ, [B, B, n, m]
        cost = 1.0 - torch.einsum("bik,cjk->bcij", z, u)
        rows = text_mask[:, None, :].expand(B, B, n).reshape(B * B, n)
        cols = object_mask[None, :, :].expand(B, B, m).reshape(B * B, m)
        with torch.no_grad():
            plan = sinkhorn_unbalanced(cost.detach().reshape(B * B, n, m), rows, cols, self.epsilon, self.rho,
                                       self.sinkhorn_iters).view(B, B, n, m)
        mass = plan.sum((2, 3)).clamp(min=torch.finfo(plan.dtype).tiny)
        distance = (plan * cost).sum((2, 3)) / mass  # [B, B] mean matched cost W(C^{bb'})
        node = distance.diagonal()
        edge_text = (1.0 - z @ z.transpose(1, 2)) * text_adj
        edge_obj = (1.0 - u @ u.transpose(1, 2)) * object_adj
        with torch.no_grad():
            gw_plan = entropic_gromov_wasserstein(edge_text.detach(), edge_obj.detach(), text_mask, object_mask,
                                                  self.gw_epsilon, self.gw_iters, self.sinkhorn_iters)
        p, q = uniform_marginal(text_mask).to(z), uniform_marginal(object_mask).to(z)
        edge = gw_cost(edge_text, edge_obj, gw_plan, p, q)
        loss = masked_mean(self.alpha * node + (1.0 - self.alpha) * edge, has_image)
        if self.contrast_weight > 0 and int(has_image.sum()) > 1:
            pairs = has_image[:, None] & has_image[None, :]
            # Rows that show the same image (two pairs of one post, the marker head's rows) are
            # not each other's negatives: only the diagonal and other images compete.
            pairs = pairs & (~same_image(u, object_mask) | torch.eye(B, dtype=torch.bool, device=z.device))
            logits = (-distance / self.contrast_temperature).masked_fill(~pairs, torch.finfo(distance.dtype).min)
            target = torch.arange(B, device=z.device)
            ce = nn.functional.cross_entropy(logits, target, reduction="none")  # text b → its image
            ce_t = nn.functional.cross_entropy(logits.t(), target, reduction="none")  # image b → its text
            loss = loss + self.contrast_weight * masked_mean(0.5 * (ce + ce_t), has_image)
        return loss

    def align(self, text, text_mask, text_adj, objects, object_mask, object_adj) -> AlignmentOutput:
        with full_precision(text.device):  # routing and graph loss in float32, autocast off
            z, u = self.project(text, objects)
            weights = self.route(z, u, object_mask)  # [B, n, m]
        message = weights.to(text.dtype) @ self.value(objects)
        states = self.norm(text + self.dropout(self.out(message)))
        if not torch.is_grad_enabled():  # prediction: the graph loss is a training signal only
            return AlignmentOutput(states, weights.to(text.dtype), text.new_zeros(()))
        with full_precision(text.device):
            if self.detach_states:
                z, u = self.project(text.detach(), objects.detach())
            loss = self.graph_loss(z, u, text_mask, text_adj.float(), object_mask, object_adj.float())
        if self.training:
            self.steps += 1
        if self.warmup_steps:
            loss = loss * min(1.0, self.steps / self.warmup_steps)
        return AlignmentOutput(states, weights.to(text.dtype), loss)


def same_image(u: Tensor, object_mask: Tensor, tol: float = 1e-5) -> Tensor:
    """``[B, B]`` bool: rows whose object sets are the same (same mask, unit object vectors ``u``
    [B, m, k] equal within ``tol``: one scene graph encoded in two rows of a batch may differ in
    the last bits); a row is the same image as itself."""
    same_mask = (object_mask[:, None, :] == object_mask[None, :, :]).all(-1)
    same_vectors = (u[:, None] - u[None, :]).abs().amax((-1, -2)) <= tol
    return same_mask & same_vectors
