r"""Random features measured on the host (numpy): feature matrices, Monte-Carlo and least-squares
errors, span dimension in a given precision.

The JAX model lives in :mod:`opdiff.approx.random_features`; this module evaluates the same
features with numpy, for one-off shapes that ``jit`` would compile one by one and for precision
studies (float32 in, float32 out, decomposed by numpy's LAPACK in float32). Every function is
pure; random draws are passed in (made from explicit keys by the caller).

Feature of a one-dimensional input :math:`x` with weight :math:`a_j` and offset :math:`b_j`:
:math:`\phi_j(x)=\sigma(a_jx-b_j)`, :math:`\sigma` from :data:`HOST_ACTIVATIONS` (the numpy
twins of :data:`opdiff.approx.random_features.ACTIVATIONS`; the sigmoid is written
:math:`\frac12(1+\tanh\frac t2)`, which cannot overflow).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from jaxtyping import Float, Int
from scipy.linalg import solve_triangular

from opdiff.approx import bounds

__all__ = [
    "HOST_ACTIVATIONS",
    "abs_sin_cubed",
    "feature_matrix",
    "gauss_legendre_feature_matrix",
    "gauss_legendre_measure",
    "gaussian",
    "gaussian_sum",
    "grid_lstsq_mse",
    "lattice_covered",
    "least_squares_errors",
    "midpoint_grid",
    "monte_carlo_mse",
    "nsdim_native",
    "nsdim_widths",
    "precision_spectra",
    "refit_floors",
    "ridge_fit_floor",
    "torus_fits",
    "torus_identity",
]

HOST_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda t: 0.5 * (1.0 + np.tanh(0.5 * t)),
    "tanh": np.tanh,
    "sin": np.sin,
    "cos": np.cos,
    "relu": lambda t: np.maximum(t, 0),
    "gaussian": lambda t: np.exp(-t * t),
}


def feature_matrix(a: Float[np.ndarray, " N"], b: Float[np.ndarray, " N"],
                   x: Float[np.ndarray, " n"], activation: str = "sigmoid",
                   sqrt_weights: Float[np.ndarray, " n"] | None = None) -> Float[np.ndarray, "n N"]:
    r""":math:`A_{ij}=\sigma(a_jx_i-b_j)`, times :math:`\sqrt{w_i}` when ``sqrt_weights`` is given.

    With quadrature weights :math:`w` of a measure :math:`\mu`, :math:`\|Ac\|_2^2=
    \sum_iw_i(\sum_jc_j\phi_j(x_i))^2\approx\|f_c\|^2_{L^2(\mu)}` (an :math:`L^2`-faithful
    geometry). The dtype of the inputs is kept (float32 in, float32 out).

    Raises:
        ValueError: for an unknown activation or inputs that are not 1-D.
    """
    if activation not in HOST_ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(HOST_ACTIVATIONS)}, got "
                         f"{activation!r}")
    a, b, x = np.asarray(a), np.asarray(b), np.asarray(x)
    if a.ndim != 1 or b.shape != a.shape or x.ndim != 1:
        raise ValueError(f"a and b must be 1-D of equal length and x 1-D, got shapes {a.shape}, "
                         f"{b.shape}, {x.shape}")
    A = HOST_ACTIVATIONS[activation](x[:, None] * a[None, :] - b[None, :])
    return A if sqrt_weights is None else A * np.asarray(sqrt_weights)[:, None]


def gauss_legendre_feature_matrix(a: Float[np.ndarray, " N"], b: Float[np.ndarray, " N"], n: int,
                                  activation: str = "sigmoid", dtype=np.float64
                                  ) -> Float[np.ndarray, "n N"]:
    r""":math:`A_{ij}=\sqrt{w_i}\,\sigma(a_jx_i-b_j)` on the ``n`` Gauss-Legendre nodes
    :math:`x_i` of :math:`[-1,1]` with their Lebesgue weights :math:`w_i` (sum 2): the
    :math:`L^2([-1,1])` geometry of the span (its singular values give
    :func:`opdiff.approx.bounds.nsdim`). Nodes, weights, parameters and arithmetic all in
    ``dtype`` (float32 for precision studies)."""
    x, w = np.polynomial.legendre.leggauss(n)
    x, w = x.astype(dtype), w.astype(dtype)
    A = feature_matrix(np.asarray(a).astype(dtype), np.asarray(b).astype(dtype), x, activation,
                       np.sqrt(w))
    assert A.dtype == dtype, (A.dtype, dtype)
    return A


def gauss_legendre_measure(n: int, radius: float = 1.0
                           ) -> tuple[Float[np.ndarray, " n"], Float[np.ndarray, " n"]]:
    r"""Gauss-Legendre nodes on :math:`[-r,r]` and the weights of the uniform *probability*
    measure (they sum to 1); exact for polynomials of degree :math:`\le2n-1`."""
    t, w = np.polynomial.legendre.leggauss(n)
    return radius * t, 0.5 * w


def midpoint_grid(n: int, radius: float = 1.0
                  ) -> tuple[Float[np.ndarray, " n"], Float[np.ndarray, " n"]]:
    r"""Cell midpoints :math:`x_i=r(-1+(2i+1)/n)` of :math:`[-r,r]` and equal weights
    :math:`1/n` (no Gauss node: a held-out grid for :func:`gauss_legendre_measure` fits)."""
    return radius * (-1.0 + (2.0 * np.arange(n) + 1.0) / n), np.full(n, 1.0 / n)


def gaussian(x, s):
    r""":math:`e^{-x^2/(2s^2)}`, the target whose Monte-Carlo and Barron constants are exact
    (:func:`opdiff.approx.bounds.monte_carlo_gaussian_mse`,
    :func:`opdiff.approx.bounds.barron_norm_gaussian`)."""
    return np.exp(-x * x / (2.0 * s * s))


def gaussian_sum(x, terms):
    r""":math:`\sum_iA_ie^{-(k_ix-c_i)^2}` for ``terms`` = ((A, k, c), ...)."""
    x = np.asarray(x)
    return sum(a * np.exp(-((k * x - c) ** 2)) for a, k, c in terms)


def abs_sin_cubed(x):
    r""":math:`|\sin x|^3`: :math:`C^2` but not :math:`C^3` on the torus (Fourier coefficients
    :math:`O(k^{-4})`)."""
    return np.abs(np.sin(x)) ** 3


def monte_carlo_mse(omega: Float[np.ndarray, "S N"], x: Float[np.ndarray, " n"],
                    w: Float[np.ndarray, " n"], f: Float[np.ndarray, " n"], *,
                    chunk_elements: float = 4e6) -> Float[np.ndarray, " S"]:
    r"""Per draw :math:`s`, :math:`\sum_iw_i(f(x_i)-f_N(x_i))^2` with the Monte-Carlo estimator
    :math:`f_N(x)=\frac1N\sum_k\cos(\omega_{sk}x)` (equal weights :math:`1/N`).

    For :math:`f(x)=\mathbb E_\omega\cos\omega x` its mean over draws is
    :func:`opdiff.approx.bounds.monte_carlo_gaussian_mse` integrated against ``w``. Draws are
    evaluated in blocks of about ``chunk_elements`` numbers (the result does not depend on it).
    """
    omega, x = np.asarray(omega), np.asarray(x)
    n_draws, n = omega.shape
    chunk = max(1, int(chunk_elements // (n * x.size)))
    f_n = np.concatenate([np.cos(x[None, :, None] * omega[j:j + chunk, None, :]).mean(-1)
                          for j in range(0, n_draws, chunk)])  # (S, n_points)
    return ((np.asarray(f)[None, :] - f_n) ** 2) @ np.asarray(w)


def least_squares_errors(a: Float[np.ndarray, " N"], b: Float[np.ndarray, " N"], activation: str,
                         fit: tuple, test: tuple) -> tuple[float, float]:
    r"""Minimum-norm weighted least squares on the features :math:`\sigma(a_jx-b_j)`.

    ``fit`` and ``test`` are ``(x, w, f)``: nodes, weights, target values.
    :math:`c=\arg\min\sum_iw_i(f_i-(Ac)_i)^2` of least norm (SVD, ``numpy.linalg.lstsq``) on
    ``fit``; returns the weighted mean-square errors
    :math:`(\|\sqrt w\odot(f-Ac)\|^2` on ``fit``, :math:`\sum_i w_i(f_i-(A_tc)_i)^2` on
    ``test``).
    """
    x, w, f = (np.asarray(v) for v in fit)
    xt, wt, ft = (np.asarray(v) for v in test)
    sw = np.sqrt(w)
    A = feature_matrix(a, b, x, activation, sw)
    c = np.linalg.lstsq(A, f * sw, rcond=None)[0]
    return (float(np.sum((f * sw - A @ c) ** 2)),
            float(wt @ (ft - feature_matrix(a, b, xt, activation) @ c) ** 2))


def nsdim_native(A: Float[np.ndarray, "m p"], taus, *, return_s1: bool = False):
    r"""NSdim :math:`\#\{k:s_k/s_1>\tau\}` per ``tau``, with the singular values computed in
    ``A``'s own dtype (float32 stays float32, where
    :func:`opdiff.approx.bounds.nsdim` upcasts to float64); also returns :math:`s_k/s_1`, and
    :math:`s_1` itself when ``return_s1``.
    """
    s = np.linalg.svd(np.asarray(A), compute_uv=False)
    counts = np.sum((s / s[0])[:, None] > np.asarray(taus, s.dtype)[None, :], axis=0)
    return (counts, s / s[0], s[0]) if return_s1 else (counts, s / s[0])


def nsdim_widths(a: Float[np.ndarray, " N"], b: Float[np.ndarray, " N"], n: int, activation: str,
                 widths, tau: float, weight_bound: float) -> tuple[np.ndarray, np.ndarray]:
    r"""NSdim of the nested spans of the first ``w`` features, for every ``w`` in ``widths``,
    on ``n`` Gauss-Legendre nodes (:func:`gauss_legendre_feature_matrix`, float64), beside its
    bound with explicit constants: :func:`opdiff.approx.bounds.bernstein_nsdim_bound` for an
    analytic activation (uniform in the width), :func:`opdiff.approx.bounds.relu_rank_bound`
    for ReLU.

    Returns:
        ``(counts, bounds)``, two int arrays shaped like ``widths``.
    """
    if activation != "relu" and activation not in bounds.BERNSTEIN_ACTIVATIONS:
        raise ValueError(f"activation must be relu or one of {bounds.BERNSTEIN_ACTIVATIONS}, "
                         f"got {activation!r}")
    A = gauss_legendre_feature_matrix(a, b, n, activation)
    counts, bound = [], []
    for w in widths:
        s = np.linalg.svd(A[:, :w], compute_uv=False)
        counts.append(int(np.sum(s > tau * s[0])))  # bounds.nsdim, without a second SVD
        bound.append(bounds.relu_rank_bound(a[:w], b[:w]) if activation == "relu" else
                     bounds.bernstein_nsdim_bound(activation, weight_bound, int(w), s[0], tau))
    return np.asarray(counts, np.int64), np.asarray(bound, np.int64)


def precision_spectra(a: Float[np.ndarray, " N"], b: Float[np.ndarray, " N"], n: int,
                      activation: str, taus, small: float = 1e-6) -> dict:
    r"""The feature matrix built and decomposed in float64 and in float32
    (:func:`nsdim_native`): ``nsdim64``, ``nsdim32`` per ``tau``, the ratios
    :math:`s_k/s_1` of each, and ``small_sv_error`` :math:`=\max|s^{32}_k-s^{64}_k|/s^{64}_1`
    over the :math:`k` with :math:`s^{64}_k\le` ``small`` :math:`s^{64}_1` (the singular values
    a count at :math:`\tau\le` ``small`` sees; 0 if there are none)."""
    out, sv = {}, {}
    for bits, dtype in ((64, np.float64), (32, np.float32)):
        cnt, ratio, s1 = nsdim_native(gauss_legendre_feature_matrix(a, b, n, activation, dtype),
                                      taus, return_s1=True)
        out[f"nsdim{bits}"], out[f"ratios{bits}"] = cnt, ratio
        sv[bits] = ratio.astype(np.float64) * float(s1)
    tail = sv[64] <= small * sv[64][0]
    out["small_sv_error"] = float(np.max(np.abs(sv[32] - sv[64])[tail], initial=0.0) / sv[64][0])
    return out


def grid_lstsq_mse(a: Float[np.ndarray, " N"], b: Float[np.ndarray, " N"],
                   x: Float[np.ndarray, " n"], Y: Float[np.ndarray, "n k"],
                   activation: str = "cos") -> Float[np.ndarray, " k"]:
    r"""Grid mean-square error :math:`\frac1n\|Ac-y\|^2` of the minimum-norm least-squares fit
    (SVD, LAPACK ``gelsd``) of every column :math:`y` of ``Y`` by the features
    :math:`\sigma(a_jx-b_j)`; with integer :math:`a_j` on the uniform grid of :math:`[0,2\pi)`
    and ``"cos"`` it is the discrete out-of-band energy
    (:func:`opdiff.approx.bounds.out_of_band_energy`) once every :math:`|k|\le\Omega` is drawn
    (:func:`lattice_covered`)."""
    A = feature_matrix(a, b, x, activation)
    c = np.linalg.lstsq(A, Y, rcond=None)[0]
    return np.mean((A @ c - Y) ** 2, axis=0)


def lattice_covered(k: Int[np.ndarray, " N"], band: int) -> bool:
    r"""Whether the integer frequencies ``k`` hold :math:`0` at least once and every
    :math:`1\le|k|\le` ``band`` at least twice: then :math:`\cos(kx-b)` with distinct random
    phases span :math:`\cos kx` and :math:`\sin kx` for every :math:`|k|\le` ``band``."""
    counts = np.bincount(np.abs(np.asarray(k)).astype(int), minlength=band + 1)
    return bool(counts[0] >= 1 and np.all(counts[1:band + 1] >= 2))


def ridge_fit_floor(a: Float[np.ndarray, " N"], b: Float[np.ndarray, " N"],
                    x: Float[np.ndarray, " n"], y: Float[np.ndarray, " n"],
                    x_test: Float[np.ndarray, " t"], y_test: Float[np.ndarray, " t"],
                    ridge: float, activation: str = "sigmoid") -> dict:
    r"""Ridge fit with the relative ridge :math:`\alpha=\mathrm{ridge}\cdot\mathrm{tr}(A^\top A)/N`
    (as :func:`opdiff.approx.random_features.solve_sweep` with ``relative_ridge=True``), solved by
    QR of the augmented matrix :math:`[A;\sqrt\alpha I]`, and the rigorous floor on its test
    error.

    Returns:
        dict with ``rms`` (test RMS :math:`\|f_t-A_tc\|/\sqrt t`), ``B`` (:math:`\|c\|_2`),
        ``floor`` (:func:`opdiff.approx.bounds.bounded_coefficient_floor` of the test geometry at
        that :math:`B`: no :math:`\|c'\|_2\le B` does better), and ``rms_no_ridge`` (the same
        features fitted by minimum-norm least squares, a diagnostic).
    """
    A = feature_matrix(a, b, x, activation)
    n = A.shape[1]
    alpha = ridge * float(np.sum(A * A)) / n
    q, r = np.linalg.qr(np.concatenate([A, np.sqrt(alpha) * np.eye(n)]))
    c = solve_triangular(r, q[: len(x)].T @ y)
    At = feature_matrix(a, b, x_test, activation) / np.sqrt(len(x_test))
    ft = np.asarray(y_test) / np.sqrt(len(x_test))
    B = float(np.linalg.norm(c))
    c0 = np.linalg.lstsq(A, y, rcond=None)[0]
    return dict(rms=float(np.linalg.norm(ft - At @ c)), B=B,
                rms_no_ridge=float(np.linalg.norm(ft - At @ c0)),
                floor=bounds.bounded_coefficient_floor(At, ft, B))


def _hidden_1d(key, n, bandwidth, **kwargs):
    """``n`` float64 units of :func:`opdiff.approx.random_features.sample_hidden` in 1-D, numpy."""
    import jax.numpy as jnp

    from opdiff.approx import random_features as rf  # imported here: it imports flax (nets)

    h = rf.sample_hidden(key, n, 1, bandwidth=bandwidth, dtype=jnp.float64, **kwargs)
    return np.asarray(h.weights[:, 0]), np.asarray(h.biases)


def refit_floors(key, widths, bandwidths, x, y, x_test, y_test, ridge: float) -> dict:
    r""":func:`ridge_fit_floor` for the sigmoid units
    ``sample_hidden(key, n, 1, bandwidth=lam)`` (box law, float64) at every ``n`` in ``widths``
    and ``lam`` in ``bandwidths``; the same key as seed 0 of
    :func:`opdiff.approx.random_features.solve_sweep` (``fold_in(sweep_key, 0)``) reproduces its
    units.

    Returns:
        dict of arrays over the (width, bandwidth) pairs, width-major: ``n``, ``lam`` and the
        entries of :func:`ridge_fit_floor`.
    """
    import jax.numpy as jnp

    rows = [dict(n=int(n), lam=float(lam), **ridge_fit_floor(
        *_hidden_1d(key, int(n), jnp.float64(lam)), x, y, x_test, y_test, ridge))
        for n in widths for lam in bandwidths]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def torus_fits(key, bands, n_features: int, x: Float[np.ndarray, " n"],
               Y: Float[np.ndarray, "n k"]) -> dict:
    r"""Cosine features with random phases :math:`b\sim U[0,2\pi)` on the torus grid ``x``, per
    band :math:`\Omega` (keys ``fold_in(key, i)``): integer frequencies :math:`|k|\le\Omega`
    (``sample_hidden(..., bandwidth=Omega + 0.5, integer=True)``) and real ones
    :math:`\omega\sim U[-\Omega,\Omega]`, each fitted to every column of ``Y`` by
    :func:`grid_lstsq_mse`.

    Returns:
        dict with ``integer`` and ``real`` (``(bands, k)`` grid MSEs) and ``covered``
        (:func:`lattice_covered` of the integer draw, per band).
    """
    import jax

    out = {"integer": [], "real": [], "covered": []}
    for i, om in enumerate(bands):
        k_int, k_real = jax.random.split(jax.random.fold_in(key, i))
        a, b = _hidden_1d(k_int, n_features, om + 0.5, integer=True, bias="phase")
        out["covered"].append(lattice_covered(a, om))
        out["integer"].append(grid_lstsq_mse(a, b, x, Y))
        out["real"].append(grid_lstsq_mse(*_hidden_1d(k_real, n_features, float(om),
                                                      bias="phase"), x, Y))
    return {k: np.array(v) for k, v in out.items()}


def torus_identity(key, bands, n_features: int, n_grid: int, n_fine: int, a: float) -> dict:
    r"""The out-of-band identity on the torus and its failure off the lattice, for
    :math:`1/(a-\cos x)` and :math:`|\sin x|^3` on the ``n_grid``-point grid of :math:`[0,2\pi)`.

    :func:`torus_fits` per band :math:`\Omega` (integer and real frequencies), beside the
    out-of-band energy :math:`\sum_{|k|>\Omega}|\hat f_k|^2`: closed form for :math:`1/(a-\cos x)`
    (:func:`opdiff.approx.bounds.inverse_cosine_out_of_band`), an ``n_fine``-point FFT for
    :math:`|\sin x|^3` (aliasing :math:`O((\Omega/n)^4)`), and the grid's own (discrete Parseval).

    Returns:
        dict target -> dict of per-band arrays: ``integer_mse`` and ``real_mse`` (grid MSEs),
        ``out_of_band_energy`` (the tail), ``grid_out_of_band_energy``, ``rel_dev_from_tail``
        (:math:`|\mathrm{integer}/\mathrm{tail}-1|`), ``floor_over_real_mse`` and
        ``lattice_covered``.
    """
    from opdiff.approx import fourier

    x = np.asarray(fourier.grid(n_grid))
    fine = bounds.torus_coefficients(abs_sin_cubed(np.asarray(fourier.grid(n_fine))))
    Y = np.stack([np.asarray(fourier.inverse_cosine(x, a)), abs_sin_cubed(x)], axis=1)
    fits = torus_fits(key, bands, n_features, x, Y)
    tails = (lambda om: bounds.inverse_cosine_out_of_band(a, om),
             lambda om: bounds.out_of_band_energy(fine, om))
    out = {}
    for j, name in enumerate(("inverse_cosine", "abs_sin_cubed")):
        integer, real = fits["integer"][:, j], fits["real"][:, j]
        tail = np.array([tails[j](om) for om in bands])
        out[name] = dict(
            integer_mse=integer, real_mse=real, out_of_band_energy=tail,
            grid_out_of_band_energy=np.array([bounds.out_of_band_energy(
                bounds.torus_coefficients(Y[:, j]), om) for om in bands]),
            rel_dev_from_tail=np.abs(integer / tail - 1), floor_over_real_mse=tail / real,
            lattice_covered=fits["covered"])
    return out
