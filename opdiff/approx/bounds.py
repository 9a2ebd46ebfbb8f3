r"""Computable approximation bounds for bandlimited and random-feature models (host-side, float64).

Fitted rates: :func:`opdiff.claims.loglog_slope`; the Monte-Carlo standard error of such a
slope from the per-point standard errors: :func:`opdiff.claims.loglog_slope_mc_se`.

Every function here is a small pure numpy/scipy function; none touches JAX or global state.
The formulas and when each one applies (reference/approximation.md §2-§3, §6-§7):

- **Out-of-band energy on the torus** (:func:`out_of_band_energy`): with *integer* frequencies,
  :math:`\min_g\|f-g\|^2=\sum_{|k|>\Omega}|\hat f_k|^2` exactly (Parseval). It is **not** a
  lower bound for real frequencies on a bounded, non-periodic domain.
- **Barron** (:func:`barron_norm_fft`, :func:`barron_norm_gaussian`, :func:`barron_bound`):
  :math:`C_f=\int|\omega||\tilde f(\omega)|d\omega` and the :math:`2rC_f/\sqrt n` existence
  bound for *trained* shallow sigmoidal networks (Barron 1993, Thm 1).
- **Monte Carlo random features** (:func:`monte_carlo_gaussian_mse`, :func:`monte_carlo_bound`):
  the exact mean-square error of the Monte-Carlo estimator of a Gaussian, and the
  Rahimi-Recht (2008) high-probability bound :math:`(\|f\|_p/\sqrt K)(1+\sqrt{2\log(1/\delta)})`.
- **Bounded-coefficient floor** (:func:`bounded_coefficient_floor`): a rigorous floor on
  :math:`\|f-Ac\|` over :math:`\|c\|_2\le B`, valid on any domain.
- **Numerical span dimension** (:func:`nsdim`) and **Landau-Widom** (:func:`landau_widom_count`):
  the effective dimension of a feature span at a relative precision; the Chebyshev-Bernstein
  bound on it for analytic activations (:func:`bernstein_nsdim_bound`, uniform in the width)
  and the kink-count bound for ReLU (:func:`relu_rank_bound`).
- **Ridgelet proxy** (:func:`ridgelet_out_energy`, :func:`gaussian_band_tail`): the
  out-of-parameter-domain ridgelet energy derived in reference §1.3. It is a *proxy* "in the
  spirit of" Li, Sonoda, Cao, Wang, Liang (ICML 2023); their theorem could not be checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from jaxtyping import Complex, Float, Int
from scipy import special

from opdiff._checks import check_positive_array, check_real_array, scalar_or_array
from opdiff.approx import fourier

__all__ = [
    "torus_coefficients",
    "torus_frequencies",
    "out_of_band_energy",
    "inverse_cosine_out_of_band",
    "barron_norm_fft",
    "barron_norm_gaussian",
    "barron_bound",
    "monte_carlo_gaussian_mse",
    "monte_carlo_bound",
    "bounded_coefficient_floor",
    "bounded_coefficient_floor_curve",
    "nsdim",
    "BERNSTEIN_ACTIVATIONS",
    "bernstein_nsdim_bound",
    "bernstein_sup",
    "relu_rank_bound",
    "landau_widom_count",
    "ridgelet_out_energy",
    "gaussian_band_tail",
    "gaussian_sum_band_tail",
    "gaussian_sum_ridgelet_proxy",
]


# --------------------------------------------------------------------------------------------
# Argument checks (each names the argument, the expected and the actual value).


def _open_unit(name: str, x) -> np.ndarray:
    arr = check_real_array(name, x)
    if np.any(np.isnan(arr)) or np.any(arr <= 0) or np.any(arr >= 1):
        raise ValueError(f"{name} must lie in the open interval (0, 1), got {x!r}")
    return arr


def _positive_int(name: str, n) -> np.ndarray:
    arr = np.asarray(n)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be a positive int (or an int array), got {n!r}")
    if np.any(arr < 1):
        raise ValueError(f"{name} must be >= 1, got {n!r}")
    return arr


def _scalar_int(name: str, n, minimum: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {n!r}")
    if n < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {n!r}")
    return int(n)


def _cube(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if not np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim < 1 or arr.size == 0:
        raise ValueError(f"{name} must have shape (n,)*d with n >= 1, d >= 1, got {arr.shape}")
    if any(s != arr.shape[0] for s in arr.shape):
        raise ValueError(f"{name} must have equal axes, shape (n,)*d, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr.astype(np.complex128 if np.iscomplexobj(arr) else np.float64)


def _matrix(name: str, a) -> np.ndarray:
    arr = np.asarray(a)
    if not np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
        raise TypeError(f"{name} must be a numeric matrix, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (m, p), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr.astype(np.complex128 if np.iscomplexobj(arr) else np.float64)


# --------------------------------------------------------------------------------------------
# Torus: Fourier coefficients and the out-of-band (Parseval) energy.


def torus_coefficients(values: Float[np.ndarray, "*grid"]) -> Complex[np.ndarray, "*grid"]:
    r"""Fourier coefficients on :math:`\mathbb T^d` from samples on the uniform grid.

    For samples :math:`f(x_j)` at :math:`x_j=2\pi j/n`, :math:`j\in\{0..n-1\}^d`, the trapezoid
    rule gives

    .. math:: \hat f_k=(2\pi)^{-d}\int_{[0,2\pi)^d}f(x)e^{-ik\cdot x}\,dx
              \approx n^{-d}\sum_j f(x_j)e^{-ik\cdot x_j}=\mathrm{fftn}(f)_k/n^d,

    exact up to aliasing, :math:`\hat f^{\rm grid}_k=\sum_{l\in\mathbb Z^d}\hat f_{k+nl}`.
    Index order is numpy's FFT order; :func:`torus_frequencies` gives the integer
    frequency of every entry.

    Args:
        values: real or complex samples, shape ``(n,)*d`` (any ``d >= 1``).

    Returns:
        complex128 array of shape ``(n,)*d``.

    Raises:
        ValueError: if the axes differ in length or a value is not finite.
        TypeError: if ``values`` is not numeric.
    """
    v = _cube("values", values)
    return np.fft.fftn(v) / float(v.size)


def torus_frequencies(n: int, d: int) -> Int[np.ndarray, "d *grid"]:
    r"""Integer frequencies :math:`k` of the entries of :func:`torus_coefficients`.

    ``out[i][j_1..j_d]`` is component ``i`` of the frequency at index ``(j_1..j_d)``, i.e.
    ``np.fft.fftfreq(n, 1/n)[j_i]`` (for even ``n`` the Nyquist index holds :math:`-n/2`).

    Returns:
        int64 array of shape ``(d, n, ..., n)``.

    Raises:
        TypeError / ValueError: if ``n`` or ``d`` is not an int >= 1.
    """
    n = _scalar_int("n", n, 1)
    d = _scalar_int("d", d, 1)
    k = np.rint(np.fft.fftfreq(n, 1.0 / n)).astype(np.int64)
    return np.stack(np.meshgrid(*([k] * d), indexing="ij"))


def _frequency_size(n: int, d: int, norm: str) -> np.ndarray:
    k = torus_frequencies(n, d).astype(np.float64)
    if norm == "l2":
        return np.sqrt(np.sum(k * k, axis=0))
    if norm == "linf":
        return np.max(np.abs(k), axis=0)
    raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")


def out_of_band_energy(coeffs: Complex[np.ndarray, "*grid"], omega, *, norm: str = "l2"):
    r"""Out-of-band energy :math:`E_{\rm out}(\Omega)=\sum_{|k|>\Omega}|\hat f_k|^2`.

    ``coeffs`` are torus coefficients in the layout of :func:`torus_coefficients`;
    :math:`|k|` is the Euclidean norm (``norm="l2"``) or the max-norm (``norm="linf"``).

    **When it is a lower bound.** Let :math:`S_\Omega` be the span of features with
    frequencies :math:`|k|\le\Omega` and :math:`\|\cdot\|` the norm of
    :math:`L^2([0,2\pi)^d, dx/(2\pi)^d)`.

    (a) *Torus, integer frequencies* (features :math:`e^{ik\cdot x}` or
        :math:`\cos(k\cdot x+b)`, :math:`k\in\mathbb Z^d`): for every :math:`g\in S_\Omega`

        .. math:: \|f-g\|^2=\sum_{|k|\le\Omega}|\hat f_k-\hat g_k|^2
                  +\sum_{|k|>\Omega}|\hat f_k|^2\ \ge\ E_{\rm out}(\Omega),

        with equality iff :math:`g` is the truncated Fourier series. The same identity holds
        *on the grid* (discrete Parseval): if the frequencies :math:`|k|\le\Omega` are distinct
        modulo ``n`` (:math:`2\lfloor\Omega\rfloor+1\le n` per axis), the grid mean-square
        error :math:`n^{-d}\sum_j|f(x_j)-g(x_j)|^2` of every such :math:`g` is at least the
        value returned for FFT coefficients, and the grid least-squares fit attains it. The
        value then differs from the continuous tail only by aliasing. On a period ``P`` the
        lattice is :math:`(2\pi/P)\mathbb Z^d`: rescale to :math:`2\pi` first.
    (b) *It fails for real (non-integer) frequencies on a bounded, non-periodic domain*
        (e.g. :math:`\cos(\omega x+b)` with :math:`\omega\in[-\Omega,\Omega]` on
        :math:`[0,2\pi)` or :math:`[-1,1]`): restrictions of bandlimited functions are dense in
        :math:`L^2` and in :math:`C` of a bounded interval (derivatives in :math:`\omega` of
        :math:`e^{i\omega x}` give all polynomials), so :math:`\inf_{g\in S_\Omega}\|f-g\|=0`
        for every :math:`\Omega>0`.
    (c) What survives in case (b) is numerical: the span has a finite numerical dimension
        (:func:`nsdim`, :func:`landau_widom_count`), and with bounded coefficients
        :math:`\|c\|_2\le B` there is a rigorous floor (:func:`bounded_coefficient_floor`).

    Args:
        coeffs: coefficients, shape ``(n,)*d``.
        omega: band :math:`\Omega\ge0`, a float or an array of them.
        norm: ``"l2"`` or ``"linf"``.

    Returns:
        float (or float64 array shaped like ``omega``).

    Raises:
        ValueError: on a negative or NaN ``omega``, an unknown ``norm`` or a bad ``coeffs``.
    """
    c = _cube("coeffs", coeffs)
    om = check_positive_array("omega", omega, allow_zero=True, allow_inf=True)
    size = _frequency_size(c.shape[0], c.ndim, norm).ravel()
    energy = np.abs(c.ravel()) ** 2
    order = np.argsort(size, kind="stable")
    size, energy = size[order], energy[order]
    # suffix[i] = sum of energy[i:], summed from the high frequencies (small terms) down.
    suffix = np.concatenate([np.cumsum(energy[::-1])[::-1], [0.0]])
    first_out = np.searchsorted(size, om, side="right")  # first index with |k| > omega
    return scalar_or_array(suffix[first_out], omega)


def inverse_cosine_out_of_band(a: float, omega):
    r"""Exact :math:`E_{\rm out}(\Omega)` of :math:`f(x)=1/(a-\cos x)`, :math:`a>1`, on
    :math:`\mathbb T`.

    :math:`\hat f_j=r^{|j|}/\sqrt{a^2-1}` with :math:`r=a-\sqrt{a^2-1}`, so with
    :math:`N=\lfloor\Omega\rfloor`

    .. math:: \sum_{|j|>\Omega}|\hat f_j|^2=\frac{2r^{2(N+1)}}{(a^2-1)(1-r^2)} .

    This is :func:`opdiff.approx.fourier.inverse_cosine_tail` at :math:`N=\lfloor\Omega\rfloor`.

    Raises:
        ValueError: if ``a <= 1`` or ``omega`` is negative, infinite or NaN.
    """
    a_arr = check_real_array("a", a)
    if a_arr.ndim != 0 or not a_arr > 1.0:
        raise ValueError(f"a must be a float > 1 (1/(a - cos x) has a pole otherwise), got {a!r}")
    om = check_positive_array("omega", omega, allow_zero=True)
    tail = fourier.inverse_cosine_tail(float(a_arr), np.floor(om))
    return scalar_or_array(np.asarray(tail, np.float64), omega)


# --------------------------------------------------------------------------------------------
# Barron.


def barron_norm_fft(f: Callable[[np.ndarray], np.ndarray], *, d: int = 1, half_width: float,
                    n: int) -> float:
    r"""Barron constant :math:`C_f=\int_{\mathbb R^d}|\omega||\tilde f(\omega)|\,d\omega` by FFT.

    Convention (Barron 1993): :math:`f(x)=\int e^{i\omega\cdot x}\tilde f(\omega)d\omega`, i.e.
    :math:`\tilde f=(2\pi)^{-d}\hat f`. Recipe (reference §2.4): sample ``f`` on the periodic
    grid :math:`x_j=-L+j\Delta x`, :math:`j\in\{0..n-1\}^d`, :math:`\Delta x=2L/n`, take
    :math:`|\tilde f(\omega_k)|\approx(\Delta x/2\pi)^d|\mathrm{FFT}(f)_k|` at
    :math:`\omega_k=2\pi k/(n\Delta x)`, and sum
    :math:`C_f\approx\sum_k|\omega_k||\tilde f(\omega_k)|\,\Delta\omega^d`,
    :math:`\Delta\omega=\pi/L`.

    Accuracy: ``f`` must be negligible outside :math:`[-L,L]^d` (else multiply by a smooth
    cut-off, which gives an upper bound on the infimum over extensions :math:`C_{f,B}`). For
    smooth ``f`` the error is dominated by the kink of :math:`|\omega|` at 0: in ``d=1`` the
    estimate is low by :math:`\Delta\omega^2|\tilde f(0)|/6` (Euler-Maclaurin), in ``d=2`` by
    about :math:`0.233\,\Delta\omega^3|\tilde f(0)|`; increase ``half_width`` to shrink it.
    If ``f`` has a jump, :math:`|\tilde f|\sim1/|\omega|`, :math:`C_f=\infty`, and the
    estimate grows linearly with the cut-off :math:`\pi n/(2L)`: report "diverges", not a
    number. Check convergence in both ``half_width`` and ``n``.

    Args:
        f: callable taking points of shape ``(n,)*d + (d,)`` (the last axis holds the ``d``
            coordinates, also for ``d=1``) and returning values of shape ``(n,)*d``, e.g.
            ``lambda x: np.exp(-np.sum(x**2, -1) / 2)``.
        d: dimension (>= 1).
        half_width: :math:`L>0`.
        n: points per axis (>= 2).

    Returns:
        the estimate of :math:`C_f` (float).

    Raises:
        TypeError: if ``f`` is not callable or ``d``/``n`` are not ints.
        ValueError: on a non-positive ``half_width``, or if ``f`` returns the wrong shape or
            non-finite values.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    d = _scalar_int("d", d, 1)
    n = _scalar_int("n", n, 2)
    L = float(check_positive_array("half_width", half_width))
    dx = 2.0 * L / n
    axis = -L + dx * np.arange(n, dtype=np.float64)
    points = np.stack(np.meshgrid(*([axis] * d), indexing="ij"), axis=-1)
    values = np.asarray(f(points))
    if values.shape != (n,) * d:
        raise ValueError(f"f must map points of shape {points.shape} to values of shape "
                         f"{(n,) * d}, got {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("f returned NaN or infinite values")
    spectrum = np.abs(np.fft.fftn(values)) * (dx / (2.0 * np.pi)) ** d
    w = 2.0 * np.pi * np.fft.fftfreq(n, dx)
    radius = np.sqrt(sum(g * g for g in np.meshgrid(*([w] * d), indexing="ij", sparse=True)))
    dw = np.pi / L
    return float(np.sum(radius * spectrum) * dw**d)


def barron_norm_gaussian(s, d: int):
    r"""Exact :math:`C_f` of :math:`f(x)=e^{-|x|^2/(2s^2)}` on :math:`\mathbb R^d`.

    :math:`\tilde f` is the :math:`N(0,s^{-2}I_d)` density, so :math:`C_f=\mathbb E|\omega|
    =\frac{\sqrt2}{s}\,\Gamma(\frac{d+1}2)/\Gamma(\frac d2)`: :math:`\sqrt{2/\pi}/s` in
    ``d=1``, :math:`\sqrt{\pi/2}/s` in ``d=2``.

    Raises:
        ValueError: if ``s`` is not > 0; TypeError / ValueError if ``d`` is not an int >= 1.
    """
    s_arr = check_positive_array("s", s)
    d = _scalar_int("d", d, 1)
    ratio = math.exp(special.gammaln((d + 1) / 2.0) - special.gammaln(d / 2.0))
    return scalar_or_array(np.sqrt(2.0) / s_arr * ratio, s)


def barron_bound(c_f, radius, n):
    r"""Barron (1993) Thm 1: :math:`\|f-f_n\|_{L^2(\mu)}\le 2rC_f/\sqrt n`.

    For every probability measure :math:`\mu` on the ball :math:`B_r` and every sigmoidal
    :math:`\sigma` there *exists* :math:`f_n=c_0+\sum_{k=1}^n c_k\sigma(a_k\cdot x+b_k)` with
    this :math:`L^2(\mu)` error. It is an existence bound with **trained** inner weights
    :math:`(a_k,b_k)`; it says nothing about random features (frozen random :math:`a_k,b_k`),
    for which Barron's Thm 6 gives a lower bound :math:`\gtrsim C/(d\,n^{1/d})` instead. A
    measured error of any particular network is an upper bound on the best one, so only
    ``measured <= bound`` can confirm it; a larger measured error does not refute it.

    Args:
        c_f: :math:`C_f\ge0` (``inf`` allowed: the bound is then vacuous).
        radius: :math:`r>0`.
        n: number of units (int >= 1, or an int array).

    Raises:
        ValueError / TypeError: on a negative or NaN ``c_f``, non-positive ``radius``, or
            ``n`` not a positive int.
    """
    c = check_positive_array("c_f", c_f, allow_zero=True, allow_inf=True)
    r = check_positive_array("radius", radius)
    k = _positive_int("n", n)
    return scalar_or_array(2.0 * r * c / np.sqrt(k.astype(np.float64)), c_f, radius, n)


# --------------------------------------------------------------------------------------------
# Monte Carlo random features.


def monte_carlo_gaussian_mse(x, s, n_features):
    r"""Exact :math:`\mathbb E|f(x)-f_N(x)|^2` of the Monte-Carlo random-feature estimator.

    :math:`f(x)=e^{-x^2/(2s^2)}=\mathbb E_{\omega\sim N(0,s^{-2})}[\cos\omega x]` and
    :math:`f_N(x)=\frac1N\sum_{k=1}^N\cos(\omega_kx)`, :math:`\omega_k` i.i.d. Since
    :math:`\mathbb E\cos^2\omega x=(1+e^{-2x^2/s^2})/2`,

    .. math:: \mathbb E|f(x)-f_N(x)|^2=\frac1N\Big[\frac{1+e^{-2x^2/s^2}}2-e^{-x^2/s^2}\Big].

    Averaging over :math:`\mu` gives the exact :math:`L^2(\mu)` constant of the
    :math:`N^{-1/2}` rate. A least-squares fit on the same features does at least as well
    on its fitting measure.

    Raises:
        ValueError / TypeError: on non-finite ``x``, ``s <= 0`` or ``n_features`` not a
            positive int.
    """
    xs = check_real_array("x", x)
    if not np.all(np.isfinite(xs)):
        raise ValueError(f"x must be finite, got {x!r}")
    s_arr = check_positive_array("s", s)
    k = _positive_int("n_features", n_features).astype(np.float64)
    q = np.exp(-xs * xs / (s_arr * s_arr))
    return scalar_or_array(((1.0 + q * q) / 2.0 - q) / k, x, s, n_features)


def monte_carlo_bound(norm_p, n_features, delta):
    r"""Rahimi-Recht (2008): :math:`(\|f\|_p/\sqrt K)(1+\sqrt{2\log(1/\delta)})`.

    For :math:`f(x)=\int\alpha(\omega)\phi(x;\omega)d\omega` with
    :math:`\|f\|_p=\sup|\alpha/p|<\infty`, :math:`\sup|\phi|\le1`, and any probability measure
    :math:`\mu`: with probability at least :math:`1-\delta` over
    :math:`\omega_1..\omega_K\sim p` i.i.d. there are :math:`|c_k|\le\|f\|_p/K` with
    :math:`\|f-\sum_kc_k\phi(\cdot;\omega_k)\|_{L^2(\mu)}\le` this value (the Monte-Carlo
    weights :math:`c_k=\alpha(\omega_k)/(Kp(\omega_k))` attain it). The features must be
    drawn from the same :math:`p` that defines :math:`\|f\|_p`.

    Raises:
        ValueError / TypeError: on a negative or NaN ``norm_p``, ``n_features`` not a
            positive int, or ``delta`` outside (0, 1).
    """
    c = check_positive_array("norm_p", norm_p, allow_zero=True)
    k = _positive_int("n_features", n_features).astype(np.float64)
    dl = _open_unit("delta", delta)
    return scalar_or_array(c / np.sqrt(k) * (1.0 + np.sqrt(2.0 * np.log(1.0 / dl))), norm_p,
                           n_features, delta)


# --------------------------------------------------------------------------------------------
# Bounded coefficients, numerical span dimension, Landau-Widom.


def bounded_coefficient_floor_curve(A: Float[np.ndarray, "m p"], f: Float[np.ndarray, " m"],
                                    B) -> Float[np.ndarray, " r+1"]:
    r"""The curve :math:`\phi_k=\|(I-P_k)f\|-s_{k+1}B`, :math:`k=0..r`, :math:`r=\min(m,p)`.

    With the thin SVD :math:`A=\sum_{i\le r}s_iu_iv_i^\top` and :math:`P_k` the projection onto
    :math:`\mathrm{span}(u_1..u_k)` (:math:`s_{r+1}:=0`), every :math:`\|c\|_2\le B` satisfies

    .. math:: \|f-Ac\|\ \ge\ \|(I-P_k)(f-Ac)\|\ \ge\ \|(I-P_k)f\|-\|(I-P_k)Ac\|
              \ \ge\ \|(I-P_k)f\|-s_{k+1}B

    for each ``k``. The norm is the Euclidean one of the rows: for a weighted
    :math:`L^2(\mu)` pass :math:`\sqrt{w_i}A_{ij}` and :math:`\sqrt{w_i}f_i`.
    :math:`\|(I-P_k)f\|^2` is computed as :math:`\|f-UU^\top f\|^2+\sum_{i>k}(u_i^\top f)^2`
    (no cancellation).

    Returns:
        float64 array of length ``min(m, p) + 1`` (not clipped; entries may be negative).

    Raises:
        ValueError: on shape mismatches, non-finite entries, or a negative/NaN ``B``.
    """
    a = _matrix("A", A)
    y = np.asarray(f)
    if y.shape != (a.shape[0],):
        raise ValueError(f"f must have shape ({a.shape[0]},) like the rows of A, got {y.shape}")
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)):
        raise ValueError("f must be a finite numeric vector")
    b = float(check_positive_array("B", B, allow_zero=True))
    u, s, _ = np.linalg.svd(a, full_matrices=False)
    proj = u.conj().T @ y
    perp = float(np.sum(np.abs(y - u @ proj) ** 2))
    tail = np.concatenate([np.cumsum((np.abs(proj) ** 2)[::-1])[::-1], [0.0]])
    residual = np.sqrt(perp + tail)
    s_next = np.concatenate([s, [0.0]])
    return residual - s_next * b


