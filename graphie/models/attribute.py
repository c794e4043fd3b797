"""EEGA's attribute transformer: graph attention restricted to neighbours, with edge-label
embeddings added to keys and values, as a PyTorch Geometric layer."""

from __future__ import annotations

import math

from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax


class AttributeTransformerConv(MessagePassing):
    r"""EEGA's attribute transformer layer: graph attention over neighbours with edge-label
    embeddings in keys and values (Yuan et al., AAAI 2023).

    .. math::
        \alpha_{ij} = \operatorname{softmax}_{j \in \mathcal N(i)}
            \frac{(W_Q \bar x_i)^\top (W_K \bar x_j + W_z z_{ij})}{\sqrt c},\qquad
        x'_i = x_i + W_o \sum_{j \in \mathcal N(i)} \alpha_{ij} \big(W_V \bar x_j + W_r z_{ij}\big)

    with :math:`\bar x = \mathrm{LN}(x)`, per head (:math:`c` = ``dim / heads``), and
    :math:`z_{ij}` the embedding of edge :math:`j \to i`'s type.

    Args:
        dim (int): node state width; heads (int): attention heads, dividing ``dim`` (default 4).
        num_edge_types (int): size of the edge-type table.
        edge_dim (int): width of :math:`z` (default 100).
        dropout (float): on attention weights and output (default 0.1).

    Shapes:
        - **x:** :math:`(N, d)` (a batch flattened into one graph, PyG style; padding nodes
          simply have no edges), **edge_index:** :math:`(2, E)` (source :math:`j`, target
          :math:`i`), **edge_type:** :math:`(E,)`
        - **output:** :math:`(N, d)`

    Deviations from the paper:
        - pre-norm and a residual with :math:`W_o` initialised to zero, so a fresh layer is the
          identity and the graph path can only add to the pretrained encoder's states;
        - self loops and reversed edges are given as their own edge types by the caller.
    """

    def __init__(self, dim: int, num_edge_types: int, edge_dim: int = 100, heads: int = 4, dropout: float = 0.1):
        super().__init__(aggr="add", node_dim=0)
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.norm = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.edge_embedding = nn.Embedding(num_edge_types, edge_dim)
        self.edge_kv = nn.Linear(edge_dim, 2 * dim, bias=False)  # [W_z; W_r]
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        # x [N, d]; edge_index [2, E] (source j -> target i); edge_type [E]
        h = self.norm(x)
        H, C = self.heads, self.head_dim
        q = self.q(h).view(-1, H, C)
        k, v = self.kv(h).view(-1, 2, H, C).unbind(1)
        # project the label table once, then look edges up: cheaper than per-edge matmuls
        edge_k, edge_v = self.edge_kv(self.edge_embedding.weight).view(-1, 2, H, C).unbind(1)
        agg = self.propagate(edge_index, q=q, k=k, v=v, ek=edge_k[edge_type], ev=edge_v[edge_type])
        return x + self.dropout(self.out(agg.reshape(-1, self.dim)))

    def message(self, q_i: Tensor, k_j: Tensor, v_j: Tensor, ek: Tensor, ev: Tensor,
                index: Tensor, ptr: Tensor | None, size_i: int | None) -> Tensor:
        score = (q_i * (k_j + ek)).sum(-1) / math.sqrt(self.head_dim)  # [E, H]
        alpha = self.dropout(softmax(score, index, ptr, size_i))
        return (v_j + ev) * alpha.unsqueeze(-1)


class AttributeTransformer(nn.Module):
    """A stack of :class:`AttributeTransformerConv` layers over one graph (one modality's weights)."""

    def __init__(self, dim: int, num_edge_types: int, layers: int = 1, edge_dim: int = 100,
                 heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.layers = nn.ModuleList(
            AttributeTransformerConv(dim, num_edge_types, edge_dim, heads, dropout) for _ in range(layers)
        )

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, edge_index, edge_type)
        return x


def dependency_edges(heads: list[int], labels: list[int], num_labels: int, keep: int) -> tuple[list[tuple[int, int]], list[int]]:
    """Directed message edges of one parsed sentence restricted to its first ``keep`` words.

    Each arc child→head gives two edges with distinct types (``label`` upward,
    ``label + num_labels`` downward); every word gets a self loop of type ``2 * num_labels``.
    The root's self-pointing head adds nothing beyond the self loop.
    """
    edges, types = [], []
    for child in range(keep):
        edges.append((child, child))
        types.append(2 * num_labels)
        head = heads[child]
        if head != child and 0 <= head < keep:
            edges.append((child, head))  # message child -> head
            types.append(labels[child])
            edges.append((head, child))
            types.append(labels[child] + num_labels)
    return edges, types
