"""Samplers (opdiff.diffusion.samplers) against the exact Gaussian oracle (opdiff.diffusion.oracle),
and the oracle against independent computations.

- Every sampler on every forward process: Monte-Carlo samples drawn with the exact denoiser from
  a known Gaussian law match the oracle's output law (z-scores of the means, variance ratios);
  the deterministic samplers are affine maps, so they are also checked *exactly*, sample by
  sample, against the oracle's per-coefficient affine map.
- Per-step maps against the table of reference §4(d) (Chen et al.'s exponential integrator on
  OU, score_sde's VP Euler–Maruyama / reverse diffusion, VE reverse diffusion, DDPM posterior).
- Exact references: the probability-flow map and the time-reversal (posterior) kernel, derived
  in closed form; convergence orders; diffrax; dense-matrix scores, KL, MMSE, score error.
Float64 (``x64`` fixture); fixed keys; tolerances stated where used.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from opdiff import spectra
from opdiff.diffusion import transforms as tr
from opdiff.diffusion import bounds, laws
from opdiff.diffusion import oracle as O
from opdiff.diffusion import processes as P
from opdiff.diffusion import samplers as S

SHAPE = (8, 8)
D = math.prod(SHAPE)
N_MC = 2000
DETERMINISTIC = ("pf_euler", "pf_heun", "ddim", "dpm_solver_1", "dpm_solver_2")
PROCESSES = ("vp", "ve", "heat", "blurring", "coloured")


def _eps_small(t):  # Langevin step for the noise processes
    return 0.01


def _eps_heat(t):  # heat dissipation: v_t >= sigma^2 = 1e-4, keep eps / v_t < 1
    return 1e-5


@functools.lru_cache(maxsize=None)
def _setup(name):
    """(field, process, exact denoiser), cached so compiled samplers are reused (static args)."""
    field = O.power_law_field(SHAPE, "dft", alpha=2.5, mean=0.3)
    proc = {
        "vp": lambda: P.vp(SHAPE, basis="dft"),
        "ve": lambda: P.ve(SHAPE, basis="dft"),
        "heat": lambda: P.heat_dissipation(SHAPE, basis="dft"),
        "blurring": lambda: P.blurring(SHAPE, basis="dft"),
        "coloured": lambda: P.coloured(SHAPE, "pink", basis="dft"),
    }[name]()
    return field, proc, field.denoiser(proc)


def _init_law(field, proc):
    """A Gaussian initial law that is *not* the prior (so both A and B of the map matter)."""
    mp, wp = proc.prior(field.mean, field.var)
    mp, wp = np.asarray(mp), np.asarray(wp)
    pattern = np.cos(np.arange(D).reshape(SHAPE))
    return mp + 0.3 * np.sqrt(wp) * pattern, 1.25 * wp


def _initial_samples(proc, m0, w0, n=N_MC, seed=11):
    z = m0 + np.sqrt(w0) * np.asarray(jax.random.normal(jax.random.key(seed), (n, *SHAPE)))
    return z, proc.from_basis(jnp.asarray(z))


def _oracle_affine(method, proc, field, ts, m0, w0, **kw):
    """The oracle's output law from (m0, w0) and its per-coefficient affine map z -> A z + B."""

    def law(m):
        return O.sampler_law(method, proc, field, ts, init=(m, w0), **kw)

    M, W = jax.vmap(law)(jnp.stack([m0, m0 + 1.0, np.zeros_like(m0)]))
    M, W = np.asarray(M), np.asarray(W)
    return M[0], W[0], M[1] - M[0], M[2]


def _check_mc(z, m, w, *, zmax=4.5, var_tol=None, pooled_tol=None):
    """Per-coefficient z-scores of the mean and variance ratios of samples z [n, *shape]."""
    n = z.shape[0]
    zs = (z.mean(0) - m) / np.sqrt(w / n)
    ratio = z.var(0) / w
    var_tol = 5 * math.sqrt(2 / n) if var_tol is None else var_tol
    pooled_tol = 5 * math.sqrt(2 / (D * n)) if pooled_tol is None else pooled_tol
    assert np.max(np.abs(zs)) <= zmax, f"max |z| = {np.max(np.abs(zs))}"
    assert np.sum(zs**2) <= D + 5 * math.sqrt(2 * D), f"chi2 = {np.sum(zs**2)}"
    assert np.max(np.abs(ratio - 1)) <= var_tol, f"max var ratio error {np.max(np.abs(ratio - 1))}"
    assert abs(ratio.mean() - 1) <= pooled_tol, f"pooled var ratio {ratio.mean()}"


# ----------------------------------------------------------------------------- MC vs oracle

MATRIX = [(p, m) for p in PROCESSES for m in S.SAMPLERS
          if not (m == "exponential" and p in ("heat", "blurring"))]
# One compile of the sampler and one of the oracle per cell (~2-3 s cold, ~0.3 s with the
# persistent compilation cache): the non-vp rows are marked slow for `-m "not slow"`.
_CELLS = [pytest.param(p, m, marks=() if p == "vp" else pytest.mark.slow) for p, m in MATRIX]


@pytest.mark.parametrize("name, method", _CELLS)
def test_sampler_output_law_matches_the_oracle(x64, name, method):
    field, proc, den = _setup(name)
    ts = S.uniform_grid(proc, 8)
    m0, w0 = _init_law(field, proc)
    kw = {}
    if method == "pc":
        kw["corrector_eps"] = _eps_heat if name == "heat" else _eps_small
    z_in, x_T = _initial_samples(proc, m0, w0)
    out = S.sample(method, den, proc, x_T, ts, key=jax.random.key(12), **kw)
    assert out.shape == x_T.shape and out.dtype == jnp.float64
    z_out = np.asarray(proc.to_basis(out))
    m, w, A, B = _oracle_affine(method, proc, field, ts, m0, w0, **kw)
    E = w - A**2 * w0  # the noise variance the run adds
    assert np.all(np.isfinite(z_out)) and np.all(E >= -1e-9 * w)
    _check_mc(z_out, m, w)
    if method in DETERMINISTIC:
        np.testing.assert_allclose(E, 0, atol=1e-9 * np.max(w))
        ref = A * z_in + B
        scale = np.abs(A) * np.sqrt(w0) + np.abs(B)  # the natural size of each coefficient
        err = np.max(np.abs(z_out - ref) / scale)
        assert err <= 1e-9, f"sample-wise deviation from the oracle's affine map: {err}"
    else:  # stochastic: fresh noise in every coefficient (heat dissipation's DC has none)
        assert np.count_nonzero(E > 0) >= D - 1


