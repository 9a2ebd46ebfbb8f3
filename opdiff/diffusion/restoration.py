r"""Image restoration with a heat-dissipation model: deblurring and 2× super-resolution as
inverse problems of the heat process, their linear baselines, posterior sampling and the
PSNR/SSIM table.

**Heat blur as an observation model.** Heat dissipation
(:func:`opdiff.diffusion.processes.heat_dissipation`) is diagonal in the orthonormal DCT basis
:math:`B` with marginal

.. math:: z_t=a_t(k)\,z_0+\sigma\varepsilon,\qquad a_t(k)=e^{-\lambda_k\tau(t)},\qquad
          \tau(t)=\sigma_B(t)^2/2,\quad\sigma_B(t)=\sigma_{B,\min}(\sigma_{B,\max}/
          \sigma_{B,\min})^{t/T},

the observation model of deblurring (a Gaussian blur of width :math:`\sigma_B` pixels, Neumann
boundaries, plus white noise). :math:`\tau` is :meth:`Process.heat_time`, the factor
:math:`e^{-\lambda\tau}` :func:`opdiff.operators.heat.heat_multiplier`; every estimate here
is float64 numpy (:func:`opdiff.diffusion.baselines.to_basis64` for :math:`B`).

**Estimators.** The naive inverse :math:`B^\top(By/a_t)` has the exact error
:math:`E\|\hat x-x_0\|^2=\sigma^2\sum_ka_t(k)^{-2}` (:func:`naive_mse_prediction`); the
Wiener (DCT) filter :math:`\mu+G_t(z-a_t\mu)`, :math:`G_t=a_t\lambda/(a_t^2\lambda+\sigma^2)`
is the exact posterior mean of a diagonal Gaussian (:func:`wiener_coeffs`, the numpy twin of
:meth:`GaussianField.denoiser`); :func:`lmmse` is the best linear estimator under a full
covariance and any linear forward operator (:func:`dense_operator`). The 1-D periodic
analogues (naive, spectral cutoff, Wiener and their exact MSEs) are in
:mod:`opdiff.operators.heat`.

**Posterior sampling.** A reverse sampler started at the observation :math:`y=x_t` and run to
:math:`t_{\min}` (then one denoising step) draws from :math:`p(x_0\mid x_t)` for an exact
denoiser (:func:`posterior_samples`); an exact sample costs
:math:`E\|\tilde x-x_0\|^2=2\,\mathrm{MMSE}_t-\mathrm{MMSE}_{t_{\min}}`
for an exact sampler; a discretised sampler with the exact denoiser has an exact Gaussian law
too, whose expected ratio :func:`sampler_ratio_exact` computes and
:func:`gaussian_sampling_ratio` measures (Gaussian data, exact denoiser, with its standard
error by :func:`ratio_of_means`).

**Super-resolution.** :func:`avg_pool` / :func:`upsample`; :func:`match_heat_level` picks the
heat level whose blur best matches pool-then-upsample on training images,
:func:`select_observation_level` the further blur (:func:`reblur`) at which the Wiener filter
restores training pairs best — both exact from second moments per DCT coefficient.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.fft
import scipy.ndimage
from jaxtyping import Float, PRNGKeyArray

from opdiff import metrics
from opdiff.diffusion import oracle, samplers
from opdiff.diffusion.baselines import to_basis64
from opdiff.diffusion.processes import Process
from opdiff.operators.heat import heat_multiplier

__all__ = ["LABELS", "METHODS", "avg_pool", "blur_time", "deblur_task", "dense_operator",
           "gaussian_sampling_ratio", "heat_blur", "heat_scale", "idct64", "image_scores",
           "lmmse", "match_heat_level", "naive_inverse", "naive_mse_prediction",
           "paired_difference", "posterior_samples", "ratio_of_means", "reblur",
           "restoration_estimates", "sampler_ratio_exact", "select_observation_level",
           "show_indices", "sr_task", "ssim_window", "summarize", "table_markdown", "table_rows",
           "task_summary", "to_unit", "upsample", "wiener_coeffs"]

METHODS = ("observation", "naive", "bicubic", "wiener", "lmmse", "post_mean", "post_sample",
           "mean_k")
LABELS = {"observation": "Observation", "naive": "Naive inverse", "bicubic": "Bicubic",
          "wiener": "Wiener (DCT)", "lmmse": "LMMSE (full cov.)",
          "post_mean": "Ours: posterior mean", "post_sample": "Ours: posterior sample",
          "mean_k": "Ours: mean of K samples"}


# ----------------------------------------------------------------------------- the heat blur


def _check_heat(process: Process) -> None:
    if getattr(process, "blur", None) != "log" or process.schedule != "constant" \
            or process.basis != "dct" or process.d_min != 0:
        raise ValueError("process must be a heat-dissipation process in the DCT basis "
                         "(processes.heat_dissipation(shape))")


def to_unit(x) -> np.ndarray:
    """Images on the :math:`[-1,1]` scale to :math:`u=(x+1)/2` on :math:`[0,1]` (float64)."""
    return (np.asarray(x, np.float64) + 1.0) / 2.0


def blur_time(process: Process, width: float) -> float:
    r"""The time :math:`t` at which ``process`` (``blur="log"``) has blur width ``width`` px:
    :math:`t=T\log(\sigma_B/\sigma_{B,\min})/\log(\sigma_{B,\max}/\sigma_{B,\min})`, so that
    :math:`\tau(t)=\sigma_B^2/2`.

    Raises:
        ValueError: a process without a log blur schedule, or ``width`` outside
            :math:`[\sigma_{B,\min},\sigma_{B,\max}]`.
    """
    if getattr(process, "blur", None) != "log":
        raise ValueError("process must be a heat-dissipation process (blur='log')")
    w = float(width)
    if not (math.isfinite(w) and process.blur_min <= w <= process.blur_max):
        raise ValueError(f"width must lie in [blur_min={process.blur_min}, blur_max="
                         f"{process.blur_max}] px, got {width!r}")
    return process.T * math.log(w / process.blur_min) / math.log(process.blur_max
                                                                  / process.blur_min)


def _tau(process: Process, t) -> np.ndarray:
    """:meth:`Process.heat_time` as a float64 numpy array (computed in JAX's precision)."""
    _check_heat(process)
    return np.asarray(process.heat_time(np.asarray(t, np.float64)), np.float64)


def heat_scale(process: Process, t) -> np.ndarray:
    r""":math:`a_t(k)=e^{-\lambda_k\tau(t)}` (float64) for a scalar ``t`` (``[*shape]``) or a
    1-D array of times (``[len(t), *shape]``)."""
    tau = _tau(process, t)
    lam = np.asarray(process.eigenvalues, np.float64)
    return heat_multiplier(lam, tau[(...,) + (None,) * process.ndim])


def _dct(process: Process, x) -> np.ndarray:
    return to_basis64(x, "dct", process.ndim)


def idct64(process: Process, z) -> np.ndarray:
    """The inverse orthonormal DCT-II over the image axes (float64 numpy; the inverse of
    :func:`opdiff.diffusion.baselines.to_basis64` with ``basis="dct"``)."""
    axes = tuple(range(-process.ndim, 0))
    return scipy.fft.idctn(np.asarray(z, np.float64), type=2, norm="ortho", axes=axes)


def heat_blur(process: Process, x, t) -> np.ndarray:
    r"""The noiseless heat blur :math:`e^{\tau(t)\Delta}x=B^\top(a_t\odot Bx)` of ``x``
    ``[n, *shape]``."""
    return idct64(process, heat_scale(process, t) * _dct(process, x))


def reblur(process: Process, y, t_from: float, t_to: float) -> np.ndarray:
    r"""Blur further from level ``t_from`` to ``t_to >= t_from``:
    :math:`e^{(\tau(t_{\rm to})-\tau(t_{\rm from}))\Delta}y` (the semigroup property: a heat
    blur at ``t_from`` becomes one at ``t_to``)."""
    if t_to < t_from:
        raise ValueError(f"t_to must be >= t_from, got {t_to} < {t_from}")
    dtau = float(_tau(process, t_to)) - float(_tau(process, t_from))
    lam = np.asarray(process.eigenvalues, np.float64)
    return idct64(process, heat_multiplier(lam, max(dtau, 0.0)) * _dct(process, y))


def naive_inverse(process: Process, y, t) -> np.ndarray:
    r"""Divide every DCT coefficient by :math:`a_t(k)`: :math:`B^\top(By/a_t)` (float64)."""
    return idct64(process, _dct(process, y) / heat_scale(process, t))


def naive_mse_prediction(process: Process, t) -> tuple[float, float]:
    r"""Exact per-image :math:`E\|\hat x-x_0\|^2=\sigma^2\sum_ka_t(k)^{-2}` of the naive
    inverse (summed over pixels), and the standard deviation of one image's squared error,
    :math:`\sqrt{2\sum_k\sigma^4a_t(k)^{-4}}` (a weighted chi-square)."""
    c = process.sigma**2 / heat_scale(process, t) ** 2
    return float(c.sum()), float(np.sqrt(2 * np.sum(c**2)))


def wiener_coeffs(field: oracle.GaussianField, process: Process, z, t) -> np.ndarray:
    r"""The Wiener (exact Gaussian) posterior mean on DCT coefficients ``z`` at level ``t``:
    :math:`\mu+G_t(z-a_t\mu)`, :math:`G_t=a_t\lambda/(a_t^2\lambda+\sigma^2)` (float64 numpy
    twin of ``field.denoiser(process)``, without a compilation per shape)."""
    a = heat_scale(process, t)
    g = a * field.var / (a**2 * field.var + process.sigma**2)
    return field.mean + g * (np.asarray(z, np.float64) - a * field.mean)


def _wiener(field, process, y, t) -> np.ndarray:
    return idct64(process, wiener_coeffs(field, process, _dct(process, y), t))


# ----------------------------------------------------------------------------- super-resolution


def avg_pool(x, factor: int = 2) -> np.ndarray:
    """``factor`` × ``factor`` average pooling of images ``[n, H, W]`` (H, W divisible)."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must be images [n, H, W], got shape {x.shape}")
    n, h, w = x.shape
    if h % factor or w % factor:
        raise ValueError(f"image sides {h}x{w} must be divisible by factor={factor}")
    return x.reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


def upsample(lr, factor: int = 2, method: str = "nearest") -> np.ndarray:
    """Upsample low-resolution images ``[n, h, w]`` by ``factor``: ``"nearest"`` (pixel
    replication), ``"bilinear"`` or ``"bicubic"`` (``scipy.ndimage.zoom`` of order 1 / 3 with
    pixel areas aligned, ``grid_mode=True``, reflective boundary)."""
    lr = np.asarray(lr, np.float64)
    if lr.ndim != 3:
        raise ValueError(f"lr must be images [n, h, w], got shape {lr.shape}")
    if method == "nearest":
        return np.repeat(np.repeat(lr, factor, axis=1), factor, axis=2)
    orders = {"bilinear": 1, "bicubic": 3}
    if method not in orders:
        raise ValueError(f"method must be 'nearest', 'bilinear' or 'bicubic', got {method!r}")
    return np.stack([scipy.ndimage.zoom(im, factor, order=orders[method], grid_mode=True,
                                        mode="reflect") for im in lr])


def match_heat_level(process: Process, x, target, n_grid: int = 2001
                     ) -> tuple[float, np.ndarray, np.ndarray]:
    r"""The time :math:`t^*=\arg\min_t\frac1N\sum_i\|e^{\tau(t)\Delta}x_i-\mathrm{target}_i\|^2`
    on ``n_grid`` times uniform in :math:`[0,T]`, exact from second moments per coefficient:
    :math:`\sum_k a_k^2\overline{z_k^2}-2a_k\overline{z_kw_k}+\overline{w_k^2}` with
    :math:`z=Bx`, :math:`w=B\,\mathrm{target}`.

    Returns:
        ``(t_star, ts, err)``: the minimiser, the grid and the objective (mean squared error
        per image, summed over pixels).
    """
    x, target = np.asarray(x, np.float64), np.asarray(target, np.float64)
    if x.shape != target.shape or x.ndim != process.ndim + 1:
        raise ValueError(f"x and target must both be [n, *{process.shape}], got {x.shape} "
                         f"and {target.shape}")
    if n_grid < 2:
        raise ValueError(f"n_grid must be >= 2, got {n_grid}")
    z, w = _dct(process, x), _dct(process, target)
    zz, zw, ww = (z * z).mean(0), (z * w).mean(0), (w * w).mean(0)
    ts = np.linspace(0.0, process.T, int(n_grid))
    a = heat_scale(process, ts)
    err = np.sum((a**2 * zz - 2 * a * zw + ww).reshape(len(ts), -1), axis=1)
    return float(ts[int(np.argmin(err))]), ts, err


def select_observation_level(process: Process, field: oracle.GaussianField, x, y,
                             t_from: float, n_grid: int = 201
                             ) -> tuple[float, np.ndarray, np.ndarray]:
    r"""The level :math:`t_{\rm obs}\in[t_{\rm from},T]` at which observations ``y`` (heat
    blurs at ``t_from``), blurred further to :math:`t_{\rm obs}` (:func:`reblur`), are restored
    best by the Wiener filter of ``field`` on training pairs ``(x, y)``: per DCT coefficient,
    with :math:`c=e^{-\lambda(\tau-\tau_{\rm from})}`, :math:`\hat z=\alpha+gcw`,
    :math:`\alpha=\mu(1-ga_t)`, the error is :math:`\sum_k\overline{(\alpha+gcw-z)^2}`
    (exact from the moments of :math:`(Bx,By)`).

    Returns:
        ``(t_obs, ts, err)``: the minimiser, the grid and the mean squared error per image.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != process.ndim + 1:
        raise ValueError(f"x and y must both be [n, *{process.shape}], got {x.shape}, {y.shape}")
    if not 0 <= t_from < process.T:
        raise ValueError(f"t_from must be in [0, T), got {t_from}")
    if n_grid < 2:
        raise ValueError(f"n_grid must be >= 2, got {n_grid}")
    z, w = _dct(process, x), _dct(process, y)
    ez, ew, ezz, eww, ezw = z.mean(0), w.mean(0), (z * z).mean(0), (w * w).mean(0), \
        (z * w).mean(0)
    ts = np.linspace(t_from, process.T, int(n_grid))
    a = heat_scale(process, ts)
    lam = np.asarray(process.eigenvalues, np.float64)
    tau, tau0 = _tau(process, ts), float(_tau(process, t_from))
    c = heat_multiplier(lam, np.maximum(tau - tau0, 0.0)[(...,) + (None,) * process.ndim])
    g = a * field.var / (a**2 * field.var + process.sigma**2)
    alpha, gc = field.mean * (1 - g * a), g * c
    per = alpha**2 + 2 * alpha * (gc * ew - ez) + gc**2 * eww - 2 * gc * ezw + ezz
    err = per.reshape(len(ts), -1).sum(axis=1)
    return float(ts[int(np.argmin(err))]), ts, err


# ----------------------------------------------------------------------------- linear estimators


def dense_operator(fn, shape) -> np.ndarray:
    """The matrix ``[m, d]`` of a linear map ``fn`` on images ``[n, *shape]`` (columns are the
    images of the unit vectors), float64."""
    d = math.prod(shape)
    eye = np.eye(d).reshape(d, *shape)
    return np.asarray(fn(eye), np.float64).reshape(d, -1).T


def lmmse(mean: Float[np.ndarray, " d"], cov: Float[np.ndarray, "d d"],
          A: Float[np.ndarray, "m d"], noise_var: float, y: Float[np.ndarray, "n m"]
          ) -> Float[np.ndarray, "n d"]:
    r"""The linear MMSE estimate of :math:`x` from :math:`y=Ax+\eta`, :math:`Ex=\mu`,
    :math:`\mathrm{Cov}\,x=\Sigma`, :math:`\eta\sim(0,\nu I)`:
    :math:`\hat x=\mu+\Sigma A^\top(A\Sigma A^\top+\nu I)^{-1}(y-A\mu)` — the exact posterior
    mean when :math:`x` and :math:`\eta` are Gaussian (float64).

    Raises:
        ValueError: inconsistent shapes or a negative ``noise_var``.
    """
    mean, cov, A = (np.asarray(v, np.float64) for v in (mean, cov, A))
    y = np.atleast_2d(np.asarray(y, np.float64))
    if not (mean.ndim == 1 and cov.shape == (mean.size, mean.size) and A.ndim == 2
            and A.shape[1] == mean.size and y.shape[1] == A.shape[0]):
        raise ValueError(f"inconsistent shapes: mean {mean.shape}, cov {cov.shape}, A "
                         f"{A.shape}, y {y.shape}")
    if not float(noise_var) >= 0:
        raise ValueError(f"noise_var must be >= 0, got {noise_var!r}")
    s = A @ cov @ A.T + float(noise_var) * np.eye(A.shape[0])
    gain = np.linalg.solve(s, A @ cov).T  # Sigma A^T S^{-1} (S symmetric)
    return mean + (y - A @ mean) @ gain.T


# ----------------------------------------------------------------------------- posterior sampling


def posterior_samples(denoiser, process: Process, y, t, key: PRNGKeyArray, *, k: int,
                      steps: int, method: str = "ancestral") -> np.ndarray:
    """``k`` draws from the model's :math:`p(x_0\\mid x_t=y)` for every observation ``y``
    ``[n, *shape]``: ``method`` on :func:`~opdiff.diffusion.samplers.log_level_between`
    ``(t_min, t)`` started at ``y``, then one denoising evaluation; draw ``j`` uses
    ``fold_in(key, j)``. Returns ``[k, n, *shape]`` float64."""
    y = np.asarray(y, np.float32)
    if not float(t) > process.t_min:
        raise ValueError(f"t must exceed t_min={process.t_min}, got {t}")
    ts = samplers.log_level_between(process, process.t_min, float(t), steps)
    x_t = jnp.asarray(y)
    return np.stack([np.asarray(samplers.sample(method, denoiser, process, x_t, ts,
                                                key=jax.random.fold_in(key, j), denoise=True),
                                np.float64) for j in range(int(k))])


def ratio_of_means(num, den) -> tuple[float, float]:
    r"""The ratio :math:`R=\bar u/\bar v` of the means of paired per-item values ``num`` and
    ``den`` ``[n]`` and its delta-method standard error
    :math:`\mathrm{sd}(u_i-Rv_i)/(\bar v\sqrt n)` (ddof 1).

    Raises:
        ValueError: shapes that differ, fewer than 2 items or a mean of ``den`` that is not > 0.
    """
    u, v = np.asarray(num, np.float64).ravel(), np.asarray(den, np.float64).ravel()
    if u.shape != v.shape or u.size < 2 or not v.mean() > 0:
        raise ValueError(f"need paired values of equal length >= 2 and mean(den) > 0, got "
                         f"{u.size}, {v.size} items")
    r = float(u.mean() / v.mean())
    return r, float(np.std(u - r * v, ddof=1) / (v.mean() * math.sqrt(u.size)))


def sampler_ratio_exact(process: Process, field: oracle.GaussianField, t: float, *, steps: int,
                        method: str = "ancestral") -> float:
    r"""The exact expected ratio :math:`E\|\tilde x-x_0\|^2/\mathrm{MMSE}_t` of
    :func:`posterior_samples` with the exact denoiser of ``field`` (Gaussian data observed by
    the process at ``t``), for the discretised sampler as it is.

    Given the start :math:`y`, the sampler's output is Gaussian and affine in it, per
    coefficient :math:`\tilde x=\alpha y+\beta+\sqrt\omega\,\xi`; :math:`(\beta,\omega)`
    and :math:`\alpha+\beta` are the output laws of :func:`opdiff.diffusion.oracle.sampler_law`
    started at the point masses 0 and 1. With :math:`y=a_tx_0+s_t\varepsilon`,
    :math:`x_0\sim N(\mu,\lambda)`:

    .. math:: E(\tilde x-x_0)^2=(\alpha a_t-1)^2\lambda+((\alpha a_t-1)\mu+\beta)^2
              +\alpha^2s_t^2+\omega,

    summed over coefficients and divided by :math:`\sum_k\lambda_ks_t^2/(a_t^2\lambda_k+s_t^2)`.
    An exact posterior sampler gives :math:`2-\mathrm{MMSE}_{t_{\min}}/\mathrm{MMSE}_t`.
    """
    ts = samplers.log_level_between(process, process.t_min, float(t), steps)
    law = [np.asarray(a, np.float64) for m0 in (0.0, 1.0) for a in oracle.sampler_law(
        method, process, field, ts, init=(m0, 0.0), denoise=True)]
    beta, omega, alpha = law[0], law[1], law[2] - law[0]
    a = np.asarray(process.scale(float(t)), np.float64)
    s2 = np.asarray(process.variance(float(t)), np.float64)
    lam, mu = field.var, field.mean
    err = (alpha * a - 1) ** 2 * lam + ((alpha * a - 1) * mu + beta) ** 2 + alpha**2 * s2 + omega
    return float(np.sum(err) / np.sum(lam * s2 / (a**2 * lam + s2)))


def gaussian_sampling_ratio(process: Process, field: oracle.GaussianField, t, key: PRNGKeyArray,
                            n: int, *, k: int, steps: int, method: str = "ancestral"
                            ) -> tuple[float, float]:
    r"""Sample MSE / posterior-mean MSE for ``n`` images drawn from ``field`` (``fold_in(key,
    0)``), observed by the process at ``t`` (``fold_in(key, 1)``) and restored by the exact
    denoiser through :func:`posterior_samples` (``fold_in(key, 2)``), with its standard error
    (:func:`ratio_of_means` over images, each image's ``k`` samples averaged). Its expectation
    is :func:`sampler_ratio_exact`; for an exact sampler
    :math:`2-\mathrm{MMSE}_{t_{\min}}/\mathrm{MMSE}_t` (:func:`oracle.mmse`)."""
    x0 = np.asarray(field.sample(jax.random.fold_in(key, 0), n), np.float32)
    y = process.sample(jax.random.fold_in(key, 1), jnp.asarray(x0), t)
    pm = _wiener(field, process, y, t)
    smp = posterior_samples(field.denoiser(process), process, np.asarray(y), t,
                            jax.random.fold_in(key, 2), k=k, steps=steps, method=method)
    axes = tuple(range(-process.ndim, 0))
    return ratio_of_means(np.sum((smp - x0) ** 2, axis=axes).mean(0),
                          np.sum((pm - x0) ** 2, axis=axes))


# ----------------------------------------------------------------------------- scores, table


def ssim_window(shape) -> int:
    """SSIM window side: the default 11 when it fits, else the largest odd side that does."""
    m = min(shape[-2:])
    return 11 if m >= 11 else (m if m % 2 else m - 1)


def image_scores(est, x0) -> dict:
    """Per-image PSNR and SSIM (clipped to [0, 1], data range 1) and unclipped squared error
    (summed over pixels, on the [-1, 1] scale) of estimates ``est`` of ``x0``."""
    est = np.asarray(est, np.float64)
    u_est, u0 = np.clip(to_unit(est), 0.0, 1.0), to_unit(x0)
    w = ssim_window(u0.shape)
    return {"psnr": np.atleast_1d(metrics.psnr(u_est, u0, data_range=1.0)),
            "ssim": np.atleast_1d(metrics.ssim(u_est, u0, data_range=1.0, window=w)),
            "sq_err": np.sum((est - np.asarray(x0, np.float64)) ** 2, axis=(-2, -1))}


def summarize(scores: dict) -> dict:
    """Means and standard errors (``name_se``, ddof 1) of per-image scores."""
    out = {}
    for name, v in scores.items():
        v = np.asarray(v, np.float64).ravel()
        out[name] = float(v.mean())
        out[f"{name}_se"] = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else 0.0
    return out


def table_markdown(rows: list[tuple[str, dict]], methods=METHODS) -> str:
    """A markdown table: one row per ``(label, {method: (psnr, ssim)})``, methods as columns
    (:data:`LABELS`), cells "PSNR / SSIM" ("–" where a method does not apply)."""
    lines = ["| | " + " | ".join(LABELS[m] for m in methods) + " |",
             "|---" * (len(methods) + 1) + "|"]
    for label, vals in rows:
        cells = [f"{vals[m][0]:.2f} / {vals[m][1]:.4f}" if m in vals else "–" for m in methods]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def show_indices(labels, n: int, first: int = 0) -> list[int]:
    """``first`` and then the first image of each further class, up to ``n`` indices."""
    labels = np.asarray(labels)
    out, seen = [int(first)], {int(labels[first])}
    for i, c in enumerate(labels):
        if len(out) >= n:
            break
        if int(c) not in seen:
            out.append(i)
            seen.add(int(c))
    return out


# ----------------------------------------------------------------------------- the two tasks


def restoration_estimates(denoiser, process: Process, field: oracle.GaussianField, x0, y, t,
                          key: PRNGKeyArray, extra: dict, *, k: int, steps: int,
                          method: str) -> dict:
    """Every estimate of ``x0`` from ``y`` at level ``t`` and its per-image scores:
    ``extra`` (task-specific estimates), the naive inverse, Wiener (DCT), the learned
    posterior mean ``denoiser`` = (jitted, hashable), one of ``k`` posterior samples and their
    mean. Returns ``est``, ``samples`` ``[k, n, *shape]``, ``scores`` (:func:`image_scores`)
    and ``sample_sq_err`` ``[k, n]``."""
    jitted, hashable = denoiser
    est = dict(extra)
    est["naive"] = naive_inverse(process, y, t)
    est["wiener"] = _wiener(field, process, y, t)
    est["post_mean"] = np.asarray(jitted(jnp.asarray(y, jnp.float32), t), np.float64)
    smp = posterior_samples(hashable, process, y, t, key, k=k, steps=steps, method=method)
    est["post_sample"] = smp[0]
    est["mean_k"] = smp.mean(0)
    scores = {m: image_scores(v, x0) for m, v in est.items()}
    sample_sq_err = np.sum((smp - np.asarray(x0, np.float64)) ** 2, axis=(-2, -1))
    return dict(est=est, samples=smp, scores=scores, sample_sq_err=sample_sq_err)


def deblur_task(denoiser, process: Process, field: oracle.GaussianField, mu, cov, x0,
                width: float, key: PRNGKeyArray, *, k: int, steps: int, method: str,
                gaussian_reference: bool = True) -> dict:
    """Deblurring at blur width ``width`` px: the observation is the forward process at
    :func:`blur_time` (``fold_in(key, 0)``); estimates of :func:`restoration_estimates`
    (``fold_in(key, 1)``) plus the observation and the full-covariance :func:`lmmse` (data mean
    ``mu``, covariance ``cov``), the naive-MSE prediction, the exact-Gaussian sampling ratio
    for exact sampling and for this sampler (:func:`sampler_ratio_exact`) and
    (``gaussian_reference``) its measurement with its standard error (``fold_in(key, 2)``)."""
    n = len(x0)
    t = blur_time(process, width)
    y = np.asarray(process.sample(jax.random.fold_in(key, 0), jnp.asarray(x0), t))
    A = dense_operator(lambda e: heat_blur(process, e, t), process.shape)
    extra = {"observation": y.astype(np.float64),
             "lmmse": lmmse(mu, cov, A, process.sigma**2, y.reshape(n, -1)).reshape(x0.shape)}
    r = restoration_estimates(denoiser, process, field, x0, y, t, jax.random.fold_in(key, 1),
                              extra, k=k, steps=steps, method=method)
    r.update(kind="deblur", width=float(width), t=float(t), obs=y,
             naive_pred=naive_mse_prediction(process, t))
    r["ratio_gauss_theory"] = 2 - float(np.sum(oracle.mmse(field, process, process.t_min))) \
        / float(np.sum(oracle.mmse(field, process, t)))
    r["ratio_gauss"] = (gaussian_sampling_ratio(process, field, t, jax.random.fold_in(key, 2), n,
                                                k=k, steps=steps, method=method)
                        if gaussian_reference else None)
    r["ratio_gauss_sampler"] = sampler_ratio_exact(process, field, t, steps=steps, method=method)
    return r


def sr_task(denoiser, process: Process, field: oracle.GaussianField, mu, cov, x_train, x0,
            key: PRNGKeyArray, *, upsampler: str, t_grid: int, k: int, steps: int,
            method: str) -> dict:
    """2× super-resolution: :math:`t^*` by :func:`match_heat_level` on training images, the
    upsampled observation re-blurred to :math:`t_{\\rm obs}` of
    :func:`select_observation_level`; estimates of :func:`restoration_estimates` plus the
    upsampled image, bicubic and the :func:`lmmse` from the exact low-resolution image (ridge
    :math:`10^{-6}\\mathrm{tr}(P\\Sigma P^\\top)/m`); ``literal`` scores the Wiener filter and
    the posterior mean on the upsampled image taken as an observation at :math:`t^*`."""
    n, d = len(x0), math.prod(process.shape)
    up_tr = upsample(avg_pool(x_train), 2, upsampler)
    t_star, _, err = match_heat_level(process, x_train, up_tr, t_grid)
    t_obs, _, sel_err = select_observation_level(process, field, x_train, up_tr, t_star, t_grid)
    lr = avg_pool(x0)
    up = upsample(lr, 2, upsampler)
    y = reblur(process, up, t_star, t_obs).astype(np.float32)
    P = dense_operator(avg_pool, process.shape)
    S = P @ cov @ P.T
    ridge = 1e-6 * np.trace(S) / S.shape[0]
    extra = {"observation": up, "bicubic": upsample(lr, 2, "bicubic"),
             "lmmse": lmmse(mu, cov, P, ridge, lr.reshape(n, -1)).reshape(x0.shape)}
    r = restoration_estimates(denoiser, process, field, x0, y, t_obs, key, extra, k=k,
                              steps=steps, method=method)
    literal = {"wiener": summarize(image_scores(_wiener(field, process, up, t_star), x0)),
               "post_mean": summarize(image_scores(denoiser[0](jnp.asarray(up, jnp.float32),
                                                               t_star), x0))}
    r.update(kind="sr", t=t_obs, width=float(np.sqrt(2 * _tau(process, t_obs))), obs=up,
             t_star=t_star, width_star=float(np.sqrt(2 * _tau(process, t_star))),
             t_star_residual_per_pixel=float(err.min() / d),
             selection_mse_per_pixel=float(sel_err.min() / d), literal=literal)
    return r


PAIRS = (("post_mean", "wiener"), ("wiener", "lmmse"), ("bicubic", "wiener"),
         ("bicubic", "lmmse"), ("post_mean", "bicubic"))


def paired_difference(a, b) -> tuple[float, float]:
    """Mean and standard error (ddof 1) of the per-item differences ``a - b``."""
    d = np.asarray(a, np.float64).ravel() - np.asarray(b, np.float64).ravel()
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))


