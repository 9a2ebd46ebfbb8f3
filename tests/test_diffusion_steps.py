"""The per-method step definitions (opdiff.diffusion.steps): the affine-form algebra, the
registry, and each method's one-step law against an independent closed form.

The closed forms below are the per-coefficient maps :math:`z'=Az+B+\\sqrt E\\,\\xi` derived by
hand for a denoiser :math:`D=Gz+q` (the table the oracle used before the steps were written
once), evaluated in NumPy from the process's moments; the oracle reads the same maps off the
step functions run on affine forms. Float64 (``x64``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from opdiff.diffusion import oracle as O
from opdiff.diffusion import processes as P
from opdiff.diffusion import samplers as S
from opdiff.diffusion import steps as St

SHAPE = (6,)


# ----------------------------------------------------------------------------- affine forms


def test_affine_form_tracks_shared_noise_exactly(x64):
    rng = np.random.default_rng(0)
    c1, c2, g, q = (rng.normal(size=SHAPE) for _ in range(4))
    m, w = rng.normal(size=SHAPE), rng.uniform(0.5, 2.0, size=SHAPE)

    def expr(z, xi0, xi1):  # the same noise xi0 enters twice: variances must not just add
        y = z + 0.5 * xi0
        return c1 * y - (g * y + q) / c2 + 2.0 * xi1 - (1.0 - y) * c1

    A = St.Affine.identity()
    form = expr(A, St.Affine.noise(0), St.Affine.noise(1))
    mean, var = form.law(m, w)
    coef_z = c1 - g / c2 + c1
    np.testing.assert_allclose(mean, coef_z * m - q / c2 - c1, rtol=1e-13)
    np.testing.assert_allclose(var, coef_z**2 * w + (0.5 * coef_z) ** 2 + 4.0, rtol=1e-13)
    # the same expression on samples: the law's moments within Monte-Carlo error
    n = 200_000
    z = m + np.sqrt(w) * rng.normal(size=(n, *SHAPE))
    x = expr(z, rng.normal(size=(n, *SHAPE)), rng.normal(size=(n, *SHAPE)))
    np.testing.assert_allclose(x.mean(0), mean, atol=6 * np.sqrt(var / n).max())
    np.testing.assert_allclose(x.var(0) / var, 1, atol=6 * math.sqrt(2 / n))
    np.testing.assert_allclose(form.second_moment(m, w), mean**2 + var, rtol=1e-13)


def test_affine_form_refuses_a_product_of_forms():
    z = St.Affine.identity()
    with pytest.raises(TypeError, match="not affine"):
        _ = z * z
    with pytest.raises(TypeError, match="divide"):
        _ = z / z


def test_registry_drives_names_nfe_order_and_checks():
    assert S.SAMPLERS + S.MULTISTEP == tuple(St.METHODS)
    assert S.SAMPLERS[0] == "euler_maruyama" and S.SAMPLERS[-1] == "pc"
    assert S.MULTISTEP == ("dpm_solver_2m", "dpm_solver_3m")
    assert S.SECOND_ORDER == ("pf_heun", "dpm_solver_2", "dpm_solver_2m")
    assert S.order("dpm_solver_3m") == 3
    # one evaluation per step; the 3M's first step (DPM-Solver-2) spends one more
    assert S.nfe("dpm_solver_2m", 7) == 7 and S.nfe("dpm_solver_3m", 7) == 8
    assert S.steps_for_budgets("dpm_solver_3m", (3,), (8, 1)) == (3, 7)
    for m in S.MULTISTEP:  # a multistep step returns (z, D): not a predictor for pc
        with pytest.raises(ValueError, match="predictor"):
            S.check_options("pc", predictor=m)
    assert set(S.STOCHASTIC) == {"euler_maruyama", "ancestral", "reverse_diffusion",
                                 "exponential", "pc"}
    assert S.nfe("pf_heun", 7) == 14 and S.nfe("pc", 5, n_corrector=2) == 15
    assert S.nfe("ddim", 9) == 9 and S.order("dpm_solver_2") == 2 and S.order("pc") == 1
    with pytest.raises(ValueError, match="method must be one of"):
        St.check_method("heun")
    with pytest.raises(ValueError, match="frequency-independent"):
        St.check_method("exponential", P.blurring((8,), basis="dft"))


# ----------------------------------------------------------------------------- one-step laws


def _one_step(method, proc, field, t, s, **kw):
    """(A, B, E) of the step t -> s read off the oracle from two initial laws."""
    ts = np.array([s, t])
    zero, one = np.zeros(field.shape), np.ones(field.shape)
    b, e = map(np.asarray, O.sampler_law(method, proc, field, ts, init=(zero, zero), **kw))
    m1, w1 = map(np.asarray, O.sampler_law(method, proc, field, ts, init=(one, one), **kw))
    return m1 - b, b, e


def _terms(proc, field, t):
    a = np.asarray(proc.scale(t))
    s2 = np.asarray(proc.variance(t))
    g = a * field.var / (a**2 * field.var + s2)
    return a, s2, g, (1 - a * g) * field.mean, np.asarray(proc.drift(t)), \
        np.asarray(proc.diffusion2(t))


def _reference(method, proc, field, t, s, eta=0.0):
    """The hand-derived (A, B, E) of one step for the denoiser G z + q."""
    at, s2t, gt, qt, ft, g2t = _terms(proc, field, t)
    as_, s2s, gs, qs, fs, g2s = _terms(proc, field, s)
    h = t - s
    kt, ks = (1 - at * gt) / s2t, (1 - as_ * gs) / s2s  # 1 / v_model
    mu = field.mean
    if method == "pf_heun":
        p_t, q_t = ft + 0.5 * g2t * kt, 0.5 * g2t * kt * at * mu
        p_s, q_s = fs + 0.5 * g2s * ks, 0.5 * g2s * ks * as_ * mu
        return (1 - 0.5 * h * (p_t + p_s * (1 - h * p_t)),
                0.5 * h * (q_t + q_s - p_s * h * q_t), 0.0)
    r = at / as_
    beta = s2t - r**2 * s2s
    if method == "ddim":
        var_eta = eta**2 * np.maximum(s2s * beta / s2t, 0)
        c = np.sqrt(s2s - var_eta) / np.sqrt(s2t)
        return as_ * gt + c * (1 - at * gt), as_ * qt - c * at * qt, var_eta
    st, ss = np.sqrt(s2t), np.sqrt(s2s)
    lam_t, lam_s = np.log(at / st), np.log(as_ / ss)
    phi = 1 - np.exp(-(lam_s - lam_t))
    if method == "dpm_solver_1":
        return ss / st + as_ * phi * gt, as_ * phi * qt, 0.0
    assert method == "dpm_solver_2"
    u = 0.5 * (s + t)
    au, s2u, gu, qu, _, _ = _terms(proc, field, u)
    su = np.sqrt(s2u)
    hu = np.log(au / su) - lam_t
    Au = su / st - au * np.expm1(-hu) * gt
    Bu = -au * np.expm1(-hu) * qt
    rho = (lam_s - lam_t) / (2 * hu)
    return (ss / st + as_ * phi * ((1 - rho) * gt + rho * gu * Au),
            as_ * phi * ((1 - rho) * qt + rho * (gu * Bu + qu)), 0.0)


@pytest.mark.parametrize("method, kw", [("pf_heun", {}), ("ddim", {"eta": 0.0}),
                                        ("ddim", {"eta": 0.6}), ("dpm_solver_1", {}),
                                        ("dpm_solver_2", {})])
@pytest.mark.parametrize("proc_name", ["vp", "blurring"])
def test_one_step_law_matches_the_closed_form(x64, method, kw, proc_name):
    proc = {"vp": lambda: P.vp(SHAPE, basis="dft"),
            "blurring": lambda: P.blurring(SHAPE, basis="dft")}[proc_name]()
    field = O.power_law_field(SHAPE, "dft", alpha=2.0, mean=0.4)
    t, s = 0.55, 0.45
    A, B, E = _one_step(method, proc, field, t, s, **kw)
    Ar, Br, Er = _reference(method, proc, field, t, s, **kw)
    np.testing.assert_allclose(A, Ar, rtol=1e-11)
    np.testing.assert_allclose(B, Br, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(E, Er, rtol=1e-11, atol=1e-300)


def test_ddim_eta0_equals_dpm_solver_1(x64):
    proc, field = P.vp(SHAPE, basis="dft"), O.power_law_field(SHAPE, "dft", alpha=2.0, mean=0.4)
    for a, b in zip(_one_step("ddim", proc, field, 0.7, 0.6),
                    _one_step("dpm_solver_1", proc, field, 0.7, 0.6)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_pc_snr_rule_uses_the_expected_norms(x64):
    # score_sde's rule eps = 2 (snr ||xi|| / ||score||)^2 with both norms replaced by their
    # root mean squares under the current law: E||xi||^2 = d, E||score||^2 below
    proc, field = P.ve(SHAPE, basis="dft"), O.power_law_field(SHAPE, "dft", alpha=2.0, mean=0.4)
    t, s, snr = 0.7, 0.6, 0.2
    m, w = np.full(SHAPE, 0.3), np.full(SHAPE, 2.0)
    out = map(np.asarray, O.sampler_law("pc", proc, field, np.array([s, t]), init=(m, w),
                                        predictor="pf_euler", snr=snr))
    v = field.var + np.asarray(proc.variance(t))  # a = 1 for VE: the model's marginal variance
    e_score2 = np.sum(((m - field.mean) ** 2 + w) / v**2)
    eps = 2 * snr**2 * m.size / e_score2
    mc, wc = (1 - eps / v) * m + eps * field.mean / v, (1 - eps / v) ** 2 * w + 2 * eps
    A, B, _ = _one_step("pf_euler", proc, field, t, s)
    for got, want in zip(out, (A * mc + B, A**2 * wc)):
        np.testing.assert_allclose(got, want, rtol=1e-11)


def test_sampler_noise_keys_are_the_documented_ones(x64):
    # step i draws its k-th normal from fold_in(fold_in(key, i), k): the Euler-Maruyama step
    # on a zero denoiser is z - h (f z + g2 z / s2) + sqrt(h g2) xi, reproduced by hand
    proc = P.vp(SHAPE, basis="identity")
    ts = np.array([0.4, 0.5])
    x = jnp.ones((3, *SHAPE))
    key = jax.random.key(5)
    out = S.sample("euler_maruyama", lambda x, t: jnp.zeros_like(x), proc, x, ts, key=key)
    c = St.coeffs(proc, jnp.asarray(0.5), jnp.float64)
    xi = jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, 0), 0), x.shape)
    h = 0.1
    want = x - h * (c.f * x - c.g2 * (-x / c.s2)) + jnp.sqrt(h * c.g2) * xi
    np.testing.assert_allclose(out, want, rtol=1e-12)


# ----------------------------------------------------------------------------- multistep


def _lam_a_s(proc, t):
    a = np.asarray(proc.scale(t))
    s = np.sqrt(np.asarray(proc.variance(t)))
    return np.log(a / s), a, s


def _multistep_reference(method, proc, field, ts, z):
    """DPM-Solver++(2M) as printed in Lu et al. (2022), Algorithm 2 (D = (1 + 1/(2r)) D_i -
    1/(2r) D_{i-1}, r = h_{i-1}/h_i), and the 3M as the exact solution of the data-prediction
    ODE z_s = (s_s/s_t) z + s_s int_{lam_t}^{lam_s} e^lam p(lam) dlam with p the Lagrange
    polynomial through the last three outputs, the integral by 40-point Gauss-Legendre (not
    the closed forms of the steps); its first step is the singlestep DPM-Solver-2 (midpoint)."""
    gl_x, gl_w = np.polynomial.legendre.leggauss(40)

    def den(z, t):
        a, s2 = np.asarray(proc.scale(t)), np.asarray(proc.variance(t))
        g = a * field.var / (a**2 * field.var + s2)
        return g * z + (1 - a * g) * field.mean

    outs = []  # (lam, D) oldest first
    for i in range(len(ts) - 1, 0, -1):
        t, s = ts[i], ts[i - 1]
        (lt, _, st), (ls, as_, ss) = _lam_a_s(proc, t), _lam_a_s(proc, s)
        d, h = den(z, t), ls - lt
        if method == "dpm_solver_3m" and not outs:
            u = 0.5 * (s + t)
            lu, au, su = _lam_a_s(proc, u)
            du = den((su / st) * z + au * (1 - np.exp(-(lu - lt))) * d, u)
            z = (ss / st) * z + as_ * (1 - np.exp(-h)) * (d + h / (2 * (lu - lt)) * (du - d))
            outs = [(lt, d), (lu, du)]
            continue
        outs.append((lt, d))
        if method == "dpm_solver_2m":
            if len(outs) == 1:
                z = (ss / st) * z + as_ * (1 - np.exp(-h)) * d
            else:
                r = (lt - outs[-2][0]) / h
                dd = (1 + 1 / (2 * r)) * d - 1 / (2 * r) * outs[-2][1]
                z = (ss / st) * z + as_ * (1 - np.exp(-h)) * dd
            continue
        pts = outs[-3:]
        lam = (0.5 * h[None] * gl_x[:, None] + 0.5 * (ls + lt)[None])[:, None]  # [40, 1, d]
        p = 0.0
        for j, (lj, dj) in enumerate(pts):
            basis = 1.0
            for k, (lk, _) in enumerate(pts):
                if k != j:
                    basis = basis * (lam - lk) / (lj - lk)
            p = p + basis * dj
        integral = np.sum(0.5 * h * gl_w[:, None, None] * np.exp(lam) * p, axis=0)
        z = (ss / st) * z + ss * integral
    return z


@pytest.mark.parametrize("method", ["dpm_solver_2m", "dpm_solver_3m"])
@pytest.mark.parametrize("proc_name", ["vp", "blurring"])
def test_multistep_on_arrays_equals_its_affine_reading_and_the_reference(x64, method,
                                                                          proc_name):
    proc = {"vp": lambda: P.vp(SHAPE, basis="dft"),
            "blurring": lambda: P.blurring(SHAPE, basis="dft")}[proc_name]()
    field = O.power_law_field(SHAPE, "dft", alpha=2.0, mean=0.4)
    ts = S.karras_grid(proc, 7)  # unequal steps in lambda
    zT = np.asarray(jax.random.normal(jax.random.key(3), (5, *SHAPE)), np.float64)
    out = np.asarray(proc.to_basis(S.sample(method, field.denoiser(proc), proc,
                                            proc.from_basis(jnp.asarray(zT)), ts)))
    zero = np.zeros(SHAPE)
    B, w0 = map(np.asarray, O.sampler_law(method, proc, field, ts, init=(zero, zero)))
    A = np.asarray(O.sampler_law(method, proc, field, ts, init=(zero + 1, zero))[0]) - B
    np.testing.assert_array_equal(w0, 0)  # deterministic: no noise variance
    scale = np.abs(A) + np.abs(B)
    assert np.max(np.abs(out - (A * zT + B)) / scale) <= 1e-12  # the two readings: round-off
    ref = _multistep_reference(method, proc, field, ts, zT)
    assert np.max(np.abs(ref - (A * zT + B)) / scale) <= 1e-10


@pytest.mark.parametrize("method", ["dpm_solver_2m", "dpm_solver_3m"])
@pytest.mark.parametrize("proc_name", ["vp", "blurring"])
def test_multistep_law_against_monte_carlo(x64, method, proc_name):
    # 4000 samples from the prior through the sampler; per coefficient the sample mean's
    # z-score is N(0, 1) (max over 6 coefficients: |z| <= 4.5 fails with prob. ~4e-5) and the
    # variance ratio has sd sqrt(2/n) (6 sigma)
    proc = {"vp": lambda: P.vp(SHAPE, basis="dft"),
            "blurring": lambda: P.blurring(SHAPE, basis="dft")}[proc_name]()
    field = O.power_law_field(SHAPE, "dft", alpha=2.0, mean=0.4)
    zmax, vdev, vtol = O.monte_carlo_agreement(method, proc, field, S.log_snr_grid(proc, 6),
                                               n=4000, seed=2)
    assert zmax <= 4.5 and vdev <= vtol, (zmax, vdev, vtol)


def _fitted_slopes(method, proc, field, grid, steps):
    m0, v0 = (np.asarray(a) for a in field.marginal(proc, proc.t_min))
    kl, w2 = [], []
    for n in steps:
        m, w = map(np.asarray, O.sampler_law(method, proc, field, grid(proc, n), init="exact"))
        kl.append(O.divergences(m, w, m0, v0)["kl"])
        w2.append(math.sqrt(np.sum((m - m0) ** 2 + (np.sqrt(w) - np.sqrt(v0)) ** 2)))
    logh = np.log(1.0 / np.asarray(steps))
    return np.polyfit(logh, np.log(kl), 1)[0], np.polyfit(logh, np.log(w2), 1)[0]


@pytest.mark.parametrize("method", ["dpm_solver_2m", "dpm_solver_3m"])
def test_multistep_orders_from_exact_kl_and_w2(x64, method):
    # Order p: the output mean and variance are off by O(h^p) per coefficient, so W2 ~ h^p and,
    # KL being quadratic in small mean and variance errors (KL ~ dm^2/(2v) + (dw/v)^2/4),
    # KL ~ h^(2p). Fitted on n = 80..640 steps of the Karras grid (unequal steps in lambda),
    # from the exact marginal at T (discretisation only), 8x8 field, VP. Tolerance 0.3 on the
    # W2 slope, 0.6 on the KL slope (twice the exponent).
    proc = P.vp((8, 8), basis="dft")
    field = O.power_law_field((8, 8), "dft", alpha=2.5, mean=0.3)
    p = S.order(method)
    kl_slope, w2_slope = _fitted_slopes(method, proc, field, S.karras_grid, (80, 160, 320, 640))
    assert abs(w2_slope - p) <= 0.3, (method, w2_slope)
    assert abs(kl_slope - 2 * p) <= 0.6, (method, kl_slope)
    # on the log-SNR grid (equal steps in lambda) the 3M's h^3 error term cancels on these
    # fields (slope ~4, a measured finding); the order is at least p there
    _, w2_logsnr = _fitted_slopes(method, proc, field, S.log_snr_grid, (40, 80, 160, 320))
    assert w2_logsnr >= p - 0.3, (method, w2_logsnr)
