r"""Classifier-free guidance (Ho & Salimans 2022) for a label-dropout-trained denoiser.

The guided score with scale :math:`\gamma` is

.. math:: \nabla\log p_\gamma(x_t\mid y)=(1-\gamma)\nabla\log p_t(x_t)
          +\gamma\nabla\log p_t(x_t\mid y)
          =\nabla\log p_t(x_t)+\gamma\nabla\log p_t(y\mid x_t),

the score of :math:`p_t(x)\,p_t(y\mid x)^\gamma` (up to normalisation): :math:`\gamma=0` is
unconditional, :math:`\gamma=1` conditional, :math:`\gamma>1` sharpens the classifier
implied by the two models. Since a score is affine in the denoiser,
:math:`\hat s=(a_t\odot D-z)/s_t^2`, the same combination of **denoisers**,
:math:`D_\gamma=(1-\gamma)D(x,t,\varnothing)+\gamma D(x,t,y)`, gives exactly that score, for
every process (noise or blur); the samplers of :mod:`opdiff.diffusion.samplers` take
:math:`D_\gamma` unchanged.

**Exact guidance** (no learning): a labelled Gaussian mixture (:func:`labelled_mixture`)
gives exact conditional denoisers (component :math:`j`'s Gaussian denoiser) and the exact
no-label denoiser (the mixture's), both from :class:`opdiff.diffusion.oracle.GaussianMixture`,
behind the interface of a label-dropout model (:class:`MixtureLabelModel`), and the Bayes
classifier :func:`bayes_predict` judges guided samples; :func:`mixture_guidance_sweep` runs a
whole sweep of :math:`\gamma` in one sampler call and measures it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Float, PRNGKeyArray

from opdiff._checks import check_labels
from opdiff.diffusion.oracle import GaussianMixture

__all__ = ["MixtureLabelModel", "bayes_predict", "guided_denoiser", "labelled_mixture",
           "mixture_guidance_sweep"]


def guided_denoiser(model, y, gamma: float):
    r"""The guided denoiser :math:`D_\gamma(x,t)` on a batch, for labels ``y``.

    Args:
        model: a class-conditional denoiser (``model.n_classes`` set, trained with label
            dropout) with ``batched(x, t, y)``; label ``n_classes`` is the no-label token.
        y: the class of every sample, an int, or ``[B]`` ints in ``[0, n_classes)``.
        gamma: the guidance scale :math:`\gamma\ge0` (0: unconditional, 1: conditional), or
            one per sample ``[B]`` (a whole sweep in one sampler call, compiled once).

    Returns:
        ``denoiser(x, t)`` for :func:`opdiff.diffusion.samplers.sample` (one closure per call:
        the samplers compile once per denoiser).

    Raises:
        ValueError: for an unconditional model, labels out of range, or ``gamma < 0``.
    """
    n_classes = getattr(model, "n_classes", None)
    if n_classes is None:
        raise ValueError("classifier-free guidance needs a class-conditional model trained with "
                         "label dropout (n_classes set); this model is unconditional")
    if not hasattr(model, "batched"):
        raise TypeError(f"model must have batched(x, t, y), got {type(model).__name__}")
    g = np.asarray(gamma, np.float64)
    if g.ndim > 1 or not np.all(g >= 0):
        raise ValueError(f"gamma must be >= 0 (a scalar or one value per sample), got {gamma!r}")
    y_arr = jnp.asarray(y)
    check_labels("labels y", y_arr.reshape(-1), y_arr.size, n_classes)
    scalar = g.ndim == 0
    gamma_v = float(g) if scalar else jnp.asarray(g, jnp.float32)

    def denoiser(x, t):
        yb = jnp.broadcast_to(y_arr, x.shape[:1])
        if scalar and gamma_v == 1.0:
            return model.batched(x, t, yb)
        null = jnp.full(x.shape[:1], n_classes, jnp.int32)
        if scalar and gamma_v == 0.0:
            return model.batched(x, t, null)
        # one batched call on [uncond; cond] (the usual 2B trick); a scalar t stays scalar
        tt = t if jnp.ndim(t) == 0 else jnp.concatenate([jnp.broadcast_to(
            jnp.asarray(t, x.dtype), x.shape[:1])] * 2)
        both = model.batched(jnp.concatenate([x, x]), tt,
                             jnp.concatenate([null, yb.astype(jnp.int32)]))
        d_u, d_c = both[: x.shape[0]], both[x.shape[0]:]
        gb = jnp.asarray(gamma_v, x.dtype)
        gb = gb.reshape(gb.shape + (1,) * (x.ndim - gb.ndim)) if gb.ndim else gb
        return (1.0 - gb) * d_u + gb * d_c

    return denoiser


def labelled_mixture(radius: float, sd: tuple[float, float], k: int = 3) -> GaussianMixture:
    r"""``k`` equal-weight Gaussians in :math:`\mathbb R^2`, means :math:`\mu_j` at radius
    ``radius`` and angles :math:`90°+360°j/k`, covariances
    :math:`\Sigma_j=R_j\,\mathrm{diag}(\sigma_\parallel^2,\sigma_\perp^2)R_j^\top`
    elongated along the radius (``sd`` = :math:`(\sigma_\parallel,\sigma_\perp)`,
    :math:`R_j` the rotation by the angle of :math:`\mu_j`). Component :math:`j` is class
    :math:`j`."""
    ang = np.pi / 2 + 2 * np.pi * np.arange(k) / k
    means = radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    covs = []
    for a in ang:
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        covs.append(rot @ np.diag(np.square(sd)) @ rot.T)
    return GaussianMixture(np.full(k, 1.0 / k), means, np.stack(covs))


class MixtureLabelModel:
    r"""The exact class-conditional denoisers of a labelled :class:`GaussianMixture` through
    the interface of a label-dropout model (``n_classes``, ``batched(x, t, y)``): label
    :math:`j<K` is component :math:`j`'s Gaussian denoiser
    :math:`\mu_j+\Sigma_ja_tC_{j,t}^{-1}(x-a_t\mu_j)`,
    :math:`C_{j,t}=a_t\Sigma_ja_t+s_t^2I`, and label :math:`K` (no label) the mixture's
    :math:`\sum_jw_j(x)[\ldots]_j`, :math:`w_j\propto\pi_jN(x;a_t\mu_j,C_{j,t})`, both read
    off :meth:`GaussianMixture.posterior_terms` (one factorisation per component for the
    whole batch). ``t`` is a scalar or one time per example.
    """

    def __init__(self, mixture: GaussianMixture, process):
        if process.shape != (mixture.dim,):
            raise ValueError(f"the process shape {process.shape} does not match the mixture "
                             f"dimension ({mixture.dim},)")
        self.mixture, self.process = mixture, process
        self.n_classes = len(mixture.weights)

    def batched(self, x: Float[jax.Array, "B d"], t, y) -> Float[jax.Array, "B d"]:
        y = check_labels("labels y", y, x.shape[0], self.n_classes, allow_null=True)
        if jnp.ndim(t) == 0:
            return self._at(x, t, y)
        return jax.vmap(lambda xi, ti, yi: self._at(xi[None], ti, yi[None])[0])(
            x, jnp.broadcast_to(t, x.shape[:1]), y)

    def _at(self, x, t, y):
        post, resp = self.mixture.posterior_terms(self.process, x, t)  # [B, K, d], [B, K]
        mix = jnp.sum(resp[..., None] * post, 1)
        allout = jnp.concatenate([post, mix[:, None]], axis=1)  # [B, K + 1, d]
        return jnp.take_along_axis(allout, y[:, None, None], axis=1)[:, 0]

    def sample_component(self, key: PRNGKeyArray, j: int, n: int) -> np.ndarray:
        r"""``n`` exact draws ``[n, d]`` (float64) of component ``j``:
        :math:`\mu_j+L_jz`, :math:`L_jL_j^\top=\Sigma_j`, :math:`z\sim N(0,I)`."""
        chol = np.linalg.cholesky(self.mixture.covs[j])
        z = np.asarray(jax.random.normal(key, (n, self.mixture.dim)), np.float64)
        return self.mixture.means[j] + z @ chol.T


def bayes_predict(mixture: GaussianMixture, x: Float[np.ndarray, "n d"]) -> np.ndarray:
    r"""The Bayes classifier :math:`\arg\max_j\,\pi_jN(x;\mu_j,\Sigma_j)` of the labelled
    mixture at the data (:math:`t=0`), float64 numpy; returns ``[n]`` labels."""
    x = np.asarray(x, np.float64)
    logp = []
    for w, mu, cov in zip(mixture.weights, mixture.means, mixture.covs):
        d = x - mu
        sol = np.linalg.solve(cov, d.T).T
        logp.append(np.log(w) - 0.5 * np.sum(d * sol, 1) - 0.5 * np.log(np.linalg.det(cov)))
    return np.argmax(np.stack(logp, 1), axis=1)


def mixture_guidance_sweep(mixture: GaussianMixture, process, method: str, steps: int, gammas,
                           n_per_class: int, *, key: PRNGKeyArray, ref_n: int) -> dict:
    r"""Guided sampling of a labelled mixture with its exact denoisers, every :math:`\gamma` in
    one sampler call, measured.

    ``n = n_per_class * K`` samples per :math:`\gamma`, labels cycling :math:`0..K-1`, from the
    same prior draws for every :math:`\gamma` (``split(key, 3)``: prior, sampler, reference
    draws); sampler ``method`` with ``steps`` steps on the log-SNR grid. Per :math:`\gamma`
    (key ``f"{gamma:g}"``): the Bayes-classifier ``accuracy`` and its binomial SE, per class
    the ``spread_ratio`` :math:`\mathrm{tr}\,S_c/\mathrm{tr}\,\Sigma_c` with its SE
    (:func:`opdiff.metrics.spread_ratio`), the ``moment_z`` against the component
    (:func:`opdiff.metrics.gaussian_moment_z`) and the ``mean_shift``
    :math:`\|\bar x_c-\mu_c\|`; and ``ref_accuracy``, the Bayes accuracy on ``ref_n``
    exact draws per component.

    Returns:
        ``{"method", "steps", "k", "ref_n" (total), "ref_accuracy", "n", "per_gamma",
        "samples": {gamma: {"x": [n, d] float64, "y": [n]}}}``.
    """
    from opdiff import metrics
    from opdiff.diffusion import samplers

    model = MixtureLabelModel(mixture, process)
    k = len(mixture.weights)
    n = n_per_class * k
    gam = np.asarray(gammas, np.float64)
    y = np.tile(np.arange(n) % k, len(gam))
    k_prior, k_samp, k_ref = jax.random.split(key, 3)
    x_T = jnp.tile(process.sample_prior(k_prior, n), (len(gam), 1))
    xs = np.asarray(samplers.sample(method, guided_denoiser(model, y, np.repeat(gam, n)), process,
                                    x_T, samplers.log_snr_grid(process, steps), key=k_samp),
                    np.float64)
    ref_acc = [np.mean(bayes_predict(mixture, model.sample_component(
        jax.random.fold_in(k_ref, j), j, ref_n)) == j) for j in range(k)]
    out = {"method": method, "steps": int(steps), "k": k, "ref_n": ref_n * k,
           "ref_accuracy": float(np.mean(ref_acc)), "n": n, "per_gamma": {}, "samples": {}}
    for i, gi in enumerate(gam):
        xi, yi = xs[i * n:(i + 1) * n], y[i * n:(i + 1) * n]
        acc = float(np.mean(bayes_predict(mixture, xi) == yi))
        tr = [metrics.spread_ratio(xi[yi == j], mixture.covs[j]) for j in range(k)]
        out["per_gamma"][f"{gi:g}"] = {
            "gamma": float(gi), "accuracy": acc, "accuracy_se": metrics.binomial_se(acc, n),
            "spread_ratio": [r for r, _ in tr], "spread_ratio_se": [e for _, e in tr],
            "moment_z": [metrics.gaussian_moment_z(xi[yi == j], mixture.means[j],
                                                   mixture.covs[j]) for j in range(k)],
            "mean_shift": [float(np.linalg.norm(xi[yi == j].mean(0) - mixture.means[j]))
                           for j in range(k)]}
        out["samples"][f"{gi:g}"] = {"x": xi, "y": yi}
    return out
