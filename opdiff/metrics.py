r"""Offline sample-quality metrics (host-side numpy, float64). Reference: diffusion.md §6.

Every function is pure: arrays in (numpy or JAX), float64 numbers out. No downloaded weights
are needed (Inception FID is unusable offline): the Fréchet distance takes features from any
extractor, e.g. a small classifier trained by the library on the same data.

- **Per-image fidelity** (restoration tables): :func:`psnr`, :func:`ssim`.
- **Distribution distances between sample sets**: :func:`sliced_wasserstein` (random
  projections, exact 1-D empirical :math:`W_p`), :func:`frechet_distance` (squared
  Bures-:math:`W_2` of the moment-matched Gaussians, via
  :func:`opdiff.diffusion.laws.w2_gaussian`), :func:`spectrum_distance` (log-spectral
  distance of mean RAPSDs, via :func:`opdiff.spectra.rapsd`) and :func:`moment_kl_diagonal`
  (KL of the moment-matched diagonal Gaussian to a known one, via
  :func:`opdiff.diffusion.laws.kl_diagonal`).
- **A learned image model's sample set at once**: :func:`image_metrics` (FD, sliced
  :math:`W_2`, spectrum distance, each with its data-vs-data reference; the FDs with their
  bootstrap standard errors, :func:`frechet_distance_se`).
- **Classification of samples**: :func:`binomial_se`, :func:`chance_bound`,
  :func:`conditional_sample_metrics` (class-conditional samples judged by a classifier);
  **within-class diversity**: :func:`within_class_diversity` (per class:
  :func:`class_diversities`); samples against a known
  Gaussian: :func:`gaussian_moment_z`, :func:`spread_ratio`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import numpy as np
from jaxtyping import Float

from opdiff._checks import check_finite_scalar, check_real_array
from opdiff.diffusion.laws import kl_diagonal, w2_gaussian, w2_gaussian_batch
from opdiff.spectra import rapsd

__all__ = [
    "binomial_se",
    "chance_bound",
    "conditional_sample_metrics",
    "class_diversities",
    "frechet_distance",
    "frechet_distance_se",
    "gaussian_moment_z",
    "image_metrics",
    "knn_kl",
    "moment_kl_diagonal",
    "psnr",
    "sliced_wasserstein",
    "spectrum_distance",
    "spread_ratio",
    "ssim",
    "within_class_diversity",
]


# --------------------------------------------------------------------------------------------
# Argument checks.


def _array(name: str, x) -> np.ndarray:
    """A finite real float64 array; TypeError for complex/bool/non-numeric input."""
    arr = np.asarray(x)
    if arr.dtype == bool:
        raise TypeError(f"{name} must be a real numeric array, got dtype bool")
    arr = check_real_array(name, arr)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN/inf)")
    return arr


def _images(name: str, x) -> np.ndarray:
    arr = _array(name, x)
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape [..., H, W], got {arr.shape}")
    return arr


def _same_shape(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got x{x.shape} and y{y.shape}")


def _positive_scalar(name: str, v) -> float:
    return check_finite_scalar(name, v, low=0.0, low_open=True, what="be a finite number > 0")


def _int(name: str, v, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {v!r}")
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v!r}")
    return int(v)


def _scalar_out(a: np.ndarray):
    return float(a) if np.ndim(a) == 0 else a


# --------------------------------------------------------------------------------------------
# PSNR and SSIM.


def psnr(x: Float[np.ndarray, "... H W"], y: Float[np.ndarray, "... H W"], *,
         data_range: float, axes: tuple[int, ...] = (-2, -1)):
    r"""Peak signal-to-noise ratio per image, in dB.

    .. math:: \mathrm{PSNR}(x,y)=10\log_{10}\frac{R^2}{\mathrm{MSE}},\qquad
              \mathrm{MSE}=\frac1{|\Omega|}\sum_{i\in\Omega}(x_i-y_i)^2,

    with :math:`R` = ``data_range`` (e.g. 1 for images in [0, 1], 255 for 8-bit) and
    :math:`\Omega` the pixels of one image (the ``axes``). Identical images give ``inf``.
    Symmetric in ``x``, ``y``.

    Args:
        x, y: real arrays of the same shape ``[..., H, W]``.
        data_range: :math:`R>0` (keyword-only; never inferred from the data).
        axes: the axes of one image (default the last two); the others are kept.

    Returns:
        float64 array of the remaining (batch) shape, or a float for a single image.

    Raises:
        TypeError: non-real inputs. ValueError: shapes differ, fewer than 2 dims, bad
        ``data_range``.
    """
    a, b = _images("x", x), _images("y", y)
    _same_shape(a, b)
    r = _positive_scalar("data_range", data_range)
    mse = np.mean((a - b) ** 2, axis=tuple(axes))
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10(r * r / mse)
    return _scalar_out(out)


def _gaussian_taps(window: int, sigma: float) -> np.ndarray:
    t = np.arange(window, dtype=np.float64) - (window - 1) / 2
    g = np.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def _valid_filter(u: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable correlation over the last two axes, 'valid' region (no padding)."""
    k = taps.size
    h, w = u.shape[-2] - k + 1, u.shape[-1] - k + 1
    rows = sum(taps[i] * u[..., i:i + h, :] for i in range(k))
    return sum(taps[j] * rows[..., :, j:j + w] for j in range(k))