def bounded_coefficient_floor(A: Float[np.ndarray, "m p"], f: Float[np.ndarray, " m"], B) -> float:
    r"""Floor on :math:`\min_{\|c\|_2\le B}\|f-Ac\|_2`: :math:`\max(0,\max_k\phi_k)`.

    :math:`\phi_k=\|(I-P_k)f\|-s_{k+1}B` (see :func:`bounded_coefficient_floor_curve`, whose
    ``argmax`` gives the ``k`` that attains it). Valid on any domain and for any features
    (an elementary lemma, reference §2.5). It covers **bounded** coefficients only: with
    :math:`\|c\|\gg B` (e.g. the unregularised least-squares solution of an ill-conditioned
    ``A``) the error can drop far below it. Ridge regularisation or finite precision bound
    :math:`\|c\|` in practice, which turns a fast-decaying spectrum (small :func:`nsdim`)
    into an error floor.
    """
    return float(max(0.0, float(np.max(bounded_coefficient_floor_curve(A, f, B)))))


def nsdim(A: Float[np.ndarray, "m p"], eps):
    r"""Numerical span dimension :math:`\#\{k: s_k/s_1>\varepsilon\}` of a feature matrix.

    :math:`s_k` are the singular values of ``A`` (rows: quadrature points, weighted by
    :math:`\sqrt{w_i}` for an :math:`L^2(\mu)` geometry; columns: features). An
    operationalisation of Liu-Yu-Yong (2024) NSdim (their exact definition could not be
    checked). ``eps`` is a **singular-value** threshold; compare with
    :func:`landau_widom_count` at the eigenvalue threshold ``eps**2``. A zero matrix has
    dimension 0. Pass float64 data: in float32 the count saturates near ``eps ~ 1e-7``
    (round-off, not mathematics).

    Args:
        A: ``(m, p)`` matrix.
        eps: relative threshold in (0, 1), a float or an array of them.

    Returns:
        int, or an int64 array shaped like ``eps``.

    Raises:
        ValueError: if ``A`` is not a finite non-empty matrix or an ``eps`` is outside (0, 1).
    """
    a = _matrix("A", A)
    e = _open_unit("eps", eps)
    s = np.linalg.svd(a, compute_uv=False)
    if s[0] == 0.0:
        counts = np.zeros(e.shape, np.int64)
    else:
        ratio = s / s[0]
        counts = np.sum(ratio[:, None] > e.ravel()[None, :], axis=0).reshape(e.shape)
    return int(counts) if np.ndim(eps) == 0 else counts.astype(np.int64)


