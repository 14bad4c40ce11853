import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.adamw_vs_adam import (
    adam_l2_step,
    adamw_step,
    final_risk_grid,
    heldout_risk,
    make_regression,
    max_abs_diff,
    param_groups,
    random_quadratic,
    run_hand,
    run_torch,
)

F64 = torch.float64
TOL = 1e-10  # float64: hand and torch differ only by rounding (~1e-16 per op)

# Trajectories use practical settings. With a short second-moment memory (beta2 ~ 0.9), beta1 ~ 0
# and a large lr, Adam hovers near sign descent and is chaotic: 1e-16 rounding differences then
# grow ~3x per step and reach 1e-9 within 40 steps, although every single step agrees to 1e-16.
# The wide ranges are covered step by step (teacher forcing) in test_single_steps_match_torch.
hyper = st.fixed_dictionaries(
    {
        "lr": st.floats(1e-4, 0.1),
        "betas": st.tuples(st.floats(0.5, 0.99), st.floats(0.99, 0.9999)),
        "eps": st.sampled_from([1e-8, 1e-6, 1e-3]),
        "weight_decay": st.floats(0.0, 2.0),
    }
)
wide_hyper = st.fixed_dictionaries(
    {
        "lr": st.floats(1e-5, 1.0),
        "betas": st.tuples(st.floats(0.0, 0.999), st.floats(0.5, 0.99999)),
        "eps": st.sampled_from([1e-8, 1e-6, 1e-3]),
        "weight_decay": st.floats(0.0, 5.0),
    }
)
shapes = st.sampled_from([(1,), (5,), (3, 4), (2, 1, 3)])
PAIRS = [(adam_l2_step, torch.optim.Adam), (adamw_step, torch.optim.AdamW)]