def ssim(x: Float[np.ndarray, "... H W"], y: Float[np.ndarray, "... H W"], *,
         data_range: float, window: int | None = None, sigma: float | None = None,
         k1: float = 0.01, k2: float = 0.03, gaussian: bool = True):
    r"""Mean structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004) per image.

    With local weighted moments under a window :math:`w` (weights summing to 1),
    :math:`\mu_x=w*x`, :math:`\sigma_x^2=w*x^2-\mu_x^2`, :math:`\sigma_{xy}=w*(xy)-\mu_x\mu_y`,

    .. math:: \mathrm{SSIM}=\frac{(2\mu_x\mu_y+C_1)(2\sigma_{xy}+C_2)}
              {(\mu_x^2+\mu_y^2+C_1)(\sigma_x^2+\sigma_y^2+C_2)},\qquad
              C_1=(k_1R)^2,\ C_2=(k_2R)^2,

    averaged over the window positions that lie fully inside the image (**'valid' region,
    no padding**): an :math:`H\times W` image gives :math:`(H-s+1)(W-s+1)` positions for a
    window of side :math:`s`. For a constant image pair :math:`x\equiv a`, :math:`y\equiv b`
    only the luminance term remains: :math:`(2ab+C_1)/(a^2+b^2+C_1)`.

    **Convention** (one, documented): population moments (normalised weights, no
    :math:`N/(N-1)` factor). ``gaussian=True`` (default) uses the separable Gaussian window
    with :math:`\sigma=1.5` and side :math:`s=2\lfloor3.5\sigma+\tfrac12\rfloor+1=11`; this
    equals scikit-image's ``structural_similarity(x, y, data_range=R, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False)`` (whose reflect-padded filter is cropped by
    :math:`(s-1)/2` before the mean, i.e. the same valid region). ``gaussian=False`` uses the
    uniform :math:`s\times s` window (default :math:`s=7`), equal to scikit-image's
    ``gaussian_weights=False, win_size=s, use_sample_covariance=False``.

    Args:
        x, y: real arrays of the same shape ``[..., H, W]`` with :math:`H,W\ge s`.
        data_range: :math:`R>0`, the dynamic range of the images.
        window: odd window side :math:`s` (default: 11 Gaussian, 7 uniform).
        sigma: Gaussian window width (default 1.5); only with ``gaussian=True``.
        k1, k2: the stabilising constants.
        gaussian: Gaussian (True) or uniform (False) window.

    Returns:
        float64 array of the batch shape ``[...]``, or a float for a single image.

    Raises:
        TypeError / ValueError: bad dtypes, shapes that differ, images smaller than the
        window, an even window, non-positive ``data_range``/``sigma``/``k1``/``k2``.
    """
    a, b = _images("x", x), _images("y", y)
    _same_shape(a, b)
    r = _positive_scalar("data_range", data_range)
    c1 = (_positive_scalar("k1", k1) * r) ** 2
    c2 = (_positive_scalar("k2", k2) * r) ** 2
    if gaussian:
        s = 1.5 if sigma is None else _positive_scalar("sigma", sigma)
        n = 2 * int(3.5 * s + 0.5) + 1 if window is None else _int("window", window, 1)
        taps = _gaussian_taps(n, s)
    else:
        if sigma is not None:
            raise ValueError("sigma is only used with gaussian=True")
        n = 7 if window is None else _int("window", window, 1)
        taps = np.full(n, 1.0 / n)
    if n % 2 == 0:
        raise ValueError(f"window must be odd, got {n}")
    if min(a.shape[-2:]) < n:
        raise ValueError(f"x and y must be at least {n}x{n} for a window of {n}, got "
                         f"{a.shape[-2]}x{a.shape[-1]}")
    mx, my = _valid_filter(a, taps), _valid_filter(b, taps)
    vx = _valid_filter(a * a, taps) - mx * mx
    vy = _valid_filter(b * b, taps) - my * my
    cxy = _valid_filter(a * b, taps) - mx * my
    s_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return _scalar_out(s_map.mean(axis=(-2, -1)))


