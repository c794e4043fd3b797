import torch

from graphie.models.attribute import AttributeTransformer, AttributeTransformerConv, dependency_edges


def chain_graph():
    # 0 <- 1 -> 2, plus an isolated word 3 (own tree); labels 1..3, 4 label kinds
    heads, labels = [1, 1, 1, 3], [2, 1, 3, 1]
    edges, types = dependency_edges(heads, labels, num_labels=4, keep=4)
    return torch.tensor(edges).t(), torch.tensor(types)


def test_dependency_edges_types_and_truncation():
    edges, types = dependency_edges([1, 1, 1], [2, 1, 3], num_labels=4, keep=3)
    assert (0, 0) in edges and types[edges.index((0, 0))] == 8  # self loop type 2L
    assert types[edges.index((0, 1))] == 2 and types[edges.index((1, 0))] == 6  # up: label, down: label + L
    cut, _ = dependency_edges([1, 1, 1], [2, 1, 3], num_labels=4, keep=2)
    assert all(max(e) < 2 for e in cut)


def test_fresh_layer_is_identity_and_gradients_flow():
    torch.manual_seed(0)
    layer = AttributeTransformerConv(dim=8, num_edge_types=9, edge_dim=5, heads=2, dropout=0.0)
    x = torch.randn(4, 8, requires_grad=True)
    edge_index, edge_type = chain_graph()
    y = layer(x, edge_index, edge_type)
    assert torch.equal(y, x)  # zero-initialised output projection: the residual path only
    y.pow(2).sum().backward()
    assert layer.out.weight.grad.abs().sum() > 0 and x.grad is not None


def test_attention_is_restricted_to_neighbours_and_uses_edge_labels():
    torch.manual_seed(0)
    layer = AttributeTransformerConv(dim=8, num_edge_types=9, edge_dim=5, heads=2, dropout=0.0)
    torch.nn.init.normal_(layer.out.weight)
    edge_index, edge_type = chain_graph()
    x = torch.randn(4, 8)
    y = layer(x, edge_index, edge_type)
    x2 = x.clone()
    x2[3] = torch.randn(8) * 3  # word 3 is not a neighbour of 0, 1, 2
    y2 = layer(x2, edge_index, edge_type)
    assert torch.allclose(y[:3], y2[:3]) and not torch.allclose(y[3], y2[3])
    x3 = x.clone()
    x3[2] = torch.randn(8) * 3  # word 2 is a neighbour of 1 but not of 0
    y3 = layer(x3, edge_index, edge_type)
    assert torch.allclose(y[0], y3[0]) and not torch.allclose(y[1], y3[1])
    other = edge_type.clone()
    other[edge_type == 2] = 3  # relabel the arc 0 -> 1
    assert not torch.allclose(layer(x, edge_index, other)[1], y[1])


def test_stack_shapes():
    stack = AttributeTransformer(dim=8, num_edge_types=9, layers=3, edge_dim=4, heads=4)
    edge_index, edge_type = chain_graph()
    assert stack(torch.randn(4, 8), edge_index, edge_type).shape == (4, 8)
    assert len(stack.layers) == 3
