"""Log-likelihood through the probability-flow ODE against closed forms.

With the exact score and the exact marginal at T as the prior, the flow carries p_T to p_t0
exactly, so log p_t0(x) from the ODE must equal the closed form: for a Gaussian field
log N(z; a mu, v) per coefficient; for a 2-D Gaussian mixture its exact log-density at t0
(whose score has a non-diagonal Jacobian, so the Hutchinson estimate is genuinely random:
its mean over probes must match within 5 standard errors).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from opdiff.diffusion import likelihood as LK
from opdiff.diffusion import oracle as O
from opdiff.diffusion import processes as P


def test_gaussian_field_log_likelihood_is_exact(x64):
    shape = (8, 8)
    field = O.power_law_field(shape, "dft", alpha=2.0, mean=0.3)
    proc = P.vp(shape, basis="dft")
    x = field.sample(jax.random.key(0), 4, dtype=jnp.float64)
    lp, stats = LK.log_likelihood(field.denoiser(proc), proc, x,
                                  prior=field.marginal(proc, proc.T), divergence="exact",
                                  rtol=1e-7, atol=1e-7)
    m0, v0 = field.marginal(proc, proc.t_min)
    z = proc.to_basis(x)
    exact = -0.5 * jnp.sum((z - m0) ** 2 / v0 + jnp.log(2 * jnp.pi * v0), axis=(1, 2))
    np.testing.assert_allclose(lp, exact, rtol=1e-6)
    assert stats["num_steps"] > 0
    # bits/dim: -log2 p / d + 8 for 8-bit data in [0, 1]
    bpd = LK.bits_per_dim(lp, 64)
    np.testing.assert_allclose(bpd, -exact / (64 * np.log(2)) + 8, rtol=1e-6)


def test_mixture_log_likelihood_exact_and_hutchinson(x64):
    gm = O.GaussianMixture(np.array([0.5, 0.5]), np.array([[-1.5, 0.0], [1.5, 0.5]]),
                           np.array([[[0.3, 0.1], [0.1, 0.2]], np.diag([0.2, 0.4])]))
    proc = P.vp((2,))
    x0 = jnp.array([[0.3, -0.2], [1.4, 0.6]])

    def den(x, t):
        return jax.vmap(lambda xi: gm.denoise(proc, xi, t))(x)

    # the run uses the N(0, I) prior; exchanging that prior term for the mixture's own
    # log p_T at the ODE endpoint must give its exact log-density at t0
    lp_exact_div, _ = LK.log_likelihood(den, proc, x0, divergence="exact", rtol=1e-8, atol=1e-8)
    reps = 400
    xr = jnp.repeat(x0[:1], reps, axis=0)
    lp_h, _ = LK.log_likelihood(den, proc, xr, divergence="hutchinson", key=jax.random.key(3),
                                rtol=1e-8, atol=1e-8)
    lp_h = np.asarray(lp_h)
    se = lp_h.std() / np.sqrt(reps)
    assert lp_h.std() > 1e-6  # the probes really vary
    assert abs(lp_h.mean() - float(lp_exact_div[0])) <= 5 * se
    # exact: replace the N(0, I) prior term by the mixture's own log p_T at z_T
    exact0 = np.array([float(gm.log_density(proc, xi, proc.t_min)) for xi in x0])
    prior_gap = _prior_gap(gm, proc, x0, den)
    np.testing.assert_allclose(np.asarray(lp_exact_div) + prior_gap, exact0, rtol=1e-5)


def _prior_gap(gm, proc, x0, den):
    """log p_T(z_T) - log N(z_T; 0, I) at the ODE endpoints z_T of x0."""
    import diffrax  # the forward (t0 -> T) flow, independently of log_likelihood

    def vf(t, z, args):
        a, s2 = proc.scale(t), proc.variance(t)
        f, g2 = proc.drift(t), proc.diffusion2(t)
        return f * z - 0.5 * g2 * (a * den(z, t) - z) / s2

    sol = diffrax.diffeqsolve(diffrax.ODETerm(vf), diffrax.Dopri5(), t0=proc.t_min, t1=proc.T,
                              dt0=0.01, y0=x0, stepsize_controller=diffrax.PIDController(
                                  rtol=1e-8, atol=1e-8), max_steps=4096)
    zT = sol.ys[0]
    lpT = np.array([float(gm.log_density(proc, zi, proc.T)) for zi in zT])
    lgauss = np.asarray(-0.5 * jnp.sum(zT**2 + jnp.log(2 * jnp.pi), axis=1))
    return lpT - lgauss


def test_bad_input(x64):
    field = O.power_law_field((4,), "dft")
    proc = P.vp((4,), basis="dft")
    x = jnp.zeros((2, 4))
    with pytest.raises(ValueError, match="divergence"):
        LK.log_likelihood(field.denoiser(proc), proc, x, divergence="bogus")
    with pytest.raises(ValueError, match="needs key"):
        LK.log_likelihood(field.denoiser(proc), proc, x)
    with pytest.raises(ValueError, match="prior must be a pair"):
        LK.log_likelihood(field.denoiser(proc), proc, x, divergence="exact", prior=1.0)
    with pytest.raises(ValueError, match=r"x must have shape"):
        LK.log_likelihood(field.denoiser(proc), proc, jnp.zeros((2, 5)), divergence="exact")
    with pytest.raises(ValueError, match="dim"):
        LK.bits_per_dim(0.0, 0)


def test_a_solve_out_of_steps_raises_naming_max_steps():
    proc = P.vp((4,))
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 4)), jnp.float32)
    with pytest.raises(RuntimeError, match="max_steps=3 reached after 3 steps"):
        LK.log_likelihood(lambda z, t: 0.5 * z, proc, x, key=jax.random.key(0), max_steps=3)


def test_the_ode_program_has_no_host_callback():
    # jax's persistent cache never stores a program with a host callback: diffrax's
    # in-program error check (throw=True) made every run recompile the solve
    proc = P.vp((4,))
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 4)), jnp.float32)
    seen = []
    real_jit = jax.jit

    def spy(fn, *a, **k):
        jitted = real_jit(fn, *a, **k)
        if getattr(fn, "__name__", "") == "solve":
            seen.append(jitted)
        return jitted

    orig = LK.jax.jit
    LK.jax.jit = spy
    try:
        LK.log_likelihood(lambda z, t: 0.5 * z, proc, x, key=jax.random.key(0))
    finally:
        LK.jax.jit = orig
    (solve,) = seen
    text = solve.lower(jnp.zeros((2, 4), jnp.float32)).as_text()
    assert "callback" not in text.lower()