# --------------------------------------------------------------------------------------------
# Distances between sample sets.


def _wp_p_sorted(u: np.ndarray, v: np.ndarray, p: float) -> np.ndarray:
    r""":math:`W_p^p` between the empirical laws of sorted rows ``u [L, n]``, ``v [L, m]``.

    Exact: both quantile functions are step functions, constant on the intervals of the
    merged grid :math:`\{i/n\}\cup\{j/m\}`; evaluate them at each interval's midpoint.
    """
    n, m = u.shape[1], v.shape[1]
    if n == m:
        return np.mean(np.abs(u - v) ** p, axis=1)
    grid = np.union1d(np.arange(n + 1) / n, np.arange(m + 1) / m)
    mid = 0.5 * (grid[1:] + grid[:-1])
    wts = np.diff(grid)
    iu = np.minimum((mid * n).astype(np.int64), n - 1)
    iv = np.minimum((mid * m).astype(np.int64), m - 1)
    return np.abs(u[:, iu] - v[:, iv]) ** p @ wts


def sliced_wasserstein(x: Float[np.ndarray, "n ..."], y: Float[np.ndarray, "m ..."], *,
                       key: jax.Array, n_projections: int = 256, p: float = 2) -> float:
    r"""Monte-Carlo sliced Wasserstein distance :math:`\mathrm{SW}_p` between two sample sets.

    .. math:: \mathrm{SW}_p(\mu,\nu)=\Big(\frac1L\sum_{l=1}^L
              W_p^p(\theta_l\#\mu,\theta_l\#\nu)\Big)^{1/p},\qquad
              W_p^p(\alpha,\beta)=\int_0^1|F_\alpha^{-1}(t)-F_\beta^{-1}(t)|^p\,dt,

    with :math:`\theta_l` i.i.d. uniform on the unit sphere :math:`S^{d-1}` (normalised
    Gaussians drawn from ``key``) and :math:`\mu,\nu` the empirical laws of ``x`` and ``y``.
    The 1-D :math:`W_p` is exact for the empirical laws: sort the projections and match
    quantiles; when :math:`n\ne m` the two step quantile functions are compared on the merged
    grid :math:`\{i/n\}\cup\{j/m\}`, on which both are constant. Returns
    :math:`\mathrm{SW}_p` itself, **not** its :math:`p`-th power. Its Monte-Carlo error over
    directions is :math:`O(L^{-1/2})` relative; for :math:`d=1` the directions are
    :math:`\pm1` and the result is the exact 1-D :math:`W_p`.

    Args:
        x: samples ``[n, ...]`` (trailing dims flattened to :math:`d`).
        y: samples ``[m, ...]`` with the same trailing shape as ``x``.
        key: ``jax.random`` key for the directions (explicit: same key, same directions).
        n_projections: :math:`L\ge1`.
        p: order :math:`p\ge1`.

    Raises:
        TypeError / ValueError: bad dtypes, fewer than 2 dims, trailing shapes that differ,
        bad ``n_projections`` or ``p``.
    """
    a, b = _array("x", x), _array("y", y)
    for name, arr in (("x", a), ("y", b)):
        if arr.ndim < 2 or arr.shape[0] == 0 or arr[0].size == 0:
            raise ValueError(f"{name} must have shape [n, d] (or [n, ...]), n >= 1, got "
                             f"{arr.shape}")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"x and y must have the same trailing shape, got x{a.shape} and "
                         f"y{b.shape}")
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    n_proj = _int("n_projections", n_projections, 1)
    pp = _positive_scalar("p", p)
    if pp < 1:
        raise ValueError(f"p must be >= 1, got {p!r}")
    theta = np.asarray(jax.random.normal(key, (n_proj, a.shape[1])), np.float64)
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    u = np.sort(theta @ a.T, axis=1)
    v = np.sort(theta @ b.T, axis=1)
    return float(np.mean(_wp_p_sorted(u, v, pp)) ** (1.0 / pp))


