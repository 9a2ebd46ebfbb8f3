"""opdiff.lbfgs: the compact-representation L-BFGS against independent oracles.

Oracles: the two-loop recursion (Nocedal & Wright, Alg. 7.4), written here in NumPy float64,
for the search direction through several wrap-arounds of the ring buffer; the exact minimiser
of a strictly convex quadratic (``np.linalg.solve``); the Rosenbrock minimum (1, 1); Armijo's
sufficient decrease at every accepted step; a non-smooth objective where the line search
fails, which must leave the iterate unchanged and clear the memory.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from opdiff import lbfgs


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def two_loop(s_rows: np.ndarray, y_rows: np.ndarray, g: np.ndarray) -> np.ndarray:
    """H g by the textbook two-loop recursion over pairs given oldest first."""
    q = g.copy()
    alphas = []
    for s, y in zip(s_rows[::-1], y_rows[::-1]):
        rho = 1.0 / (y @ s)
        a = rho * (s @ q)
        q = q - a * y
        alphas.append((a, rho, s, y))
    q = q * (s_rows[-1] @ y_rows[-1]) / (y_rows[-1] @ y_rows[-1])
    for a, rho, s, y in reversed(alphas):
        q = q + s * (a - rho * (y @ q))
    return q


def quadratic(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    h = a @ a.T + 0.5 * n * np.eye(n)
    b = rng.standard_normal(n)
    f = jax.jit(jax.value_and_grad(lambda x: 0.5 * x @ (jnp.asarray(h) @ x) - jnp.asarray(b) @ x))
    return h, b, f


def test_direction_equals_the_two_loop_recursion_through_wraparounds(x64):
    """Memory 4 over 14 iterations (3 wrap-arounds), float64: relative error <= 1e-12."""
    n, m = 25, 4
    _, _, f = quadratic(n)
    x = jnp.asarray(np.random.default_rng(1).standard_normal(n))
    state = lbfgs.init(f, x, m)
    np.testing.assert_array_equal(lbfgs.direction(state, state.grad), state.grad)  # empty
    step = jax.jit(lambda x, s: lbfgs.step(f, x, s))
    s_hist, y_hist = [], []
    checked = 0
    for _ in range(14):
        if s_hist:
            want = two_loop(np.array(s_hist[-m:]), np.array(y_hist[-m:]), np.asarray(state.grad))
            got = np.asarray(lbfgs.direction(state, state.grad))
            assert np.max(np.abs(got - want)) <= 1e-12 * np.max(np.abs(want))
            checked += 1
        x_old, g_old = x, state.grad
        x, state, _ = step(x, state)
        s_hist.append(np.asarray(x - x_old))
        y_hist.append(np.asarray(state.grad - g_old))
        if float(jnp.linalg.norm(state.grad)) < 1e-10:
            break
    assert checked >= 10


def test_quadratic_minimiser_and_monotone_decrease(x64):
    n = 40
    h, b, f = quadratic(n, seed=2)
    x = jnp.zeros(n)
    state = lbfgs.init(f, x, 10)
    x, state, values = jax.jit(lambda x, s: lbfgs.run(f, x, s, 150))(x, state)
    # a line search compares values of f, which near the minimum change by less than eps |f|
    # once |x - x*| ~ sqrt(eps): the attainable accuracy is ~1e-8 relative (measured 6e-8)
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(h, b), rtol=1e-6)
    v = np.asarray(values)
    assert np.all(np.diff(v) <= 1e-12 * np.abs(v[:-1]))  # Armijo: never up


def test_rosenbrock(x64):
    def rosen(z):
        return (1 - z[0]) ** 2 + 100 * (z[1] - z[0] ** 2) ** 2

    f = jax.value_and_grad(rosen)
    x = jnp.array([-1.2, 1.0])
    state = lbfgs.init(f, x, 5)
    x, state, values = jax.jit(lambda x, s: lbfgs.run(f, x, s, 200))(x, state)
    np.testing.assert_allclose(np.asarray(x), [1.0, 1.0], atol=1e-7)
    assert float(state.value) < 1e-14


def test_armijo_holds_at_every_accepted_step(x64):
    """Re-evaluate f at every iterate: f(x_new) <= f(x) + c1 * g.(x_new - x)."""
    _, _, f = quadratic(30, seed=3)
    x = jnp.ones(30)
    state = lbfgs.init(f, x, 6)
    step = jax.jit(lambda x, s: lbfgs.step(f, x, s, c1=0.3))
    for _ in range(25):
        v0, g0 = f(x)
        x_new, state, evals = step(x, state)
        v1, _ = f(x_new)
        assert float(v1) <= float(v0) + 0.3 * float(g0 @ (x_new - x)) + 1e-13
        assert int(evals) >= 1
        x = x_new


def test_failed_line_search_stays_and_clears_the_memory():
    """A curvature pair with tiny s.y (gamma = 1e4) makes the unit step on |x| overshoot by
    orders of magnitude; with no backtracking allowed the step must fail Armijo, leave x
    unchanged, keep its value and empty the memory."""

    def f(x):
        return jnp.sum(jnp.abs(x))

    vg = jax.value_and_grad(f)
    x = jnp.array([1e-3, -2e-3], jnp.float32)
    state = lbfgs.init(vg, x, 3)
    # a fake curvature pair with tiny s.y makes H huge: the unit step overshoots far
    s = jnp.array([1.0, 0.0]); y = jnp.array([1e-4, 0.0])
    state = state._replace(s=state.s.at[0].set(s), y=state.y.at[0].set(y),
                           sy=state.sy.at[0, 0].set(s @ y), yy=state.yy.at[0, 0].set(y @ y),
                           age=state.age.at[0].set(0), count=jnp.ones((), jnp.int32))
    x_new, new, evals = lbfgs.step(vg, x, state, max_backtracks=0)
    np.testing.assert_array_equal(np.asarray(x_new), np.asarray(x))
    assert int(new.count) == 0 and np.all(np.asarray(new.age) == -1)
    assert float(new.value) == float(state.value) and int(evals) == 1


def test_float32_deeponet_sized_run_is_deterministic():
    rng = np.random.default_rng(4)
    a = jnp.asarray(rng.standard_normal((200, 50)), jnp.float32)
    x_true = jnp.asarray(rng.standard_normal(50) / 10, jnp.float32)
    b = jnp.tanh(a @ x_true)  # realisable: the loss goes to 0
    f = jax.value_and_grad(lambda x: jnp.mean((jnp.tanh(a @ x) - b) ** 2))
    go = jax.jit(lambda x: lbfgs.run(f, x, lbfgs.init(f, x, 8), 60))
    r1, r2 = go(jnp.zeros(50, jnp.float32)), go(jnp.zeros(50, jnp.float32))
    for u, v in zip(jax.tree.leaves(r1), jax.tree.leaves(r2)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    assert r1[2][-1] < 1e-4 * r1[2][0]


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(memory=0), ValueError, "memory"),
    (dict(memory=True), ValueError, "memory"),
    (dict(memory=2.5), ValueError, "memory"),
])
def test_bad_memory(kwargs, err, match):
    f = jax.value_and_grad(lambda x: jnp.sum(x ** 2))
    with pytest.raises(err, match=match):
        lbfgs.init(f, jnp.ones(3), **kwargs)


def test_bad_x():
    f = jax.value_and_grad(lambda x: jnp.sum(x ** 2))
    with pytest.raises(ValueError, match="x must be a 1-D float array"):
        lbfgs.init(f, jnp.ones((2, 2)), 3)
    with pytest.raises(ValueError, match="x must be a 1-D float array"):
        lbfgs.init(f, jnp.ones(3, jnp.int32), 3)
