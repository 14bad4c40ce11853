import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.ssm_hippo_s4 import (
    causal_conv_fft,
    discretize_bilinear,
    discretize_zoh,
    legendre_basis,
    legs_matrices,
    legs_memory,
    plot_kernels,
    plot_reconstruction,
    reconstruct,
    selective_scan,
    ssm_kernel,
    ssm_scan,
)

GAUSS_X, GAUSS_W = np.polynomial.legendre.leggauss(80)  # exact for polynomials of degree < 160
GAUSS_X, GAUSS_W = (GAUSS_X + 1) / 2, GAUSS_W / 2  # nodes and weights on [0, 1]


def _numpy_basis(n_state, x):
    """√(2n+1)·P_n(2x-1) from numpy's Legendre series (the oracle for the basis)."""
    return np.stack(
        [
            math.sqrt(2 * n + 1) * np.polynomial.legendre.legval(2 * x - 1, [0] * n + [1])
            for n in range(n_state)
        ],
        axis=-1,
    )


def _projection(f, t, n_state):
    """c_n(t) = ∫_0^1 f(t·x) g_n(x) dx by Gauss–Legendre quadrature: the optimal LegS coefficients."""
    return _numpy_basis(n_state, GAUSS_X).T @ (GAUSS_W * f(t * GAUSS_X))


@settings(max_examples=40, deadline=None)
@given(
    coeffs=st.lists(st.floats(-2, 2), min_size=1, max_size=8),
    t=st.floats(0.3, 3.0),
    n_state=st.integers(1, 12),
)
def test_legs_matrices_satisfy_the_projection_ode(coeffs, t, n_state):
    """For polynomial f, the exact projection coefficients obey t·dc/dt = A c + B f(t) to 1e-9."""
    poly = np.polynomial.Polynomial(coeffs)
    dpoly = poly.deriv()
    c = _projection(poly, t, n_state)
    # d/dt ∫_0^1 f(t x) g_n(x) dx = ∫_0^1 x f'(t x) g_n(x) dx
    dc = _numpy_basis(n_state, GAUSS_X).T @ (GAUSS_W * GAUSS_X * dpoly(t * GAUSS_X))
    A, B = legs_matrices(n_state)
    rhs = A.numpy() @ c + B.numpy() * poly(t)
    np.testing.assert_allclose(t * dc, rhs, atol=1e-9, rtol=0)


def test_legs_matrices_entries():
    """A is lower triangular with diagonal -(n+1) and B_n = √(2n+1), as in the reference code."""
    A, B = legs_matrices(5)
    assert torch.equal(A, torch.tril(A))
    assert torch.allclose(torch.diag(A), -torch.arange(1.0, 6.0, dtype=torch.float64))
    assert torch.allclose(A[3, 1], -torch.tensor(math.sqrt(7 * 3), dtype=torch.float64))
    assert torch.allclose(B, torch.sqrt(torch.tensor([1.0, 3, 5, 7, 9], dtype=torch.float64)))


@settings(max_examples=20, deadline=None)
@given(n_state=st.integers(1, 40))
def test_legs_plus_rank_one_is_normal(n_state):
    """S4's NPLR: with P_n = √(n + 1/2), A + PPᵀ = -I/2 + skew (hence normal), to 1e-12."""
    A, _ = legs_matrices(n_state)
    S = A.numpy() + np.outer(np.sqrt(np.arange(n_state) + 0.5), np.sqrt(np.arange(n_state) + 0.5))
    np.testing.assert_allclose((S + S.T) / 2, -0.5 * np.eye(n_state), atol=1e-12)
    np.testing.assert_allclose(S @ S.T, S.T @ S, atol=1e-9 * n_state**2)


