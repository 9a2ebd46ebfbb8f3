"""Denoising score matching against its closed-form minimum on Gaussian data.

At the exact score the per-time loss is sum_k lambda_k a^2 lambda_data / (s^2 v) (for the
denoiser weighting: the MMSE), and a wrong score adds exactly its weighted L2 error (DSM =
ESM). Monte Carlo with fixed keys; tolerances are 5 standard errors of the per-example losses.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from opdiff.diffusion import losses as L
from opdiff.diffusion import oracle as O
from opdiff.diffusion import processes as P

SHAPE = (8, 8)
N = 20000


def _score(field, proc):
    return lambda x, t: jax.vmap(lambda xi, ti: field.score(proc, xi, ti))(x, t)


def _denoiser(field, proc):
    den = field.denoiser(proc)
    return lambda x, t: jax.vmap(lambda xi, ti: den(xi[None], ti)[0])(x, t)


@pytest.mark.parametrize("proc_name", ["vp", "heat", "pink"])
@pytest.mark.parametrize("weighting", ["sigma2", "denoiser"])
def test_loss_at_the_exact_score_is_the_analytic_minimum(x64, proc_name, weighting):
    field = O.power_law_field(SHAPE, "dft", alpha=2.0, mean=0.2)
    proc = {"vp": P.vp(SHAPE, basis="dft"), "heat": P.heat_dissipation(SHAPE, basis="dft"),
            "pink": P.coloured(SHAPE, "pink")}[proc_name]
    x0 = field.sample(jax.random.key(0), N, dtype=jnp.float64)
    # the denoiser weighting is evaluated on a denoiser model: converting a score to a
    # denoiser divides by a_t, which underflows for heat dissipation's high frequencies
    model, param = ((_denoiser(field, proc), "denoiser") if weighting == "denoiser"
                    else (_score(field, proc), "score"))
    for i, t in enumerate((0.1, 0.5, 0.9)):
        per = np.asarray(L.dsm_loss(model, proc, x0, jax.random.key(i + 1), weighting=weighting,
                                    parameterization=param, t=jnp.full((N,), t),
                                    reduce="none"))
        exact = float(L.dsm_minimum(proc, field, t, weighting))
        se = per.std() / np.sqrt(N)
        assert abs(per.mean() - exact) <= 5 * se, (t, per.mean(), exact, se)
        if weighting == "denoiser":  # the denoiser-weighted minimum is the MMSE
            assert exact == pytest.approx(float(jnp.sum(O.mmse(field, proc, t))), rel=1e-12)


def test_a_wrong_score_adds_exactly_its_weighted_error(x64):
    field = O.power_law_field(SHAPE, "dft", alpha=2.0, mean=0.2)
    model = O.GaussianField(SHAPE, "dft", 0.9 * field.mean, 1.3 * field.var)
    proc = P.vp(SHAPE, basis="dft")
    x0 = field.sample(jax.random.key(0), N, dtype=jnp.float64)
    t = 0.4
    kw = dict(weighting="sigma2", t=jnp.full((N,), t), reduce="none")
    key = jax.random.key(7)  # common random numbers: the difference has small variance
    diff = np.asarray(L.dsm_loss(_score(model, proc), proc, x0, key, **kw)
                      - L.dsm_loss(_score(field, proc), proc, x0, key, **kw))
    a, s2 = proc.scale(t), proc.variance(t)
    v, vt = a**2 * field.var + s2, a**2 * model.var + s2
    lam = L.weight(proc, t, "sigma2")
    excess = float(jnp.sum(lam * ((1 / vt - 1 / v) ** 2 * v
                                  + a**2 * (model.mean - field.mean) ** 2 / vt**2)))
    assert excess > 0
    assert abs(diff.mean() - excess) <= 5 * diff.std() / np.sqrt(N)


def test_denoiser_and_score_parameterisations_agree(x64):
    field = O.power_law_field(SHAPE, "dft", alpha=2.5)
    proc = P.vp(SHAPE, basis="dft")
    x0 = field.sample(jax.random.key(0), 64, dtype=jnp.float64)
    key = jax.random.key(3)
    for weighting in L.WEIGHTINGS:
        a = L.dsm_loss(_score(field, proc), proc, x0, key, weighting=weighting)
        b = L.dsm_loss(_denoiser(field, proc), proc, x0, key, weighting=weighting,
                       parameterization="denoiser")
        assert float(a) == pytest.approx(float(b), rel=1e-9)


def test_uniform_time_loss_matches_the_integrated_minimum(x64):
    field = O.power_law_field(SHAPE, "dft", alpha=2.0)
    proc = P.vp(SHAPE, basis="dft")
    x0 = field.sample(jax.random.key(0), N, dtype=jnp.float64)
    per = np.asarray(L.dsm_loss(_score(field, proc), proc, x0, jax.random.key(5),
                                reduce="none"))
    ts = np.linspace(proc.t_min, proc.T, 4001)
    vals = np.array([float(L.dsm_minimum(proc, field, t)) for t in ts])
    exact = np.sum(0.5 * (vals[1:] + vals[:-1]) * np.diff(ts)) / (proc.T - proc.t_min)
    assert abs(per.mean() - exact) <= 5 * per.std() / np.sqrt(N)


def test_bad_input(x64):
    field = O.power_law_field(SHAPE, "dft")
    proc = P.vp(SHAPE, basis="dft")
    x0 = jnp.zeros((4, *SHAPE))
    score = _score(field, proc)
    with pytest.raises(ValueError, match="weighting"):
        L.dsm_loss(score, proc, x0, jax.random.key(0), weighting="bogus")
    with pytest.raises(ValueError, match="parameterization"):
        L.dsm_loss(score, proc, x0, jax.random.key(0), parameterization="eps")
    with pytest.raises(ValueError, match="reduce"):
        L.dsm_loss(score, proc, x0, jax.random.key(0), reduce="max")
    with pytest.raises(ValueError, match=r"x0 must have shape"):
        L.dsm_loss(score, proc, jnp.zeros((4, 4, 4)), jax.random.key(0))
    with pytest.raises(ValueError, match=r"t must have shape \[4\]"):
        L.dsm_loss(score, proc, x0, jax.random.key(0), t=jnp.ones(3))
    with pytest.raises(ValueError, match="t_min"):
        L.dsm_loss(score, proc, x0, jax.random.key(0), t_min=2.0)