def frechet_distance(feat_x: Float[np.ndarray, "n k"], feat_y: Float[np.ndarray, "m k"]
                     ) -> float:
    r"""Fréchet distance between two feature sets (FID-style, with any feature extractor).

    .. math:: \mathrm{FD}=\|\mu_x-\mu_y\|^2+\mathrm{tr}\big(\Sigma_x+\Sigma_y
              -2(\Sigma_x\Sigma_y)^{1/2}\big),

    with the empirical means and unbiased (:math:`1/(n-1)`) covariances, as in the usual FID
    code. This is exactly the **squared** Bures-:math:`W_2` distance between the
    moment-matched Gaussians, computed in float64 by
    :func:`opdiff.diffusion.laws.w2_gaussian` (symmetric ``eigh`` square roots; absolute
    round-off :math:`\approx10^{-16}\,\mathrm{tr}(\Sigma_x+\Sigma_y)`). It is a biased
    estimator (upward, :math:`O(k/n)`), so report it next to the data-vs-data value at the
    same sample sizes.

    Args:
        feat_x: features ``[n, k]``, :math:`n\ge2`.
        feat_y: features ``[m, k]``, :math:`m\ge2`, the same :math:`k`.

    Raises:
        TypeError / ValueError: bad dtypes, not 2-D, fewer than 2 rows, ``k`` differs.
    """
    a, b = _array("feat_x", feat_x), _array("feat_y", feat_y)
    for name, arr in (("feat_x", a), ("feat_y", b)):
        if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
            raise ValueError(f"{name} must have shape [n, k] with n >= 2, k >= 1, got "
                             f"{arr.shape}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feat_x and feat_y must have the same feature dimension, got "
                         f"{a.shape[1]} and {b.shape[1]}")
    cx = np.atleast_2d(np.cov(a, rowvar=False))
    cy = np.atleast_2d(np.cov(b, rowvar=False))
    return w2_gaussian(a.mean(axis=0), cx, b.mean(axis=0), cy)


