"""The Fourier neural operator: its spectral convolution against a dense circular convolution
(independent NumPy), a one-layer linear FNO trained on the heat semigroup against its closed-form
mode-truncation floors, discretisation invariance at shared grid points, and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import opdiff
from opdiff import functions
from opdiff.nets.fno import FNO, SpectralConv
from opdiff.operator_learning import fno_bounds as fb
from opdiff.operators import heat


def _dense_circulant_1d(real, imag, n):
    """The 1-D spectral convolution as a dense [n*c_out, n*c_in] matrix, built from the full
    Hermitian multiplier M_k = W_k (0 <= k < m), M_-k = conj(W_k), M_0 = Re W_0, and the
    circular kernel ifft(M): y_j = sum_l kernel[j - l] x_l."""
    m, c_in, c_out = real.shape
    full = np.zeros((n, c_in, c_out), complex)
    w = real + 1j * imag
    full[0] = w[0].real
    for k in range(1, m):
        full[k], full[-k] = w[k], np.conj(w[k])
    kernel = np.fft.ifft(full, axis=0).real  # [n, c_in, c_out]
    j = np.arange(n)
    return kernel[(j[:, None] - j[None, :]) % n]  # [n_out, n_in, c_in, c_out]


def test_spectral_conv_1d_equals_dense_circular_convolution():
    n, m, c_in, c_out = 12, 4, 2, 3
    conv = SpectralConv(c_in, c_out, m, key=jax.random.key(0))
    x = np.asarray(jax.random.normal(jax.random.key(1), (n, c_in)))
    dense = _dense_circulant_1d(np.asarray(conv.real[...], np.float64),
                                np.asarray(conv.imag[...], np.float64), n)
    expected = np.einsum("jlio,li->jo", dense, x)
    np.testing.assert_allclose(np.asarray(conv(jnp.asarray(x, jnp.float32))), expected,
                               rtol=0, atol=2e-6)


def test_spectral_conv_2d_is_a_bandlimited_circular_convolution():
    """Linear and shift-equivariant, hence y = kernel (*) x with kernel its impulse response
    (checked by a dense NumPy circular convolution), and the kernel has no energy outside
    |k_i| < m_i."""
    shape, modes = (8, 10), (3, 2)
    conv = SpectralConv(1, 1, modes, key=jax.random.key(2))
    impulse = np.zeros((*shape, 1), np.float32)
    impulse[0, 0, 0] = 1.0
    kernel = np.asarray(conv(jnp.asarray(impulse)), np.float64)[..., 0]
    x = np.asarray(jax.random.normal(jax.random.key(3), shape), np.float64)
    expected = np.zeros(shape)
    for a in range(shape[0]):
        for b in range(shape[1]):
            expected += x[a, b] * np.roll(kernel, (a, b), axis=(0, 1))
    got = np.asarray(conv(jnp.asarray(x[..., None], jnp.float32)), np.float64)[..., 0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    spec = np.abs(np.fft.fftn(kernel))
    assert spec[~fb.retained_mask(shape, modes)].max() < 1e-5 * spec.max()
    assert spec[fb.retained_mask(shape, modes)].min() > 0


def _transfer(model, n):
    """The transfer function H_k and the offset b of a linear, shift-invariant model."""
    zero = np.asarray(model(jnp.zeros((n, 1))), np.float64)[:, 0]
    impulse = np.zeros((n, 1), np.float32)
    impulse[0] = 1.0
    h = np.fft.fft(np.asarray(model(jnp.asarray(impulse)), np.float64)[:, 0] - zero)
    return h, zero


@pytest.mark.parametrize("skip", [False, True])
def test_linear_fno_reaches_its_mode_truncation_floor_on_the_heat_semigroup(skip):
    """One linear Fourier layer (no activation, linear lifting and projection), trained with
    fresh data on u -> e^(t nu Delta) u: its exact population MSE sum_k P_k |H_k - a_k|^2 + b^2
    (from its impulse response) is >= the closed-form floor and within 3 % of it."""
    n, modes, nu_t = 32, 3, 0.001
    field = functions.PeriodicPowerLawField(n=n, alpha=2.0, k0=1.0)
    p = field.spectrum()
    a = heat.heat_multiplier(4 * np.pi ** 2 * np.fft.fftfreq(n, 1 / n) ** 2, nu_t)
    floor = (fb.linear_fno_floor if skip else fb.truncation_floor)(p, a, modes)
    assert floor > 1e-2 * float(np.sum(p * a ** 2))  # a floor worth reaching
    model = FNO(1, 1, modes, width=4, depth=1, activation=None, projection_width=None,
                skip=skip, key=jax.random.key(0))
    a32 = jnp.asarray(a, jnp.complex64)

    def data(key):
        u = field.sample(64, key=key)
        v = jnp.fft.ifft(jnp.fft.fft(u) * a32).real
        return u[..., None], v[..., None]

    def loss(m, batch, key):
        u, v = batch
        return jnp.mean((m.batched(u) - v) ** 2)

    sched = optax.cosine_decay_schedule(1e-2, 3000, alpha=1e-3)
    res = opdiff.fit(loss, model, optax.adam(sched), data, steps=3000, steps_per_call=500,
                     key=jax.random.key(1))
    h, b = _transfer(res.params, n)
    mse = float(np.sum(p * np.abs(h - a) ** 2) + np.mean(b ** 2))
    assert mse >= floor * (1 - 1e-4)
    assert mse <= 1.03 * floor, (mse, floor)


def _bandlimited(n, coeffs):
    x = np.arange(n) / n
    return sum(c * np.cos(2 * np.pi * k * x + k) for k, c in coeffs)


@pytest.mark.parametrize("activation, atol", [(None, 2e-5), ("gelu", 2e-3)])
def test_discretisation_invariance_at_shared_points(activation, atol):
    """The same bandlimited function (modes <= 5) on n = 32 and 2n = 64 points: the outputs
    agree at the shared points x = j/32, to float32 rounding for a linear FNO, and within
    2e-3 (outputs of size ~1; measured 2e-4..5e-4 over three seeds) for a GELU FNO, whose
    nonlinearity makes harmonics that the coarse grid aliases. Not vacuous: the outputs vary by
    more than 50 x atol."""
    model = FNO(1, 1, 8, width=16, depth=3, activation=activation,
                projection_width=None if activation is None else 32, key=jax.random.key(4))
    coeffs = [(1, 0.8), (3, 0.4), (5, 0.2)]
    coarse, fine = (jnp.asarray(_bandlimited(m, coeffs), jnp.float32)[:, None] for m in (32, 64))
    yc, yf = np.asarray(model(coarse))[:, 0], np.asarray(model(fine))[::2, 0]
    np.testing.assert_allclose(yc, yf, rtol=0, atol=atol)
    assert np.ptp(yc) > 50 * atol


def test_bad_input():
    model = FNO(2, 1, (4, 3), width=4, depth=1, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"u must have .* >= 2 \* modes = \(8, 6\)"):
        model(jnp.zeros((7, 16, 2)))
    with pytest.raises(ValueError, match="in_channels = 2"):
        model(jnp.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match="grid axes"):
        model(jnp.zeros((8, 2)))
    with pytest.raises(TypeError, match="floating point"):
        model(jnp.zeros((8, 8, 2), jnp.int32))
    with pytest.raises(ValueError, match="modes"):
        FNO(1, 1, (2, 2, 2), key=jax.random.key(0))
    with pytest.raises(ValueError, match="width"):
        FNO(1, 1, 4, width=0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="activation"):
        FNO(1, 1, 4, activation="swish2", key=jax.random.key(0))
    with pytest.raises(ValueError, match="channels"):
        SpectralConv(2, 2, 3, key=jax.random.key(0))(jnp.zeros((8, 3)))


def test_periodic_antiderivative_closed_form():
    """int_0^x cos(2 pi k x') dx' = sin(2 pi k x) / (2 pi k) and int_0^x sin(2 pi k x') dx' =
    (1 - cos(2 pi k x)) / (2 pi k), exactly on the grid (k below Nyquist)."""
    from opdiff.operator_learning.zoo import periodic_antiderivative

    x = np.arange(32) / 32
    for k in (1, 5, 15):
        w = 2 * np.pi * k
        np.testing.assert_allclose(periodic_antiderivative(np.cos(w * x)), np.sin(w * x) / w,
                                   atol=1e-13)
        np.testing.assert_allclose(periodic_antiderivative(np.sin(w * x)),
                                   (1 - np.cos(w * x)) / w, atol=1e-13)