BERNSTEIN_ACTIVATIONS = ("sigmoid", "tanh", "sin", "cos")


def bernstein_sup(activation: str, weight_bound: float, rho):
    r"""A bound :math:`M(\rho)\ge\sup_{z\in E_\rho}|\sigma(az-b)|` over every :math:`|a|\le`
    ``weight_bound`` and every real :math:`b`, with :math:`E_\rho` the open Bernstein ellipse
    of :math:`[-1,1]` (foci :math:`\pm1`, semi-minor axis :math:`\beta=(\rho-\rho^{-1})/2`).

    On :math:`E_\rho`, :math:`|\mathrm{Im}(az-b)|<v:=|a|\beta`; with
    :math:`|\tanh(s+it)|^2=(\cosh2s-\cos2t)/(\cosh2s+\cos2t)` the supremum over a strip
    :math:`|t|<v<\pi/2` is :math:`\max(1,\tan v)`, so

    * tanh: :math:`\max(1,\tan v)` (``inf`` for :math:`v\ge\pi/2`: a pole inside);
    * sigmoid :math:`=\frac12(1+\tanh\frac t2)`: :math:`\frac12(1+\max(1,\tan\frac v2))`
      (``inf`` for :math:`v\ge\pi`);
    * sin, cos: :math:`|\sin(s+it)|^2=\sin^2s+\sinh^2t\le\cosh^2t`, so :math:`\cosh v`.
    """
    if activation not in BERNSTEIN_ACTIVATIONS:
        raise ValueError(f"activation must be one of {BERNSTEIN_ACTIVATIONS} (analytic), got "
                         f"{activation!r}")
    lam = float(weight_bound)
    if not (math.isfinite(lam) and lam > 0):
        raise ValueError(f"weight_bound must be finite and > 0, got {weight_bound!r}")
    r = check_real_array("rho", rho)
    if np.any(~np.isfinite(r)) or np.any(r <= 1):
        raise ValueError(f"rho must be finite and > 1, got {rho!r}")
    v = lam * (r - 1.0 / r) / 2.0
    with np.errstate(invalid="ignore", over="ignore"):
        if activation == "tanh":
            m = np.where(v < np.pi / 2, np.maximum(1.0, np.tan(np.minimum(v, np.pi / 2))), np.inf)
        elif activation == "sigmoid":
            m = np.where(v < np.pi, 0.5 * (1.0 + np.maximum(1.0, np.tan(np.minimum(v, np.pi)
                                                                          / 2))), np.inf)
        else:
            m = np.cosh(v)
    return scalar_or_array(m, rho)