def frechet_distance_se(feat_x: Float[np.ndarray, "n k"], feat_y: Float[np.ndarray, "m k"], *,
                        key, n_boot: int = 100) -> float:
    r"""Bootstrap standard error of :func:`frechet_distance` over the rows of ``feat_x``.

    With :math:`x^{*b}` the rows of ``feat_x`` resampled with replacement (``n_boot`` times,
    indices from ``key``), :math:`\mathrm{se}=\mathrm{sd}_b\,\mathrm{FD}(x^{*b},y)`
    (``ddof=1``). Only the sample set is resampled: ``feat_y`` is the fixed reference (the
    training features) that every model is compared with, so the SE is the one that a
    *difference* of two models' FDs against the same reference needs (their sample sets are
    independent: :math:`\mathrm{se}(\mathrm{FD}_1-\mathrm{FD}_2)=\sqrt{\mathrm{se}_1^2+
    \mathrm{se}_2^2}`). The bootstrap also sees the estimator's :math:`O(k/n)` bias move with
    the duplicated rows, so it is a little conservative.

    Args:
        feat_x: sample features ``[n, k]``, :math:`n\ge2`.
        feat_y: reference features ``[m, k]``.
        key: a JAX PRNG key for the resampling indices.
        n_boot: bootstrap replicates, at least 2.

    Raises:
        TypeError / ValueError: as :func:`frechet_distance`; ``n_boot`` not an int >= 2.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 2:
        raise ValueError(f"n_boot must be an int >= 2, got {n_boot!r}")
    a, b = _array("feat_x", feat_x), _array("feat_y", feat_y)
    frechet_distance(a, b)  # the shape checks
    idx = np.asarray(jax.random.randint(key, (n_boot, len(a)), 0, len(a)))
    # the replicates' moments, in blocks (memory n_block * n * k), then one stacked W2
    means, covs = [], []
    for block in np.array_split(idx, max(1, len(idx) // 16)):
        x = a[block]  # [nb, n, k]
        mu = x.mean(axis=1)
        xc = x - mu[:, None, :]
        means.append(mu)
        covs.append(np.einsum("bni,bnj->bij", xc, xc, optimize=True) / (len(a) - 1))
    cy = np.atleast_2d(np.cov(b, rowvar=False))
    fds = w2_gaussian_batch(np.concatenate(means), np.concatenate(covs), b.mean(axis=0), cy)
    return float(np.std(fds, ddof=1))


def spectrum_distance(x: Float[np.ndarray, "... H W"], y: Float[np.ndarray, "... H W"]
                      ) -> float:
    r"""Log-spectral distance between the mean radially averaged power spectra of two image
    sets.

    .. math:: D=\Big(\frac1F\sum_{f}\big(\log_{10}\bar R_x(f)-\log_{10}\bar R_y(f)\big)^2
              \Big)^{1/2},

    with :math:`\bar R` the RAPSD of :func:`opdiff.spectra.rapsd` averaged over all images of
    the set (annuli :math:`r=1..\lfloor\min(H,W)/2\rfloor`, DC dropped) and :math:`F` the
    number of annuli. Units: decades. Scaling one set by :math:`c` gives exactly
    :math:`D=|\log_{10}c^2|`; two white-noise sets of variances :math:`\sigma_1^2,\sigma_2^2`
    give :math:`|\log_{10}(\sigma_1^2/\sigma_2^2)|` up to sampling error.

    Args:
        x: images ``[..., H, W]``; y: images ``[..., H, W]`` (same ``H, W``; the numbers of
            images may differ).

    Raises:
        TypeError / ValueError: bad dtypes, fewer than 2 dims, ``H, W`` differ, or a zero
        spectrum (e.g. constant images) whose log is undefined.
    """
    a, b = _images("x", x), _images("y", y)
    if a.shape[-2:] != b.shape[-2:]:
        raise ValueError(f"x and y must have the same image size [H, W], got x{a.shape} and "
                         f"y{b.shape}")
    rx = rapsd(a, return_frequencies=False)
    ry = rapsd(b, return_frequencies=False)
    for name, r in (("x", rx), ("y", ry)):
        if np.any(r <= 0):
            raise ValueError(f"{name} has zero power in some annulus (constant images?)")
    return float(np.sqrt(np.mean((np.log10(rx) - np.log10(ry)) ** 2)))


def moment_kl_diagonal(z: Float[np.ndarray, "n ..."], mean, var) -> float:
    r""":math:`\mathrm{KL}(N(\hat m,\mathrm{diag}\,\hat v)\,\|\,N(m,\mathrm{diag}\,v))` of the
    diagonal Gaussian moment-matched to samples ``z`` against a known diagonal Gaussian.

    :math:`\hat m` is the per-coordinate sample mean and :math:`\hat v` the unbiased
    (:math:`1/(n-1)`) sample variance; the KL is :func:`opdiff.diffusion.laws.kl_diagonal`
    (stable near 0). Natural for samples in a basis where the target is diagonal (e.g. the
    Fourier/DCT coefficients of stationary Gaussian fields).

    **Finite-sample bias.** It is biased upward. If the samples really come from
    :math:`N(m,\mathrm{diag}\,v)` (true KL = 0), then per coordinate
    :math:`n(\hat m-m)^2/v\sim\chi^2_1` and :math:`(n-1)\hat v/v\sim\chi^2_{n-1}`, which give
    exactly

    .. math:: \mathbb E[\widehat{\mathrm{KL}}]=\frac{d}{2n}
              +\frac d2\Big[\ln\frac{n-1}2-\psi\Big(\frac{n-1}2\Big)\Big]
              =\frac dn+O\Big(\frac d{n^2}\Big),

    (:math:`\psi` the digamma function; the mean part gives :math:`d/(2n)`, the variance part
    :math:`\approx d/(2(n-1))`). Compare measured values to this floor, not to 0.

    Args:
        z: samples ``[n, ...]``, :math:`n\ge2`.
        mean, var: the target's mean and variance (:math:`\ge0`), broadcastable to
            ``z.shape[1:]``.

    Raises:
        TypeError / ValueError: bad dtypes, fewer than 2 samples, ``mean``/``var`` that do
        not broadcast to ``z.shape[1:]``, negative variances.
    """
    s = _array("z", z)
    if s.ndim < 1 or s.shape[0] < 2:
        raise ValueError(f"z must have shape [n, ...] with n >= 2, got {s.shape}")
    feat = s.shape[1:]
    m, v = check_real_array("mean", mean), check_real_array("var", var)
    for name, arr in (("mean", m), ("var", v)):
        try:
            np.broadcast_to(arr, feat)
        except ValueError:
            raise ValueError(f"{name} must broadcast to z.shape[1:] = {feat}, got shape "
                             f"{arr.shape}") from None
    return kl_diagonal(s.mean(axis=0), s.var(axis=0, ddof=1), np.broadcast_to(m, feat),
                       np.broadcast_to(v, feat))


def knn_kl(x: Float[np.ndarray, "n d"], y: Float[np.ndarray, "m d"], *, k: int = 5) -> float:
    r"""The :math:`k`-nearest-neighbour estimate of :math:`\mathrm{KL}(P\|Q)` from samples
    :math:`x\sim P` and :math:`y\sim Q` (Wang, Kulkarni & Verdú 2009):

    .. math:: \widehat{\mathrm{KL}}=\frac dn\sum_{i=1}^n\log\frac{\nu_k(i)}{\rho_k(i)}
              +\log\frac m{n-1},

    with :math:`\rho_k(i)` the distance from :math:`x_i` to its :math:`k`-th nearest neighbour
    among the other :math:`x`, and :math:`\nu_k(i)` to its :math:`k`-th nearest neighbour among
    the :math:`y`. Consistent for continuous densities; for low dimension only (the bias grows
    with :math:`d`). Its value for two samples of one law fluctuates around 0 (it can be
    negative): compare with the data-vs-data value.

    Args:
        x: samples of :math:`P`, ``[n, d]`` (trailing dims flattened), :math:`n>k`.
        y: samples of :math:`Q`, ``[m, d]``, :math:`m\ge k`.
        k: the neighbour order (>= 1).
    """
    from scipy.spatial import cKDTree

    k = _int("k", k, 1)
    a, b = _array("x", x), _array("y", y)
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {a.shape[1]} and "
                         f"{b.shape[1]}")
    if a.shape[0] <= k or b.shape[0] < k:
        raise ValueError(f"need more than k={k} samples in x and at least k in y, got "
                         f"{a.shape[0]} and {b.shape[0]}")
    n, d = a.shape
    rho = cKDTree(a).query(a, k + 1)[0][:, -1]
    nu = cKDTree(b).query(a, k)[0]
    nu = nu[:, -1] if nu.ndim == 2 else nu
    if np.any(rho <= 0):
        raise ValueError("x has repeated points: the k-NN estimate needs distinct samples")
    return float(d * np.mean(np.log(nu / rho)) + np.log(b.shape[0] / (n - 1)))


# --------------------------------------------------------------------------------------------
# Learned image models: a sample set against the data, classification of samples.


def image_metrics(samples: Float[np.ndarray, "n H W"], x_train: Float[np.ndarray, "m H W"],
                  x_test: Float[np.ndarray, "k H W"],
                  features: Callable[[np.ndarray], np.ndarray], *, key) -> dict:
    r"""The sample-quality numbers of a generative image model, each with its data-vs-data
    reference (the floor at that sample size).

    Samples are clipped to :math:`[-1.5,1.5]` first (a diverged sample would otherwise swamp
    the moments). With :math:`n'=\min(n,k)`:

    - ``fd``: :func:`frechet_distance` of ``features(samples)`` to ``features(x_train)``;
      ``fd_same_n`` with the first :math:`n'` samples; ``fd_data``: test vs training
      features (compare with ``fd_same_n``: the FD is biased upward by :math:`O(\dim/n)`);
    - ``sliced_w2``: :func:`sliced_wasserstein` of the first :math:`n'` samples vs test
      images, ``sliced_w2_data``: the first :math:`n'` training vs test images (same ``key``);
    - ``spectrum_distance``: :func:`spectrum_distance` samples vs test images,
      ``spectrum_distance_data``: training vs test images;
    - ``n_samples``: :math:`n`;
    - ``fd_se``, ``fd_data_se``, ``fd_same_n_se``: :func:`frechet_distance_se` of each FD
      (keys ``fold_in(key, 1..3)``), for differences between models and against the floor.

    Args:
        samples, x_train, x_test: image sets in the data's scale ([-1, 1]).
        features: the feature map of the FD (e.g. a classifier's penultimate layer).
        key: the projections of the sliced :math:`W_2` (and, folded in, the FD bootstraps).
    """
    samples = np.clip(np.asarray(samples, np.float32), -1.5, 1.5)
    f_train, f_test, f_gen = features(x_train), features(x_test), features(samples)
    n = min(len(samples), len(x_test))
    kb = [jax.random.fold_in(key, j) for j in (1, 2, 3)]
    return {
        "fd": frechet_distance(f_gen, f_train),
        "fd_se": frechet_distance_se(f_gen, f_train, key=kb[0]),
        "fd_data": frechet_distance(f_test, f_train),
        "fd_data_se": frechet_distance_se(f_test, f_train, key=kb[1]),
        "fd_same_n": frechet_distance(f_gen[:n], f_train),
        "fd_same_n_se": frechet_distance_se(f_gen[:n], f_train, key=kb[2]),
        "sliced_w2": sliced_wasserstein(samples[:n], x_test[:n], key=key),
        "sliced_w2_data": sliced_wasserstein(x_train[:n], x_test[:n], key=key),
        "spectrum_distance": spectrum_distance(samples, x_test),
        "spectrum_distance_data": spectrum_distance(x_train, x_test),
        "n_samples": int(len(samples)),
    }


def binomial_se(p: float, n: int) -> float:
    r"""Standard error :math:`\sqrt{p(1-p)/n}` of a proportion ``p`` over ``n`` trials
    (0 for :math:`p\in\{0,1\}`)."""
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)


def chance_bound(n: int, n_classes: int = 10, z: float = 5.0) -> float:
    r"""Chance accuracy plus ``z`` binomial standard errors, :math:`p+z\sqrt{p(1-p)/n}` with
    :math:`p=1/\text{n\_classes}`: an accuracy above it is not luck at level ``z``."""
    p = 1.0 / n_classes
    return p + z * math.sqrt(p * (1 - p) / n)


def class_diversities(x: Float[np.ndarray, "n ..."], y) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    r"""``(classes, pixel_var, decorrelation)``, one entry per class with at least two images.

    Per class :math:`c` with images :math:`x_1..x_m`: ``pixel_var`` is the mean over pixels of
    the (biased) variance across the :math:`m` images; ``decorrelation`` is
    :math:`1-\bar\rho`, :math:`\bar\rho` the mean Pearson correlation
    :math:`\rho_{ij}=\langle u_i,u_j\rangle` over the :math:`m(m-1)` ordered distinct
    pairs, :math:`u_i` the image centred on its own mean and normalised (invariant to a
    per-image affine change of grey levels). Per class, so that two sample sets asked for the
    same labels can be compared class by class (a paired difference and its SE over classes).

    Raises:
        ValueError: no class has two images.
    """
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    y = np.asarray(y)
    cls, pv, dec = [], [], []
    for c in np.unique(y):
        xc = x[y == c]
        m = len(xc)
        if m < 2:
            continue
        cls.append(c)
        pv.append(xc.var(axis=0).mean())
        u = xc - xc.mean(axis=1, keepdims=True)
        u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
        r = u @ u.T
        dec.append(1.0 - (r.sum() - np.trace(r)) / (m * (m - 1)))
    if not pv:
        raise ValueError("within_class_diversity needs two images of some class")
    return np.array(cls), np.array(pv), np.array(dec)


def within_class_diversity(x: Float[np.ndarray, "n ..."], y) -> tuple[float, float]:
    """``(pixel_var, decorrelation)`` of :func:`class_diversities`, averaged over the classes
    with at least two images.

    Raises:
        ValueError: no class has two images.
    """
    _, pv, dec = class_diversities(x, y)
    return float(np.mean(pv)), float(np.mean(dec))


def gaussian_moment_z(x: Float[np.ndarray, "n d"], mean, cov) -> float:
    r"""Largest :math:`|z|` of the sample mean and the (biased) sample covariance entries of
    ``x`` against a Gaussian :math:`N(\mu,\Sigma)`, with the exact Gaussian standard errors

    .. math:: \mathrm{se}(\bar x_i)=\sqrt{\Sigma_{ii}/n},\qquad
              \mathrm{se}(S_{ij})=\sqrt{(\Sigma_{ii}\Sigma_{jj}+\Sigma_{ij}^2)/n}.
    """
    x = np.asarray(x, np.float64)
    n = len(x)
    dv = np.diag(cov)
    zm = np.abs(x.mean(0) - mean) / np.sqrt(dv / n)
    s = np.cov(x.T, bias=True)
    zs = np.abs(s - cov) / np.sqrt((np.outer(dv, dv) + cov**2) / n)
    return float(max(zm.max(), zs.max()))


def spread_ratio(x: Float[np.ndarray, "n d"], cov) -> tuple[float, float]:
    r""":math:`\mathrm{tr}\,S/\mathrm{tr}\,\Sigma` for the (biased) sample covariance
    :math:`S` of ``x`` against a reference covariance :math:`\Sigma`, and its standard error
    :math:`\sqrt{2\,\mathrm{tr}(S^2)/n}/\mathrm{tr}\,\Sigma` (Gaussian fourth moments,
    :math:`\mathrm{Var}\,\mathrm{tr}\,S=2\,\mathrm{tr}(C^2)/n` with :math:`S` plugged in
    for the unknown covariance :math:`C` of the samples)."""
    s = np.cov(np.asarray(x, np.float64).T, bias=True)
    tr = float(np.trace(cov))
    return float(np.trace(s)) / tr, math.sqrt(2.0 * np.trace(s @ s) / len(x)) / tr


def conditional_sample_metrics(x: Float[np.ndarray, "n H W"], y, predicted, features_x,
                               features_train, x_test: Float[np.ndarray, "m H W"], *,
                               key) -> dict:
    r"""Class-conditional samples ``x`` (asked for labels ``y``) judged by a classifier that
    predicted ``predicted`` and gave features ``features_x`` for them.

    Returns ``accuracy`` (fraction with ``predicted == y``) and its :func:`binomial_se`;
    ``fd``: :func:`frechet_distance` of ``features_x`` to ``features_train`` (``inf`` when it
    is NaN); ``sliced_w2``: :func:`sliced_wasserstein` of the first :math:`\min(n,m)` samples
    (clipped to :math:`[-1.5,1.5]`) vs the test images; ``spectrum_distance`` (clipped samples
    vs test images); ``pixel_var`` and ``decorrelation`` of :func:`within_class_diversity`;
    ``overshoot``: the mean of :math:`\max(|x|-1,0)` over pixels (saturation beyond [-1, 1]);
    ``fd_se``: :func:`frechet_distance_se` (key ``fold_in(key, 1)``);
    ``decorrelation_per_class``: :func:`class_diversities`' per-class values (a list).
    """
    x, y = np.asarray(x), np.asarray(y)
    n, m = len(x), min(len(x), len(x_test))
    acc = float(np.mean(np.asarray(predicted) == y))
    _, pvc, decc = class_diversities(x, y)
    fd = frechet_distance(features_x, features_train)
    return {"accuracy": acc, "accuracy_se": binomial_se(acc, n),
            "fd": math.inf if math.isnan(fd) else fd,
            "fd_se": frechet_distance_se(features_x, features_train,
                                         key=jax.random.fold_in(key, 1)),
            "sliced_w2": sliced_wasserstein(np.clip(x[:m], -1.5, 1.5), x_test[:m], key=key),
            "spectrum_distance": spectrum_distance(np.clip(x, -1.5, 1.5), x_test),
            "pixel_var": float(np.mean(pvc)), "decorrelation": float(np.mean(decc)),
            "decorrelation_per_class": decc.tolist(),
            "overshoot": float(np.mean(np.maximum(np.abs(x) - 1.0, 0.0)))}
