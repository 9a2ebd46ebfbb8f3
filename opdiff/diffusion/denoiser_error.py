r"""Learned denoisers against the exact optimum on a Gaussian field: closed-form errors of
affine denoisers, the rank-``p`` (DeepONet) floor, Monte-Carlo errors per noise level, and the
null law of the moment-matched sample KL.

For data :math:`z_0\sim N(\mu,\mathrm{diag}\,\lambda)` in the basis of a process
:math:`z_t=a_tz_0+s_t\varepsilon` (:class:`opdiff.diffusion.oracle.GaussianField`), the best
denoiser is the Wiener filter :math:`D^*(z)=\mu+G_t(z-a_t\mu)`,
:math:`G_{t,k}=a_t\lambda_k/v_{t,k}`, :math:`v_{t,k}=a_t^2\lambda_k+s_t^2`, with
:math:`\mathrm{MMSE}(t)=\sum_k\lambda_ks_t^2/v_{t,k}`, and every denoiser has
:math:`E\|D(x_t)-x_0\|^2=\mathrm{MMSE}(t)+E\|D-D^*\|^2`: a learned denoiser's held-out
mean squared error is compared with the exact optimum at every noise level.

**Rank-p floor** (:func:`rank_p_floor`). If :math:`D(x)-c\,x` takes values in a
``p``-dimensional affine space (a DeepONet with ``p`` trunk functions; :math:`c=0` without a
skip path, :math:`c=c_{\rm skip}` with it), then with :math:`Y=D^*(x_t)-c\,x_t`

.. math:: E\|x_0-D\|^2=\mathrm{MMSE}+E\|Y-(D-c\,x_t)\|^2\ \ge\ \mathrm{MMSE}+\sum_{j>p}\nu_j,

:math:`\nu_1\ge\nu_2\ge\dots` the eigenvalues of :math:`\mathrm{Cov}(Y)`, diagonal in the field's
basis with :math:`\nu_k=(G_{t,k}-c_k)^2v_{t,k}`: the PCA floor of
:func:`opdiff.deeponet_bounds.pca_floor` (Lanthaler, Mishra & Karniadakis 2022) applied to
:math:`Y`, attained by the projection of :math:`Y` on its top-``p`` principal subspace.
"""

from __future__ import annotations

import math
import types

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Float, PRNGKeyArray
from scipy import special

from opdiff import deeponet_bounds, metrics
from opdiff.diffusion import laws, oracle, samplers
from opdiff.diffusion.generate import generate
from opdiff.diffusion.preconditioned import Preconditioned
from opdiff.diffusion.processes import Process
from opdiff.diffusion.training import per_level_mse
from opdiff.nets import OperatorDenoiser, UNet
from opdiff.nets._compat import nnx

__all__ = ["batched_denoiser", "coefficient_errors", "error_spectrum", "exact_denoiser",
           "exact_model", "kl_bias_at_zero", "kl_bootstrap_se", "evaluate_levels", "kl_estimator_null", "learned_sample_kl", "level_errors",
           "level_summary", "linear_filter_mse", "log_snr", "noise_levels", "rank_p_floor", "rank_p_floors", "sample_kl",
           "sample_kl_reference", "scalar_scale_denoisers",
           "scalar_wiener_gain", "scalar_wiener_mse"]