def test_pc_default_snr_rule_matches_the_oracle_loosely(x64):
    # score_sde's step eps = 2 (snr |xi| / |s|)^2 uses batch-mean norms; the oracle uses root
    # mean squares, so agreement is approximate. The pooled variance ratio still resolves the
    # corrector (snr 0.12 / 0.2 / no corrector move it by 5-12 %).
    field, proc, den = _setup("vp")
    ts = S.uniform_grid(proc, 8)
    m0, w0 = _init_law(field, proc)
    _, x_T = _initial_samples(proc, m0, w0)
    z = np.asarray(proc.to_basis(S.sample("pc", den, proc, x_T, ts, key=jax.random.key(12))))
    m, w = O.sampler_law("pc", proc, field, ts, init=(m0, w0))
    _check_mc(z, np.asarray(m), np.asarray(w), var_tol=0.2, pooled_tol=0.03)
    m_off, w_off = O.sampler_law("pc", proc, field, ts, init=(m0, w0), n_corrector=0)
    assert abs(np.mean(np.asarray(w_off) / np.asarray(w)) - 1) > 0.06  # the test can fail


@pytest.mark.parametrize("name", ["vp", "blurring"])
def test_sampler_identities_hold_sample_by_sample(x64, name):
    field, proc, den = _setup(name)
    ts = S.uniform_grid(proc, 8)
    m0, w0 = _init_law(field, proc)
    _, x_T = _initial_samples(proc, m0, w0)  # the MC test's batch: reuses its compiled runs
    key = jax.random.key(12)
    # DPM-Solver-1 is DDIM with eta = 0
    np.testing.assert_allclose(S.sample("dpm_solver_1", den, proc, x_T, ts),
                               S.sample("ddim", den, proc, x_T, ts), rtol=1e-9, atol=1e-11)
    # DDIM with eta = 1 is the ancestral (posterior) step, with the same noise
    np.testing.assert_allclose(S.sample("ddim", den, proc, x_T, ts, eta=1.0, key=key),
                               S.sample("ancestral", den, proc, x_T, ts, key=key),
                               rtol=1e-9, atol=1e-11)


def test_ddim_eta_and_denoise_match_the_oracle(x64):
    field, proc, den = _setup("vp")
    ts = S.uniform_grid(proc, 8)
    m0, w0 = _init_law(field, proc)
    z_in, x_T = _initial_samples(proc, m0, w0)
    z = np.asarray(proc.to_basis(S.sample("ddim", den, proc, x_T, ts, eta=0.5,
                                          key=jax.random.key(4))))
    m, w = O.sampler_law("ddim", proc, field, ts, init=(m0, w0), eta=0.5)
    _check_mc(z, np.asarray(m), np.asarray(w))
    out = np.asarray(proc.to_basis(S.sample("pf_heun", den, proc, x_T, ts, denoise=True)))
    _, w_d, A, B = _oracle_affine("pf_heun", proc, field, ts, m0, w0, denoise=True)
    np.testing.assert_allclose(out, A * z_in + B, rtol=1e-8)
    np.testing.assert_allclose(w_d, A**2 * w0, rtol=1e-10)


# ----------------------------------------------------------------------------- per-step tables


def _one_step(method, proc, field, tau, h, **kw):
    """(c, b, e) of a single step tau -> tau - h, read off the oracle: (m, w) -> (cm+b, c^2w+e)."""
    ts = np.array([tau - h, tau])
    zero, one = np.zeros(field.shape), np.ones(field.shape)
    inits = [(zero, zero), (one, one)]
    (b, e), (m1, w1) = [tuple(map(np.asarray, O.sampler_law(method, proc, field, ts, init=i, **kw)))
                        for i in inits]
    c = m1 - b
    np.testing.assert_allclose(w1, c**2 + e, rtol=1e-12, atol=1e-14)
    return c, b, e


def _moments(proc, field, t):
    a = np.asarray(proc.scale(t))
    s2 = np.asarray(proc.variance(t))
    return a, s2, a**2 * field.var + s2


