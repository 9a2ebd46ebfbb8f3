r"""Floors and aliasing terms for Fourier neural operators on Fourier-diagonal problems.

Setting: the torus :math:`[0,1)^d`, an input law with independent Fourier coefficients,
:math:`\mathbb E|\hat u_k|^2=P_k` (``spectrum``, on the full FFT grid in ``fftfreq`` order, as
:meth:`opdiff.functions.PeriodicPowerLawField.spectrum` returns it), and a linear operator
diagonal in the same basis, :math:`\widehat{G u}_k=a_k\hat u_k` (``multiplier``: e.g. the heat
factor :func:`opdiff.operators.heat.heat_multiplier`). Errors are mean squares over the grid
(:math:`L^2(0,1)^d` for trigonometric polynomials): :math:`\sum_kP_k|H_k-a_k|^2` for a model
with transfer function :math:`H`.

**Mode-truncation floor.** A model whose output lies in the retained modes
:math:`\mathcal M=\{|k_i|<m_i\}` (an FNO without the pointwise skip, linear projection) has
:math:`H_k=0` off :math:`\mathcal M`, so its MSE is at least

.. math:: F_{\rm trunc}(m)=\sum_{k\notin\mathcal M}P_k|a_k|^2,

the output energy beyond the cutoff (reached by :math:`H_k=a_k` on :math:`\mathcal M`). A linear
FNO *with* the pointwise skip has :math:`H_k=s` (one real number) off :math:`\mathcal M`, hence

.. math:: F_{\rm lin}(m)=\min_s\sum_{k\notin\mathcal M}P_k|a_k-s|^2
    =\sum_{k\notin\mathcal M}P_k|a_k|^2-\frac{(\sum_{k\notin\mathcal M}P_k\,\mathrm{Re}\,a_k)^2}
    {\sum_{k\notin\mathcal M}P_k}.

These are floors for those model classes only: a nonlinear FNO creates harmonics above the
cutoff, and the floor every estimator obeys is the MMSE (zero for the noiseless forward map;
the Wiener MMSE for the backward heat problem, :mod:`opdiff.operators.heat`).

**Aliasing in resolution transfer.** Sampling ``u`` on a coarse grid of ``n`` points per axis
folds every wavenumber into :math:`(-n/2, n/2]`: the coarse coefficient is
:math:`c_k=\sum_{j}\hat u_{k+jn}`, so :math:`\mathbb E|c_k-\hat u_k|^2=A_k=\sum_{j\ne0}P_{k+jn}`
(independent coefficients). A layer that reads only the retained coefficients and multiplies
them by :math:`G_k` therefore differs, at the coarse grid points, between the coarse samples and
the exact function by exactly :math:`\sum_{k\in\mathcal M}|G_k|^2A_k` in mean square
(:func:`aliasing_gap`), at most :math:`\max|G|^2` times the input energy above the coarse grid's
Nyquist frequency (:func:`energy_above_nyquist`).

**The floor at the coarse grid.** On the coarse grid the target's coefficient is
:math:`t_k=\sum_{q\equiv k}a_q\hat u_q` and the input's :math:`c_k=\sum_{q\equiv k}\hat u_q`
(sums over the alias class :math:`q\equiv k \bmod n`); distinct classes are independent
Gaussians, so the posterior mean is linear per class and no estimator, at any number of training
examples, has a smaller coarse-grid MSE than

.. math:: \sum_k\Big(\sum_{q\equiv k}|a_q|^2P_q-\frac{|\sum_{q\equiv k}a_qP_q|^2}
    {\sum_{q\equiv k}P_q}\Big)

(:func:`aliasing_mmse`; zero when the input law has no energy above the coarse Nyquist
frequency).
"""

from __future__ import annotations

import numpy as np

from opdiff._checks import check_positive_int

__all__ = ["wavenumber_grid", "retained_mask", "truncation_floor", "linear_fno_floor",
           "energy_above_nyquist", "aliased_into", "aliasing_gap", "aliasing_mmse",
           "wiener_mse"]


