r"""Reverse-mode automatic differentiation from the inside. A scalar `Value` records, for every
operation, its inputs and the local derivatives $\partial v_j / \partial v_i$; `backward()` sorts
the recorded graph topologically and sweeps it from the output back to the leaves, applying the
chain rule $\bar v_i = \sum_j \bar v_j \, \partial v_j / \partial v_i$. That is a model of
`loss.backward()`: PyTorch's engine reaches an equivalent order without sorting first, by counting
each node's pending gradients and running the nodes whose count reached zero from a ready queue.
Next to it: a custom `torch.autograd.Function` (softplus with a hand-written backward), a walker
that prints the `grad_fn` graph through `next_functions`, a lister of the tensors each node saved
for backward, and a small layered-layout helper that draws either graph with matplotlib.
"""

# --8<-- [start:imports]
import math

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path

# --8<-- [end:imports]


# --8<-- [start:topo_sort]
def topo_sort(root, inputs_of):
    """Every node reachable from `root`, each listed after all of its inputs (DFS post-order)."""
    order, seen = [], set()

    def visit(node):
        if node in seen:  # fan-out: a node reached twice is listed once
            return
        seen.add(node)
        for inp in inputs_of(node):
            visit(inp)
        order.append(node)  # all of node's inputs are already in `order`

    visit(root)
    return order


# --8<-- [end:topo_sort]


# --8<-- [start:value]
class Value:
    """A scalar that remembers how it was made: its inputs and ∂self/∂input for each of them."""

    def __init__(self, data, inputs=(), local_grads=(), op="", label=""):
        self.data = float(data)
        self.grad = 0.0  # ∂root/∂self, filled in by root.backward()
        self.inputs = tuple(inputs)  # the Values this one was computed from (empty: a leaf)
        self.local_grads = tuple(local_grads)  # ∂self/∂inputs[k], fixed at forward time
        self.op = op
        self.label = label

    def __repr__(self):
        return f"Value({self.label or self.op}, data={self.data:.4g}, grad={self.grad:.4g})"

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)  # constants become leaves
        return Value(self.data + other.data, (self, other), (1.0, 1.0), "+")  # ∂(a+b)/∂a = 1

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data), "*")

    __radd__ = __add__  # 2 + v: both operations are commutative
    __rmul__ = __mul__

    def tanh(self):
        t = math.tanh(self.data)
        return Value(t, (self,), (1.0 - t * t,), "tanh")  # tanh'(x) = 1 - tanh²(x)

    def exp(self):
        e = math.exp(self.data)
        return Value(e, (self,), (e,), "exp")  # exp'(x) = exp(x)

    def backward(self):
        """Fill `.grad` of every node reachable from self with ∂self/∂node (call once)."""
        self.grad = 1.0  # ∂root/∂root
        for node in reversed(topo_sort(self, lambda v: v.inputs)):  # each node before its inputs
            for inp, local in zip(node.inputs, node.local_grads, strict=True):
                inp.grad += node.grad * local  # v̄_i += v̄_j · ∂v_j/∂v_i (sums over fan-out)


# --8<-- [end:value]


# --8<-- [start:compare]
def engine_grads(f, xs):
    """∂f/∂x for each x in `xs` (floats), computed by the Value engine."""
    leaves = [Value(x) for x in xs]
    f(*leaves).backward()
    return [v.grad for v in leaves]


def torch_grads(f, xs):
    """The same gradients from torch.autograd.grad in float64: the oracle."""
    leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    return [g.item() for g in torch.autograd.grad(f(*leaves), leaves)]


# --8<-- [end:compare]


# --8<-- [start:softplus]
class Softplus(torch.autograd.Function):
    r"""softplus(x) = log(1 + e^x) with a hand-written backward: softplus'(x) = sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)  # its version is recorded and checked when backward unpacks it
        return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))  # = log(1+e^x), no overflow

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * torch.sigmoid(x)  # vector-Jacobian product; the Jacobian is diagonal


softplus = Softplus.apply
# --8<-- [end:softplus]


# --8<-- [start:grad_fn_lines]
def grad_fn_text(fn, leaves=None, sep=" "):
    """A grad_fn node's class name; for AccumulateGrad also the name of the leaf it writes to."""
    names = [k for k, t in (leaves or {}).items() if t is getattr(fn, "variable", None)]
    return type(fn).__name__ + "".join(f"{sep}({n})" for n in names[:1])  # e.g. MulBackward0


def grad_fn_lines(fn, leaves=None, depth=0):
    """The graph behind `tensor.grad_fn`, one indented line per node, via `next_functions`."""
    if fn is None:  # an input that needs no gradient
        return []
    lines = ["    " * depth + grad_fn_text(fn, leaves)]
    for next_fn, _ in fn.next_functions:  # (Node, output index) pairs
        lines += grad_fn_lines(next_fn, leaves, depth + 1)
    return lines


def grad_fn_inputs(fn):
    """The nodes a grad_fn hands gradients to (its `next_functions`, None dropped)."""
    return [g for g, _ in fn.next_functions if g is not None]


# --8<-- [end:grad_fn_lines]


# --8<-- [start:saved]
def saved_tensor_names(root):
    """(node name, names of the tensors it saved for backward) for `root` and every node below.

    Read before backward(): once a graph is freed, reading a `_saved_*` tensor raises.
    """
    rows = []
    for fn in reversed(topo_sort(root, grad_fn_inputs)):  # root first
        names = [k for k in dir(fn) if k.startswith("_saved_")]  # e.g. _saved_self, _saved_alpha
        tensors = [k[len("_saved_") :] for k in names if isinstance(getattr(fn, k), torch.Tensor)]
        rows.append((type(fn).__name__, tensors))  # sizes and scalars are not tensors
    return rows