def bernstein_nsdim_bound(activation: str, weight_bound: float, n_features: int, s1: float,
                          tau: float, *, total_weight: float = 2.0, n_rho: int = 4000) -> int:
    r"""An upper bound on :math:`\mathrm{NSdim}_\tau` of
    :math:`A_{ij}=\sqrt{w_i}\,\sigma(a_jx_i-b_j)`, :math:`x_i\in[-1,1]`, :math:`|a_j|\le`
    ``weight_bound``, from Chebyshev truncation (Trefethen, ATAP Thm 8.2).

    Each column is analytic in the Bernstein ellipse :math:`E_\rho` and bounded there by
    :math:`M(\rho)` (:func:`bernstein_sup`), so its degree-n Chebyshev truncation is within
    :math:`2M\rho^{-n}/(\rho-1)` in the max norm. Replacing every column by it is a rank
    :math:`\le n+1` matrix at Frobenius distance :math:`\le\sqrt{N\sum_iw_i}\,2M\rho^{-n}/
    (\rho-1)`, so (Eckart-Young) :math:`s_{n+2}\le` that, and
    :math:`\mathrm{NSdim}_\tau\le n+1` as soon as it is :math:`\le\tau s_1`. Returns the
    smallest such :math:`n+1` over a grid of :math:`\rho` (any :math:`\rho` gives a valid
    bound). Since :math:`s_1\sim\sqrt N`, the bound does not grow with the width ``N``: the
    saturation theorem, with its constants.

    Args:
        activation: one of :data:`BERNSTEIN_ACTIVATIONS`.
        weight_bound: :math:`\lambda\ge\max_j|a_j|` (the biases are real, any size).
        n_features: the number of columns ``N``.
        s1: the largest singular value of ``A`` (measured).
        tau: the singular-value threshold in (0, 1).
        total_weight: :math:`\sum_iw_i` (2 for Gauss-Legendre on [-1, 1]).
        n_rho: grid size for :math:`\rho`.

    Raises:
        ValueError: a non-analytic activation, non-positive sizes, ``tau`` outside (0, 1).
    """
    n = _scalar_int("n_features", n_features, 1)
    _scalar_int("n_rho", n_rho, 2)
    t = float(_open_unit("tau", tau))
    s1, tw = float(s1), float(total_weight)
    if not (math.isfinite(s1) and s1 > 0 and math.isfinite(tw) and tw > 0):
        raise ValueError(f"s1 and total_weight must be finite and > 0, got {s1!r}, {tw!r}")
    lam = float(weight_bound)
    # rho up to where the pole reaches the ellipse (tanh: lam*beta = pi/2, sigmoid: pi), or
    # to where cosh(lam*beta) rho^-n stops paying (sin, cos: beta ~ 20 / lam)
    beta_max = {"tanh": np.pi / 2, "sigmoid": np.pi}.get(activation, 20.0) / lam
    rho_max = beta_max + math.sqrt(beta_max**2 + 1.0)
    rho = 1.0 + (rho_max - 1.0) * np.arange(1, n_rho + 1) / (n_rho + 1)
    m = np.asarray(bernstein_sup(activation, lam, rho), np.float64)
    ok = np.isfinite(m)
    log_need = np.log(math.sqrt(n * tw) * 2.0 * m[ok] / ((rho[ok] - 1.0) * t * s1))
    deg = np.maximum(np.ceil(log_need / np.log(rho[ok])), 0.0)
    return int(np.min(deg)) + 1