def _problem(shape, seed):
    dim = math.prod(shape)
    a, b = random_quadratic(dim, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    return a, b, torch.randn(shape, generator=gen, dtype=F64)


@settings(max_examples=25, deadline=None)
@given(hp=hyper, shape=shapes, seed=st.integers(0, 10_000), steps=st.integers(20, 40))
def test_trajectories_match_torch(hp, shape, seed, steps):
    """20-40 steps, any shape: hand Adam+L2/AdamW = torch Adam(weight_decay)/AdamW to 1e-10."""
    a, b, theta0 = _problem(shape, seed)
    kw = dict(a=a, b=b, theta0=theta0, steps=steps, **hp)
    for step_fn, opt_cls in PAIRS:
        hand, ref = run_hand(step_fn, **kw), run_torch(opt_cls, **kw)
        assert hand.shape == ref.shape == (steps + 1, *shape)
        assert max_abs_diff(hand, ref) < TOL


def _torch_single_step(opt_cls, *, theta, grad, m, v, t, **hp):
    """Oracle: one torch.optim step started from the given state (m, v, t-1 steps taken)."""
    p = theta.clone().requires_grad_(True)
    opt = opt_cls([p], foreach=False, **hp)
    opt.state[p] = {
        "step": torch.tensor(float(t - 1)),
        "exp_avg": m.clone(),
        "exp_avg_sq": v.clone(),
    }
    p.grad = grad.clone()
    opt.step()
    return p.detach(), opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"]


@settings(max_examples=40, deadline=None)
@given(hp=wide_hyper, shape=shapes, seed=st.integers(0, 10_000))
def test_single_steps_match_torch(hp, shape, seed):
    """From 25 random (θ, g, m, v, t) and wide hyperparameters, one step's θ, m, v = torch's."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(25):
        theta, grad, m = (torch.randn(shape, generator=gen, dtype=F64) for _ in range(3))
        v = torch.rand(shape, generator=gen, dtype=F64) ** 4  # ≥ 0, some tiny
        t = int(torch.randint(1, 1000, (), generator=gen))
        state = dict(theta=theta, grad=grad, m=m, v=v, t=t)
        for step_fn, opt_cls in PAIRS:
            hand, ref = step_fn(**state, **hp), _torch_single_step(opt_cls, **state, **hp)
            for x, y in zip(hand, ref, strict=True):  # θ, m, v
                assert torch.allclose(x, y, rtol=1e-12, atol=1e-14)


@settings(max_examples=30, deadline=None)
@given(hp=wide_hyper, seed=st.integers(0, 10_000))
def test_first_step_closed_form(hp, seed):
    """Step 1 equals the bias-corrected closed form: m̂₁ = g, v̂₁ = g², so Δθ = -γ·g/(|g|+ε)."""
    gen = torch.Generator().manual_seed(seed)
    theta, grad = torch.randn(6, generator=gen, dtype=F64), torch.randn(6, generator=gen, dtype=F64)
    lr, lam, eps = hp["lr"], hp["weight_decay"], hp["eps"]
    zeros = torch.zeros(6, dtype=F64)
    common = dict(grad=grad, m=zeros, v=zeros, t=1, lr=lr, weight_decay=lam)
    common.update(betas=hp["betas"], eps=eps)
    w, _, _ = adamw_step(theta=theta, **common)
    l2, _, _ = adam_l2_step(theta=theta, **common)
    g2 = grad + lam * theta  # the L2 gradient
    assert torch.allclose(w, theta * (1 - lr * lam) - lr * grad / (grad.abs() + eps), 0, 1e-14)
    assert torch.allclose(l2, theta - lr * g2 / (g2.abs() + eps), 0, 1e-14)


def test_first_step_is_sign_step_regardless_of_gradient_scale():
    """Bias-corrected first AdamW step: θ(1-γλ) - γ·sign(g) (to 1e-3) for |g| from 1e-4 to 1e3."""
    theta = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=F64)
    grad = torch.tensor([1e-4, -1e-2, 1.0, -1e3], dtype=F64)
    zeros = torch.zeros(4, dtype=F64)
    new, _, _ = adamw_step(theta=theta, grad=grad, m=zeros, v=zeros, t=1, lr=0.1, weight_decay=0.5)
    assert torch.allclose(new, theta * (1 - 0.1 * 0.5) - 0.1 * torch.sign(grad), rtol=1e-3)


@settings(max_examples=25, deadline=None)
@given(hp=hyper, seed=st.integers(0, 10_000))
def test_trajectories_differ_iff_decay(hp, seed):
    """λ>0: Adam+L2 and AdamW trajectories differ (as torch's do); λ=0: they are identical."""
    a, b, theta0 = _problem((6,), seed)
    kw = dict(a=a, b=b, theta0=theta0, steps=20, lr=hp["lr"], betas=hp["betas"], eps=hp["eps"])
    lam = max(hp["weight_decay"], 0.05)
    hand_gap = max_abs_diff(*(run_hand(f, weight_decay=lam, **kw) for f, _ in PAIRS))
    ref_gap = max_abs_diff(*(run_torch(c, weight_decay=lam, **kw) for _, c in PAIRS))
    assert ref_gap > 1e-6
    assert abs(hand_gap - ref_gap) < TOL
    l2, w = (run_hand(f, weight_decay=0.0, **kw) for f, _ in PAIRS)
    assert torch.equal(l2, w)


def test_steps_do_not_modify_inputs():
    """The step functions are pure: theta, grad, m, v are left unchanged."""
    gen = torch.Generator().manual_seed(0)
    args = {k: torch.rand(5, generator=gen, dtype=F64) for k in ("theta", "grad", "m", "v")}
    before = {k: x.clone() for k, x in args.items()}
    for step in (adam_l2_step, adamw_step):
        step(**args, t=3, lr=0.1, weight_decay=0.3)
        assert all(torch.equal(args[k], before[k]) for k in args)


def test_long_run_equilibria_match_closed_forms():
    """Separable quadratic ½Σhᵢ(θᵢ-c)²: Adam+L2 → ridge c·h/(h+λ); AdamW → box clip(c, ±1/λ)."""
    h = torch.logspace(-3, 1, 9, dtype=F64)
    c, lam = 2.0, 1.0
    kw = dict(a=torch.diag(h), b=h * c, theta0=torch.zeros(9, dtype=F64), steps=5000, lr=0.01)
    l2 = run_hand(adam_l2_step, weight_decay=lam, **kw)[-1]
    w = run_hand(adamw_step, weight_decay=lam, **kw)[-1]
    assert max_abs_diff(l2, c * h / (h + lam)) < 1e-3  # minimizer of f + λ/2·|θ|²
    assert max_abs_diff(w, torch.full_like(h, min(c, 1 / lam))) < 2e-2  # Xie & Li (2024)


def _torch_risk(opt_cls, data, lr, weight_decay, steps):
    """Oracle: run a torch.optim optimizer on (1/2n)|Xθ - y|² and return the exact test risk."""
    p = data["theta0"].clone().requires_grad_(True)
    opt = opt_cls([p], lr=lr, weight_decay=weight_decay, foreach=False)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * ((data["x"] @ p - data["y"]) ** 2).mean()).backward()
        opt.step()
    w_star, noise = data["w_star"], data["noise"]
    return ((p.detach() - w_star) ** 2).sum().item() + noise.item() ** 2


def test_risk_grid_matches_torch_cells():
    """Every cell of the vectorized (lr, λ) grid equals a separate torch.optim run (both modes)."""
    data = make_regression(n=8, dim=12, noise=0.2, seed=3)
    lrs = torch.tensor([0.003, 0.03], dtype=F64)
    lams = torch.tensor([0.01, 0.3], dtype=F64)
    grids = {
        (torch.optim.Adam, False): final_risk_grid(
            adam_l2_step, lrs=lrs, lams=lams, steps=30, data=data
        ),
        (torch.optim.AdamW, False): final_risk_grid(
            adamw_step, lrs=lrs, lams=lams, steps=30, data=data
        ),
        (torch.optim.AdamW, True): final_risk_grid(
            adamw_step, lrs=lrs, lams=lams, steps=30, data=data, per_step_decay=True
        ),
    }
    for (opt_cls, per_step), grid in grids.items():
        assert grid.shape == (2, 2)
        for i, lr in enumerate(lrs.tolist()):
            for j, lam in enumerate(lams.tolist()):
                wd = lam / lr if per_step else lam
                ref = _torch_risk(opt_cls, data, lr, wd, 30)  # autograd: other rounding
                assert math.isclose(grid[i, j].item(), ref, rel_tol=1e-8)


def test_heldout_risk_matches_monte_carlo():
    """Closed-form test risk |θ-w*|²+σ² agrees with a fresh-sample estimate (4 std errors)."""
    data = make_regression(n=5, dim=7, noise=0.5, seed=0)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(200_000, 7, generator=gen, dtype=F64)
    y = x @ data["w_star"] + 0.5 * torch.randn(200_000, generator=gen, dtype=F64)
    sq = (x @ data["theta0"] - y) ** 2
    se = sq.std().item() / math.sqrt(len(sq))
    assert abs(sq.mean().item() - heldout_risk(data["theta0"], data).item()) < 4 * se


def test_param_groups_exclude_bias_and_norm():
    """Zero-gradient AdamW step: Linear weights shrink by exactly (1-γλ); biases/LayerNorm don't move."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
    groups = param_groups(model, weight_decay=0.1)
    assert {id(p) for p in groups[0]["params"]} == {id(model[0].weight), id(model[2].weight)}
    assert len(groups[1]["params"]) == 4  # 2 Linear biases + LayerNorm weight and bias
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(groups, lr=0.5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for p, p0 in zip(model.parameters(), before, strict=True):
        expected = p0 * (1 - 0.5 * 0.1) if p.ndim >= 2 else p0
        assert torch.equal(p.detach(), expected)