@settings(max_examples=30, deadline=None)
@given(n_state=st.integers(1, 20), x=st.lists(st.floats(0, 1), min_size=1, max_size=10))
def test_legendre_basis_equals_numpy_legval(n_state, x):
    """legendre_basis equals numpy's legval scaled by √(2n+1), to 1e-10."""
    xs = np.array(x)
    ours = legendre_basis(n_state, torch.tensor(xs, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(ours, _numpy_basis(n_state, xs), atol=1e-10)


def test_legendre_basis_is_orthonormal():
    """∫_0^1 g_m g_n dx = δ_mn for N = 16 by quadrature, to 1e-12."""
    G = legendre_basis(16, torch.tensor(GAUSS_X)).numpy()
    np.testing.assert_allclose(G.T @ (GAUSS_W[:, None] * G), np.eye(16), atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(coeffs=st.lists(st.floats(-2, 2), min_size=1, max_size=6), n_state=st.integers(6, 16))
def test_legs_memory_approaches_the_optimal_projection(coeffs, n_state):
    """After L = 1000 samples of a polynomial f on (0, 1], c_L is within 1e-2·scale of the exact projection."""
    poly = np.polynomial.Polynomial(coeffs)
    length = 1000
    samples = torch.tensor(poly(np.arange(1, length + 1) / length), dtype=torch.float64)
    c = legs_memory(samples, n_state).numpy()
    scale = 1 + np.abs(coeffs).sum()
    np.testing.assert_allclose(c, _projection(poly, 1.0, n_state), atol=1e-2 * scale, rtol=0)
    # degree < N: the projection is f itself, so the reconstruction recovers the history
    x = np.linspace(0.05, 1, 20)
    rec = reconstruct(torch.tensor(c), torch.tensor(x)).numpy()
    np.testing.assert_allclose(rec, poly(x), atol=5e-2 * scale, rtol=0)


@settings(max_examples=20, deadline=None)
@given(
    n_state=st.integers(1, 10),
    length=st.integers(1, 12),
    seed=st.integers(0, 10**6),
)
def test_legs_memory_step_solves_the_bilinear_equation(n_state, length, seed):
    """c_k from k samples and c_{k-1} from k-1 satisfy (I - A/2k)c_k = (I + A/2k)c_{k-1} + B f_k/k, to 1e-10."""
    f = np.random.default_rng(seed).standard_normal(length)
    A, B = (m.numpy() for m in legs_matrices(n_state))
    eye, k = np.eye(n_state), length
    c_prev = legs_memory(torch.tensor(f[:-1]), n_state).numpy()  # zeros when length == 1
    c_k = legs_memory(torch.tensor(f), n_state).numpy()
    lhs = (eye - A / (2 * k)) @ c_k
    np.testing.assert_allclose(lhs, (eye + A / (2 * k)) @ c_prev + B * f[-1] / k, atol=1e-10)


def test_legs_memory_of_a_constant_is_its_first_coefficient():
    """f ≡ 1 gives c ≈ (1, 0, ..., 0), the exact projection of a constant, to 1e-3."""
    c = legs_memory(torch.ones(2000, dtype=torch.float64), 8)
    np.testing.assert_allclose(c.numpy(), np.eye(8)[0], atol=1e-3)


def _stable_matrix(n_state, seed):
    """A random matrix with eigenvalues in the left half-plane (shifted by its spectral radius)."""
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n_state, n_state))
    return torch.tensor(M - (np.abs(np.linalg.eigvals(M)).max() + 0.5) * np.eye(n_state))


@settings(max_examples=30, deadline=None)
@given(n_state=st.integers(1, 8), seed=st.integers(0, 10**6), dt=st.floats(1e-3, 0.5))
def test_bilinear_is_the_trapezoid_rule(n_state, seed, dt):
    """Ā x + B̄ u solves (I - Δ/2·A) x' = (I + Δ/2·A) x + Δ·B·u (trapezoid step), to 1e-10."""
    A = _stable_matrix(n_state, seed)
    rng = np.random.default_rng(seed + 1)
    B, x, u = rng.standard_normal(n_state), rng.standard_normal(n_state), rng.standard_normal()
    Ab, Bb = discretize_bilinear(A, torch.tensor(B), dt)
    xn = Ab.numpy() @ x + Bb.numpy() * u
    An, eye = A.numpy(), np.eye(n_state)
    np.testing.assert_allclose(
        (eye - dt / 2 * An) @ xn, (eye + dt / 2 * An) @ x + dt * B * u, atol=1e-10
    )


def test_bilinear_matches_the_exponential_to_third_order():
    """‖Ā_bilinear - e^{ΔA}‖ shrinks by ≈ 8 when Δ halves (local error O(Δ³)) for LegS, N = 8."""
    A, _ = legs_matrices(8)
    B = torch.ones(8, dtype=torch.float64)
    errs = [
        torch.linalg.matrix_norm(discretize_bilinear(A, B, dt)[0] - torch.linalg.matrix_exp(dt * A))
        for dt in (4e-3, 2e-3, 1e-3)
    ]
    assert 7.5 < errs[0] / errs[1] < 8.5 and 7.5 < errs[1] / errs[2] < 8.5


@settings(max_examples=30, deadline=None)
@given(n_state=st.integers(1, 8), seed=st.integers(0, 10**6), dt=st.floats(1e-3, 0.5))
def test_zoh_equals_the_block_matrix_exponential(n_state, seed, dt):
    """exp(Δ·[[A, B], [0, 0]]) = [[Ā, B̄], [0, 1]] for ZOH, to 1e-8 (matrix_exp's own accuracy)."""
    A = _stable_matrix(n_state, seed)
    B = torch.tensor(np.random.default_rng(seed + 2).standard_normal(n_state))
    M = torch.zeros(n_state + 1, n_state + 1, dtype=torch.float64)
    M[:n_state, :n_state], M[:n_state, n_state] = A, B
    E = torch.linalg.matrix_exp(dt * M)
    Ab, Bb = discretize_zoh(A, B, dt)
    torch.testing.assert_close(Ab, E[:n_state, :n_state], atol=1e-8, rtol=0)
    torch.testing.assert_close(Bb, E[:n_state, n_state], atol=1e-8, rtol=0)


def _system(n_state, seed, dt):
    A, B = legs_matrices(n_state)
    Ab, Bb = discretize_bilinear(A, B, dt)
    rng = np.random.default_rng(seed)
    return Ab, Bb, torch.tensor(rng.standard_normal(n_state)), rng


@settings(max_examples=40, deadline=None)
@given(
    n_state=st.integers(1, 8),
    length=st.integers(1, 80),
    seed=st.integers(0, 10**6),
    dt=st.floats(1e-3, 1.0),
)
def test_scan_kernel_and_fft_agree_with_numpy(n_state, length, seed, dt):
    """Kernel = C·matrix_power(Ā, l)·B̄; scan and FFT conv = np.convolve with it, to 1e-10."""
    Ab, Bb, C, rng = _system(n_state, seed, dt)
    u = rng.standard_normal(length)
    K_ref = np.array(
        [C.numpy() @ np.linalg.matrix_power(Ab.numpy(), lag) @ Bb.numpy() for lag in range(length)]
    )
    y_ref = np.convolve(u, K_ref)[:length]
    K = ssm_kernel(Ab, Bb, C, length)
    np.testing.assert_allclose(K.numpy(), K_ref, atol=1e-10)
    np.testing.assert_allclose(ssm_scan(Ab, Bb, C, torch.tensor(u)).numpy(), y_ref, atol=1e-10)
    np.testing.assert_allclose(causal_conv_fft(torch.tensor(u), K).numpy(), y_ref, atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(length=st.integers(2, 40), seed=st.integers(0, 10**6))
def test_unpadded_fft_is_circular_convolution(length, seed):
    """pad=False equals the circular sum Σ_j K_j u_{(k-j) mod L}, to 1e-10."""
    rng = np.random.default_rng(seed)
    u, K = rng.standard_normal(length), rng.standard_normal(length)
    circ = np.array([sum(K[j] * u[(k - j) % length] for j in range(length)) for k in range(length)])
    ours = causal_conv_fft(torch.tensor(u), torch.tensor(K), pad=False).numpy()
    np.testing.assert_allclose(ours, circ, atol=1e-10)


def _selective_reference(u, delta, A, B, C):
    """Materialised form y_k = Σ_{j≤k} C_k·(exp(A·Σ_{r=j+1..k} Δ_r) ⊙ Δ_j B_j) u_j."""
    S = np.concatenate([[0.0], np.cumsum(delta)])  # S[k+1] = Δ_0 + ... + Δ_k
    y = np.zeros(len(u))
    for k in range(len(u)):
        for j in range(k + 1):
            decay = np.exp(A * (S[k + 1] - S[j + 1]))
            y[k] += C[k] @ (decay * delta[j] * B[j]) * u[j]
    return y


@settings(max_examples=25, deadline=None)
@given(n_state=st.integers(1, 6), length=st.integers(1, 30), seed=st.integers(0, 10**6))
def test_selective_scan_equals_the_materialised_sum(n_state, length, seed):
    """selective_scan equals the O(L²) closed form with input-dependent Δ, B, C, to 1e-10."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(length)
    delta = np.log1p(np.exp(rng.standard_normal(length)))  # softplus > 0
    A = -np.exp(rng.standard_normal(n_state))
    B, C = rng.standard_normal((length, n_state)), rng.standard_normal((length, n_state))
    ours = selective_scan(*(torch.tensor(a) for a in (u, delta, A, B, C))).numpy()
    np.testing.assert_allclose(ours, _selective_reference(u, delta, A, B, C), atol=1e-10)


def test_plots_draw_one_line_per_curve():
    """plot_reconstruction draws the signal plus one line per N; plot_kernels one line per Δ."""
    import matplotlib.pyplot as plt

    x = torch.linspace(0, 1, 50, dtype=torch.float64)
    ax = plot_reconstruction(x, torch.sin(x), {4: torch.cos(x), 16: x})
    assert len(ax.lines) == 3
    ax2 = plot_kernels({0.1: torch.tensor([1.0, -3.0, 2.0, 0.5]), 0.2: torch.ones(4)})
    assert len(ax2.lines) == 2
    # envelope max_{j ≥ l} |K_j| / max |K|, worked out by hand
    np.testing.assert_allclose(ax2.lines[0].get_ydata(), [1.0, 1.0, 2 / 3, 1 / 6])
    plt.close("all")
