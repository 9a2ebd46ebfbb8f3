"""The FNO floors and aliasing terms (opdiff.operator_learning.fno_bounds) against independent
computations: brute-force sums over modes, a numerical minimisation over the skip's constant,
and a Monte-Carlo measurement of the aliasing gap of a spectral layer."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from opdiff import functions
from opdiff.operator_learning import fno_bounds as fb
from opdiff.operators import heat


def _setup(n=64, nu_t=0.002):
    p = functions.PeriodicPowerLawField(n=n, alpha=2.5, k0=1.0).spectrum()
    k = np.fft.fftfreq(n, 1 / n)
    return p, heat.heat_multiplier(4 * np.pi ** 2 * k ** 2, nu_t), k


def test_truncation_floors_by_brute_force():
    p, a, k = _setup()
    for m in (1, 3, 8):
        tail = [p[i] * a[i] ** 2 for i in range(p.size) if abs(k[i]) >= m]
        assert fb.truncation_floor(p, a, m) == pytest.approx(sum(tail), rel=1e-12)
        out = np.abs(k) >= m
        best = minimize_scalar(lambda s: np.sum(p[out] * (a[out] - s) ** 2), bounds=(-1, 1),
                               method="bounded", options=dict(xatol=1e-12))
        assert fb.linear_fno_floor(p, a, m) == pytest.approx(best.fun, rel=1e-6)
        assert fb.linear_fno_floor(p, a, m) <= fb.truncation_floor(p, a, m)
    # 2-D: the retained set is a box |k1| < m1, |k2| < m2
    p2 = functions.PeriodicPowerLawField(n=(8, 12), alpha=3.0).spectrum()
    k1, k2 = np.meshgrid(np.fft.fftfreq(8, 1 / 8), np.fft.fftfreq(12, 1 / 12), indexing="ij")
    a2 = np.exp(-0.01 * (k1 ** 2 + k2 ** 2))
    box = (np.abs(k1) < 2) & (np.abs(k2) < 3)
    assert fb.truncation_floor(p2, a2, (2, 3)) == pytest.approx(
        np.sum((p2 * a2 ** 2)[~box]), rel=1e-12)


def test_energy_above_nyquist_and_aliased_into():
    p, _, k = _setup(n=128)
    for n in (16, 32):
        assert fb.energy_above_nyquist(p, n) == pytest.approx(p[np.abs(k) >= n / 2].sum(),
                                                             rel=1e-12)
        a = fb.aliased_into(p, n)
        # every mode outside the coarse band lands on exactly one coarse coefficient
        band = (2 * k > -n) & (2 * k <= n)
        assert a.sum() == pytest.approx(p[~band].sum(), rel=1e-12)
        kc = np.fft.fftfreq(n, 1 / n)
        for j in (1, 3):
            expect = sum(p[i] for i in range(128) if not band[i] and (k[i] - j) % n == 0)
            assert a[np.flatnonzero(kc == j)[0]] == pytest.approx(expect, rel=1e-12)
        assert fb.aliasing_gap(p, n, 4) <= fb.energy_above_nyquist(p, n)


def test_aliasing_gap_matches_monte_carlo():
    """A spectral layer with transfer G on |k| < m, applied to u sampled on 16 points and to the
    same u on 128 points: the mean-square difference at the 16 shared points has expectation
    aliasing_gap; 4000 samples, 4 standard errors."""
    nf, nc, m = 128, 16, 5
    field = functions.PeriodicPowerLawField(n=nf, alpha=1.5, k0=1.0)
    p = field.spectrum()
    kc = np.fft.fftfreq(nc, 1 / nc)
    g = np.where(np.abs(kc) < m, 1.0 + 0.5 * np.cos(kc), 0.0)
    u = np.asarray(field.sample(4000, key=jax.random.key(0), dtype=np.float32), np.float64)

    def layer(v):
        n = v.shape[-1]
        kk = np.fft.fftfreq(n, 1 / n)
        gg = np.interp(kk, kc[np.argsort(kc)], g[np.argsort(kc)]) * (np.abs(kk) < m)
        return np.fft.ifft(np.fft.fft(v) * gg).real

    d = np.mean((layer(u[:, :: nf // nc]) - layer(u)[:, :: nf // nc]) ** 2, axis=1)
    gap = fb.aliasing_gap(p, nc, m, g)
    assert gap > 1e-3
    assert abs(d.mean() - gap) <= 4 * d.std() / np.sqrt(d.size)


def test_bad_input():
    p, a, _ = _setup(n=16)
    with pytest.raises(ValueError, match="multiplier must have the spectrum's shape"):
        fb.truncation_floor(p, a[:8], 2)
    with pytest.raises(ValueError, match="spectrum must be finite and >= 0"):
        fb.truncation_floor(-p, a, 2)
    with pytest.raises(ValueError, match="modes"):
        fb.truncation_floor(p, a, 0)
    with pytest.raises(ValueError, match="train_shape .* must divide"):
        fb.energy_above_nyquist(p, 5)
    with pytest.raises(ValueError, match="modes must be <= train_shape / 2"):
        fb.aliasing_gap(p, 8, 5)


def test_aliasing_mmse_matches_the_best_linear_regression_monte_carlo():
    """Heat forward observed on 8 of 64 points: the least-squares linear map from the 8 input
    values to the 8 target values, fitted on 40000 draws and scored on 40000 others, has the
    MSE of aliasing_mmse (the posterior mean is linear: Gaussian law) within 4 standard errors
    plus the fit's own O(d^2/N) excess; and the floor is 0 when the coarse grid resolves u."""
    nf, nc = 64, 8
    field = functions.PeriodicPowerLawField(n=nf, alpha=1.5, k0=1.0)
    p = field.spectrum()
    a = heat.periodic_multiplier(np.fft.fftfreq(nf, 1 / nf), 0.002, 1.0)
    u = np.asarray(field.sample(80000, key=jax.random.key(3), dtype=np.float32), np.float64)
    v = np.fft.ifft(np.fft.fft(u) * a).real
    x, y = u[:, :: nf // nc], v[:, :: nf // nc]
    coef, *_ = np.linalg.lstsq(x[:40000], y[:40000], rcond=None)
    err = np.mean((x[40000:] @ coef - y[40000:]) ** 2, axis=1)
    floor = fb.aliasing_mmse(p, a, nc)
    assert floor > 1e-2 * np.mean(y ** 2)
    assert abs(err.mean() - floor) <= 4 * err.std() / np.sqrt(err.size) + 2 * floor * 64 / 40000
    band = functions.PeriodicPowerLawField(n=16, alpha=1.5).spectrum()
    a16 = heat.periodic_multiplier(np.fft.fftfreq(16, 1 / 16), 0.002, 1.0)
    assert fb.aliasing_mmse(band, a16, 16) == pytest.approx(0.0, abs=1e-15)


def test_wiener_mse_equals_the_heat_modules_in_1d_and_monte_carlo_in_2d():
    """1-D: the same number as opdiff.operators.heat.wiener_mse (real-coordinate formula with
    multiplicities); 2-D: the Wiener filter applied to 2000 draws (4 SE)."""
    n, t, nu, delta = 64, 0.01, 0.05, 0.03
    p, _, k = _setup(n=n)
    a = heat.periodic_multiplier(k, t, nu)
    assert fb.wiener_mse(p, a, delta ** 2) == pytest.approx(
        heat.wiener_mse(n, p[: n // 2 + 1], t, nu, delta), rel=1e-12)
    field = functions.PeriodicPowerLawField(n=(16, 16), alpha=2.0)
    p2 = field.spectrum()
    k1, k2 = np.meshgrid(*(np.fft.fftfreq(16, 1 / 16),) * 2, indexing="ij")
    a2 = heat.heat_multiplier(4 * np.pi ** 2 * (k1 ** 2 + k2 ** 2) * nu, t)
    u = np.asarray(field.sample(2000, key=jax.random.key(5), dtype=np.float32), np.float64)
    eta = np.random.default_rng(0).normal(size=u.shape) * delta * 16
    f = np.fft.ifft2(np.fft.fft2(u) * a2).real + eta
    est = np.fft.ifft2(np.fft.fft2(f) * a2 * p2 / (a2 ** 2 * p2 + delta ** 2)).real
    err = np.mean((est - u) ** 2, axis=(1, 2))
    mmse = fb.wiener_mse(p2, a2, delta ** 2)
    assert abs(err.mean() - mmse) <= 4 * err.std() / np.sqrt(err.size)
    with pytest.raises(ValueError, match="noise_var"):
        fb.wiener_mse(p, a, 0.0)


@pytest.mark.parametrize("name", ["heat_backward", "heat2d_backward"])
def test_zoo_backward_data_meet_their_wiener_floor(name):
    """The zoo's backward heat data (opdiff.operator_learning.zoo.make_data) and its floor
    (zoo.floors) agree: the Wiener filter applied to 3000 generated pairs has the floor's MSE
    within 4 SE, so a wrong noise scale in either would fail here."""
    import types

    from opdiff.operator_learning import zoo

    cfg = types.SimpleNamespace(n=32, n2=16, alpha=2.5, k0=1.0, nu=0.05, t=0.005, delta=0.05,
                                p=8, fno_modes=4)
    f, u = (np.asarray(x, np.float64) for x in
            zoo.make_data(name, cfg, jax.random.key(7), 3000))
    shape = (16, 16) if name == "heat2d_backward" else (32,)
    field = functions.PeriodicPowerLawField(n=shape if len(shape) == 2 else shape[0],
                                            alpha=2.5, k0=1.0)
    p = field.spectrum()
    a = heat.heat_multiplier(4 * np.pi ** 2 * 0.05 * field.wavenumbers(), 0.005)
    axes = tuple(range(1, len(shape) + 1))
    fh = np.fft.fftn(f.reshape(-1, *shape), axes=axes)
    est = np.fft.ifftn(fh * a * p / (a ** 2 * p + 0.05 ** 2), axes=axes).real
    err = np.mean((est.reshape(len(u), -1) - u) ** 2, axis=1)
    floor = zoo.floors(name, cfg, u)["wiener"]
    assert abs(err.mean() - floor) <= 4 * err.std() / np.sqrt(err.size)


def test_at_shape_copies_every_parameter():
    from opdiff.nets import UNet, nnx
    from opdiff.operator_learning import zoo

    small = UNet((8, 8), channels=(4, 8), emb_dim=8, key=jax.random.key(0))
    big = zoo.at_shape(small, UNet((16, 16), channels=(4, 8), emb_dim=8, key=jax.random.key(1)))
    assert big.shape == (16, 16)
    for x, y in zip(jax.tree.leaves(nnx.state(small, nnx.Param)),
                    jax.tree.leaves(nnx.state(big, nnx.Param))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