def task_summary(r: dict, image_index: int) -> dict:
    """The numbers of one task of :func:`deblur_task` / :func:`sr_task`: per method the means
    and SEs of PSNR, SSIM and squared error, the scores of image ``image_index``, sample MSE /
    posterior-mean MSE (with its :func:`ratio_of_means` standard error), the paired PSNR
    difference posterior mean − Wiener (mean and SE), ``paired``: for each of :data:`PAIRS`
    present, ``"a-b"`` -> {psnr, sq_err: [mean, SE] of the per-image difference}, and the
    task's own numbers (naive prediction and its z-score; :math:`t^*` and the literal reading
    for SR)."""
    sc = r["scores"]
    n = len(sc["post_mean"]["psnr"])
    pm_mse = float(sc["post_mean"]["sq_err"].mean())
    diff = sc["post_mean"]["psnr"] - sc["wiener"]["psnr"]
    ratio, ratio_se = ratio_of_means(r["sample_sq_err"].mean(0), sc["post_mean"]["sq_err"])
    row = dict(kind=r["kind"], t=r["t"], blur_width_px=r["width"],
               methods={m: summarize(s) for m, s in sc.items()},
               paired={f"{a}-{b}": {q: list(paired_difference(sc[a][q], sc[b][q]))
                                    for q in ("psnr", "sq_err")}
                       for a, b in PAIRS if a in sc and b in sc},
               sample_over_mean_mse=ratio, sample_over_mean_mse_se=ratio_se,
               mean_k_over_mean_mse=float(sc["mean_k"]["sq_err"].mean() / pm_mse),
               this_image={m: [float(s["psnr"][image_index]), float(s["ssim"][image_index])]
                           for m, s in sc.items()},
               post_mean_minus_wiener_psnr=float(diff.mean()),
               post_mean_minus_wiener_psnr_se=float(diff.std(ddof=1) / math.sqrt(n)))
    if r["kind"] == "deblur":
        pred, sd1 = r["naive_pred"]
        meas = float(sc["naive"]["sq_err"].mean())
        ref = r["ratio_gauss"]
        row.update(ratio_gaussian_reference=None if ref is None else ref[0],
                   ratio_gaussian_reference_se=None if ref is None else ref[1],
                   ratio_gaussian_sampler=r["ratio_gauss_sampler"],
                   ratio_gaussian_theory=r["ratio_gauss_theory"], naive_mse_predicted=pred,
                   naive_mse_measured=meas, naive_mse_se=sd1 / math.sqrt(n),
                   naive_z=(meas - pred) / (sd1 / math.sqrt(n)))
    else:
        row.update(t_star=r["t_star"], blur_width_star_px=r["width_star"],
                   t_star_residual_per_pixel=r["t_star_residual_per_pixel"],
                   selection_mse_per_pixel=r["selection_mse_per_pixel"],
                   literal_t_star=r["literal"])
    return row


def table_rows(name: str, tasks: dict, n_test: int) -> list[tuple[str, dict]]:
    """The rows of :func:`table_markdown` for the :func:`task_summary` rows ``tasks`` (task
    name -> row) of data set ``name``: per task "This image" and "Test mean (n_test)"."""
    rows = []
    for tname, row in tasks.items():
        rows.append((f"{name} {tname}: This image",
                     {m: tuple(v) for m, v in row["this_image"].items()}))
        rows.append((f"{name} {tname}: Test mean ({n_test})",
                     {m: (s["psnr"], s["ssim"]) for m, s in row["methods"].items()}))
    return rows
