r"""Latent diffusion: encode, diffuse the latent, decode — and its exact oracle.

**Autoencoders.** One interface: ``shape`` (one image), ``latent_shape`` (one latent),
``encode(x) -> z`` and ``decode(z) -> x`` on batches ``[B, *shape]`` / ``[B, *latent_shape]``.
Latent diffusion is the library's diffusion stack (processes, samplers, ``train_denoiser``)
run on ``z`` with ``process.shape == latent_shape``; nothing here samples or trains.

**The linear PCA autoencoder** :class:`PCAAutoencoder` of rank :math:`k`: orthonormal
components :math:`C\in\mathbb R^{k\times N}` (rows), a centre :math:`\bar x` and latent scales
:math:`s`,

.. math:: z=S^{-1}C(x-\bar x),\qquad \hat x=\bar x+C^\top Sz,\qquad S=\mathrm{diag}(s).

:func:`fit_pca` takes :math:`C` from the SVD of training data; :func:`spectral_pca` takes the
:math:`k` largest-variance coefficients of a :class:`~opdiff.diffusion.oracle.GaussianField`
(its basis vectors are its principal components). ``scaling``: ``"whiten"``
(:math:`s_i=\sqrt{\lambda_i}`: unit-variance latents), ``"global"`` (one
:math:`s=\sqrt{\mathrm{mean}_i\lambda_i}`, the single scale factor of Rombach et al.'s LDM) or
``"none"``.

**The exact oracle.** For a Gaussian field :math:`N(\mu,B^\top\Lambda B)` (diagonal in an
orthonormal basis :math:`B`) and a PCA autoencoder whose components are :math:`k` of the basis
vectors (set :math:`K`, the rest :math:`K^\perp`), the latent data law is the diagonal Gaussian
:math:`N(S^{-1}(\mu_K-\bar c_K),\,S^{-2}\Lambda_K)` (:func:`latent_field`), so
:func:`opdiff.diffusion.oracle.sampler_law` gives the latent law :math:`N(m,w)` of every
sampler run on the latent. The decoded law is diagonal in :math:`B`: on :math:`K` it is
:math:`N(\bar c_K+Sm,\,S^2w)`; on :math:`K^\perp` it is the point :math:`\bar c_{K^\perp}` (a
deterministic decoder) or :math:`N(\bar c_{K^\perp},\sigma^2)` (a Gaussian decoder adding
noise of variance :math:`\sigma^2` outside the latent subspace). Both laws factorise over
:math:`K` and :math:`K^\perp`, and KL and :math:`W_2^2` add over independent blocks and are
invariant (KL) or scaled by :math:`s^2` (:math:`W_2^2`) under the decoder's affine map, so

.. math:: \mathrm{KL}_{\rm end}=\mathrm{KL}(N(m,w)\,\|\,\text{latent data})
          +\underbrace{\textstyle\sum_{K^\perp}\mathrm{KL}(N(\bar c_j,\sigma^2)\|N(\mu_j,\lambda_j))
          }_{\text{decoder floor}},

.. math:: W^2_{2,\rm end}=\textstyle\sum_{i}s_i^2\,W_2^2(\text{latent}_i)
          +\underbrace{\textstyle\sum_{K^\perp}(\bar c_j-\mu_j)^2+(\sigma-\sqrt{\lambda_j})^2
          }_{\text{decoder floor}}.

With :math:`\bar c=\mu` and :math:`\sigma=0` the :math:`W_2^2` floor is
:math:`\sum_{K^\perp}\lambda_j`, the discarded variance: the squared PCA floor of
:func:`opdiff.deeponet_bounds.pca_floor` (the bound of POD-DeepONet) when :math:`K` holds the
:math:`k` largest :math:`\lambda`; the KL of a deterministic decoder is :math:`+\infty` (its law
is singular). The best isotropic Gaussian decoder, :math:`\sigma^2=|K^\perp|/\sum_{K^\perp}
\lambda_j^{-1}` (:func:`optimal_noise_var`), minimises the KL floor. No sampler can go below
either floor: the latent part is :math:`\ge0`.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff.diffusion import laws as _laws
from opdiff.diffusion import oracle as _oracle
from opdiff.diffusion import processes as _processes
from opdiff.diffusion import samplers as _samplers
from opdiff.diffusion import transforms as _transforms
from opdiff.diffusion.processes import Process, check_shape

__all__ = ["PCAAutoencoder", "SCALINGS", "check_latents", "decoded_law", "decoded_monte_carlo",
           "decoder_floor", "fit_pca", "latent_divergences", "latent_error", "latent_field",
           "optimal_noise_var", "pixel_latent_sweep", "spectral_pca"]

SCALINGS = ("whiten", "global", "none")
_DTYPES = ("float32", "float64")


def check_latents(name: str, z, latent_shape: tuple[int, ...], dtype) -> Array:
    """``z`` as an array ``[B, *latent_shape]`` of exactly ``dtype``, or a ``ValueError``
    naming ``name`` with the expected and the actual shape or dtype."""
    if not hasattr(z, "dtype"):
        z = np.asarray(z)
    if z.dtype != np.dtype(dtype):
        raise ValueError(f"{name} must have dtype {np.dtype(dtype)} (the autoencoder's), got "
                         f"{z.dtype}")
    if z.ndim != 1 + len(latent_shape) or tuple(z.shape[1:]) != tuple(latent_shape):
        raise ValueError(f"{name} must have shape [batch, {', '.join(map(str, latent_shape))}]"
                         f", got {tuple(z.shape)}")
    return jnp.asarray(z)


def _check_rank(k, n_max: int) -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__} {k!r}")
    if not 1 <= int(k) <= n_max:
        raise ValueError(f"k must be in [1, {n_max}], got {k}")
    return int(k)


def _scales(lam: np.ndarray, scaling: str) -> np.ndarray:
    if scaling == "whiten":
        return np.sqrt(lam)
    if scaling == "global":
        return np.full(lam.shape, math.sqrt(float(lam.mean())))
    if scaling == "none":
        return np.ones(lam.shape)
    raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")


@dataclasses.dataclass(frozen=True, eq=False)
class PCAAutoencoder:
    r"""The rank-:math:`k` linear autoencoder :math:`z=S^{-1}C(x-\bar x)`,
    :math:`\hat x=\bar x+C^\top Sz` (module docstring).

    Attributes:
        shape: one image's shape.
        mean: :math:`\bar x` (``shape``, float64).
        components: :math:`C` (``[k, N]``, orthonormal rows, float64; :math:`N` = pixels).
        scales: :math:`s` (``[k]``, positive, float64).
        dtype: the dtype of latents and decoded images (``"float32"`` or ``"float64"``;
            float64 needs ``jax_enable_x64``).
    """

    shape: tuple[int, ...]
    mean: np.ndarray
    components: np.ndarray
    scales: np.ndarray
    dtype: str = "float32"

    def __post_init__(self):
        object.__setattr__(self, "shape", check_shape(self.shape))
        n = math.prod(self.shape)
        c = np.asarray(self.components, np.float64)
        if c.ndim != 2 or c.shape[1] != n or not 1 <= c.shape[0] <= n:
            raise ValueError(f"components must be [k, {n}] with 1 <= k <= {n}, got {c.shape}")
        if not np.allclose(c @ c.T, np.eye(c.shape[0]), atol=1e-8):
            raise ValueError("components must have orthonormal rows")
        mean = np.broadcast_to(np.asarray(self.mean, np.float64), self.shape).copy()
        s = np.asarray(self.scales, np.float64)
        if s.shape != (c.shape[0],) or not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError(f"scales must be [{c.shape[0]}] finite and positive, got shape "
                             f"{s.shape}")
        if not np.all(np.isfinite(mean)):
            raise ValueError("mean must be finite")
        if str(self.dtype) not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {self.dtype!r}")
        for name, arr in (("mean", mean), ("components", c), ("scales", s)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "dtype", str(self.dtype))

    @property
    def rank(self) -> int:
        return int(self.components.shape[0])

    @property
    def latent_shape(self) -> tuple[int]:
        return (self.rank,)

    def encode(self, x: Float[Array, "B *shape"]) -> Float[Array, "B k"]:
        r""":math:`z=S^{-1}C(x-\bar x)` in ``dtype`` (``x`` is cast to it).

        Raises:
            TypeError: non-floating ``x``. ValueError: ``x`` not ``[B, *shape]``.
        """
        if not hasattr(x, "dtype"):
            x = np.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"x must be floating-point images, got dtype {x.dtype}")
        if x.ndim != 1 + len(self.shape) or tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"x must have shape [batch, {', '.join(map(str, self.shape))}], "
                             f"got {tuple(x.shape)}")
        dt = jnp.dtype(self.dtype)
        flat = (jnp.asarray(x, dt) - jnp.asarray(self.mean, dt)).reshape(x.shape[0], -1)
        return (flat @ jnp.asarray(self.components, dt).T) / jnp.asarray(self.scales, dt)

    def decode(self, z: Float[Array, "B k"]) -> Float[Array, "B *shape"]:
        r""":math:`\hat x=\bar x+C^\top Sz`.

        Raises:
            ValueError: ``z`` not ``[B, k]`` or not of the autoencoder's ``dtype``.
        """
        z = check_latents("z", z, self.latent_shape, self.dtype)
        dt = jnp.dtype(self.dtype)
        x = (z * jnp.asarray(self.scales, dt)) @ jnp.asarray(self.components, dt)
        return x.reshape(z.shape[0], *self.shape) + jnp.asarray(self.mean, dt)

    def decode_noisy(self, key: PRNGKeyArray, z: Float[Array, "B k"],
                     noise_var: float) -> Float[Array, "B *shape"]:
        r"""The Gaussian decoder: :math:`\hat x+\sigma(I-C^\top C)\xi`, :math:`\xi\sim N(0,I)`
        (noise of variance ``noise_var`` outside the latent subspace only)."""
        noise_var = _check_noise_var(noise_var)
        x = self.decode(z)
        dt = jnp.dtype(self.dtype)
        xi = jax.random.normal(key, (x.shape[0], math.prod(self.shape)), dt)
        c = jnp.asarray(self.components, dt)
        xi = xi - (xi @ c.T) @ c
        return x + jnp.asarray(math.sqrt(noise_var), dt) * xi.reshape(x.shape)


def _check_noise_var(noise_var) -> float:
    v = float(noise_var)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"noise_var must be finite and >= 0, got {noise_var!r}")
    return v


def fit_pca(x: Float[np.ndarray, "n *shape"], k: int, *, scaling: str = "whiten",
            dtype: str = "float32") -> PCAAutoencoder:
    r"""The rank-``k`` PCA autoencoder of training images ``x`` (float64 SVD of the centred
    data; :math:`\lambda_i` = the sample variances along the components, divisor
    :math:`n-1`).

    Raises:
        ValueError: ``x`` not ``[n >= 2, *shape]``; ``k`` outside ``[1, min(n - 1, N)]``;
            a kept component of zero variance (``k`` above the data's rank) with ``whiten``.
    """
    x = np.asarray(x, np.float64)
    if x.ndim < 2 or x.shape[0] < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"x must be finite images [n >= 2, *shape], got shape {x.shape}")
    n, shape = x.shape[0], x.shape[1:]
    k = _check_rank(k, min(n - 1, math.prod(shape)))
    mean = x.mean(axis=0)
    _, sv, vt = np.linalg.svd((x - mean).reshape(n, -1), full_matrices=False)
    lam = sv[:k] ** 2 / (n - 1)
    if scaling != "none" and lam[-1] <= 1e-12 * lam[0]:
        raise ValueError(f"k={k} exceeds the rank of x: component {k} has zero variance")
    return PCAAutoencoder(shape, mean, vt[:k], _scales(lam, scaling), dtype)


def _basis_matrix(shape: tuple[int, ...], basis: str) -> np.ndarray:
    """:math:`R=B^\\top` ``[N, N]`` (float64, host): column :math:`j` is basis vector :math:`j`
    as an image (flattened)."""
    n = math.prod(shape)
    eye = np.eye(n).reshape(n, *shape)
    return _transforms.to_basis_host(eye, basis, len(shape)).reshape(n, n)


def spectral_pca(field: _oracle.GaussianField, k: int, *, scaling: str = "whiten",
                 dtype: str = "float32") -> PCAAutoencoder:
    r"""The exact rank-``k`` PCA autoencoder of ``field``: its ``k`` largest-variance basis
    vectors (ties broken by coefficient index), centre the field's pixel mean. The basis is
    built as a dense ``[N, N]`` float64 matrix (:math:`N` pixels), as in the oracle functions
    below: meant for fields up to a few thousand pixels.

    Raises:
        ValueError: ``k`` outside ``[1, field.size]``, an unknown ``scaling``.
    """
    if not isinstance(field, _oracle.GaussianField):
        raise TypeError(f"field must be a GaussianField, got {type(field).__name__}")
    k = _check_rank(k, field.size)
    lam = field.var.reshape(-1)
    kept = np.argsort(-lam, kind="stable")[:k]
    r = _basis_matrix(field.shape, field.basis)
    return PCAAutoencoder(field.shape, (r @ field.mean.reshape(-1)).reshape(field.shape),
                          r[:, kept].T, _scales(lam[kept], scaling), dtype)


def _check_pair(field, ae) -> None:
    if not isinstance(field, _oracle.GaussianField):
        raise TypeError(f"field must be a GaussianField, got {type(field).__name__}")
    if not isinstance(ae, PCAAutoencoder):
        raise TypeError(f"ae must be a PCAAutoencoder, got {type(ae).__name__}")
    if ae.shape != field.shape:
        raise ValueError(f"ae.shape {ae.shape} does not match field.shape {field.shape}")


def _coefficient_parts(field, ae):
    """``P = C R`` (components in the field's coefficients) and the centre's coefficients."""
    r = _basis_matrix(field.shape, field.basis)
    return ae.components @ r, r.T @ ae.mean.reshape(-1)


def latent_field(field: _oracle.GaussianField, ae: PCAAutoencoder, *,
                 rtol: float = 1e-8) -> _oracle.GaussianField:
    r"""The law of ``ae.encode(x)`` for ``x`` from ``field``: :math:`N(S^{-1}C(\bar x_{\rm field}
    -\bar x),\,S^{-1}C\Sigma C^\top S^{-1})`, as a diagonal field of shape ``(k,)``.

    Raises:
        ValueError: if the latent covariance is not diagonal (off-diagonal entries above
            ``rtol`` times the largest variance): the autoencoder is not aligned with the
            field's principal directions (use :func:`spectral_pca`).
    """
    _check_pair(field, ae)
    p, c_bar = _coefficient_parts(field, ae)
    lam = field.var.reshape(-1)
    cov = (p * lam) @ p.T / np.outer(ae.scales, ae.scales)
    diag = np.diag(cov).copy()
    off = np.abs(cov - np.diag(diag)).max(initial=0.0)
    if off > rtol * diag.max():
        raise ValueError(f"the latent law of ae is not diagonal (largest off-diagonal {off:.3g}"
                         f" vs variance {diag.max():.3g}): ae must be aligned with the field's "
                         f"basis, e.g. spectral_pca(field, k)")
    mean = p @ (field.mean.reshape(-1) - c_bar) / ae.scales
    return _oracle.GaussianField((ae.rank,), "identity", mean, diag)


def _aligned(field, ae):
    """The kept coefficient of each component (``ValueError`` unless each is one basis
    vector) and the centre's coefficients."""
    p, c_bar = _coefficient_parts(field, ae)
    idx = np.argmax(np.abs(p), axis=1)
    sign = np.sign(p[np.arange(ae.rank), idx])
    ref = np.zeros_like(p)
    ref[np.arange(ae.rank), idx] = sign
    if np.abs(p - ref).max() > 1e-6 or len(set(idx.tolist())) != ae.rank:
        raise ValueError("ae's components must each be one basis vector of the field's basis "
                         "(build ae with spectral_pca(field, k)) for the exact decoded law")
    return idx, sign, c_bar


def decoded_law(field: _oracle.GaussianField, ae: PCAAutoencoder, m, w, *,
                noise_var: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    r"""The law of decoded latents :math:`N(m,w)` in the field's basis (per coefficient).

    Args:
        field: the data; ``ae`` from :func:`spectral_pca` (each component one basis vector).
        m, w: the latent law (``[k]``, e.g. from :func:`~opdiff.diffusion.oracle.sampler_law`
            on :func:`latent_field`).
        noise_var: the Gaussian decoder's variance outside the latent subspace (0: the
            deterministic decoder).

    Returns:
        ``(mean, var)`` float64 arrays of ``field.shape``.

    Raises:
        ValueError: ``m``/``w`` not of shape ``(k,)``, ``w < 0``, ``noise_var < 0``, or an
            autoencoder not aligned with the basis.
    """
    _check_pair(field, ae)
    noise_var = _check_noise_var(noise_var)
    m, w = np.asarray(m, np.float64), np.asarray(w, np.float64)
    for name, arr in (("m", m), ("w", w)):
        if arr.shape != ae.latent_shape:
            raise ValueError(f"{name} must have the latent shape {ae.latent_shape}, got "
                             f"{arr.shape}")
    if np.any(w < 0):
        raise ValueError("w must be >= 0")
    idx, sign, c_bar = _aligned(field, ae)
    mean, var = c_bar.copy(), np.full(c_bar.shape, noise_var)
    mean[idx] += sign * ae.scales * m
    var[idx] = ae.scales**2 * w
    return mean.reshape(field.shape), var.reshape(field.shape)


def decoder_floor(field: _oracle.GaussianField, ae: PCAAutoencoder, *,
                  noise_var: float = 0.0) -> dict:
    r"""The discarded part of the end-to-end error: ``{"kl", "w2_sq"}`` summed over the
    coefficients outside the latent subspace (module docstring); ``w2_sq`` is the discarded
    variance :math:`\sum_{K^\perp}\lambda_j` when ``noise_var=0`` and the centres agree."""
    _check_pair(field, ae)
    noise_var = _check_noise_var(noise_var)
    idx, _, c_bar = _aligned(field, ae)
    out = np.ones(field.size, bool)
    out[idx] = False
    mu, lam = field.mean.reshape(-1)[out], field.var.reshape(-1)[out]
    if not out.any():
        return {"kl": 0.0, "w2_sq": 0.0}
    return {"kl": _laws.kl_diagonal(c_bar[out], noise_var, mu, lam),
            "w2_sq": _laws.w2_diagonal(c_bar[out], noise_var, mu, lam)}


def optimal_noise_var(field: _oracle.GaussianField, ae: PCAAutoencoder) -> float:
    r"""The isotropic decoder variance that minimises the KL floor:
    :math:`|K^\perp|/\sum_{K^\perp}\lambda_j^{-1}` (the harmonic mean of the discarded
    variances; 0 when nothing is discarded)."""
    _check_pair(field, ae)
    idx, _, _ = _aligned(field, ae)
    out = np.ones(field.size, bool)
    out[idx] = False
    lam = field.var.reshape(-1)[out]
    return float(lam.size / np.sum(1.0 / lam)) if lam.size else 0.0


def latent_divergences(field: _oracle.GaussianField, ae: PCAAutoencoder, m, w, *,
                       noise_var: float = 0.0) -> dict:
    r"""End-to-end KL(decoded‖data) and :math:`W_2^2` of a latent law :math:`N(m,w)`, and
    their two parts.

    Returns:
        ``kl``, ``w2_sq``: computed on the decoded law against the field (all coefficients);
        ``kl_latent``: KL of the latent law against :func:`latent_field`; ``w2_sq_latent``:
        :math:`\sum_is_i^2W_2^2` per latent coordinate; ``kl_floor``, ``w2_sq_floor``:
        :func:`decoder_floor`. The totals equal latent + floor (module docstring); the two
        sides are computed separately, so their agreement is a check.
    """
    mean, var = decoded_law(field, ae, m, w, noise_var=noise_var)
    lf = latent_field(field, ae)
    floor = decoder_floor(field, ae, noise_var=noise_var)
    w2_lat = _laws.w2_diagonal(m, w, lf.mean, lf.var, per_coefficient=True)
    return {"kl": _laws.kl(mean, var, field.mean, field.var),
            "w2_sq": _laws.w2_sq(mean, var, field.mean, field.var),
            "kl_latent": _laws.kl(m, w, lf.mean, lf.var),
            "w2_sq_latent": float(np.sum(ae.scales**2 * np.asarray(w2_lat))),
            "kl_floor": floor["kl"], "w2_sq_floor": floor["w2_sq"]}


def latent_error(method: str, process: Process, field: _oracle.GaussianField,
                 ae: PCAAutoencoder, ts, *, noise_var: float = 0.0, **kw) -> dict:
    r"""The exact end-to-end error of latent diffusion: ``method`` on ``process`` (shape
    ``ae.latent_shape``) with the exact latent denoiser, from
    :func:`~opdiff.diffusion.oracle.sampler_law` on :func:`latent_field` (``kw`` passed on,
    e.g. ``denoise=True``), decoded; :func:`latent_divergences` plus ``m``, ``w``."""
    lf = latent_field(field, ae)
    m, w = _oracle.sampler_law(method, process, lf, ts, **kw)
    m, w = np.asarray(m, np.float64), np.asarray(w, np.float64)
    return {**latent_divergences(field, ae, m, w, noise_var=noise_var), "m": m, "w": w}


def _steps_for(method: str, budgets) -> list[int]:
    per = _samplers.nfe(method, 1)
    out = []
    for b in budgets:
        if isinstance(b, (bool, np.bool_)) or not isinstance(b, (int, np.integer)) or b < per \
                or b % per:
            raise ValueError(f"budgets must be positive multiples of {per} (NFE per {method} "
                             f"step), got {b!r}")
        out.append(int(b) // per)
    return out


def pixel_latent_sweep(field: _oracle.GaussianField, ranks, budgets, *, method: str = "ddim",
                       scaling: str = "whiten", denoise: bool = True) -> dict:
    r"""Pixel vs latent diffusion at equal NFE, exactly: white VP on the field (pixel) and on
    the latent of :func:`spectral_pca` at each rank, ``method`` with the exact denoisers on
    the log-SNR grid of each budget.

    Returns:
        ``pixel_kl``, ``pixel_w2_sq`` (``[B]``) and, ``[len(ranks), B]``, the
        :func:`latent_divergences` ``kl``, ``kl_latent``, ``kl_floor`` (with the KL-optimal
        Gaussian decoder, :func:`optimal_noise_var`) and ``w2_sq``, ``w2_sq_latent``,
        ``w2_sq_floor`` (deterministic decoder).

    Raises:
        ValueError: a budget that is not a multiple of the method's NFE per step, a rank out
            of range.
    """
    steps = _steps_for(method, budgets)
    px = _processes.vp(field.shape)
    pix = [_oracle.divergences(*_oracle.sampler_law(
        method, px, field, _samplers.log_snr_grid(px, s), denoise=denoise), field) for s in steps]
    out: dict = {"pixel_kl": np.array([d["kl"] for d in pix]),
                 "pixel_w2_sq": np.array([d["w2_sq"] for d in pix])}
    rows: dict = {}
    for k in ranks:
        ae = spectral_pca(field, k, scaling=scaling, dtype="float64")
        lp, lf = _processes.vp((ae.rank,)), latent_field(field, ae)
        s2 = optimal_noise_var(field, ae)
        for s in steps:
            mw = _oracle.sampler_law(method, lp, lf, _samplers.log_snr_grid(lp, s),
                                     denoise=denoise)
            for nv, pre in ((s2, "kl"), (0.0, "w2_sq")):
                d = latent_divergences(field, ae, *mw, noise_var=nv)
                for q in (pre, f"{pre}_latent", f"{pre}_floor"):
                    rows.setdefault(q, []).append(d[q])
    b = len(steps)
    out.update({q: np.asarray(v).reshape(len(ranks), b) for q, v in rows.items()})
    return out


def decoded_monte_carlo(method: str, field: _oracle.GaussianField, ae: PCAAutoencoder,
                        n_steps: int, n: int, key: PRNGKeyArray, *, noise_var: float,
                        denoise: bool = True) -> dict:
    r"""Monte Carlo of latent diffusion against its exact law: ``n`` runs of ``method``
    (``n_steps`` log-SNR steps, white VP, the exact latent denoiser), decoded by the Gaussian
    decoder (``noise_var``), in the field's basis.

    Returns:
        ``z_mean``, ``z_var``: per-coefficient z-scores of the sample means and (unbiased)
        variances against :func:`decoded_law` (standard errors :math:`\sqrt{v/n}`,
        :math:`v\sqrt{2/(n-1)}`); ``kl_exact``: KL(decoded law‖field); ``kl_moment``: KL of the
        moment-matched diagonal Gaussian (a plug-in estimate, biased upward by
        :math:`O(\text{size}/n)`).
    """
    dt = jnp.dtype(ae.dtype)
    lf, lp = latent_field(field, ae), _processes.vp(ae.latent_shape)
    ts = _samplers.log_snr_grid(lp, n_steps)
    m, w = _oracle.sampler_law(method, lp, lf, ts, denoise=denoise)
    z_t = lp.sample_prior(jax.random.fold_in(key, 0), n, dtype=dt)
    z = _samplers.sample(method, lf.denoiser(lp), lp, z_t, ts, key=jax.random.fold_in(key, 1),
                         denoise=denoise)
    x = ae.decode_noisy(jax.random.fold_in(key, 2), z.astype(dt), noise_var)
    c = _transforms.to_basis_host(np.asarray(x), field.basis, len(field.shape))
    mean, var = decoded_law(field, ae, m, w, noise_var=noise_var)
    mu_hat, var_hat = c.mean(0), c.var(0, ddof=1)
    return {"z_mean": (mu_hat - mean) / np.sqrt(var / n),
            "z_var": (var_hat - var) / (var * np.sqrt(2 / (n - 1))),
            "kl_exact": _laws.kl(mean, var, field.mean, field.var),
            "kl_moment": _laws.kl(mu_hat, var_hat, field.mean, field.var)}