def _a_s2(process: Process, t) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient :math:`(a_t, s_t^2)` as float64 arrays."""
    return (np.asarray(process.scale(t), np.float64), np.asarray(process.variance(t), np.float64))


def log_snr(process: Process, t) -> float:
    r""":math:`\log(a_t^2/s_t^2)` averaged over coefficients (one number for white VP)."""
    a, s2 = _a_s2(process, t)
    return float(np.mean(np.log(a**2 / s2)))


def scalar_wiener_gain(process: Process, t, sigma_data: float) -> np.ndarray:
    r"""The skip gain of :class:`~opdiff.diffusion.preconditioned.Preconditioned` with a scalar data scale:
    :math:`c_{\rm skip}=a\sigma_d^2/(a^2\sigma_d^2+s^2)` per coefficient (the Wiener filter of
    white data of variance :math:`\sigma_d^2`; what an untrained model with zero network output
    computes).

    Raises:
        ValueError: ``sigma_data`` not > 0.
    """
    if not sigma_data > 0:
        raise ValueError(f"sigma_data must be > 0, got {sigma_data!r}")
    a, s2 = _a_s2(process, t)
    return a * sigma_data**2 / (a**2 * sigma_data**2 + s2)


def linear_filter_mse(field: oracle.GaussianField, process: Process, t, gain, *,
                      model_mean=None) -> np.ndarray:
    r"""Per-coefficient MSE of the affine denoiser :math:`D=m+g\,(z-a_tm)` on ``field``:

    .. math:: E(D_k-z_{0,k})^2=(g_ka_t-1)^2\big(\lambda_k+(\mu_k-m_k)^2\big)+g_k^2s_t^2.

    Args:
        field: the data law (diagonal in the process's basis).
        process: the forward process; ``t`` a scalar time.
        gain: :math:`g`, a scalar or per-coefficient array.
        model_mean: :math:`m` in the basis (default: the field's mean).

    Returns:
        float64 array of the field's shape (sum it for the total). With
        ``gain = field.gain(process, t)`` it is :func:`opdiff.diffusion.oracle.mmse`.
    """
    field.check_process(process)
    a, s2 = _a_s2(process, t)
    g = np.broadcast_to(np.asarray(gain, np.float64), field.shape)
    m = field.mean if model_mean is None else np.broadcast_to(
        np.asarray(model_mean, np.float64), field.shape)
    return (g * a - 1) ** 2 * (field.var + (field.mean - m) ** 2) + g**2 * s2


def scalar_wiener_mse(field: oracle.GaussianField, process: Process, t, sigma_data: float
                      ) -> np.ndarray:
    """Per-coefficient MSE of the scalar Wiener filter :math:`c_{\rm skip}z` (the untrained
    :class:`~opdiff.diffusion.preconditioned.Preconditioned` with mean 0 and scale ``sigma_data``):
    :func:`linear_filter_mse` at :func:`scalar_wiener_gain` with model mean 0."""
    return linear_filter_mse(field, process, t, scalar_wiener_gain(process, t, sigma_data),
                             model_mean=0.0)


def rank_p_floor(field: oracle.GaussianField, process: Process, t, p: int, *,
                 skip_gain=0.0) -> float:
    r"""Least :math:`E\|x_0-D(x_t)\|^2` over all maps whose correction :math:`D-c\,x_t` takes
    values in a ``p``-dimensional affine space (module docstring):

    .. math:: \mathrm{MMSE}(t)+\sum_{j>p}\nu_j,\qquad \nu_k=(G_{t,k}-c_k)^2\,v_{t,k}
              \ \text{sorted decreasingly},

    the tail being ``deeponet_bounds.pca_floor(nu, p) ** 2`` (a square root and a square:
    equal to the direct sum up to the last bits). :math:`c` = ``skip_gain`` (0: no skip path).
    Equals the MMSE when ``p >= d``.

    Raises:
        ValueError: if ``p`` is not a positive int or ``skip_gain`` does not broadcast.
    """
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
        raise ValueError(f"p must be a positive int, got {p!r}")
    field.check_process(process)
    try:
        c = np.broadcast_to(np.asarray(skip_gain, np.float64), field.shape)
    except ValueError:
        raise ValueError(f"skip_gain must be a scalar or have shape {field.shape}, got shape "
                         f"{np.shape(skip_gain)}") from None
    a, s2 = _a_s2(process, t)
    v = a**2 * field.var + s2
    nu = ((a * field.var / v - c) ** 2 * v).ravel()
    mmse = float(np.sum(field.var * s2 / v))
    return mmse + deeponet_bounds.pca_floor(nu, int(p)) ** 2


def scalar_scale_denoisers(process: Process, sigma_data: float, key: PRNGKeyArray, *,
                           unet_channels=None, unet_emb_dim: int = 32, operator_skips=(),
                           p: int = 32, width: int = 256, depth: int = 2) -> dict:
    """Untrained :class:`~opdiff.diffusion.preconditioned.Preconditioned` denoisers with the *scalar* data scale
    ``sigma_data`` and mean 0 (untrained: the scalar Wiener filter), by name: ``unet`` (a
    :class:`UNet` without residual path, key ``fold_in(key, 0)``; omitted when
    ``unet_channels`` is None) and per entry ``i`` of ``operator_skips`` an
    :class:`OperatorDenoiser` (``p`` trunk functions, branch ``depth`` x ``width``, key
    ``fold_in(key, 1 + i)``) named ``operator_skip`` / ``operator_noskip`` by its skip path."""
    out = {}
    if unet_channels is not None:
        out["unet"] = Preconditioned(
            UNet(process.shape, channels=tuple(unet_channels), emb_dim=unet_emb_dim,
                 residual=False, key=jax.random.fold_in(key, 0)),
            process, sigma_data=sigma_data, mean=0.0)
    for i, skip in enumerate(operator_skips):
        net = OperatorDenoiser(process.shape, p=p, branch_width=width, branch_depth=depth,
                               key=jax.random.fold_in(key, 1 + i))
        out["operator_skip" if skip else "operator_noskip"] = Preconditioned(
            net, process, sigma_data=sigma_data, mean=0.0, skip=skip)
    return out


def rank_p_floors(field: oracle.GaussianField, process: Process, ts, p: int,
                  sigma_data: float | None = None) -> Float[np.ndarray, " levels"]:
    """:func:`rank_p_floor` at each time of ``ts``, float64: without skip path
    (``sigma_data=None``) or with the skip gain :func:`scalar_wiener_gain` of ``sigma_data``."""
    return np.array([rank_p_floor(field, process, t, p, skip_gain=0.0 if sigma_data is None
                                  else scalar_wiener_gain(process, t, sigma_data)) for t in ts])


_BATCHED = nnx.jit(lambda m, x, t: m.batched(x, t))  # one compile per model structure


def batched_denoiser(model):
    """``D(x, t)`` of an nnx model (``model.batched``, jitted; ``t`` one time per example):
    models of one structure (untrained and trained) share the compiled function."""
    return lambda x, t: _BATCHED(model, x, t)


def exact_denoiser(field: oracle.GaussianField, process: Process):
    """The Wiener denoiser of ``field`` with the batch-of-times signature of
    :func:`per_level_mse` (one time for the whole batch: ``t[0]``)."""
    d = field.denoiser(process)
    return jax.jit(lambda x, t: d(x, t[0]))


def level_errors(den, process: Process, x_test: Float[np.ndarray, "n *shape"],
                 key: PRNGKeyArray, ts, chunk: int) -> Float[np.ndarray, "levels n"]:
    """Squared errors per level and test field (sum over pixels, one noise draw each):
    :func:`opdiff.diffusion.training.per_level_mse` on chunks of ``chunk`` fields, chunk ``i``
    with ``fold_in(key, i)``."""
    out = []
    for i, lo in enumerate(range(0, len(x_test), chunk)):
        out.append(per_level_mse(den, process, jnp.asarray(x_test[lo:lo + chunk]),
                                 jax.random.fold_in(key, i), ts))
    return np.concatenate(out, axis=1)


def coefficient_errors(den, process: Process, x_test: Float[np.ndarray, "n *shape"],
                       key: PRNGKeyArray, t: float, chunk: int) -> Float[np.ndarray, "*shape"]:
    """Mean squared error per coefficient in the process basis at one time, float64 (chunk
    ``i`` noised with ``fold_in(key, i)``)."""
    tot = np.zeros(process.shape)
    for i, lo in enumerate(range(0, len(x_test), chunk)):
        x0 = jnp.asarray(x_test[lo:lo + chunk])
        xt = process.sample(jax.random.fold_in(key, i), x0, float(t))
        err = den(xt, jnp.full((x0.shape[0],), t, x0.dtype)) - x0
        tot += np.sum(np.asarray(process.to_basis(err), np.float64) ** 2, axis=0)
    return tot / len(x_test)


def evaluate_levels(den, process: Process, x_test: Float[np.ndarray, "n *shape"],
                    key: PRNGKeyArray, ts, chunk: int, mmse: Float[np.ndarray, " levels"]
                    ) -> dict:
    """:func:`level_summary` of :func:`level_errors`: per-level MSE, SE, ratio and z against
    the MMSE."""
    return level_summary(level_errors(den, process, x_test, key, ts, chunk), mmse)


def noise_levels(field: oracle.GaussianField, process: Process, n_levels: int,
                 sigma_data: float) -> dict:
    """``n_levels`` times uniform in log-SNR (:func:`opdiff.diffusion.samplers.log_snr_grid`)
    with, per time, ``log_snr`` (:func:`log_snr`), the total ``mmse`` (the sum of
    :func:`opdiff.diffusion.oracle.mmse`), the total ``untrained_mse`` of the scalar Wiener
    filter (:func:`scalar_wiener_mse`) and ``untrained_ratio`` = untrained_mse / mmse."""
    ts = samplers.log_snr_grid(process, n_levels - 1)
    mmse = np.array([float(np.sum(oracle.mmse(field, process, t))) for t in ts])
    untrained = np.array([float(np.sum(scalar_wiener_mse(field, process, t, sigma_data)))
                          for t in ts])
    return dict(t=ts, log_snr=np.array([log_snr(process, t) for t in ts]), mmse=mmse,
                untrained_mse=untrained, untrained_ratio=untrained / mmse)


def error_spectrum(models: dict, field: oracle.GaussianField, process: Process,
                   x_test: Float[np.ndarray, "n *shape"], key: PRNGKeyArray, t: float,
                   sigma_data: float, chunk: int) -> dict:
    """Per-coefficient errors at one time: ``mmse`` (the Wiener filter's, float64),
    ``untrained`` (:func:`scalar_wiener_mse`) and ``models`` (:func:`coefficient_errors` of each
    nnx model of ``models`` on ``x_test``, the same noise ``key`` for all)."""
    return dict(mmse=np.asarray(oracle.mmse(field, process, t), np.float64),
                untrained=scalar_wiener_mse(field, process, t, sigma_data),
                models={n: coefficient_errors(batched_denoiser(m), process, x_test, key, t, chunk)
                        for n, m in models.items()})


def level_summary(err: Float[np.ndarray, "levels n"], mmse: Float[np.ndarray, " levels"]
                  ) -> dict:
    r"""Per level: ``mse`` (mean over the ``n`` fields), ``se`` (std/√n), ``ratio`` = mse/MMSE,
    ``ratio_se`` = se/MMSE and ``z`` = (mse - MMSE)/se."""
    mse = err.mean(axis=1)
    se = err.std(axis=1, ddof=1) / math.sqrt(err.shape[1])
    return dict(mse=mse, se=se, ratio=mse / mmse, ratio_se=se / mmse, z=(mse - mmse) / se)


def kl_bias_at_zero(d: int, n: int) -> float:
    r"""Exact mean of :func:`opdiff.metrics.moment_kl_diagonal` for ``n`` draws from the target
    itself in ``d`` coordinates (the data-vs-data floor of the estimator, from its docstring):
    :math:`\frac d{2n}+\frac d2[\ln\frac{n-1}2-\psi(\frac{n-1}2)]`.

    Raises:
        ValueError: ``d < 1`` or ``n < 2``.
    """
    if n < 2 or d < 1:
        raise ValueError(f"need d >= 1 and n >= 2, got d={d}, n={n}")
    h = 0.5 * (n - 1)
    return d / (2 * n) + 0.5 * d * (math.log(h) - float(special.digamma(h)))


def kl_estimator_null(m, w, mean, var, n: int, key: PRNGKeyArray, reps: int
                      ) -> Float[np.ndarray, " reps"]:
    r"""``reps`` draws of :func:`opdiff.metrics.moment_kl_diagonal` for ``n`` samples of
    :math:`N(m,\mathrm{diag}\,w)` against :math:`N(\text{mean},\mathrm{diag}\,\text{var})`,
    simulated from the sufficient statistics (exact in law): per coefficient
    :math:`\hat m=m+\sqrt{w/n}\,\xi` and :math:`\hat w=w\,\chi^2_{n-1}/(n-1)`, independent,
    then :func:`opdiff.diffusion.laws.kl` of :math:`N(\hat m,\hat w)` to the target. Drawn from
    a numpy stream seeded by ``key``'s data (``jax.random.gamma`` costs seconds of compilation).

    Raises:
        ValueError: ``n < 2``, ``reps < 1`` or ``w`` not finite and > 0.
    """
    if n < 2 or reps < 1:
        raise ValueError(f"need n >= 2 and reps >= 1, got n={n}, reps={reps}")
    m, w = np.asarray(m, np.float64), np.asarray(w, np.float64)
    if np.any(w <= 0) or not np.all(np.isfinite(w)):
        raise ValueError("w must be finite and > 0")
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    xi = rng.standard_normal((reps, *m.shape))
    chi2 = rng.chisquare(n - 1, (reps, *m.shape))
    m_hat = m + np.sqrt(w / n) * xi
    w_hat = w * chi2 / (n - 1)
    per = laws.kl(m_hat, w_hat, np.asarray(mean, np.float64), np.asarray(var, np.float64),
                  per_coefficient=True)
    return per.reshape(reps, -1).sum(axis=1)


def sample_kl_reference(method: str, process: Process, field: oracle.GaussianField, steps: int,
                        n: int, key: PRNGKeyArray, reps: int) -> dict:
    r"""What :func:`opdiff.metrics.moment_kl_diagonal` of ``n`` samples reads for the sampler
    ``method`` with the *exact* score, ``steps`` steps on the log-SNR grid: the exact KL of its
    Gaussian output law :math:`N(m,w)` (:func:`opdiff.diffusion.oracle.sampler_law`) to the
    field, and the mean and sd of the estimator's null law (:func:`kl_estimator_null`,
    ``reps`` replicates).

    Returns:
        ``exact``, ``null_mean``, ``null_sd`` (ddof 1), ``bias`` = null_mean - exact, ``nfe``
        and ``exact_var_ratio`` :math:`w/\lambda`.
    """
    grid = samplers.log_snr_grid(process, steps)
    m, w = (np.asarray(a, np.float64) for a in oracle.sampler_law(method, process, field, grid))
    kl_exact = float(oracle.divergences(m, w, field)["kl"])
    null = kl_estimator_null(m, w, field.mean, field.var, n, key, reps)
    kbar, ksd = float(null.mean()), float(null.std(ddof=1))
    return dict(exact=kl_exact, null_mean=kbar, null_sd=ksd, bias=kbar - kl_exact,
                nfe=samplers.nfe(method, steps), exact_var_ratio=w / field.var)


def kl_bootstrap_se(z: Float[np.ndarray, "n *shape"], field: oracle.GaussianField,
                    key: PRNGKeyArray, reps: int) -> float:
    r"""Bootstrap standard error of :func:`opdiff.metrics.moment_kl_diagonal` of samples ``z``
    (in the field's basis) against ``field``: the sd (ddof 1) of the estimator over ``reps``
    resamplings of the rows of ``z`` with replacement (a numpy stream seeded by ``key``'s
    data). Needs no model of the samples' law (unlike :func:`kl_estimator_null`, which assumes
    a Gaussian one); ``inf`` if a sample is not finite.

    Raises:
        ValueError: fewer than 2 samples or ``reps < 2``.
    """
    z = np.asarray(z, np.float64)
    if z.shape[0] < 2 or reps < 2:
        raise ValueError(f"need >= 2 samples and reps >= 2, got {z.shape[0]} and {reps}")
    if not np.all(np.isfinite(z)):
        return math.inf
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    n = z.shape[0]
    vals = [metrics.moment_kl_diagonal(z[rng.integers(0, n, n)], field.mean, field.var)
            for _ in range(int(reps))]
    return float(np.std(vals, ddof=1))


def sample_kl(z: Float[np.ndarray, "n *shape"], field: oracle.GaussianField, ref: dict, *,
              key: PRNGKeyArray | None = None, reps: int = 200) -> dict:
    r"""The moment-matched KL of samples ``z`` (in the field's basis) against the field, read
    against the exact-score reference ``ref`` of :func:`sample_kl_reference`.

    Returns:
        ``kl_hat`` (:func:`opdiff.metrics.moment_kl_diagonal`; ``inf`` if a sample is not
        finite), ``kl_corrected`` = kl_hat - bias, ``excess`` = kl_corrected - exact,
        ``ratio`` = kl_corrected / exact (``inf`` at exact = 0), ``z`` = (kl_hat -
        null_mean) / null_sd and, when ``key`` is given, ``kl_se``: the standard error of
        kl_hat (:func:`kl_bootstrap_se`, ``reps`` resamplings) -- also that of ``excess``, the
        exact KL being exact and the bias simulated.
    """
    k_hat = (metrics.moment_kl_diagonal(z, field.mean, field.var)
             if np.all(np.isfinite(z)) else math.inf)
    corr = k_hat - (ref["null_mean"] - ref["exact"])
    out = dict(kl_hat=k_hat, kl_corrected=corr, excess=corr - ref["exact"],
               ratio=corr / ref["exact"] if ref["exact"] > 0 else math.inf,
               z=(k_hat - ref["null_mean"]) / ref["null_sd"])
    if key is not None:
        out["kl_se"] = kl_bootstrap_se(z, field, key, reps)
    return out


def exact_model(field: oracle.GaussianField, process: Process):
    """The field's exact (Wiener) denoiser as a model for :func:`learned_sample_kl` /
    :func:`opdiff.diffusion.generate.generate` (an object whose ``batched`` is the
    denoiser)."""
    return types.SimpleNamespace(batched=field.denoiser(process))


def learned_sample_kl(models: dict, process: Process, field: oracle.GaussianField,
                      x_train: Float[np.ndarray, "m *shape"], methods, steps: int, n: int,
                      key: PRNGKeyArray, reps: int, *, batch: int, n_show: int) -> dict:
    """The sample KL of each learned denoiser of ``models`` for each sampler of ``methods``
    against the exact score's at the same budget.

    Per method ``i``: the reference :func:`sample_kl_reference` (null law from
    ``fold_in(key, 500 + i)``), then per model ``j`` ``n`` samples by
    :func:`opdiff.diffusion.generate.generate` (key ``fold_in(key, 600 + 10 i + j)``, batches
    of ``batch``) mapped to the field's basis and read by :func:`sample_kl` (bootstrap
    standard error from ``fold_in(key, 700 + 10 i + j)``).

    Returns:
        ``kl`` {method: reference + ``models`` {name: :func:`sample_kl`}}, ``sample_var``
        {method: {name: per-coefficient sample variance / lambda}} (finite samples only) and
        ``shown`` {name: the first ``n_show`` samples of the first method}.
    """
    out = {"kl": {}, "sample_var": {}, "shown": {}}
    for i, meth in enumerate(methods):
        row = out["kl"][meth] = sample_kl_reference(meth, process, field, steps, n,
                                                    jax.random.fold_in(key, 500 + i), reps)
        row["models"] = {}
        for j, (name, model) in enumerate(models.items()):
            x = generate(model, process, jax.random.fold_in(key, 600 + 10 * i + j), n,
                         x_train=x_train, steps=steps, method=meth, batch=batch)
            z = np.asarray(process.to_basis(jnp.asarray(x)), np.float64)
            row["models"][name] = sample_kl(z, field, row,
                                            key=jax.random.fold_in(key, 700 + 10 * i + j))
            if np.all(np.isfinite(z)):
                out["sample_var"].setdefault(meth, {})[name] = z.var(axis=0, ddof=1) / field.var
            if i == 0:
                out["shown"][name] = x[:n_show]
    return out