def relu_rank_bound(a, b, radius: float = 1.0) -> int:
    r"""An upper bound on the rank (hence on every :math:`\mathrm{NSdim}_\tau`) of the ReLU
    features :math:`\max(a_jx-b_j,0)` on any point set in :math:`[-r,r]`: a feature whose kink
    :math:`b_j/a_j` is not inside :math:`(-r,r)` (or with :math:`a_j=0`) is affine there, and
    the affine functions span 2 dimensions, so rank :math:`\le\#\{j:|b_j|<r|a_j|\}+2`.
    """
    a, b = check_real_array("a", a), check_real_array("b", b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D of equal length, got {a.shape}, {b.shape}")
    return int(np.sum(np.abs(b) < float(radius) * np.abs(a))) + 2


def landau_widom_count(c, eps):
    r"""Landau-Widom: :math:`\#\{\lambda_k>\varepsilon\}\approx\frac{2c}\pi
    +\frac1{\pi^2}\ln\frac{1-\varepsilon}\varepsilon\,\ln c`, :math:`c=\Omega T`.

    :math:`\lambda_k` are the eigenvalues of time-frequency limiting (band :math:`\Omega`,
    interval :math:`[-T,T]`), i.e. of the sinc kernel :math:`\sin(\Omega(x-y))/(\pi(x-y))` on
    :math:`[-T,T]`; the :math:`o(\ln c)` remainder is dropped. ``eps`` is an **eigenvalue**
    threshold. For a sampled sinusoid feature matrix :math:`A_{ij}=\sqrt{w_i}
    \cos(\omega_jx_i+b_j)`, :math:`\omega_j\in[-\Omega,\Omega]`, one has
    :math:`AA^\top\propto` the sinc kernel, so :math:`s_k^2/s_1^2\approx\lambda_k/\lambda_1`
    and :math:`\lambda_1\approx1`: a singular-value threshold :math:`\tau` corresponds to
    :math:`\varepsilon=\tau^2`, i.e. ``nsdim(A, tau) ~ landau_widom_count(c, tau**2)``.
    Measured on :math:`[-1,1]` (T=1): the count exceeds the formula by 0.5-3 for
    :math:`\Omega\in\{20,50,100\}`, :math:`\tau\in\{10^{-4},10^{-8},10^{-12}\}`.

    Raises:
        ValueError: if ``c <= 1`` (the formula needs :math:`\ln c>0`) or ``eps`` is not in
            (0, 1).
    """
    cc = check_real_array("c", c)
    if np.any(np.isnan(cc)) or np.any(cc <= 1.0) or np.any(np.isinf(cc)):
        raise ValueError(f"c must be finite and > 1 (the formula needs ln c > 0), got {c!r}")
    e = _open_unit("eps", eps)
    return scalar_or_array(2.0 * cc / np.pi + np.log((1.0 - e) / e) * np.log(cc) / np.pi**2, c, eps)


# --------------------------------------------------------------------------------------------
# Ridgelet proxy.


def ridgelet_out_energy(tail_energy: Callable[[np.ndarray], np.ndarray],
                        rho_hat_sq: Callable[[np.ndarray], np.ndarray], lam, *, m: int = 1,
                        omega_max: float, n_quad: int):
    r"""Out-of-domain ridgelet energy, a computable **proxy** (reference §1.3, derived there).

    For the weight domain :math:`\{|a|\le\lambda\}` (bias unrestricted) and
    :math:`R_\rho f(a,b)=\int f(x)\overline{\rho(a\cdot x-b)}dx` on :math:`\mathbb R^m`,
    Plancherel in :math:`b` and :math:`\xi=\omega a` give

    .. math:: E_{\rm out}(\lambda)=\int_{|a|>\lambda}\!\int|R_\rho f(a,b)|^2\,db\,da
              =\frac1{2\pi}\int_{\mathbb R}|\hat\rho(\omega)|^2|\omega|^{-m}
              T_f(\lambda|\omega|)\,d\omega,\qquad T_f(r)=\int_{|\xi|>r}|\hat f(\xi)|^2d\xi,

    with :math:`\hat f(\xi)=\int f e^{-i\xi\cdot x}dx`. It is **not** the lower bound of Li,
    Sonoda, Cao, Wang, Liang (ICML 2023), whose statement and constants could not be checked;
    use :math:`E_{\rm out}(\lambda)/E_{\rm out}(0)` as a "predicted difficulty" curve.

    Quadrature: Gauss-Legendre with ``n_quad`` nodes on :math:`(0,\omega_{\max}]`, applied to
    :math:`(|\hat\rho(\omega)|^2+|\hat\rho(-\omega)|^2)\,\omega^{-m}T_f(\lambda\omega)`. The
    integrand must be integrable at 0 (admissibility, :math:`\int|\hat\rho|^2|\omega|^{-m}
    <\infty`) and negligible beyond :math:`\omega_{\max}`; check convergence in both.

    Args:
        tail_energy: vectorised :math:`r\mapsto T_f(r)`, ``r >= 0`` (e.g.
            ``lambda r: gaussian_band_tail(s, r)``).
        rho_hat_sq: vectorised :math:`\omega\mapsto|\hat\rho(\omega)|^2`.
        lam: :math:`\lambda\ge0`, a float or an array.
        m: input dimension (>= 1).
        omega_max: upper limit of the :math:`|\omega|` quadrature (> 0).
        n_quad: Gauss-Legendre nodes (>= 1).

    Returns:
        float, or an array shaped like ``lam``.

    Raises:
        TypeError: if a callable is not callable or ``m``/``n_quad`` are not ints.
        ValueError: on a negative/NaN ``lam``, non-positive ``omega_max``, or callables that
            return the wrong shape, negative or non-finite values.
    """
    for name, fn in (("tail_energy", tail_energy), ("rho_hat_sq", rho_hat_sq)):
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    lam_arr = check_positive_array("lam", lam, allow_zero=True)
    m = _scalar_int("m", m, 1)
    wmax = float(check_positive_array("omega_max", omega_max))
    n_quad = _scalar_int("n_quad", n_quad, 1)
    t, w = np.polynomial.legendre.leggauss(n_quad)
    omega = 0.5 * wmax * (t + 1.0)
    weight = 0.5 * wmax * w
    rho = np.asarray(rho_hat_sq(omega), np.float64) + np.asarray(rho_hat_sq(-omega), np.float64)
    if rho.shape != omega.shape or not np.all(np.isfinite(rho)) or np.any(rho < 0):
        raise ValueError("rho_hat_sq must map an array of frequencies to finite, non-negative "
                         f"values of the same shape {omega.shape}, got shape {rho.shape}")
    r = lam_arr.reshape(-1, 1) * omega[None, :]
    tail = np.asarray(tail_energy(r), np.float64)
    if tail.shape != r.shape or not np.all(np.isfinite(tail)) or np.any(tail < 0):
        raise ValueError("tail_energy must map an array of radii to finite, non-negative "
                         f"values of the same shape {r.shape}, got shape {tail.shape}")
    out = (tail * (rho * omega ** (-m) * weight)[None, :]).sum(axis=1) / (2.0 * np.pi)
    return scalar_or_array(out.reshape(lam_arr.shape), lam)


def gaussian_band_tail(s, r):
    r""":math:`T_f(r)=\int_{|\xi|>r}|\hat f(\xi)|^2d\xi` for :math:`f(x)=e^{-x^2/(2s^2)}` on
    :math:`\mathbb R`.

    :math:`\hat f(\xi)=\int fe^{-i\xi x}dx=s\sqrt{2\pi}e^{-s^2\xi^2/2}`, so

    .. math:: T_f(r)=2\pi^{3/2}s\,\operatorname{erfc}(sr),

    and :math:`T_f(0)=2\pi\|f\|_{L^2}^2` (Plancherel).

    Raises:
        ValueError: if ``s <= 0`` or ``r`` is negative or NaN.
    """
    s_arr = check_positive_array("s", s)
    r_arr = check_positive_array("r", r, allow_zero=True, allow_inf=True)
    return scalar_or_array(2.0 * np.pi**1.5 * s_arr * special.erfc(s_arr * r_arr), s, r)


def gaussian_sum_band_tail(terms, r, *, xi_max: float | None = None, n: int = 200_001):
    r""":math:`T_f(r)=\int_{|\xi|>r}|\hat f(\xi)|^2d\xi` for :math:`f(x)=\sum_iA_ie^{-(k_ix-c_i)^2}`
    on :math:`\mathbb R` (``terms`` = ((A, k, c), ...)), numerically.

    :math:`\hat f(\xi)=\sum_iA_i(\sqrt\pi/k_i)e^{-\xi^2/(4k_i^2)}e^{-i\xi c_i/k_i}` (closed form);
    :math:`|\hat f|^2` is even, so :math:`T_f(r)=2\int_r^{\xi_{\max}}|\hat f|^2`, by the trapezoid
    rule on ``n`` points of :math:`[0,\xi_{\max}]` (default :math:`12\max k_i`), summed from
    :math:`\xi_{\max}` down and interpolated linearly in ``r`` (0 beyond :math:`\xi_{\max}`).
    For one term, :math:`T_f(r)=\sqrt2\,\pi^{3/2}A^2k^{-1}\operatorname{erfc}(r/(\sqrt2k))`.
    """
    xi_max = xi_max or 12.0 * max(k for _, k, _ in terms)
    xi = np.linspace(0.0, xi_max, n)
    fh = sum(a * np.sqrt(np.pi) / k * np.exp(-xi**2 / (4 * k * k)) * np.exp(-1j * xi * c / k)
             for a, k, c in terms)
    dens = np.abs(fh) ** 2
    seg = 0.5 * (dens[1:] + dens[:-1]) * np.diff(xi)
    upper = np.concatenate([np.cumsum(seg[::-1])[::-1], [0.0]])  # int_{xi_i}^{xi_max}
    return 2.0 * np.interp(np.asarray(r, np.float64), xi, upper, right=0.0)


def gaussian_sum_ridgelet_proxy(terms, lam, *, omega_max: float, n_quad: int):
    r"""Predicted relative difficulty :math:`\sqrt{E_{\rm out}(\lambda)/E_{\rm out}(0)}` of a sum
    of Gaussians (:func:`gaussian_sum_band_tail`) for the activation with
    :math:`|\hat\rho(\omega)|^2=\omega^2e^{-\omega^2}` (a Gaussian derivative), in one input
    dimension: :func:`ridgelet_out_energy` at ``lam`` over its value at 0 (a proxy, not a
    bound)."""
    lam = np.asarray(lam, np.float64)
    e = np.asarray(ridgelet_out_energy(
        lambda r: gaussian_sum_band_tail(terms, r), lambda w: w * w * np.exp(-w * w),
        np.concatenate([[0.0], lam.ravel()]), m=1, omega_max=omega_max, n_quad=n_quad))
    return np.sqrt(e[1:] / e[0]).reshape(lam.shape)