def _spectrum(spectrum) -> np.ndarray:
    p = np.asarray(spectrum, np.float64)
    if p.ndim not in (1, 2) or min(p.shape) < 2:
        raise ValueError(f"spectrum must be a 1-D or 2-D array on the FFT grid (each side >= 2), "
                         f"got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("spectrum must be finite and >= 0 (E|u_k|^2 per mode)")
    return p


def _modes(modes, ndim: int) -> tuple[int, ...]:
    modes = (modes,) * ndim if isinstance(modes, (int, np.integer)) else tuple(modes)
    if len(modes) != ndim:
        raise ValueError(f"modes must be an int or {ndim} ints (one per axis), got {modes!r}")
    return tuple(check_positive_int("modes", m) for m in modes)


def wavenumber_grid(shape: tuple[int, ...]) -> list[np.ndarray]:
    """Integer wavenumbers per axis on the FFT grid of ``shape`` (``fftfreq`` order), each
    broadcast to ``shape``."""
    ks = [np.fft.fftfreq(n, 1.0 / n).round().astype(int) for n in shape]
    return list(np.meshgrid(*ks, indexing="ij"))


def retained_mask(shape: tuple[int, ...], modes) -> np.ndarray:
    r"""Boolean mask of :math:`\mathcal M=\{k: |k_i|<m_i\}` on the FFT grid of ``shape``."""
    modes = _modes(modes, len(shape))
    return np.logical_and.reduce([np.abs(k) < m for k, m in zip(wavenumber_grid(shape), modes)])


def _multiplier(multiplier, shape) -> np.ndarray:
    a = np.asarray(multiplier)
    if a.shape != shape:
        raise ValueError(f"multiplier must have the spectrum's shape {shape}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("multiplier must be finite")
    return a


def truncation_floor(spectrum, multiplier, modes) -> float:
    r""":math:`F_{\rm trunc}=\sum_{k\notin\mathcal M}P_k|a_k|^2`: the least MSE of a model whose
    output lies in the retained modes (module docstring).

    Args:
        spectrum: :math:`P_k` on the full FFT grid (1-D or 2-D, ``fftfreq`` order).
        multiplier: :math:`a_k`, the same shape (real or complex).
        modes: the cutoff :math:`m` (an int, or one per axis).

    Raises:
        ValueError: shapes that differ, negative or non-finite values, bad ``modes``.
    """
    p = _spectrum(spectrum)
    a = _multiplier(multiplier, p.shape)
    out = ~retained_mask(p.shape, modes)
    return float(np.sum(p[out] * np.abs(a[out]) ** 2))


def linear_fno_floor(spectrum, multiplier, modes) -> float:
    r""":math:`F_{\rm lin}=\min_s\sum_{k\notin\mathcal M}P_k|a_k-s|^2`: the least MSE of a
    linear FNO with the pointwise skip (its transfer function is one real ``s`` off
    :math:`\mathcal M`). Arguments as :func:`truncation_floor`."""
    p = _spectrum(spectrum)
    a = _multiplier(multiplier, p.shape)
    out = ~retained_mask(p.shape, modes)
    total = float(np.sum(p[out]))
    if total == 0.0:
        return 0.0
    cross = float(np.sum(p[out] * np.real(a[out])))
    return max(float(np.sum(p[out] * np.abs(a[out]) ** 2)) - cross ** 2 / total, 0.0)


def _coarse(shape, train_shape) -> tuple[int, ...]:
    train_shape = (train_shape,) * len(shape) if isinstance(train_shape, (int, np.integer)) \
        else tuple(train_shape)
    if len(train_shape) != len(shape):
        raise ValueError(f"train_shape must have {len(shape)} sides, got {train_shape!r}")
    for n, nf in zip(train_shape, shape):
        check_positive_int("train_shape", n, minimum=2)
        if nf % n:
            raise ValueError(f"train_shape {train_shape} must divide the spectrum's grid {shape} "
                             "(the coarse points are a subset of the fine ones)")
    return train_shape


def energy_above_nyquist(spectrum, train_shape) -> float:
    r"""Input energy :math:`\sum_{k:\ \exists i\,|k_i|\ge n_i/2}P_k` of the modes a grid of
    ``train_shape`` cannot represent without aliasing (its Nyquist mode included: it loses its
    sine component), ``spectrum`` given on a finer grid that ``train_shape`` divides."""
    p = _spectrum(spectrum)
    coarse = _coarse(p.shape, train_shape)
    high = np.logical_or.reduce([2 * np.abs(k) >= n
                                 for k, n in zip(wavenumber_grid(p.shape), coarse)])
    return float(np.sum(p[high]))


def aliased_into(spectrum, train_shape) -> np.ndarray:
    r""":math:`A_k=\sum_{j\ne0}P_{k+jn}`, the expected squared aliasing error of each coarse
    coefficient, on the coarse FFT grid of ``train_shape`` (``fftfreq`` order), from the
    fine-grid ``spectrum`` (the fine grid must resolve the input: its own tail is ignored)."""
    p = _spectrum(spectrum)
    coarse = _coarse(p.shape, train_shape)
    ks = wavenumber_grid(p.shape)
    folded = [np.mod(k, n) for k, n in zip(ks, coarse)]  # the coarse FFT index each mode lands on
    # a mode in the coarse band -n/2 < k <= n/2 (on every axis) is the coarse grid's own
    own = np.logical_and.reduce([(2 * k > -n) & (2 * k <= n) for k, n in zip(ks, coarse)])
    a = np.zeros(coarse)
    np.add.at(a, tuple(folded), np.where(own, 0.0, p))
    return a


def aliasing_gap(spectrum, train_shape, modes, transfer=None) -> float:
    r""":math:`\sum_{k\in\mathcal M}|G_k|^2A_k`: the exact mean-square difference, at the coarse
    grid points, between a layer :math:`\sum_{k\in\mathcal M}G_k\hat v_ke^{2\pi ikx}` applied to
    the coarse samples and to the function itself (module docstring).

    Args:
        spectrum: :math:`P_k` on a fine FFT grid that resolves the input.
        train_shape: the coarse grid (an int or one per axis); it divides the fine grid.
        modes: the cutoff :math:`m`, each ``<= n_i/2``.
        transfer: :math:`G_k` on the coarse FFT grid (``None``: 1, the aliased energy landing in
            the retained modes).
    """
    a = aliased_into(spectrum, train_shape)
    mask = retained_mask(a.shape, modes)
    if any(2 * m > n for m, n in zip(_modes(modes, a.ndim), a.shape)):
        raise ValueError(f"modes must be <= train_shape / 2, got {modes!r} for {a.shape}")
    g2 = 1.0 if transfer is None else np.abs(_multiplier(transfer, a.shape)) ** 2
    return float(np.sum((g2 * a)[mask]))


def aliasing_mmse(spectrum, multiplier, train_shape) -> float:
    r"""The MMSE of predicting :math:`Gu` at the coarse grid points from :math:`u` at the same
    points, :math:`G` diagonal with ``multiplier`` :math:`a_q` (real: e.g. the heat factor),
    ``spectrum`` and ``multiplier`` on a fine FFT grid that resolves the input and that
    ``train_shape`` divides (module docstring). A floor for every estimator at that grid."""
    p = _spectrum(spectrum)
    a = _multiplier(multiplier, p.shape)
    coarse = _coarse(p.shape, train_shape)
    idx = tuple(np.mod(k, n) for k, n in zip(wavenumber_grid(p.shape), coarse))
    sums = {}
    for name, val in (("p", p), ("ap", a * p), ("aap", np.abs(a) ** 2 * p)):
        acc = np.zeros(coarse, dtype=np.result_type(val, np.float64))
        np.add.at(acc, idx, val)
        sums[name] = acc
    safe = np.where(sums["p"] > 0, sums["p"], 1.0)
    per = sums["aap"] - np.abs(sums["ap"]) ** 2 / safe
    return float(np.sum(np.clip(per.real, 0.0, None)))


def wiener_mse(spectrum, multiplier, noise_var: float) -> float:
    r"""The MMSE :math:`\sum_kP_k\sigma^2/(|a_k|^2P_k+\sigma^2)` of recovering :math:`u` from
    :math:`f=Gu+\eta`, :math:`G` diagonal with ``multiplier`` :math:`a_k` and noise of variance
    ``noise_var`` :math:`=\sigma^2` per Fourier coefficient (``norm="forward"``: pointwise noise
    of standard deviation :math:`\sigma\sqrt N` on an ``N``-point grid), in any dimension; the
    Wiener filter :math:`\bar a_kP_k/(|a_k|^2P_k+\sigma^2)` attains it (for the 1-D heat
    semigroup, :func:`opdiff.operators.heat.wiener_mse`).

    Raises:
        ValueError: shapes that differ, a negative or non-finite value, ``noise_var <= 0``.
    """
    p = _spectrum(spectrum)
    a = _multiplier(multiplier, p.shape)
    if not np.isfinite(noise_var) or noise_var <= 0:
        raise ValueError(f"noise_var must be finite and > 0, got {noise_var!r}")
    return float(np.sum(p * noise_var / (np.abs(a) ** 2 * p + noise_var)))
