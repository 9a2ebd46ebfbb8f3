"""Operator solvers against closed forms, independent SciPy references and convergence orders.

Every tolerance below is stated next to the assertion with the reason for its size.
Orders are least-squares slopes of log(error) against log(step).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.special import ive

from opdiff.operators import burgers as bg
from opdiff.operators import integral, ode
from opdiff.operators import reaction_diffusion as rd


def _slope(steps, errors):
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


def _smooth_input(x):
    return np.sin(2 * np.pi * x) + 0.5 * np.cos(3 * x) + 0.3 * x


# --- antiderivative -------------------------------------------------------------------------


def test_antiderivative_exact_for_linear_and_trapezoid_error_for_square(x64):
    # Degree <= 1: the PL representation is the function itself, so the result is exact
    # (round-off, 1e-13 over [0, 2]), on a uniform and on a non-uniform grid.
    x = np.linspace(0.0, 2.0, 21)
    xn = np.sort(np.concatenate([[0.0, 2.0], np.random.default_rng(0).uniform(0, 2, 30)]))
    for g in (x, xn):
        s = np.asarray(integral.antiderivative((3.0 - 2.0 * g)[None], g))[0]
        np.testing.assert_allclose(s, 3.0 * g - g**2, rtol=0, atol=1e-13)
    # x^2: each interval's trapezoid overshoots by h^3/6, so s_i - x_i^3/3 = h^2 x_i / 6.
    h = x[1] - x[0]
    s = np.asarray(integral.antiderivative((x**2)[None], x))[0]
    np.testing.assert_allclose(s - x**3 / 3, h**2 * x / 6, rtol=0, atol=1e-13)


def test_antiderivative_of_sine_converges_at_order_two(x64):
    # Interpolation error of the PL input: O(h^2); slope within 0.1 of 2.
    hs, errs = [], []
    for n in (11, 21, 41, 81, 161):
        x = np.linspace(0.0, 1.0, n)
        s = np.asarray(integral.antiderivative(np.sin(2 * np.pi * x)[None], x))[0]
        errs.append(np.max(np.abs(s - (1 - np.cos(2 * np.pi * x)) / (2 * np.pi))))
        hs.append(x[1])
    assert abs(_slope(hs, errs) - 2.0) < 0.1


# --- ODEs driven by a piecewise-linear input -------------------------------------------------


def _ivp(f, s0, x, rtol=1e-12):
    """DOP853 (rtol = atol = 1e-12) with u = np.interp of the grid values, restarted at every
    node: the kinks of the PL input fall on segment ends, where DOP853 would otherwise lose
    ~1e-10 stepping across them."""
    out = [np.asarray(s0, np.float64)]
    for a, b in zip(x[:-1], x[1:]):
        sol = solve_ivp(f, (a, b), out[-1], method="DOP853", rtol=rtol, atol=rtol)
        assert sol.success
        out.append(sol.y[:, -1])
    return np.array(out)


def test_nonlinear_ode_rk4_order_four_and_matches_solve_ivp(x64):
    x = np.linspace(0.0, 1.0, 11)  # coarse: h = 0.1
    u = _smooth_input(x)
    ref = _ivp(lambda t, s: -s * s + np.interp(t, x, u), [0.0], x)[:, 0]
    subs = (1, 2, 4, 16)
    errs = [np.max(np.abs(np.asarray(ode.nonlinear_ode(u[None], x, substeps=m))[0] - ref))
            for m in subs]
    # Errors 2.5e-5 .. 4e-10, far above the reference's ~1e-13: slope within 0.2 of 4.
    assert abs(_slope(1.0 / np.array(subs), errs) - 4.0) < 0.2
    # Enough substeps (16): agreement with DOP853 (rtol = atol = 1e-12) to 1e-9.
    assert errs[-1] < 1e-9


def test_pendulum_rk4_order_four_and_matches_solve_ivp(x64):
    x = np.linspace(0.0, 3.0, 31)  # T = 3 (the seq2seq pendulum); h = 0.1
    u = _smooth_input(x / 3)
    k = 1.0

    def f(t, s):
        return [s[1], -k * np.sin(s[0]) + np.interp(t, x, u)]

    ref = _ivp(f, [0.0, 0.0], x)
    subs = (1, 2, 4, 16)
    errs = []
    for m in subs:
        s = np.asarray(ode.pendulum(u[None], x, k=k, substeps=m))
        assert s.shape == (1, 31, 2)
        errs.append(np.max(np.abs(s[0] - ref)))
    # Errors 3.5e-6 .. 5e-11: slope within 0.2 of 4; agreement with DOP853 to 1e-9.
    assert abs(_slope(1.0 / np.array(subs), errs) - 4.0) < 0.2
    assert errs[-1] < 1e-9


def test_antiderivative_through_the_ode_path_equals_integral(x64):
    # RK4 on s' = u with u linear inside each step is Simpson's rule on a linear integrand:
    # exact, so the two paths agree to round-off on any grid and any substeps.
    rng = np.random.default_rng(1)
    x = np.sort(np.concatenate([[0.0, 1.0], rng.uniform(0, 1, 48)]))
    u = rng.standard_normal((3, 50))
    direct = np.asarray(integral.antiderivative(u, x))
    for m in (1, 3):
        via_ode = np.asarray(ode.solve_driven_ode(_identity_rhs, 0.0, u, x, substeps=m))
        np.testing.assert_allclose(via_ode, direct, rtol=0, atol=1e-13)


def _identity_rhs(s, u, x):
    return u


def test_float32_default_and_traceable():
    # x64 off: float32 in, float32 out; the public functions work under jit (no NaN check
    # on tracers) and agree with the eager call.
    x = np.linspace(0.0, 1.0, 33)
    u = np.stack([_smooth_input(x), np.cos(5 * x)])
    eager = ode.nonlinear_ode(u, x)
    traced = jax.jit(lambda v: ode.nonlinear_ode(v, x))(jnp.asarray(u))
    assert eager.dtype == traced.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(traced), np.asarray(eager), rtol=0, atol=1e-6)
    assert integral.antiderivative(u, x).dtype == jnp.float32
    assert ode.pendulum(u, x).dtype == jnp.float32
    assert bg.burgers(u[:, :-1], nu=0.1, t_final=0.1, nt=10).dtype == jnp.float32


# --- diffusion-reaction ----------------------------------------------------------------------


def _dr_source(x):
    return np.sin(np.pi * x) + 0.8 * np.sin(2 * np.pi * x) * np.exp(x)


def _dr_method_of_lines(nx, D, k, nt, t_final=1.0):
    """The same semi-discrete system, integrated by DOP853 with rtol 1e-11."""
    x = np.linspace(0.0, 1.0, nx)
    m = nx - 2
    lap = (np.diag(-2.0 * np.ones(m)) + np.diag(np.ones(m - 1), 1)
           + np.diag(np.ones(m - 1), -1)) * (nx - 1) ** 2
    src = _dr_source(x)[1:-1]
    sol = solve_ivp(lambda t, s: D * lap @ s + k * s * s + src, (0.0, t_final), np.zeros(m),
                    method="DOP853", rtol=1e-11, atol=1e-13,
                    t_eval=np.linspace(0.0, t_final, nt + 1))
    assert sol.success
    return sol.y.T


@pytest.mark.parametrize("D,k,nts", [(0.01, 0.01, (10, 20, 40, 80)),  # the paper's parameters
                                     (0.05, 1.0, (20, 40, 80))])  # reaction-dominated
def test_diffusion_reaction_second_order_in_time(x64, D, k, nts):
    nx = 33
    u = _dr_source(np.linspace(0.0, 1.0, nx))[None]
    errs = []
    for nt in nts:
        s = np.asarray(rd.diffusion_reaction(u, D=D, k=k, nt=nt))[0]
        assert np.all(s[:, [0, -1]] == 0) and np.all(s[0] == 0)
        errs.append(np.max(np.abs(s[:, 1:-1] - _dr_method_of_lines(nx, D, k, nt))))
    # Errors 2e-4 .. 3e-6 (paper) and 7e-3 .. 5e-4 (reaction), reference ~1e-10:
    # slope within 0.2 of 2.
    assert abs(_slope(1.0 / np.array(nts), errs) - 2.0) < 0.2


def test_diffusion_reaction_second_order_in_space(x64):
    # Fine reference nx = 513 with the same nt: the time error (same dt, leading term
    # independent of h) cancels, leaving the spatial error; slope within 0.2 of 2.
    nt = 20
    ref = np.asarray(rd.diffusion_reaction(_dr_source(np.linspace(0, 1, 513))[None], nt=nt))[0]
    nxs = (9, 17, 33, 65)
    errs = []
    for nx in nxs:
        s = np.asarray(rd.diffusion_reaction(_dr_source(np.linspace(0, 1, nx))[None], nt=nt))[0]
        errs.append(np.max(np.abs(s - ref[:, :: 512 // (nx - 1)])))
    assert abs(_slope(1.0 / (np.array(nxs) - 1), errs) - 2.0) < 0.2


def test_diffusion_reaction_closed_form_without_reaction(x64):
    # k = 0, u = sin(pi x): PDE solution (1 - exp(-D pi^2 t)) sin(pi x) / (D pi^2).
    D, nx, nt = 0.01, 101, 100
    x = np.linspace(0.0, 1.0, nx)
    t = np.linspace(0.0, 1.0, nt + 1)[:, None]
    s = np.asarray(rd.diffusion_reaction(np.sin(np.pi * x)[None], D=D, k=0.0, nt=nt))[0]
    # The scheme reproduces its own closed form (sin(pi x) is an eigenvector of L, AB2 of a
    # constant source is exact) to round-off: s^n = (1 - r^n) sin(pi x) / (D |mu_1|).
    mu = float(rd.laplacian_eigenvalues(nx)[0])
    a = 0.5 * D / nt
    r = (1 + a * mu) / (1 - a * mu)
    discrete = (1 - r ** np.arange(nt + 1))[:, None] * np.sin(np.pi * x) / (-D * mu)
    np.testing.assert_allclose(s, discrete, rtol=0, atol=1e-12)
    # Against the PDE: O(h^2 + dt^2); measured 3.9e-6 against a peak of 0.95.
    exact = (1 - np.exp(-D * np.pi**2 * t)) * np.sin(np.pi * x) / (D * np.pi**2)
    assert np.max(np.abs(s - exact)) < 1e-5


def test_diffusion_reaction_float32_close_to_closed_form():
    # float32 matrices from the sine basis (integer argument reduction, HIGHEST matmuls):
    # 100 steps in float32 stay within 1e-5 of the PDE solution (peak 0.95).
    nx, nt, D = 101, 100, 0.01
    x = np.linspace(0.0, 1.0, nx)
    t = np.linspace(0.0, 1.0, nt + 1)[:, None]
    s = rd.diffusion_reaction(np.sin(np.pi * x)[None], D=D, k=0.0, nt=nt)
    assert s.dtype == jnp.float32 and s.shape == (1, nt + 1, nx)
    exact = (1 - np.exp(-D * np.pi**2 * t)) * np.sin(np.pi * x) / (D * np.pi**2)
    assert np.max(np.abs(np.asarray(s)[0] - exact)) < 1e-5


# --- Burgers ---------------------------------------------------------------------------------


def _cole_hopf_sine(x, t, nu, modes=200):
    """Exact Burgers solution from u0 = sin(2 pi x): u = -2 nu phi_x / phi with
    phi = sum_n I_n(a) exp(-nu (2 pi n)^2 t) e^{2 pi i n x}, a = 1/(4 pi nu) (scaled Bessel
    values; the common factor cancels in the ratio)."""
    a = 1.0 / (4 * np.pi * nu)
    n = np.arange(1, modes)[:, None]
    w = ive(n, a) * np.exp(-nu * (2 * np.pi * n) ** 2 * t)
    phi = ive(0, a) + 2 * np.sum(w * np.cos(2 * np.pi * n * x), axis=0)
    phi_x = -2 * np.sum(w * 2 * np.pi * n * np.sin(2 * np.pi * n * x), axis=0)
    return -2 * nu * phi_x / phi


def test_burgers_matches_cole_hopf(x64):
    nu, n, t_final, nt, every = 0.02, 256, 0.3, 480, 120
    x = np.arange(n) / n
    u0 = np.stack([np.sin(2 * np.pi * x), np.sin(2 * np.pi * (x - 0.25))])  # second: shifted
    snaps = np.asarray(bg.burgers(u0, nu=nu, t_final=t_final, nt=nt, save_every=every))
    assert snaps.shape == (2, nt // every + 1, n)
    for i, t in enumerate(np.linspace(0.0, t_final, nt // every + 1)):
        exact = _cole_hopf_sine(x, t, nu)
        # Spectral in space (steepest front resolved by 256 modes), h = 6.25e-4 in time:
        # measured 2e-11; assert 1e-8.
        assert np.max(np.abs(snaps[0, i] - exact)) < 1e-8
        # Translation equivariance: the shifted start gives the shifted solution.
        assert np.max(np.abs(snaps[1, i] - np.roll(exact, n // 4))) < 1e-8
    final = np.asarray(bg.burgers(u0, nu=nu, t_final=t_final, nt=nt))
    np.testing.assert_allclose(final, snaps[:, -1], rtol=0, atol=1e-13)


def test_burgers_fourth_order_in_time(x64):
    nu, n, t_final = 0.05, 128, 0.3
    x = np.arange(n) / n
    exact = _cole_hopf_sine(x, t_final, nu)
    nts = (15, 30, 60, 120)
    errs = [np.max(np.abs(np.asarray(bg.burgers(np.sin(2 * np.pi * x)[None], nu=nu,
                                                t_final=t_final, nt=nt))[0] - exact))
            for nt in nts]
    # Errors 1.5e-6 .. 5e-10; spatial error ~1e-14. Slope within 0.3 of 4.
    assert abs(_slope(t_final / np.array(nts), errs) - 4.0) < 0.3


def test_cole_hopf_by_fft_matches_the_bessel_series(x64):
    nu, t, n = 0.05, 0.25, 128
    x = np.arange(n) / n
    got = bg.cole_hopf(lambda z: (1 - np.cos(2 * np.pi * z)) / (2 * np.pi), nu, t, n)
    np.testing.assert_allclose(got, _cole_hopf_sine(x, t, nu), rtol=0, atol=1e-12)
    # t = 0 gives the initial condition back
    u0 = bg.cole_hopf(lambda z: (1 - np.cos(2 * np.pi * z)) / (2 * np.pi), nu, 0.0, n)
    np.testing.assert_allclose(u0, np.sin(2 * np.pi * x), atol=1e-12)


def test_convergence_studies_reproduce_direct_errors_and_theoretical_orders(x64):
    from scipy.integrate import cumulative_trapezoid

    from opdiff.operators import convergence as cv

    tr = cv.trapezoid_order((17, 33, 65))
    for n, e in zip((17, 33, 65), tr["err"]):
        x = np.linspace(0, 1, n)
        s = cumulative_trapezoid(np.cos(2 * np.pi * x) + 2 * x, x, initial=0.0)
        assert e == pytest.approx(np.max(np.abs(s - np.sin(2 * np.pi * x) / (2 * np.pi) - x * x)),
                                  rel=1e-9)
    np.testing.assert_allclose(tr["h"], [1 / 16, 1 / 32, 1 / 64])
    assert tr["order"] == pytest.approx(_slope(tr["h"], tr["err"]), rel=1e-12)
    studies = {"antiderivative": tr, **cv.rk4_orders(21, (1, 2, 4)),
               **cv.dr_orders((10, 20, 40), (11, 21, 41)),
               "burgers": cv.burgers_order(64, 0.05, 0.25, (20, 40, 80))}
    for name, st in studies.items():
        assert abs(st["order"] - st["theory"]) < 0.2, (name, st["order"])
    assert studies["burgers"]["best_error"] == min(studies["burgers"]["err"])


def test_burgers_dealias_mask_is_two_thirds_rule():
    m = bg.dealias_mask(12)  # bins 0..6: keep |k| <= 4, drop 5 and the Nyquist 6
    np.testing.assert_array_equal(m, [1, 1, 1, 1, 1, 0, 0])
    assert bg.dealias_mask(9).tolist() == [1, 1, 1, 1, 0]


# --- bad input -------------------------------------------------------------------------------

_X = np.linspace(0.0, 1.0, 8)
_U = np.ones((2, 8))
_NAN = np.where(np.arange(8) == 3, np.nan, 1.0)[None].repeat(2, 0)


def _anti(u=_U, x=_X):
    return integral.antiderivative(u, x)


def _nl(u=_U, x=_X, **kw):
    return ode.nonlinear_ode(u, x, **kw)


def _dr(u=_U, **kw):
    return rd.diffusion_reaction(u, **kw)


def _bg(u=_U, **kw):
    return bg.burgers(u, **{"nu": 0.1, "t_final": 1.0, "nt": 10, **kw})


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: _anti(np.ones(8)), r"u must be a batch of shape \(n_funcs, N\) \(ndim 2\)"),
        (lambda: _anti(np.ones((2, 8, 1))), r"got shape \(2, 8, 1\) \(ndim 3\)"),
        (lambda: _anti(np.ones((0, 8))), r"u must hold at least one function"),
        (lambda: _anti(np.ones((2, 1)), _X[:1]), r"u must have N >= 2"),
        (lambda: _anti(_NAN), r"u must be finite.*2 function\(s\), first at index 0"),
        (lambda: _anti(x=_X[:-1]),
         r"grid must have one point per column of u: expected shape \(8,\), got \(7,\)"),
        (lambda: _anti(x=_X[None]), r"grid must be 1-D"),
        (lambda: _anti(x=_X[::-1]), r"grid must be strictly increasing"),
        (lambda: _nl(substeps=0), r"substeps must be an int >= 1, got 0"),
        (lambda: _nl(substeps=2.0), r"substeps must be an int >= 1, got 2.0"),
        (lambda: _nl(_NAN), r"u must be finite"),
        (lambda: _nl(x=np.linspace(0, 1, 9)), r"grid .* expected shape \(8,\), got \(9,\)"),
        (lambda: ode.pendulum(_U, _X, k=np.nan), r"k must be a finite real"),
        (lambda: ode.pendulum(np.ones(8), _X), r"u must be a batch"),
        (lambda: ode.solve_driven_ode(_identity_rhs, np.nan, _U, _X), r"s0 must be finite"),
        (lambda: ode.solve_driven_ode(None, 0.0, _U, _X), r"rhs must be callable"),
        (lambda: _dr(nt=0), r"nt must be an int >= 1, got 0"),
        (lambda: _dr(np.ones((2, 2))), r"u must have nx >= 3"),
        (lambda: _dr(np.ones(8)), r"u must be a batch of shape \(n_funcs, nx\)"),
        (lambda: _dr(_NAN), r"u must be finite"),
        (lambda: _dr(D=-1.0), r"D must be >= 0"),
        (lambda: _dr(t_final=0.0), r"t_final must be > 0"),
        (lambda: _dr(k=np.inf), r"k must be a finite real"),
        (lambda: _bg(nu=0.0), r"nu must be > 0"),
        (lambda: _bg(t_final=-1.0), r"t_final must be > 0"),
        (lambda: _bg(nt=0), r"nt must be an int >= 1"),
        (lambda: _bg(save_every=3), r"save_every must divide nt = 10, got 3"),
        (lambda: _bg(np.ones((2, 3))), r"u0 must have n >= 4"),
        (lambda: _bg(np.ones(8)), r"u0 must be a batch of shape \(n_funcs, n\)"),
        (lambda: _bg(_NAN), r"u0 must be finite"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_tracer_params_skip_value_checks_but_burgers_needs_concrete_nu():
    # D, k, t_final are traced in diffusion_reaction (no recompile, no value check);
    # Burgers computes its ETDRK4 coefficients on the host and says so.
    u = jnp.ones((1, 9))
    out = jax.jit(lambda d: rd.diffusion_reaction(u, D=d, nt=4))(0.02)
    assert out.shape == (1, 5, 9)
    with pytest.raises(ValueError, match="nu must be a concrete Python number"):
        jax.jit(lambda v: bg.burgers(u[:, :8], nu=v, t_final=1.0, nt=2))(0.1)
