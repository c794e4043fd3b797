"""MEGA (Zheng et al., ACM MM 2021): structural + semantic alignment of the dependency graph and
the scene graph, fused into the token states.

Structural alignment follows REGAL/xNetMF: every node of both graphs gets a signature built from
the (log-binned) degrees of itself and its 1- and 2-hop neighbours, hop k weighted by δ^k; the
similarity of two nodes is exp(−‖d_u − d_v‖); Nyström embeddings from a few landmark nodes make
the two graphs comparable; each token is matched to its nearest objects with weight
exp(−distance), giving the token×object matrix R. It depends on graph shape only, so it carries
no gradient.

MEGA fuses ``Σ_objects W[A; S]`` into one post vector. graphie keeps per-token states, so each
token receives that sum weighted by its own alignment to the objects, and the object's own state
joins the fused message (in MEGA it enters only as the attention query), so that what an object
*is* can reach the words aligned with it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..registry import alignments
from .base import Alignment, AlignmentOutput, normalize_sum
from .ot import full_precision


def degree_signatures(adj: Tensor, mask: Tensor, num_bins: int, delta: float = 0.01, hops: int = 2) -> Tensor:
    """xNetMF signatures ``d_u = Σ_{k=0..K} δ^k · hist(log2(deg+1) of nodes at distance k)`` [B, N, num_bins]."""
    adj = adj.bool() & mask[:, :, None] & mask[:, None, :]
    N = adj.shape[1]
    eye = torch.eye(N, dtype=torch.bool, device=adj.device)
    adj = adj & ~eye
    degree = adj.sum(-1)
    bins = torch.floor(torch.log2(degree.float() + 1)).long().clamp(max=num_bins - 1)
    onehot = nn.functional.one_hot(bins, num_bins).float() * mask[:, :, None]
    seen = eye.expand_as(adj) & mask[:, :, None]  # distance 0: the node itself
    frontier = seen
    signature = onehot.clone()
    step = adj.float()
    for k in range(1, hops + 1):
        reach = (frontier.float() @ step) > 0  # nodes one step beyond the last ring
        frontier = reach & ~seen
        seen = seen | frontier
        signature = signature + (delta**k) * (frontier.float() @ onehot)
    return signature


def nystrom_embeddings(signatures: Tensor, mask: Tensor, num_landmarks: int) -> Tensor:
    """xNetMF: ``Y = C W^{-1/2}``, C = node-to-landmark similarity exp(−‖d_u − d_l‖), W = landmark-to-landmark; rows L2-normalised [B, N, p]."""
    B, N, _ = signatures.shape
    p = max(1, min(num_landmarks, N))
    count = mask.sum(-1, keepdim=True)  # [B, 1]
    order = torch.argsort((~mask).int(), dim=1, stable=True)  # real nodes first, in order
    t = torch.arange(p, device=mask.device).expand(B, p)
    # evenly spread landmarks over the real nodes (all of them when there are fewer than p)
    position = torch.where(count <= p, t, torch.div(t * count, p, rounding_mode="floor")).clamp(max=N - 1)
    landmark_ok = t < count  # [B, p]
    landmarks = order.gather(1, position)
    anchor = signatures.gather(1, landmarks[:, :, None].expand(-1, -1, signatures.shape[-1]))
    C = torch.exp(-torch.cdist(signatures, anchor)) * landmark_ok[:, None, :]  # [B, N, p]
    W = C.gather(1, landmarks[:, :, None].expand(-1, -1, p))  # [B, p, p]
    pair_ok = landmark_ok[:, :, None] & landmark_ok[:, None, :]
    W = torch.where(pair_ok, W, torch.eye(p, device=W.device).expand_as(W))
    values, vectors = torch.linalg.eigh(W.double())
    inv_sqrt = torch.where(values > 1e-8, values.clamp(min=1e-8).rsqrt(), torch.zeros_like(values))
    W_inv_sqrt = (vectors * inv_sqrt[:, None, :]) @ vectors.transpose(1, 2)
    Y = (C.double() @ W_inv_sqrt * landmark_ok[:, None, :]).to(signatures.dtype)
    return nn.functional.normalize(Y, dim=-1) * mask[:, :, None]


@torch.no_grad()
def structural_alignment(text_adj: Tensor, text_mask: Tensor, object_adj: Tensor, object_mask: Tensor,
                         delta: float = 0.01, num_landmarks: int = 32, neighbours: int = 3) -> Tensor:
    """REGAL token→object matrix ``R_ij = exp(−‖y_i − y_j‖)`` for the ``neighbours`` nearest objects of token i, else 0 [B, n, m]."""
    with full_precision(text_adj.device):  # nearest-neighbour ties must not depend on autocast rounding
        return _structural_alignment(text_adj, text_mask, object_adj, object_mask, delta, num_landmarks, neighbours)


def _structural_alignment(text_adj: Tensor, text_mask: Tensor, object_adj: Tensor, object_mask: Tensor,
                          delta: float, num_landmarks: int, neighbours: int) -> Tensor:
    n, m = text_mask.shape[1], object_mask.shape[1]
    num_bins = int(math.log2(max(n, m, 1))) + 1
    sig_text = degree_signatures(text_adj, text_mask, num_bins, delta)
    sig_obj = degree_signatures(object_adj, object_mask, num_bins, delta)
    signatures = torch.cat([sig_text, sig_obj], 1).float()
    mask = torch.cat([text_mask, object_mask], 1)
    Y = nystrom_embeddings(signatures, mask, num_landmarks)
    distance = torch.cdist(Y[:, :n], Y[:, n:])  # [B, n, m]
    distance = distance.masked_fill(~object_mask[:, None, :], float("inf"))
    k = max(1, min(neighbours, m))
    nearest = distance.topk(k, dim=-1, largest=False)
    R = torch.zeros_like(distance).scatter(-1, nearest.indices, torch.exp(-nearest.values))
    return R * (text_mask[:, :, None] & object_mask[:, None, :])


@alignments.register("mega")
class MEGAAlignment(Alignment):
    r"""Structural + semantic alignment of the dependency and scene graphs (Zheng et al., ACM MM 2021).

    .. math::
        R_{ij} = e^{-\lVert y_i - y_j \rVert} \text{ for the nearest objects } j \text{ of token } i
        \text{ (REGAL/xNetMF embeddings } y\text{)},\quad 0 \text{ otherwise}

        \alpha = \operatorname{softmax}_{\text{tokens}}\big(W_q V (W_k H)^\top / \sqrt d\big),\qquad
        A = \sigma(\alpha\, W_v H),\qquad S = \bar R^\top H

        G = \tfrac12\big(\alpha^\top + \hat R\big),\qquad H' = \mathrm{LN}\big(H + G\, W[A; S; V]\big)

    :math:`\bar R` is :math:`R` normalised per object (column), :math:`\hat R` per token (row).

    Args:
        dim (int): width of token and object states.
        delta (float): hop discount :math:`\delta` of the degree signatures (default 0.01).
        num_landmarks (int): Nyström landmarks (default 32).
        neighbours (int): objects each token is matched to in :math:`R` (default 3).
        dropout (float): on the fused message (default 0.1).

    Shapes:
        - **text:** :math:`(B, n, d)`, **text_mask:** :math:`(B, n)` (True = real token),
          **text_adj:** :math:`(B, n, n)`
        - **objects:** :math:`(B, m, d)`, **object_mask:** :math:`(B, m)`, **object_adj:** :math:`(B, m, m)`
        - **output:** token states :math:`(B, n, d)`; alignment :math:`G` :math:`(B, n, m)` (0 on
          padding); loss 0

    Deviations from the paper:
        - MEGA sums :math:`W[A; S]` over the objects into one post vector; graphie keeps per-token
          states, so each token receives the messages weighted by its own row of :math:`G`;
        - the object's own state :math:`V` joins the message (in MEGA it is only the attention
          query), so that what an object *is* can reach the words aligned with it;
        - :math:`R` carries no gradient (it depends on graph shape only) and is computed in float32
          with autocast off; the normalisations use the dtype's smallest normal number as floor.
    """

    def __init__(self, dim: int, delta: float = 0.01, num_landmarks: int = 32, neighbours: int = 3,
                 dropout: float = 0.1):
        super().__init__(dim)
        self.delta, self.num_landmarks, self.neighbours = delta, num_landmarks, neighbours
        self.query = nn.Linear(dim, dim)  # W_q on objects
        self.key = nn.Linear(dim, dim)  # W_k on tokens
        self.value = nn.Linear(dim, dim)  # W_v on tokens
        self.fuse = nn.Linear(3 * dim, dim)  # W on [A; S; v]
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def semantic(self, text: Tensor, text_mask: Tensor, objects: Tensor) -> tuple[Tensor, Tensor]:
        """Objects attend to tokens: ``α = softmax(W_q V (W_k H)ᵀ / √d)`` [B, m, n], ``A = σ(α W_v H)`` [B, m, d]."""
        scores = self.query(objects) @ self.key(text).transpose(1, 2) / math.sqrt(self.dim)
        scores = scores.masked_fill(~text_mask[:, None, :], torch.finfo(scores.dtype).min)
        alpha = scores.softmax(-1)
        return alpha, torch.sigmoid(alpha @ self.value(text))

    def align(self, text, text_mask, text_adj, objects, object_mask, object_adj) -> AlignmentOutput:
        pair = (text_mask[:, :, None] & object_mask[:, None, :]).to(text.dtype)
        alpha, A = self.semantic(text, text_mask, objects)
        R = structural_alignment(text_adj, text_mask, object_adj, object_mask, self.delta, self.num_landmarks,
                                 self.neighbours).to(text.dtype)
        # S = R·H: each object's structural summary of the tokens matched to it (R normalised per object)
        S = normalize_sum(R, 1).transpose(1, 2) @ text  # [B, m, d]
        message = self.fuse(torch.cat([A, S, objects], -1))  # [B, m, d]
        G = 0.5 * (alpha.transpose(1, 2) + normalize_sum(R, -1)) * pair  # [B, n, m]
        states = self.norm(text + self.dropout(G @ message))
        return AlignmentOutput(states, G, text.new_zeros(()))