# --8<-- [end:saved]


# --8<-- [start:accumulate]
def accumulated_grad(f, x, n):
    """x.grad after n backward calls through one graph of f(x), with no zeroing in between."""
    x = x.detach().requires_grad_()  # a fresh leaf whose .grad starts as None
    y = f(x)
    for _ in range(n):
        y.backward(retain_graph=True)  # keep saved tensors so the graph can be reused
    return x.grad


# --8<-- [end:accumulate]


# --8<-- [start:storage]
def storage_shared(a, b):
    """True when two tensors live in the same memory (as `t.detach()` and `t` do)."""
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


# --8<-- [end:storage]


# --8<-- [start:layout]
def layered_layout(root, inputs_of):
    """(x, y) per node: x = longest path from a leaf (topological depth), y spreads a column."""
    order = topo_sort(root, inputs_of)
    depth = {}
    for node in order:  # inputs come first, so their depth is already known
        depth[node] = 1 + max((depth[i] for i in inputs_of(node)), default=-1)
    columns = {}
    for node in order:
        columns.setdefault(depth[node], []).append(node)
    pos = {}
    for d, nodes in columns.items():
        for k, node in enumerate(nodes):
            pos[node] = (float(d), (len(nodes) - 1) / 2 - k)  # column centred on y = 0
    return pos


BOX_STYLE = {"boxstyle": "round,pad=0.02", "fc": "#eef3fb", "ec": "#4a6fa5", "zorder": 2}
ARROW_STYLE = {"arrowstyle": "<|-", "mutation_scale": 12, "color": "0.45", "lw": 0.9, "zorder": 1}
EDGE_LABEL_STYLE = {"fontsize": 10, "color": "#b0413e", "ha": "center", "va": "center", "zorder": 3,
                    "bbox": {"fc": "white", "ec": "none", "pad": 0.5}}  # fmt: skip


def draw_graph(root, inputs_of, node_text, edge_text=None, ax=None, box=(0.8, 0.55)):
    """Leaves on top, root at the bottom; a box per node and, per edge, an arrow output → input.

    Each column of `layered_layout` becomes a row, so the figure stays phone-narrow however deep
    the graph. Arrows point the way gradients travel in backward(); an edge that skips rows bends
    away from the centre line so it does not cross the boxes in between.
    """
    pos = {node: (-y, -x) for node, (x, y) in layered_layout(root, inputs_of).items()}
    rows = 1 - min(y for _, y in pos.values())
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 1.3 * rows + 0.4), layout="constrained")
    w, h = box  # box size in data units (rows are 1 apart, boxes in a row 1 apart)
    xs = [p[0] for p in pos.values()]
    for node, (x, y) in pos.items():
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, **BOX_STYLE))
        ax.text(x, y, node_text(node), ha="center", va="center", fontsize=10.5, zorder=3)
        for k, inp in enumerate(inputs_of(node)):
            (x0, y0), (x1, y1) = (pos[inp][0], pos[inp][1] - h / 2), (x, y + h / 2)
            side = 1.0 if x0 + x1 >= 0 else -1.0
            bend = side * min(0.9, 0.45 * (pos[inp][1] - y - 1))  # 0 for neighbouring rows
            ctrl = ((x0 + x1) / 2 + bend, (y0 + y1) / 2)  # quadratic Bézier control point
            curve = Path([(x0, y0), ctrl, (x1, y1)], [Path.MOVETO, Path.CURVE3, Path.CURVE3])
            ax.add_patch(FancyArrowPatch(path=curve, **ARROW_STYLE))
            if edge_text is not None:  # label at the curve's midpoint B(1/2)
                ex, ey = (x0 + x1) / 4 + ctrl[0] / 2, (y0 + y1) / 4 + ctrl[1] / 2
                ax.text(ex, ey, edge_text(node, k), **EDGE_LABEL_STYLE)
            xs.append((x0 + x1) / 2 + bend / 2)  # how far the bent curve reaches
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - w, max(xs) + w)
    ax.set_ylim(min(ys) - h, max(ys) + h)
    ax.axis("off")
    return ax


def draw_value_graph(root, ax=None):
    """The Value graph with data and grad in each box; edges carry v̄_j · ∂v_j/∂v_i."""
    return draw_graph(
        root,
        lambda v: v.inputs,
        lambda v: f"{v.label or v.op}\n{v.data:.3f}\ngrad {v.grad:.3f}",
        lambda v, k: f"{v.grad * v.local_grads[k]:.3f}",  # gradient flowing along this edge
        ax=ax,
    )


# --8<-- [end:layout]


if __name__ == "__main__":

    def f(a, b):
        c = a * b
        return (c + a).tanh() * b + c.exp()  # a and b both fan out

    print("engine:", engine_grads(f, [0.5, -1.5]))
    print("torch: ", torch_grads(f, [0.5, -1.5]))
    x = torch.linspace(-2, 2, 4, dtype=torch.float64, requires_grad=True)
    print("gradcheck(Softplus):", torch.autograd.gradcheck(softplus, (x,)))
    print("two backward calls:", accumulated_grad(lambda t: (t * t).sum(), x, 2))
    print("\n".join(grad_fn_lines(f(x[0], x[1]).grad_fn)))