def test_per_step_maps_match_the_reference_table(x64):
    field = O.power_law_field((6,), "dft", alpha=2.0, mean=0.4)
    mu, lam = field.mean, field.var
    # Chen et al.'s exponential integrator on OU (a_t = e^{-t})
    ou = P.ou((6,), basis="dft")
    tau, h = 1.3, 0.2
    _, _, v = _moments(ou, field, tau)
    c, b, e = _one_step("exponential", ou, field, tau, h)
    eh = math.exp(h)
    np.testing.assert_allclose(c, eh - 2 * (eh - 1) / v, rtol=1e-12)
    np.testing.assert_allclose(b, 2 * (eh - 1) * math.exp(-tau) * mu / v, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(e, math.exp(2 * h) - 1, rtol=1e-12)
    # VP Euler-Maruyama, PF-ODE Euler and score_sde's reverse diffusion (beta_i = 1 - r^2)
    vp = P.vp((6,), basis="dft")
    tau, h = 0.6, 0.05
    beta = 0.1 + tau * (20.0 - 0.1)
    a, _, v = _moments(vp, field, tau)
    c, b, e = _one_step("euler_maruyama", vp, field, tau, h)
    np.testing.assert_allclose(c, 1 + h * beta / 2 - h * beta / v, rtol=1e-11)
    np.testing.assert_allclose(b, h * beta * a * mu / v, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(e, h * beta, rtol=1e-11)
    c, b, e = _one_step("pf_euler", vp, field, tau, h)
    np.testing.assert_allclose(c, 1 + h * beta / 2 - h * beta / (2 * v), rtol=1e-11)
    np.testing.assert_allclose(b, h * beta * a * mu / (2 * v), rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(e, 0, atol=0)
    beta_i = 1 - (np.asarray(vp.scale(tau)) / np.asarray(vp.scale(tau - h))) ** 2
    c, b, e = _one_step("reverse_diffusion", vp, field, tau, h)
    np.testing.assert_allclose(c, 2 - np.sqrt(1 - beta_i) - beta_i / v, rtol=1e-12)
    np.testing.assert_allclose(b, beta_i * a * mu / v, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(e, beta_i, rtol=1e-12)
    # the ancestral step is the DDPM posterior q(z_s | z_t, z_0 = D(z_t))
    a_s, s2_s, _ = _moments(vp, field, tau - h)
    _, s2_t, _ = _moments(vp, field, tau)
    r = a / a_s
    bt = s2_t - r**2 * s2_s
    gain = a * lam / v
    c, b, e = _one_step("ancestral", vp, field, tau, h)
    np.testing.assert_allclose(c, r * s2_s / s2_t + a_s * bt / s2_t * gain, rtol=1e-12)
    np.testing.assert_allclose(b, a_s * bt / s2_t * (mu - gain * a * mu), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(e, s2_s * bt / s2_t, rtol=1e-12)
    # VE reverse diffusion, and a Langevin corrector (eps) followed by it (pc)
    ve = P.ve((6,), basis="dft")
    tau, h = 0.7, 0.1
    sig_i, sig_im1 = [0.01 * 5000.0**u for u in (tau, tau - h)]
    dsig = sig_i**2 - sig_im1**2
    v = lam + sig_i**2
    c, b, e = _one_step("reverse_diffusion", ve, field, tau, h)
    np.testing.assert_allclose(c, 1 - dsig / v, rtol=1e-11)
    np.testing.assert_allclose(b, dsig * mu / v, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(e, dsig, rtol=1e-11)
    eps = 0.3
    c2, b2, e2 = _one_step("pc", ve, field, tau, h, predictor="reverse_diffusion",
                           corrector_eps=lambda t: eps)
    cl, bl, el = 1 - eps / v, eps * mu / v, 2 * eps
    np.testing.assert_allclose(c2, c * cl, rtol=1e-11)
    np.testing.assert_allclose(b2, c * bl + b, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(e2, c**2 * el + e, rtol=1e-11)


# ----------------------------------------------------------------------------- exact references


def _exact_references(proc, field, t0, T, m, w):
    """Closed-form laws at t0 from N(m, w) at T: the PF-ODE flow map, which preserves
    (z - a mu)/sqrt(v), and the exact time reversal, whose kernel is the forward posterior
    q(z_t0 | z_T): mean a0 mu + A (z - aT mu), var v0 - A^2 vT with A = r v0 / vT, r = aT / a0."""
    mu = field.mean
    a0, _, v0 = _moments(proc, field, t0)
    aT, _, vT = _moments(proc, field, T)
    flow = (a0 * mu + np.sqrt(v0 / vT) * (m - aT * mu), v0 * w / vT)
    A = (aT / a0) * v0 / vT
    rev = (a0 * mu + A * (m - aT * mu), v0 - A**2 * vT + A**2 * w)
    return flow, rev


@pytest.mark.parametrize("name", ["vp", "blurring"])
def test_many_steps_approach_the_exact_flow_and_reversal(x64, name):
    field, proc, _ = _setup(name)
    grid = S.log_snr_grid(proc, 4096)
    T, t0 = grid[-1], grid[0]
    m, w = _init_law(field, proc)
    (fm, fw), (rm, rw) = _exact_references(proc, field, t0, T, m, w)
    hm, hw = map(np.asarray, O.sampler_law("pf_heun", proc, field, grid, init=(m, w)))
    # Heun: second order, measured ~4e-7 (vp) and ~2e-6 (blurring) at 4096 steps
    np.testing.assert_allclose(hm, fm, rtol=1e-5, atol=1e-5 * np.max(np.abs(fm)))
    np.testing.assert_allclose(hw, fw, rtol=1e-5)
    # ancestral: the mean is exact at any step count (the posterior mean is linear in E[z0|zt]);
    # the variance misses Var(z0|zt) per step, a first-order error (~7e-3 measured)
    am, aw = map(np.asarray, O.sampler_law("ancestral", proc, field, grid, init=(m, w)))
    np.testing.assert_allclose(am, rm, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(aw, rw, rtol=2e-2)
    assert np.max(np.abs(aw / rw - 1)) > 1e-5  # not identical: the check is not vacuous
    # with the exact initial law both references give the exact marginal p_{t0}
    mT, vT = map(np.asarray, field.marginal(proc, T))
    (fm, fw), (rm, rw) = _exact_references(proc, field, t0, T, mT, vT)
    m0, v0 = map(np.asarray, field.marginal(proc, t0))
    for x, y in ((fm, m0), (rm, m0), (fw, v0), (rw, v0)):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("method, order, tol", [("pf_euler", 1.0, 0.2), ("pf_heun", 2.0, 0.3),
                                                ("dpm_solver_2", 2.0, 0.3)])
def test_convergence_orders_in_w2(x64, method, order, tol):
    field = O.power_law_field((16, 16), "dft", alpha=2.5, mean=0.3)
    proc = P.vp((16, 16), basis="dft")
    m0, v0 = map(np.asarray, field.marginal(proc, proc.t_min))
    ns = np.array([20, 80, 320])
    w2, kl = [], []
    for n in ns:
        m, w = O.sampler_law(method, proc, field, S.log_snr_grid(proc, int(n)), init="exact")
        w2.append(laws.w2_distance(m, w, m0, v0))
        kl.append(laws.kl_diagonal(m, w, m0, v0))
    assert bounds.order(1 / ns, w2) == pytest.approx(order, abs=tol)
    assert bounds.order(1 / ns, kl) == pytest.approx(2 * order, abs=2 * tol)
    assert np.all(np.diff(w2) < 0)


@dataclasses.dataclass(frozen=True, eq=False)
class _Counting:
    """A denoiser that counts its evaluations at run time (hashable by identity)."""

    inner: object
    calls: list = dataclasses.field(default_factory=list)

    def __call__(self, x, t):
        jax.debug.callback(lambda: self.calls.append(1))
        return self.inner(x, t)


def test_pf_ode_adaptive_matches_the_flow_map(x64):
    field = O.power_law_field((6,), "dft", alpha=2.0, mean=0.5)
    proc = P.vp((6,), basis="dft")
    rng = np.random.default_rng(8)
    x_T = jnp.asarray(rng.standard_normal((16, 6)))
    den = _Counting(field.denoiser(proc))
    out, stats_ = S.pf_ode_adaptive(den, proc, x_T, rtol=1e-6, atol=1e-6)
    assert stats_["nfe"] == len(den.calls)  # the reported cost is the number of evaluations
    z_T = np.asarray(proc.to_basis(x_T))
    mu = field.mean
    a0, _, v0 = _moments(proc, field, proc.t_min)
    aT, _, vT = _moments(proc, field, proc.T)
    ref = proc.from_basis(jnp.asarray(a0 * mu + np.sqrt(v0 / vT) * (z_T - aT * mu)))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(ref))))
    assert stats_["nfe"] == 6 * stats_["num_steps"] + 1 and stats_["num_steps"] > 5
    with pytest.raises(RuntimeError, match="max_steps=3 reached after 3 steps"):
        S.pf_ode_adaptive(den, proc, x_T, rtol=1e-6, atol=1e-6, max_steps=3)


@pytest.mark.parametrize("method, kw", [("pf_heun", {}), ("dpm_solver_2", {}),
                                        ("pc", {"n_corrector": 2, "predictor": "ddim"})])
def test_nfe_counts_the_denoiser_evaluations(x64, method, kw):
    field = O.power_law_field((6,), "dft", alpha=2.0, mean=0.5)
    proc = P.vp((6,), basis="dft")
    den = _Counting(field.denoiser(proc))
    S.sample(method, den, proc, jnp.ones((2, 6)), S.uniform_grid(proc, 5), key=jax.random.key(0),
             **kw).block_until_ready()
    jax.effects_barrier()
    assert len(den.calls) == S.nfe(method, 5, kw.get("n_corrector", 1))


def test_error_split_parts(x64):
    field, proc, _ = _setup("vp")
    ts = S.log_snr_grid(proc, 10)
    model = O.GaussianField(SHAPE, "dft", field.mean, 1.2 * field.var)
    parts = O.error_split("ddim", proc, field, ts, model=model)

    # every part but early stopping is measured against p_{t0}, the sampler's own target
    m0, v0 = map(np.asarray, field.marginal(proc, ts[0]))

    def kl(mw):
        return laws.kl_diagonal(*map(np.asarray, mw), m0, v0)

    assert parts["total"] == pytest.approx(kl(O.sampler_law("ddim", proc, field, ts, model=model)),
                                           rel=1e-12)
    disc = kl(O.sampler_law("ddim", proc, field, ts, init="exact"))
    assert parts["discretisation"] == pytest.approx(disc, rel=1e-12)
    assert parts["score"] == pytest.approx(
        kl(O.sampler_law("ddim", proc, field, ts, init="exact", model=model)) - disc, rel=1e-9)
    # initialisation: the exact PF flow from the prior (closed form), which the 4096-step
    # reference run approximates
    m, w = map(np.asarray, proc.prior())
    (fm, fw), _ = _exact_references(proc, field, ts[0], ts[-1], m, w)
    assert parts["initialisation"] == pytest.approx(kl((fm, fw)), rel=1e-3)
    assert parts["early_stopping"] == pytest.approx(
        laws.kl_diagonal(m0, v0, field.mean, field.var), rel=1e-12)
    assert all(parts[k] > 0 for k in ("total", "discretisation", "initialisation",
                                      "early_stopping"))


def _vp_distortion_numpy(mu, lam, t, beta_min=0.1, beta_max=20.0):
    """KL(p_t || data) of white VP written out independently: a_t, s_t from score_sde's c(t)."""
    log_a = -0.25 * t**2 * (beta_max - beta_min) - 0.5 * t * beta_min
    a2 = math.exp(2 * log_a)
    v = a2 * lam + (1 - a2)
    r = v / lam
    return float(np.sum(0.5 * (r - 1 - np.log(r) + (math.sqrt(a2) - 1) ** 2 * mu**2 / lam)))


def test_match_terminal_distortion_against_an_independent_root(x64):
    from scipy import optimize

    field = O.power_law_field((8, 8), "dft", alpha=2.5)
    mu, lam = np.asarray(field.mean), np.asarray(field.var)
    target = 3e-3
    t_ref = optimize.brentq(lambda t: _vp_distortion_numpy(mu, lam, t) - target, 1e-6, 0.5,
                            xtol=1e-14, rtol=1e-14)
    t = O.match_terminal_distortion(field, lambda p: P.vp(field.shape, basis="dft", t_min=p),
                                    target, 1e-6, 0.5, rtol=1e-12)
    assert t == pytest.approx(t_ref, rel=1e-8)
    proc = P.vp(field.shape, basis="dft", t_min=t)
    assert O.terminal_distortion(field, proc, t) == pytest.approx(
        _vp_distortion_numpy(mu, lam, t), rel=1e-10)
    # heat dissipation: the last blur width that gives the same distortion
    b = O.match_terminal_distortion(
        field, lambda p: P.heat_dissipation(field.shape, basis="dft", blur_min=p), target, 1e-3,
        0.5)
    heat = P.heat_dissipation(field.shape, basis="dft", blur_min=b)
    assert O.terminal_distortion(field, heat, 0.0) == pytest.approx(target, rel=1e-8)
    same = O.at_terminal_distortion(field, P.heat_dissipation(field.shape, basis="dft"), target,
                                    param="blur_min", lo=1e-3)
    assert same.blur_min == b and same.t_min == 0.0 and same.sigma == heat.sigma
    assert O.at_terminal_distortion(field, P.vp(field.shape, basis="dft"), target).t_min == \
        pytest.approx(t_ref, rel=1e-8)
    assert O.error_split("ddim", heat, field, S.log_snr_grid(heat, 5), n_reference=64)[
        "early_stopping"] == pytest.approx(target, rel=1e-8)


def test_match_terminal_distortion_refuses_a_bracket_without_a_match(x64):
    field = O.power_law_field((8, 8), "dft", alpha=2.0)
    # equal-SNR noise: every marginal is the data law, the distortion is 0 at every t_min
    with pytest.raises(ValueError, match="no match"):
        O.match_terminal_distortion(
            field, lambda p: P.coloured(field.shape, field.var, basis="dft", t_min=p), 1e-3,
            1e-6, 0.5)
    build = lambda p: P.vp(field.shape, basis="dft", t_min=p)  # noqa: E731
    for bad in (0.0, -1.0, math.inf):
        with pytest.raises(ValueError, match="target"):
            O.match_terminal_distortion(field, build, bad, 1e-6, 0.5)
    with pytest.raises(ValueError, match="param"):
        O.at_terminal_distortion(field, build(1e-3), 1e-3, param="T")
    with pytest.raises(ValueError, match="lo < hi"):
        O.match_terminal_distortion(field, build, 1e-3, 0.5, 1e-6)


def test_field_from_samples_recovers_the_moments(x64):
    field = O.power_law_field((4, 4), "dct", alpha=2.0, mean=0.5)
    n = 4000
    x = np.asarray(field.sample(jax.random.key(30), n, dtype=jnp.float64))
    # the pixel mean lives in the DC coefficient, the pointwise variance is `variance` (=1)
    assert abs(x.mean() - 0.5) <= 5 * math.sqrt(field.var.flat[0] / (16 * n))
    assert field.var.sum() == pytest.approx(16.0, rel=1e-12)
    fit = O.field_from_samples(x, "dct")
    assert fit.shape == (4, 4) and fit.basis == "dct"
    assert np.max(np.abs(fit.mean - field.mean) / np.sqrt(field.var / n)) <= 4.5
    assert np.max(np.abs(fit.var / field.var - 1)) <= 5 * math.sqrt(2 / n)
    with pytest.raises(ValueError, match=r"x must be \[n >= 2, \*shape\]"):
        O.field_from_samples(x[:1], "dct")


# ----------------------------------------------------------------------------- exact scores


def _mixture():
    rng = np.random.default_rng(9)
    covs = []
    for _ in range(3):
        g = rng.standard_normal((2, 2))
        covs.append(g @ g.T / 2 + 0.2 * np.eye(2))
    return O.GaussianMixture(np.array([0.5, 0.3, 0.2]),
                             np.array([[1.0, -0.5], [-1.5, 0.8], [0.2, 2.0]]), np.stack(covs))


def test_mixture_methods_take_a_batch_with_one_or_many_times(x64):
    mix, proc = _mixture(), P.vp((2,))
    xs = np.random.default_rng(11).standard_normal((5, 2))
    ts = np.array([0.05, 0.2, 0.4, 0.6, 0.9])
    for name in ("denoise", "score", "log_density", "responsibilities"):
        fn = getattr(mix, name)
        per_t = np.stack([np.asarray(fn(proc, x, t)) for x, t in zip(xs, ts)])
        np.testing.assert_allclose(fn(proc, xs, ts), per_t, rtol=1e-12, atol=1e-14)
        one_t = np.stack([np.asarray(fn(proc, x, 0.3)) for x in xs])
        np.testing.assert_allclose(fn(proc, xs, 0.3), one_t, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(jax.jit(lambda x: mix.denoise(proc, x, 0.3))(jnp.asarray(xs)),
                               mix.denoise(proc, xs, 0.3), rtol=1e-12)
    with pytest.raises(ValueError, match="one time per point"):
        mix.denoise(proc, xs, ts[:3])
    with pytest.raises(ValueError, match="x must be one point"):
        mix.denoise(proc, np.ones((2, 2, 2)), 0.3)


def test_mixture_posterior_terms_are_the_component_denoisers_and_weights(x64):
    # Independent: each component's Gaussian denoiser mu + Sigma a C^-1 (x - a mu) with a dense
    # numpy solve, and the responsibilities by Bayes' rule with scipy's normal density.
    from scipy.stats import multivariate_normal

    mix, proc = _mixture(), P.vp((2,))
    xs = np.random.default_rng(12).standard_normal((4, 2))
    t = 0.35
    a, s2 = np.asarray(proc.scale(t)), np.asarray(proc.variance(t))
    post, resp = mix.posterior_terms(proc, xs, t)
    assert post.shape == (4, 3, 2) and resp.shape == (4, 3)
    for j in range(3):
        C = a[:, None] * mix.covs[j] * a[None, :] + np.diag(s2)
        want = mix.means[j][:, None] + (mix.covs[j] * a[None, :]) @ np.linalg.solve(
            C, (xs - a * mix.means[j]).T)
        np.testing.assert_allclose(post[:, j], want.T, rtol=1e-12, atol=1e-13)
    dens = np.stack([w * multivariate_normal(a * m, a[:, None] * c * a[None, :] + np.diag(s2)
                                             ).pdf(xs)
                     for w, m, c in zip(mix.weights, mix.means, mix.covs)], axis=1)
    np.testing.assert_allclose(resp, dens / dens.sum(1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(np.sum(resp[..., None] * post, 1), mix.denoise(proc, xs, t),
                               rtol=1e-12, atol=1e-13)
    with pytest.raises(ValueError, match="t must be a scalar"):
        mix.posterior_terms(proc, xs, np.full(4, t))
    with pytest.raises(ValueError, match="x must be a batch"):
        mix.posterior_terms(proc, xs[0], t)


@pytest.mark.parametrize("proc", [P.vp((2,)), P.ve((2,))], ids=["vp", "ve"])
def test_mixture_density_score_and_denoiser(x64, proc):
    mix = _mixture()
    rng = np.random.default_rng(10)
    xs = rng.standard_normal((6, 2)) * 1.5
    ts = np.repeat([0.05, 0.3, 0.8], 2)  # one time per point

    def one(x, t):
        return (mix.log_density(proc, x, t), mix.score(proc, x, t),
                jax.grad(mix.log_density, argnums=1)(proc, x, t), mix.denoise(proc, x, t),
                mix.responsibilities(proc, x, t), proc.scale(t)[0], proc.variance(t)[0])

    logp, score, grad, den, resp, a, s2 = map(
        np.asarray, jax.jit(jax.vmap(one))(jnp.asarray(xs), jnp.asarray(ts)))
    for i, (x, t) in enumerate(zip(xs, ts)):
        ref = sum(wk * stats.multivariate_normal(a[i] * mk, a[i] ** 2 * ck + s2[i] * np.eye(2))
                  .pdf(x) for wk, mk, ck in zip(mix.weights, mix.means, mix.covs))
        assert logp[i] == pytest.approx(math.log(ref), rel=1e-10)
    np.testing.assert_allclose(score, grad, rtol=1e-9, atol=1e-12)
    # Tweedie: E[x0 | x] = (x + s^2 score) / a
    np.testing.assert_allclose(den, (xs + s2[:, None] * score) / a[:, None], rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(resp.sum(1), 1.0, atol=1e-14)
    assert np.all(resp > 0)
    # samples have the mixture's mean
    xs = np.asarray(mix.sample(jax.random.key(1), 20000, dtype=jnp.float64))
    mean = mix.weights @ mix.means
    assert np.all(np.abs(xs.mean(0) - mean) <= 5 * xs.std(0) / math.sqrt(20000))


def _dense(proc, field):
    """Sample-space matrices: basis B (z = B x), A_t, S_t^2 and the data (mu_x, Sigma)."""
    n = field.size
    eye = jnp.eye(n).reshape(n, *field.shape)
    B = np.asarray(tr.to_basis(eye, field.basis, len(field.shape))).reshape(n, n).T
    mu_x = B.T @ field.mean.ravel()
    Sigma = B.T @ np.diag(field.var.ravel()) @ B

    def at(t):
        return (B.T @ np.diag(np.asarray(proc.scale(t)).ravel()) @ B,
                B.T @ np.diag(np.asarray(proc.variance(t)).ravel()) @ B)

    return B, mu_x, Sigma, at


@pytest.mark.parametrize("kind", ["vp", "heat", "coloured"])
def test_field_score_and_denoiser_equal_the_dense_formulas(x64, kind):
    field = O.power_law_field((6,), "dft", alpha=2.0, mean=0.4)
    proc = {"vp": P.vp((6,), basis="dft"),
            "heat": P.heat_dissipation((6,), basis="dft", sigma=0.1, blur_max=2.0),
            "coloured": P.coloured((6,), "brown", basis="dft")}[kind]
    _, mu_x, Sigma, at = _dense(proc, field)
    x = np.random.default_rng(11).standard_normal((5, 6))
    for t in (0.1, 0.5, 0.9):
        A, S2 = at(t)
        C = A @ Sigma @ A.T + S2
        dev = (x - A @ mu_x).T
        np.testing.assert_allclose(field.score(proc, jnp.asarray(x), t),
                                   -np.linalg.solve(C, dev).T, rtol=1e-9, atol=1e-10)
        den = mu_x[:, None] + Sigma @ A.T @ np.linalg.solve(C, dev)
        np.testing.assert_allclose(field.denoiser(proc)(jnp.asarray(x), t), den.T,
                                   rtol=1e-9, atol=1e-11)
        # MMSE = trace of the posterior covariance Sigma - Sigma A^T C^{-1} A Sigma
        post = Sigma - Sigma @ A.T @ np.linalg.solve(C, A @ Sigma)
        assert float(jnp.sum(O.mmse(field, proc, t))) == pytest.approx(np.trace(post), rel=1e-9)


def test_divergences_equal_the_dense_gaussian_forms(x64):
    field = O.power_law_field((4, 4), "dft", alpha=2.0, mean=0.4)
    proc = P.vp((4, 4), basis="dft")
    B, mu_x, Sigma, _ = _dense(proc, field)
    m, w = map(np.asarray, O.sampler_law("pf_euler", proc, field, S.uniform_grid(proc, 6)))
    out = O.divergences(m, w, field)
    m_x, C_x = B.T @ m.ravel(), B.T @ np.diag(w.ravel()) @ B
    assert out["kl"] == pytest.approx(laws.kl_gaussian(m_x, C_x, mu_x, Sigma), rel=1e-9)
    assert out["w2_sq"] == pytest.approx(laws.w2_gaussian(m_x, C_x, mu_x, Sigma), rel=1e-7)
    assert 0 <= out["tv_lower"] <= out["tv_upper"] <= 1
    per = O.divergences(m, w, field.mean, field.var, per_coefficient=True)
    assert per["kl"].shape == (4, 4) and per["kl"].sum() == pytest.approx(out["kl"], rel=1e-12)
    f, tot = spectra.radial_average(per["kl"], tr.radial_frequency(proc.shape, proc.basis),
                                    statistic="sum")
    assert tot.sum() == pytest.approx(out["kl"], rel=1e-12) and np.all(np.diff(f) > 0)


@pytest.mark.parametrize("name, t", [("vp", 0.3), ("heat", 0.5)])
def test_mmse_is_the_monte_carlo_error_of_the_exact_denoiser(x64, name, t):
    field, proc, den = _setup(name)
    n = 4000
    x0 = field.sample(jax.random.key(20), n, dtype=jnp.float64)
    xt = proc.sample(jax.random.key(21), x0, t)
    err = np.asarray(proc.to_basis(den(xt, jnp.asarray(t)) - x0)) ** 2
    mm = np.asarray(O.mmse(field, proc, t))
    # per coefficient err^2 ~ mmse chi^2_1: mean within 5 sd
    assert np.max(np.abs(err.mean(0) / mm - 1)) <= 5 * math.sqrt(2 / n)
    total = err.reshape(n, -1).sum(1)
    assert abs(total.mean() - mm.sum()) <= 5 * total.std() / math.sqrt(n)


def test_score_error_is_the_monte_carlo_score_gap(x64):
    field, proc, _ = _setup("vp")
    model = O.GaussianField(SHAPE, "dft", field.mean + 0.05, 1.1 * field.var)
    n, t = 4000, 0.4
    x0 = field.sample(jax.random.key(22), n, dtype=jnp.float64)
    xt = proc.sample(jax.random.key(23), x0, t)
    gap = np.asarray(model.score(proc, xt, t) - field.score(proc, xt, t))
    sq = np.sum(gap.reshape(n, -1) ** 2, 1)
    ref = float(O.score_error(field, model, proc, t))
    assert abs(sq.mean() - ref) <= 5 * sq.std() / math.sqrt(n)
    assert float(O.score_error(field, field, proc, t)) == 0.0
    # variance-only part: sum v (1/v_model - 1/v)^2, computed by hand
    a, s2 = float(proc.scale(t)[0, 0]), float(proc.variance(t)[0, 0])
    v, vm = a * a * field.var + s2, a * a * 1.1 * field.var + s2
    var_only = O.GaussianField(SHAPE, "dft", field.mean, 1.1 * field.var)
    assert float(O.score_error(field, var_only, proc, t)) == pytest.approx(
        np.sum(v * (1 / vm - 1 / v) ** 2), rel=1e-12)


def test_sampler_law_with_a_model_uses_the_model_denoiser(x64):
    field, proc, _ = _setup("vp")
    model = O.GaussianField(SHAPE, "dft", field.mean, 1.5 * field.var)
    ts = S.uniform_grid(proc, 8)
    m0, w0 = _init_law(field, proc)
    z_in, x_T = _initial_samples(proc, m0, w0, n=16)
    out = np.asarray(proc.to_basis(S.sample("ddim", model.denoiser(proc), proc, x_T, ts)))
    _, _, A, B = _oracle_affine("ddim", proc, field, ts, m0, w0, model=model)
    np.testing.assert_allclose(out, A * z_in + B, rtol=1e-8)
    _, _, A0, _ = _oracle_affine("ddim", proc, field, ts, m0, w0)
    assert np.max(np.abs(A0 / A - 1)) > 1e-3


# ----------------------------------------------------------------------------- grids


@pytest.mark.parametrize("name", PROCESSES)
def test_time_grids(x64, name):
    _, proc, _ = _setup(name)
    for grid in (S.uniform_grid(proc, 12), S.log_snr_grid(proc, 12), S.karras_grid(proc, 12)):
        assert grid.shape == (13,) and np.all(np.diff(grid) > 0)
        assert grid[0] == proc.t_min and grid[-1] == proc.T
    lev = np.asarray(jax.vmap(proc.level)(jnp.asarray(S.log_snr_grid(proc, 12))))
    np.testing.assert_allclose(np.diff(np.log(lev)), np.log(lev[-1] / lev[0]) / 12, rtol=1e-3)
    lev = np.asarray(jax.vmap(proc.level)(jnp.asarray(S.karras_grid(proc, 12, rho=5.0))))
    np.testing.assert_allclose(np.diff(lev**0.2), (lev[-1] ** 0.2 - lev[0] ** 0.2) / 12,
                               rtol=1e-3)
    np.testing.assert_allclose(np.diff(S.uniform_grid(proc, 12)), (proc.T - proc.t_min) / 12)
    assert S.nfe("pf_heun", 12) == 24 and S.nfe("pc", 12, 2) == 36 and S.nfe("ddim", 12) == 12


def test_log_snr_grid_with_a_noiseless_start_is_refused(x64):
    proc = P.vp((4,), t_min=0.0)  # level(0) = 0: log-SNR is infinite there
    with pytest.raises(ValueError, match="noise at t_min"):
        S.log_snr_grid(proc, 5)
    grid = S.karras_grid(proc, 5)  # level^(1/rho) is fine at 0
    assert grid[0] == 0.0 and np.all(np.diff(grid) > 0)


def test_score_and_denoiser_adaptors_invert_each_other(x64):
    field, proc, den = _setup("vp")
    x = field.sample(jax.random.key(2), 4, dtype=jnp.float64)
    score = S.score_from_denoiser(proc, den)
    np.testing.assert_allclose(score(x, 0.3), field.score(proc, x, 0.3), rtol=1e-10, atol=1e-12)
    back = S.denoiser_from_score(proc, score)
    np.testing.assert_allclose(back(x, 0.3), den(x, 0.3), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- bad input


def test_sampler_bad_input(x64):
    field, proc, den = _setup("vp")
    x = jnp.zeros((4, *SHAPE))
    key = jax.random.key(0)
    cases = [
        (dict(ts=[0.1, 0.5, 0.5]), "strictly increasing"),
        (dict(ts=[0.5, 0.1, 1.0]), "strictly increasing"),
        (dict(ts=[0.1, 0.5, 1.5]), r"ts must lie in \[0, T=1.0\]"),
        (dict(ts=[-0.1, 0.5, 1.0]), r"ts must lie in \[0, T=1.0\]"),
        (dict(ts=[0.0, 0.5, 1.0]), r"ts\[0\]=0.0 must be > 0"),
        (dict(ts=[0.5]), "at least 2 times"),
        (dict(method="heun"), "method must be one of"),
        (dict(x=jnp.zeros((4, 8, 9))), r"x_T must have shape \[batch, 8, 8\]"),
        (dict(method="ancestral", key=None), "'ancestral' is stochastic: pass key="),
        (dict(method="pc", key=None), "'pc' is stochastic: pass key="),
        (dict(eta=0.5, key=None), "'ddim' is stochastic: pass key="),
        (dict(eta=1.5), r"eta must be in \[0, 1\]"),
        (dict(method="pc", predictor="pc"), "predictor must be a single-step method"),
        (dict(method="pc", n_corrector=-1), "n_corrector must be a non-negative int"),
    ]
    for over, fragment in cases:
        kw = dict(method="ddim", x=x, ts=[0.1, 0.5, 1.0], key=key)
        kw.update(over)
        method, xx, ts = kw.pop("method"), kw.pop("x"), kw.pop("ts")
        with pytest.raises(ValueError, match=fragment):
            S.sample(method, den, proc, xx, ts, **kw)
    with pytest.raises(TypeError, match="floating-point"):
        S.sample("ddim", den, proc, jnp.zeros((4, *SHAPE), jnp.int32), [0.1, 1.0])
    bfield, bproc, bden = _setup("blurring")
    with pytest.raises(ValueError, match="'exponential' sampler needs a frequency-independent"):
        S.sample("exponential", bden, bproc, x, [0.1, 1.0], key=key)
    with pytest.raises(ValueError, match="'exponential' sampler needs a frequency-independent"):
        O.sampler_law("exponential", bproc, bfield, [0.1, 1.0])
    with pytest.raises(ValueError, match="n_steps must be a positive int"):
        S.uniform_grid(proc, 0)
    with pytest.raises(ValueError, match="rho must be positive"):
        S.karras_grid(proc, 4, rho=0.0)
    with pytest.raises(ValueError, match="method must be one of"):
        S.nfe("euler", 3)


def test_oracle_bad_input(x64):
    field, proc, _ = _setup("vp")
    with pytest.raises(ValueError, match="var must be positive"):
        O.GaussianField((4,), "dft", np.zeros(4), np.array([1.0, 1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="var must be positive"):
        O.GaussianField((4,), "dft", 0.0, -1.0)
    with pytest.raises(ValueError, match="mean must be finite"):
        O.GaussianField((4,), "dft", np.array([0, np.nan, 0, 0]), 1.0)
    with pytest.raises(ValueError, match=r"process shape \(8, 7\) does not match the data shape"):
        O.sampler_law("ddim", P.vp((8, 7), basis="dft"), field, [0.1, 1.0])
    with pytest.raises(ValueError, match="basis 'dct' does not match the data basis 'dft'"):
        O.sampler_law("ddim", P.heat_dissipation(SHAPE, basis="dct"), field, [0.1, 1.0])
    with pytest.raises(ValueError, match="method must be one of"):
        O.sampler_law("heun", proc, field, [0.1, 1.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        O.sampler_law("ddim", proc, field, [0.5, 0.1])
    with pytest.raises(ValueError, match="init must be 'prior', 'exact' or a pair"):
        O.sampler_law("ddim", proc, field, [0.1, 1.0], init="data")
    with pytest.raises(ValueError, match="predictor must be a single-step method"):
        O.sampler_law("pc", proc, field, [0.1, 1.0], predictor="pc")
    with pytest.raises(ValueError, match=r"process shape \(3,\) does not match the mixture"):
        _mixture().score(P.vp((3,)), jnp.zeros(3), 0.5)
    with pytest.raises(ValueError, match="weights must be positive and sum to 1"):
        O.GaussianMixture(np.array([0.5, 0.6]), np.zeros((2, 2)), np.stack([np.eye(2)] * 2))
    with pytest.raises(ValueError, match="covs must have shape"):
        O.GaussianMixture(np.array([1.0]), np.zeros((1, 2)), np.eye(2))
    with pytest.raises(ValueError, match="need k0 > 0"):
        O.power_law_field((4,), "dft", k0=0.0)


# ----------------------------------------------------------------------------- convergence studies


def _kl_np(m1, w1, m2, w2):
    m1, w1, m2, w2 = (np.asarray(a, np.float64) for a in (m1, w1, m2, w2))
    return 0.5 * float(np.sum(w1 / w2 - 1 - np.log(w1 / w2) + (m1 - m2) ** 2 / w2))


def test_convergence_curve_has_the_orders_of_samplers_order(x64):
    field = O.power_law_field((4, 4), "dft", alpha=2.0)
    vp = P.vp(field.shape, basis="dft")
    steps = (20, 40, 80, 160)
    m0, v0 = field.marginal(vp, vp.t_min)
    for meth in ("ancestral", "pf_heun", "pc"):
        r = O.convergence_curve(meth, vp, field, steps, pc_ratio=1.0)
        assert list(r["nfe"]) == [S.nfe(meth, n) for n in steps]
        p = np.polyfit(np.log(1.0 / np.array(steps)), np.log(r["w2"]), 1)[0]
        assert abs(p - S.order(meth)) <= 0.3, (meth, p)
        ts = S.log_snr_grid(vp, 20)
        kw = dict(corrector_eps=S.pc_corrector_eps(vp, ts, 1.0)) if meth == "pc" else {}
        me, we = O.sampler_law(meth, vp, field, ts, init="exact", **kw)
        assert r["kl_per_dim"][0] == pytest.approx(_kl_np(me, we, m0, v0) / 16, rel=1e-10)
        w2 = math.sqrt(float(np.sum((np.asarray(me) - np.asarray(m0)) ** 2
                                    + (np.sqrt(np.asarray(we)) - np.sqrt(np.asarray(v0))) ** 2)))
        assert r["w2"][0] == pytest.approx(w2, rel=1e-10)
        mp, wp = O.sampler_law(meth, vp, field, ts, **kw)
        assert r["kl_total_per_dim"][0] == pytest.approx(_kl_np(mp, wp, m0, v0) / 16, rel=1e-10)
    snr = O.convergence_curve("pc", vp, field, steps[:2])  # score_sde's rule: another law
    assert np.all(np.isfinite(snr["w2"])) and snr["w2"][0] != r["w2"][0]
    assert S.order("dpm_solver_2") == 2 and S.order("ddim") == 1
    with pytest.raises(ValueError):
        S.order("heun")


def test_girsanov_bound_against_monte_carlo_and_the_vp_rate(x64):
    field = O.power_law_field((4, 4), "dft", alpha=2.0)
    mu, lam = np.asarray(field.mean), np.asarray(field.var)
    model = O.GaussianField(field.shape, field.basis, field.mean + 0.1, field.var * 1.2)
    vp = P.vp(field.shape, basis="dft")
    t = np.geomspace(vp.t_min, vp.T, 50)
    r = O.girsanov_bound(field, model, vp, t)
    rng = np.random.default_rng(0)
    for i in (0, 25, 49):  # E_{p_t} |s_hat - s|^2 by sampling z ~ p_t per coefficient
        a = math.exp(-0.25 * t[i] ** 2 * 19.9 - 0.05 * t[i])
        v, vh = a**2 * lam + 1 - a**2, a**2 * lam * 1.2 + 1 - a**2
        z = a * mu + np.sqrt(v) * rng.standard_normal((40000, *mu.shape))
        diff = -(z - a * (mu + 0.1)) / vh + (z - a * mu) / v
        est = (diff**2).reshape(40000, -1).sum(1)
        assert abs(est.mean() - r["score_error"][i]) <= 5 * est.std() / math.sqrt(40000)
    from scipy.integrate import trapezoid

    beta = 0.1 + t * 19.9
    assert r["girsanov"] == pytest.approx(0.5 * trapezoid(beta * r["score_error"], t), rel=1e-12)
    assert r["score_error_integral"] == pytest.approx(trapezoid(r["score_error"], t), rel=1e-12)


def test_score_error_split_matches_its_parts(x64):
    field = O.power_law_field((4, 4), "dft", alpha=2.0)
    vp = P.vp(field.shape, basis="dft")
    r = O.score_error_split(field, vp, delta=0.1, methods=("ancestral", "pf_heun"), nfe=10,
                            girsanov_steps=(10, 40), n_t=50)
    model = O.GaussianField(field.shape, field.basis, field.mean, field.var * 1.1)
    assert list(r["kl_pt0_vs_model_sampler"]) == ["ancestral"]  # the stochastic ones
    m0, v0 = field.marginal(vp, vp.t_min)
    for i, n in enumerate((10, 40)):
        m, w = O.sampler_law("ancestral", vp, field, S.log_snr_grid(vp, n), model=model,
                             init="exact")
        assert r["kl_pt0_vs_model_sampler"]["ancestral"][i] == pytest.approx(
            _kl_np(m0, v0, m, w), rel=1e-10)
    assert r["samplers"]["ancestral"]["n_steps"] == 10 and r["samplers"]["pf_heun"]["n_steps"] == 5
    split = O.error_split("pf_heun", vp, field, S.log_snr_grid(vp, 5), model=model)
    assert {k: v for k, v in r["samplers"]["pf_heun"].items() if k != "n_steps"} == split
    g = O.girsanov_bound(field, model, vp, np.geomspace(vp.t_min, vp.T, 50))
    assert r["girsanov"] == g["girsanov"] > 0
