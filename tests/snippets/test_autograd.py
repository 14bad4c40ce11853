import math

import matplotlib
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.autograd import (
    Value,
    accumulated_grad,
    draw_value_graph,
    engine_grads,
    grad_fn_inputs,
    grad_fn_lines,
    layered_layout,
    saved_tensor_names,
    softplus,
    storage_shared,
    topo_sort,
    torch_grads,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _chain(a, b, c):
    h = a
    for _ in range(5):  # a deep chain that reuses b and a at every step
        h = (h * b + a).tanh()
    return h * c


def _reused_intermediate(a, b, c):
    h = (a * b + c).tanh()  # h fans out to three consumers
    return h * h + h.exp() * a


EXPRESSIONS = {
    "tanh(ab+c)": lambda a, b, c: (a * b + c).tanh(),
    "exp(ab)c+tanh(a)": lambda a, b, c: (a * b).exp() * c + a.tanh(),
    "leaf fan-out + constants": lambda a, b, c: (
        (a * a + a.exp()) * (1.0 + b + a).tanh() + 2.0 * c * 0.5 + 3.0
    ),
    "reused intermediate": _reused_intermediate,
    "deep chain": _chain,
}

finite = st.floats(min_value=-2.0, max_value=2.0, allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
@settings(max_examples=30, deadline=None)
@given(xs=st.lists(finite, min_size=3, max_size=3))
def test_engine_grads_equal_torch_autograd(name, xs):
    """Value-engine gradients equal torch.autograd.grad in float64 to 1e-12."""
    f = EXPRESSIONS[name]
    ours, ref = engine_grads(f, xs), torch_grads(f, xs)
    for g, r in zip(ours, ref, strict=True):
        assert math.isclose(g, r, rel_tol=1e-12, abs_tol=1e-12), (name, xs, ours, ref)


@given(a=finite)
@settings(max_examples=30, deadline=None)
def test_fan_out_accumulates_closed_form(a):
    """d/da (a·a + a) = 2a + 1: both uses of a add into a.grad."""
    x = Value(a)
    (x * x + x).backward()
    assert math.isclose(x.grad, 2 * a + 1, rel_tol=1e-12, abs_tol=1e-12)


def test_engine_forward_values_match_math():
    """The forward values of the engine equal math.tanh / math.exp evaluated directly."""
    a, b = Value(0.3), Value(-0.8)
    out = (a + b).tanh() * (a * b).exp()
    assert math.isclose(out.data, math.tanh(-0.5) * math.exp(-0.24), rel_tol=1e-15)


def test_topo_sort_lists_each_reachable_node_once_after_its_inputs():
    """topo_sort visits exactly the reachable set (brute-force search), inputs before outputs."""
    a, b, c = Value(0.1), Value(0.2), Value(0.3)
    root = _reused_intermediate(a, b, c)
    reachable, stack = set(), [root]
    while stack:  # independent graph search
        node = stack.pop()
        if node not in reachable:
            reachable.add(node)
            stack.extend(node.inputs)
    order = topo_sort(root, lambda v: v.inputs)
    assert len(order) == len(set(order)) == len(reachable)
    index = {node: i for i, node in enumerate(order)}
    assert all(index[i] < index[n] for n in order for i in n.inputs)
    assert order[-1] is root


def test_layered_layout_depth_is_longest_path():
    """x of each node equals its longest path from a leaf, found by enumerating all paths."""
    a, b, c = Value(0.1), Value(0.2), Value(0.3)
    root = _chain(a, b, c)

    def longest(node):  # exponential brute force, fine for a small graph
        return 0 if not node.inputs else 1 + max(longest(i) for i in node.inputs)

    pos = layered_layout(root, lambda v: v.inputs)
    assert all(x == longest(n) for n, (x, _) in pos.items())
    assert len(set(pos.values())) == len(pos)  # no two boxes on the same spot


def test_draw_value_graph_one_arrow_per_edge():
    """The figure has one box per node and one arrow per (input, output) edge."""
    a, b = Value(0.3), Value(-0.8)
    c = a + b
    root = c.tanh() * c.exp()
    root.backward()
    ax = draw_value_graph(root)
    nodes = topo_sort(root, lambda v: v.inputs)
    n_edges = sum(len(n.inputs) for n in nodes)
    assert len(ax.patches) == len(nodes) + n_edges
    assert len(ax.texts) == len(nodes) + n_edges  # node labels + edge gradient labels
    plt.close(ax.figure)


@settings(max_examples=25, deadline=None)
@given(xs=st.lists(st.floats(-30, 30), min_size=1, max_size=6))
def test_softplus_gradcheck_and_logaddexp(xs):
    """The custom Function passes gradcheck and equals logaddexp(x, 0) and its autograd grad."""
    x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(softplus, (x,))
    y = softplus(x)
    ref = torch.logaddexp(x, torch.zeros_like(x))
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    v = torch.linspace(-1, 1, len(xs), dtype=torch.float64)
    (g,) = torch.autograd.grad(y, x, v)
    (g_ref,) = torch.autograd.grad(ref, x, v)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)


def test_softplus_no_overflow():
    """softplus(±1000) is 1000 and 0, finite, where log(1 + exp(x)) overflows to inf."""
    x = torch.tensor([1000.0, -1000.0], dtype=torch.float64)
    assert torch.isinf(torch.log(1 + torch.exp(x[:1]))).item()
    torch.testing.assert_close(softplus(x), torch.tensor([1000.0, 0.0], dtype=torch.float64))


def test_softplus_saved_input_version_check():
    """Modifying the saved input in place makes the custom backward raise the version error."""
    x = torch.linspace(-1, 1, 3, dtype=torch.float64, requires_grad=True)
    h = x * 1.0  # non-leaf, so it may be modified in place
    y = softplus(h)
    h.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@pytest.mark.parametrize("n", [1, 2, 3])
def test_backward_calls_accumulate(n):
    """n backward calls without zeroing leave n times the gradient from torch.autograd.grad."""
    x = torch.linspace(-1, 2, 5, dtype=torch.float64)

    def f(t):
        return (t.sin() * t).sum()

    xr = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(f(xr), xr)
    torch.testing.assert_close(accumulated_grad(f, x, n), n * g, rtol=1e-14, atol=1e-14)


def test_second_backward_needs_retain_graph():
    """A second backward through a freed graph raises; with retain_graph=True both calls add up."""
    x = torch.tensor([0.5, -0.5, 2.0], dtype=torch.float64, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()
    exact = ((1 + x) * x.exp()).detach()  # d/dx (x·e^x), closed form
    torch.testing.assert_close(x.grad, exact)  # the failed call added nothing
    x.grad = None
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()  # succeeds: the saved tensors were kept
    torch.testing.assert_close(x.grad, 2 * exact)


def test_graph_without_saved_tensors_backpropagates_twice():
    """(a + 1).sum() saves no tensor: a second backward runs without error and doubles a.grad."""
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    y = (a + 1).sum()
    assert all(not names for _, names in saved_tensor_names(y.grad_fn))
    y.backward()
    torch.testing.assert_close(a.grad, torch.ones(2))  # ∂y/∂a_i = 1
    y.backward()
    torch.testing.assert_close(a.grad, 2 * torch.ones(2))


def test_saved_tensor_names_match_derivative_formulas():
    """exp saves its result, mul both factors, add and sum none; a freed graph fails iff any."""
    x = torch.tensor([0.5, -0.5], requires_grad=True)
    rows = saved_tensor_names((x.exp() * x).sum().grad_fn)
    assert rows == [
        ("SumBackward0", []),  # d sum = ones of the input's shape: no tensor needed
        ("MulBackward0", ["other", "self"]),  # d(uv) = v du + u dv
        ("ExpBackward0", ["result"]),  # d e^x = e^x dx
        ("AccumulateGrad", []),
    ]
    assert saved_tensor_names((x + 1).sum().grad_fn) == [
        ("SumBackward0", []),
        ("AddBackward0", []),
        ("AccumulateGrad", []),
    ]


def test_data_inplace_gives_silently_wrong_grad_detach_raises():
    """In-place through .data: no error, grad 2σ(1-2σ) instead of σ(1-σ); through detach(): error."""
    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    s = torch.sigmoid(x.detach())
    y = x.sigmoid()
    y.detach().mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    y = x.sigmoid()
    y.data.mul_(2)
    assert y._version == 0  # .data has its own version counter
    y.sum().backward()
    torch.testing.assert_close(x.grad, 2 * s * (1 - 2 * s))  # y·(1-y) with the doubled y
    assert not torch.allclose(x.grad, s * (1 - s))


def test_detach_shares_storage():
    """detach() shares memory (an in-place write shows through) and has requires_grad False."""
    t = torch.arange(4.0, requires_grad=True) * 1.0
    d = t.detach()
    assert storage_shared(d, t) and not d.requires_grad and d.grad_fn is None
    d[0] = 42.0
    assert t[0].item() == 42.0  # independent check that the memory is shared
    assert not storage_shared(t.clone(), t)


def test_grad_fn_lines_structure():
    """grad_fn_lines lists the graph depth-first: Tanh → Add → (Mul → a, b), a."""
    a = torch.tensor(0.5, requires_grad=True)
    b = torch.tensor(2.0, requires_grad=True)
    lines = grad_fn_lines((a * b + a).tanh().grad_fn, {"a": a, "b": b})
    assert lines == [
        "TanhBackward0",
        "    AddBackward0",
        "        MulBackward0",
        "            AccumulateGrad (a)",
        "            AccumulateGrad (b)",
        "        AccumulateGrad (a)",
    ]
    assert grad_fn_inputs(a.mul(b).grad_fn)[0].variable is a


def test_non_leaf_grad_is_none_unless_retained():
    """.grad of a non-leaf stays None (with a warning) unless retain_grad() was called."""
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    h, k = x * 3, x * 3
    k.retain_grad()
    (h.sum() + k.sum()).backward()
    with pytest.warns(UserWarning, match="not a leaf"):
        assert h.grad is None
    torch.testing.assert_close(k.grad, torch.ones(2))


def test_inplace_on_saved_output_raises():
    """sigmoid saves its output; y.mul_(2) bumps its version and backward refuses."""
    x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    y = x.sigmoid()
    y.mul_(2)
    assert y._version == 1
    with pytest.raises(RuntimeError, match="needed for gradient computation has been modified"):
        y.sum().backward()


def test_zero_grad_sets_none_and_inference_mode_tensors():
    """zero_grad() sets .grad to None; inference tensors enter autograd unless an op saves them."""
    lin = torch.nn.Linear(2, 1)
    lin(torch.ones(1, 2)).sum().backward()
    torch.optim.SGD(lin.parameters(), lr=0.1).zero_grad()
    assert lin.weight.grad is None
    x = torch.ones(2, requires_grad=True)
    with torch.inference_mode():
        w = x * 2
    (w + x).sum().backward()  # add saves neither input
    torch.testing.assert_close(x.grad, torch.ones(2))
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        _ = w * x  # mul saves both inputs, already in the forward pass


def test_leaves_include_every_tensor_without_requires_grad():
    """requires_grad=False tensors are leaves, results included; requires_grad results are not."""
    k = torch.tensor([2.0])
    a = torch.tensor([1.0], requires_grad=True)
    assert k.is_leaf and (k * 3).is_leaf and a.is_leaf
    assert not (a * 3).is_leaf
    with torch.no_grad():
        assert (a * 3).is_leaf
