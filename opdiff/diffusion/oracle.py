r"""The exact oracle: Gaussian data, exact scores and denoisers, exact sampler output laws.

**Gaussian fields.** A :class:`GaussianField` is Gaussian data diagonal in a basis:
coefficient :math:`k` is :math:`N(\mu_k,\lambda_k)` independently. A stationary field on the
torus is exactly this in the ``dft`` basis (:math:`\lambda_k` is its power spectrum), and the
DCT plays the same role for reflective boundaries. Under a forward process
(:mod:`opdiff.diffusion.processes`) every quantity is then per coefficient:

.. math:: p_t=N(a_t\mu,\,v_t),\quad v_t=a_t^2\lambda+s_t^2,\qquad
          \nabla\log p_t(z)=-(z-a_t\mu)/v_t,

.. math:: D(z)=E[z_0\mid z_t=z]=\mu+G_t(z-a_t\mu),\quad G_t=\frac{a_t\lambda}{v_t}
          \ \text{(the Wiener filter)},\qquad \mathrm{MMSE}_t=\sum_k\frac{\lambda_ks_t^2}{v_t}.

**Sampler laws.** A model whose denoiser is affine per coefficient, :math:`D(z)=G z+q` —
the exact one, or the exact denoiser of a *different* field (a controlled score error) — makes
every step of every sampler of :mod:`opdiff.diffusion.samplers` an affine map plus Gaussian
noise, :math:`z'=Az+B+\sqrt E\,\xi`. A Gaussian law :math:`N(m,w)` therefore stays Gaussian:

.. math:: (m,w)\mapsto(Am+B,\ A^2w+E),

with :math:`A,B,E` read off each sampler's one definition in :mod:`opdiff.diffusion.steps`
(run on affine forms instead of samples). The output law of a whole run is this recursion along
the grid, in closed form for any dimension; the tests check it against Monte Carlo of the
sampler and against closed forms of the steps.

**Divergences.** KL, squared W2 and the Bhattacharyya TV bracket between the output law and
the data (or :math:`p_{t_0}`) come from :mod:`opdiff.diffusion.laws`, in total and per
coefficient (the "KL spectrum"; :func:`opdiff.spectra.radial_average` bins it by radial
frequency).

**Gaussian mixtures** (:class:`GaussianMixture`, dense, small :math:`d`): exact log-density,
score and denoiser of :math:`p_t=\sum_j\pi_jN(a_t\mu_j,a_t\Sigma_ja_t+s_t^2)` through a
log-sum-exp over components.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff.diffusion import transforms as _transforms
from opdiff.functions import power_law_spectrum
from opdiff.diffusion import samplers as _samplers
from opdiff.diffusion import steps as _steps
from opdiff.diffusion import laws as _laws
from opdiff.diffusion.processes import Process, check_shape

__all__ = [
    "ExactDenoiser",
    "GaussianField",
    "GaussianMixture",
    "convergence_curve",
    "divergences",
    "error_split",
    "field_from_samples",
    "at_terminal_distortion",
    "girsanov_bound",
    "match_terminal_distortion",
    "mmse",
    "monte_carlo_agreement",
    "power_law_field",
    "sampler_law",
    "score_error_split",
    "score_error",
    "terminal_distortion",
]


# ----------------------------------------------------------------------------- Gaussian fields


@dataclasses.dataclass(frozen=True, eq=False)
class GaussianField:
    r"""Gaussian data with independent coefficients :math:`N(\mu_k,\lambda_k)` in ``basis``.

    Attributes:
        shape: the shape of one sample.
        basis: the basis the coefficients live in (``"identity"``, ``"dft"``, ``"dct"``).
        mean: :math:`\mu_k` (``shape``, float64).
        var: :math:`\lambda_k>0` (``shape``, float64).
    """

    shape: tuple[int, ...]
    basis: str
    mean: np.ndarray
    var: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "shape", check_shape(self.shape))
        _transforms.check_basis(self.basis)
        for name in ("mean", "var"):
            arr = np.broadcast_to(np.asarray(getattr(self, name), np.float64), self.shape).copy()
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if np.any(self.var <= 0):
            raise ValueError(f"var must be positive in every coefficient, min is {self.var.min()}")

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def check_process(self, process: Process) -> None:
        """A clear error unless ``process`` acts on this field's samples in its basis."""
        if process.shape != self.shape:
            raise ValueError(f"the process shape {process.shape} does not match the data "
                             f"shape {self.shape}")
        if process.basis != self.basis and not (process.isotropic and self.basis == "identity"):
            if not process.isotropic:
                raise ValueError(f"the process basis {process.basis!r} does not match the "
                                 f"data basis {self.basis!r}: both must be diagonal in one basis")

    def sample(self, key: PRNGKeyArray, n: int, dtype=jnp.float32) -> Array:
        """``n`` samples ``[n, *shape]`` (sample space)."""
        z = jax.random.normal(key, (int(n), *self.shape), dtype)
        z = jnp.asarray(self.mean, dtype) + jnp.sqrt(jnp.asarray(self.var, dtype)) * z
        return _transforms.from_basis(z, self.basis, len(self.shape))

    def marginal(self, process: Process, t) -> tuple[Array, Array]:
        r""":math:`(a_t\mu, v_t)` per coefficient."""
        self.check_process(process)
        a, s2 = process.scale(t), process.variance(t)
        return a * self.mean, a**2 * self.var + s2

    def gain(self, process: Process, t) -> Array:
        r"""Wiener gain :math:`G_t=a_t\lambda/(a_t^2\lambda+s_t^2)`."""
        self.check_process(process)
        a, s2 = process.scale(t), process.variance(t)
        return a * self.var / (a**2 * self.var + s2)

    def denoise_coeffs(self, process: Process, z, t):
        """Exact :math:`E[z_0\\mid z_t=z]` on coefficients."""
        mu = jnp.asarray(self.mean, z.dtype)
        g = self.gain(process, t).astype(z.dtype)
        return mu + g * (z - process.scale(t).astype(z.dtype) * mu)

    def score_coeffs(self, process: Process, z, t):
        r"""Exact :math:`\nabla\log p_t` on coefficients."""
        m, v = self.marginal(process, t)
        return -(z - m.astype(z.dtype)) / v.astype(z.dtype)

    def denoiser(self, process: Process) -> "ExactDenoiser":
        """The exact denoiser as a hashable callable ``D(x, t)`` for the samplers."""
        self.check_process(process)
        return ExactDenoiser(self, process)

    def score(self, process: Process, x, t) -> Array:
        """Exact score in sample space, ``x`` ``[..., *shape]``."""
        return _transforms.from_basis(
            self.score_coeffs(process, _transforms.to_basis(x, self.basis, len(self.shape)), t),
            self.basis, len(self.shape))


@dataclasses.dataclass(frozen=True)
class ExactDenoiser:
    """``D(x, t)`` of a :class:`GaussianField` under a process. Equal (and equally hashed) when
    field and process are the same objects, so repeated ``field.denoiser(process)`` calls reuse
    one compiled sampler."""

    field: GaussianField
    process: Process

    def __call__(self, x, t):
        nd = len(self.field.shape)
        z = _transforms.to_basis(x, self.field.basis, nd)
        return _transforms.from_basis(self.field.denoise_coeffs(self.process, z, t), self.field.basis, nd)


def power_law_field(shape, basis: str = "dft", *, alpha: float = 2.0, k0: float = 1.0,
                    variance: float = 1.0, mean: float = 0.0) -> GaussianField:
    r"""A stationary power-law field: :math:`\lambda_k\propto(|k|^2+k_0^2)^{-\alpha/2}`.

    :math:`|k|` is the radial frequency in cycles per (longest) image side
    (:func:`opdiff.diffusion.transforms.cycles_squared`); the constant makes the mean pointwise
    variance ``variance`` (:math:`\sum_k\lambda_k=N\sigma^2`). The spectrum is
    :func:`opdiff.functions.power_law_spectrum` with ``dc="keep"``: unlike
    :class:`opdiff.functions.PeriodicPowerLawField` (``dc="drop"``) the DC coefficient is kept
    (:math:`\lambda_0=ck_0^{-\alpha}`), so the law is non-degenerate (every KL and density of
    the oracle needs :math:`\lambda_k>0`). ``mean`` is the pixel mean (it lives in the DC
    coefficient).

    Raises:
        ValueError: unless ``k0 > 0`` and ``variance > 0`` are finite and ``alpha`` and
            ``mean`` are finite (NaN and ±inf are refused).
    """
    shape = check_shape(shape)
    if not (math.isfinite(k0) and k0 > 0 and math.isfinite(variance) and variance > 0
            and math.isfinite(alpha) and math.isfinite(mean)):
        raise ValueError(f"need k0 > 0, variance > 0 (both finite) and finite alpha and mean, "
                         f"got k0={k0}, variance={variance}, alpha={alpha}, mean={mean}")
    n = math.prod(shape)
    lam = power_law_spectrum(_transforms.cycles_squared(shape, basis), alpha=alpha, k0=k0,
                             total=n * variance, dc="keep")
    mu = np.zeros(shape)
    if basis != "identity":
        mu.flat[0] = mean * math.sqrt(n)  # the DC basis vector is 1/sqrt(N) everywhere
    else:
        mu[...] = mean
    return GaussianField(shape, basis, mu, lam)


def field_from_samples(x: np.ndarray, basis: str, *, floor: float = 1e-6) -> GaussianField:
    """The diagonal Gaussian moment-matched to samples ``x`` ``[n, *shape]`` in ``basis``
    (e.g. digits in the DCT basis); variances are floored at ``floor`` times their mean."""
    x = np.asarray(x, np.float64)
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"x must be [n >= 2, *shape], got {x.shape}")
    z = np.asarray(_transforms.to_basis(jnp.asarray(x), basis, x.ndim - 1), np.float64)
    var = z.var(axis=0)
    return GaussianField(x.shape[1:], basis, z.mean(axis=0), np.maximum(var, floor * var.mean()))


def mmse(field: GaussianField, process: Process, t) -> Array:
    r"""Per-coefficient MMSE :math:`\lambda s_t^2/v_t` of the exact denoiser (sum for the total)."""
    field.check_process(process)
    s2 = process.variance(t)
    return field.var * s2 / (process.scale(t) ** 2 * field.var + s2)


def _check_model(field: GaussianField, model: GaussianField) -> None:
    if not isinstance(model, GaussianField):
        raise TypeError(f"model must be a GaussianField, got {type(model).__name__}")
    if model.shape != field.shape or model.basis != field.basis:
        raise ValueError(f"model must have the data's shape and basis {field.shape}, "
                         f"{field.basis!r}, got {model.shape}, {model.basis!r}")


def score_error(field: GaussianField, model: GaussianField, process: Process, t) -> Array:
    r""":math:`E_{p_t}\|\hat s-\nabla\log p_t\|^2` when the score is that of ``model`` while the
    data is ``field``: :math:`\sum_k(\tilde\kappa-\kappa)^2v+a^2\tilde\kappa^2(\tilde\mu-\mu)^2`."""
    field.check_process(process)
    _check_model(field, model)
    a, s2 = process.scale(t), process.variance(t)
    v, vt = a**2 * field.var + s2, a**2 * model.var + s2
    return jnp.sum((1 / vt - 1 / v) ** 2 * v + a**2 * (model.mean - field.mean) ** 2 / vt**2)


# ----------------------------------------------------------------------------- sampler laws


def _affine_denoiser(process, model, t):
    r"""The exact denoiser :math:`Gz+q` of ``model`` at ``t``: :math:`G=a\lambda/(a^2\lambda+
    s^2)`, :math:`q=(1-aG)\mu` (no division by :math:`a`)."""
    a, s2 = process.scale(t), process.variance(t)
    g = a * model.var / (a**2 * model.var + s2)
    return g, (1 - a * g) * model.mean


def sampler_law(
    method: str,
    process: Process,
    field: GaussianField,
    ts,
    *,
    model: GaussianField | None = None,
    init: str | tuple = "prior",
    eta: float = 0.0,
    predictor: str = "ancestral",
    n_corrector: int = 1,
    snr: float = 0.16,
    corrector_eps: Callable | None = None,
    denoise: bool = False,
) -> tuple[Array, Array]:
    r"""The exact output law :math:`N(m,w)` (per coefficient) of a sampler run on ``field``.

    Args:
        method: a sampler name (:data:`opdiff.diffusion.samplers.SAMPLERS`, or a multistep
            one of :data:`~opdiff.diffusion.samplers.MULTISTEP`: its states and stored outputs
            are carried as affine forms in :math:`z_T`, the law read at the end).
        process: the forward process; ``field`` the data (its exact denoiser is the model
            unless ``model`` is given: then the sampler uses ``model``'s exact denoiser — a
            score error of :func:`score_error` — while the initial law still comes from
            ``field``).
        ts: increasing times (validated as for the samplers).
        init: ``"prior"`` (:meth:`Process.prior`), ``"exact"`` (the true marginal at
            :math:`T`: no initialisation error) or an explicit ``(m, w)``.
        eta, predictor, n_corrector, snr, corrector_eps, denoise: as for
            :func:`opdiff.diffusion.samplers.sample`; ``corrector_eps`` may also be an array of
            one Langevin step per grid time (``eps[j]`` used at ``ts[j]``).

    Compiled once per (sampler, process, options); the grid and the model's moments are data,
    so sweeps over step counts and models do not recompile.

    Returns:
        ``(m, w)`` arrays of the sample shape (float64 when x64 is enabled).
    """
    _steps.check_method(method, process)
    field.check_process(process)
    model = field if model is None else model
    _check_model(field, model)
    grid = _samplers.check_grid(process, ts)
    _samplers.check_options(method, predictor=predictor, n_corrector=n_corrector, snr=snr,
                            eta=eta)
    dtype = jnp.result_type(float)
    T = jnp.asarray(grid[-1], dtype)
    if isinstance(init, str):
        if init == "prior":
            m, w = process.prior(field.mean, field.var)
        elif init == "exact":
            m, w = field.marginal(process, T)
        else:
            raise ValueError(f"init must be 'prior', 'exact' or a pair (m, w), got {init!r}")
    else:
        try:
            m, w = init
        except (TypeError, ValueError):
            raise ValueError(f"init must be 'prior', 'exact' or a pair (m, w), got {init!r}") \
                from None
        for name, arr in (("init mean", m), ("init variance", w)):
            shp = np.shape(arr)
            if shp not in ((), field.shape):
                raise ValueError(f"{name} must be a scalar or have shape {field.shape}, got {shp}")
        if np.any(np.asarray(w) < 0) or not np.all(np.isfinite(np.asarray(w))):
            raise ValueError("init variance must be finite and >= 0")
    m = jnp.broadcast_to(jnp.asarray(m, dtype), field.shape)
    w = jnp.broadcast_to(jnp.asarray(w, dtype), field.shape)
    n = len(grid) - 1
    size = _padded_length(n)
    ts_pad = np.concatenate([grid, grid[-1] + np.arange(1, size - n)])
    eps = np.zeros(size)
    if corrector_eps is not None and not callable(corrector_eps):
        arr = np.asarray(corrector_eps, np.float64)
        if arr.shape != (n + 1,):
            raise ValueError(f"corrector_eps must be a callable of t or an array of one step per "
                             f"grid time, shape ({n + 1},), got {arr.shape}")
        eps[: n + 1] = arr
    eps_fn = corrector_eps if callable(corrector_eps) else None
    opts = dict(eta=float(eta), n_corrector=int(n_corrector), snr=float(snr), eps_fn=eps_fn,
                eps_array=corrector_eps is not None and eps_fn is None)
    return _law_loop(method, predictor, process, tuple(sorted(opts.items())), bool(denoise),
                     jnp.asarray(model.mean, dtype), jnp.asarray(model.var, dtype), m, w,
                     jnp.asarray(ts_pad, dtype), n, jnp.asarray(eps, dtype))


class _Moments(NamedTuple):
    """A model's coefficient moments inside the compiled loop (duck-types GaussianField)."""

    mean: Array
    var: Array


def _padded_length(n: int) -> int:
    """Grids are padded to 2^k + 1 times (k >= 6) so a sweep over step counts compiles a few
    shapes only; the loop runs the true number of steps."""
    return (1 << max(6, math.ceil(math.log2(max(n, 1))))) + 1


def _no_norm(x):
    raise TypeError("a deterministic sampler's affine reading has no corrector norm")


def _affine_step(method: str, process: Process, model, ts, n, carry, i, eta: float = 0.0):
    r"""Step ``i`` (from ``ts[n - i]`` down to ``ts[n - i - 1]``) of a deterministic sampler on
    affine forms in :math:`z_T`. ``carry = (A, B, past)``: the state :math:`Az_T+B` and, for a
    multistep method, ``past = (times, A's, B's, n_real)`` of the stored denoiser outputs (most
    recent first; the first ``n_real`` are real). A method's ``start`` replaces step 0 when
    ``i`` is the Python int 0."""
    spec = _steps.METHODS[method]
    A, B, (pt, pA, pB, n_real) = carry
    j = n - i

    def denoiser(z, t):
        g, q = _affine_denoiser(process, model, t)
        return g * z + q

    hist = tuple((pt[k], _steps.Affine(pA[k], pB[k])) for k in range(spec.history))
    ctx = _steps.StepContext(process, ts[j], ts[j - 1], A.dtype, denoise=denoiser,
                             noise=_steps.Affine.noise, norm=_no_norm, opts=dict(eta=eta),
                             history=hist, n_history=n_real)

    def arr(x):
        return jnp.broadcast_to(jnp.asarray(x, A.dtype), A.shape)

    if spec.start is not None and isinstance(i, int) and i == 0:
        z, got = spec.start(ctx, _steps.Affine(A, B))
        got = tuple(got)[:spec.history]
        new, n_real = got + hist[len(got):], jnp.asarray(len(got))
    elif spec.history:
        z, d = spec.step(ctx, _steps.Affine(A, B))
        new = ((ctx.t, d), *hist[:-1])
        n_real = jnp.minimum(n_real + 1, spec.history)
    else:
        z, new = spec.step(ctx, _steps.Affine(A, B)), ()
    if z.N:
        raise ValueError(f"{method!r} drew noise: only deterministic samplers have an affine "
                         f"reading in z_T")
    past = (tuple(jnp.asarray(t, A.dtype) for t, _ in new), tuple(arr(f.A) for _, f in new),
            tuple(arr(f.B) for _, f in new), n_real)
    return arr(z.A), arr(z.B), past


def _affine_start(method: str, shape, dtype, T):
    r"""The identity form :math:`1\cdot z_T+0` and placeholders for the stored outputs."""
    k = _steps.METHODS[method].history
    zeros = jnp.zeros(shape, dtype)
    past = ((jnp.asarray(T, dtype),) * k, (zeros,) * k, (zeros,) * k, jnp.asarray(0))
    return jnp.ones(shape, dtype), zeros, past


def _affine_run(method: str, process: Process, model, ts, n, m, w, loop: str = "fori"):
    """The output law of a deterministic sampler along ``ts[:n + 1]`` from :math:`N(m, w)`,
    by its affine forms in :math:`z_T` (``loop="scan"``: a static ``n``, differentiable in the
    grid)."""
    carry = _affine_start(method, m.shape, m.dtype, ts[n])
    first = 0
    if _steps.METHODS[method].start is not None:
        carry, first = _affine_step(method, process, model, ts, n, carry, 0), 1

    def body(i, c):
        return _affine_step(method, process, model, ts, n, c, i)

    if loop == "scan":
        carry, _ = jax.lax.scan(lambda c, i: (body(i, c), None), carry, jnp.arange(first, n))
    else:
        carry = jax.lax.fori_loop(first, n, body, carry)
    return _steps.Affine(carry[0], carry[1]).law(m, w)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _law_loop(method, predictor, process, opts_key, denoise, model_mean, model_var, m, w, ts, n,
              eps):
    opts = dict(opts_key)
    model = _Moments(model_mean, model_var)
    step = _steps.METHODS[method].step
    dtype = m.dtype

    def denoiser(z, t):
        g, q = _affine_denoiser(process, model, t)
        return g * z + q

    if _steps.METHODS[method].history:  # multistep: carry the forms in z_T, read the law last
        m, w = _affine_run(method, process, model, ts, n, m, w)
        if denoise:
            m, w = denoiser(_steps.Affine.identity(), ts[0]).law(m, w)
        return m, w

    def body(i, carry):
        m, w = carry
        j = n - i
        e = eps[j]
        corrector_eps = (lambda _t: e) if opts["eps_array"] else opts["eps_fn"]
        ctx = _steps.StepContext(
            process, ts[j], ts[j - 1], dtype, denoise=denoiser, noise=_steps.Affine.noise,
            norm=lambda x: jnp.sqrt(jnp.sum(x.second_moment(m, w))),
            opts=dict(eta=opts["eta"], predictor=predictor, n_corrector=opts["n_corrector"],
                      snr=opts["snr"], corrector_eps=corrector_eps))
        return step(ctx, _steps.Affine.identity()).law(m, w)

    m, w = jax.lax.fori_loop(0, n, body, (m, w))
    if denoise:
        m, w = denoiser(_steps.Affine.identity(), ts[0]).law(m, w)
    return m, w


def divergences(m, w, field_or_mean, var=None, *, per_coefficient=False) -> dict:
    """KL(out‖target), squared W2 and the TV bracket between :math:`N(m,w)` and the target
    (a :class:`GaussianField`, or ``(mean, var)``)."""
    if isinstance(field_or_mean, GaussianField):
        mu, lam = field_or_mean.mean, field_or_mean.var
    else:
        mu, lam = field_or_mean, var
    m, w = np.asarray(m, np.float64), np.asarray(w, np.float64)
    mu, lam = np.asarray(mu, np.float64), np.asarray(lam, np.float64)
    lo, hi = _laws.tv_bracket_diagonal(m, w, mu, lam)
    out = {"kl": _laws.kl_diagonal(m, w, mu, lam, per_coefficient=per_coefficient),
           "w2_sq": _laws.w2_diagonal(m, w, mu, lam, per_coefficient=per_coefficient),
           "tv_lower": lo, "tv_upper": hi}
    return out


def error_split(method: str, process: Process, field: GaussianField, ts, *,
                model: GaussianField | None = None, n_reference: int = 4096, **kw) -> dict:
    r"""KL of one sampler run, and of the runs that remove one error source.

    A sampler aims at :math:`p_{t_0}` (:math:`t_0` = ``ts[0]``); stopping there instead of at
    the data is a separate, sampler-independent error. So every part but ``early_stopping`` is
    a KL to :math:`p_{t_0}` (to the data when ``denoise=True``: the final denoising step aims
    at the data):

    - ``total``: the sampler from the prior, with the model's score;
    - ``discretisation``: the sampler from the exact marginal at ``ts[-1]``, exact score;
    - ``initialisation``: the reverse process from the prior with the exact score and a
      negligible discretisation error (``n_reference`` log-level steps on
      ``[ts[0], ts[-1]]`` of ``ancestral`` for stochastic samplers, of ``pf_heun`` for
      deterministic ones);
    - ``score``: the sampler from the exact marginal with the model's score, minus
      ``discretisation`` (what a score error adds at this budget; it can be negative: a wrong
      score can offset a sampler's own bias);
    - ``early_stopping``: KL(:math:`p_{t_0}`‖data).

    The sources interact, so the parts need not add up to ``total``.
    """
    grid = _samplers.check_grid(process, ts)
    denoise = bool(kw.get("denoise", False))
    m0, v0 = field.marginal(process, jnp.asarray(grid[0]))
    target = (field.mean, field.var) if denoise else (m0, v0)

    def kl(mw):
        return float(_laws.kl_diagonal(*mw, *target))

    total = kl(sampler_law(method, process, field, grid, model=model, **kw))
    disc = kl(sampler_law(method, process, field, grid, init="exact", **kw))
    fine = _samplers.log_level_between(process, grid[0], grid[-1], int(n_reference))
    ref = "ancestral" if method in _samplers.STOCHASTIC else "pf_heun"
    init = kl(sampler_law(ref, process, field, fine, denoise=denoise))
    with_score = kl(sampler_law(method, process, field, grid, model=model, init="exact", **kw)) \
        if model is not None else disc
    return {"total": total, "discretisation": disc, "initialisation": init,
            "score": with_score - disc,
            "early_stopping": float(_laws.kl_diagonal(m0, v0, field.mean, field.var))}


def terminal_distortion(field: GaussianField, process: Process, t) -> float:
    r"""KL(:math:`p_t`‖data): what a sampler that reaches :math:`p_t` exactly still misses by
    stopping at :math:`t` (the ``early_stopping`` part of :func:`error_split`)."""
    m, v = field.marginal(process, jnp.asarray(t, jnp.result_type(float)))
    return float(_laws.kl_diagonal(m, v, field.mean, field.var))


def match_terminal_distortion(field: GaussianField, build: Callable, target: float, lo: float,
                              hi: float, *, rtol: float = 1e-9, max_iter: int = 200) -> float:
    r"""The parameter :math:`p\in[lo,hi]` at which :func:`terminal_distortion` of the process
    ``build(p)`` at its ``t_min`` equals ``target``: the stopping time (``t_min``) of a noise
    process, or the last blur width (``blur_min``) of heat dissipation, that puts every process
    at the same distance from the data when its sampler stops — the fair comparison of processes
    at equal terminal distortion.

    Bisection in :math:`\log p` on a sign change of distortion − target (the distortion need
    not be monotone in :math:`p`; any root in the bracket is returned), until the distortion is
    within ``rtol`` (relative) of ``target`` or the bracket is below ``rtol`` (relative).

    Raises:
        ValueError: if ``target`` is not finite and > 0, ``0 < lo < hi`` fails, or the
            distortion minus ``target`` has the same sign at ``lo`` and ``hi`` (no match in the
            bracket: e.g. a process whose every marginal is the data law, distortion 0).
    """
    if not (math.isfinite(target) and target > 0):
        raise ValueError(f"target must be finite and > 0, got {target!r}")
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ValueError(f"need 0 < lo < hi < inf, got lo={lo!r}, hi={hi!r}")

    def gap(p):
        proc = build(p)
        return terminal_distortion(field, proc, proc.t_min) - target

    a, b = math.log(lo), math.log(hi)
    ga, gb = gap(lo), gap(hi)
    if ga == 0:
        return float(lo)
    if gb == 0:
        return float(hi)
    if (ga > 0) == (gb > 0):
        raise ValueError(f"the terminal distortion minus the target {target:.4g} has the same sign "
                         f"at lo={lo:.4g} ({ga:+.4g}) and hi={hi:.4g} ({gb:+.4g}): no match")
    for _ in range(int(max_iter)):
        c = 0.5 * (a + b)
        gc = gap(math.exp(c))
        if abs(gc) <= rtol * target or b - a <= rtol:
            return math.exp(c)
        if (gc > 0) == (ga > 0):
            a, ga = c, gc
        else:
            b = c
    return math.exp(0.5 * (a + b))


def at_terminal_distortion(field: GaussianField, process: Process, target: float, *,
                           param: str = "t_min", lo: float = 1e-6, hi: float = 0.5) -> Process:
    """``process`` with ``param`` — ``"t_min"``, or heat dissipation's last blur width
    ``"blur_min"`` (its ``t_min`` is 0) — set by :func:`match_terminal_distortion` so that its
    terminal distortion is ``target``.

    Raises:
        ValueError: as :func:`match_terminal_distortion`, or for another ``param``.
    """
    if param not in ("t_min", "blur_min"):
        raise ValueError(f"param must be 't_min' or 'blur_min', got {param!r}")

    def build(p):
        return dataclasses.replace(process, **{param: p})

    return build(match_terminal_distortion(field, build, target, lo, hi))


def convergence_curve(method: str, process: Process, field: GaussianField, steps, *,
                      pc_ratio: float | None = None) -> dict:
    r"""Exact errors of one sampler against :math:`p_{t_0}` (:math:`t_0` = ``process.t_min``)
    on the log-SNR grids (:func:`~opdiff.diffusion.samplers.log_snr_grid`) of ``steps`` steps.

    For each :math:`n` the output laws :math:`N(m,w)` from the exact marginal :math:`p_T`
    (``init="exact"``: discretisation error only) and from the prior (initialisation +
    discretisation) give, with :math:`p_{t_0}=N(m_0,v_0)` and :math:`d` coefficients,

    .. math:: \frac1d\mathrm{KL}(\hat p_{\rm exact}\|p_{t_0}),\quad
              W_2(\hat p_{\rm exact},p_{t_0})=\Big(\sum_k(m_k-m_{0,k})^2+(\sqrt{w_k}-
              \sqrt{v_{0,k}})^2\Big)^{1/2},\quad \frac1d\mathrm{KL}(\hat p_{\rm prior}\|p_{t_0}),

    ``inf`` for a diverged law (:mod:`opdiff.diffusion.laws`).

    Args:
        method: a sampler name. For ``"pc"``, ``pc_ratio`` :math:`r` sets the Langevin step
            :func:`~opdiff.diffusion.samplers.pc_corrector_eps` (it shrinks with the step);
            ``None`` keeps score_sde's signal-to-noise rule (``snr=0.16``).
        steps: step counts ``[n_runs]``.

    Returns:
        ``nfe``, ``kl_per_dim``, ``w2``, ``kl_total_per_dim``: arrays ``[n_runs]``.
    """
    d = field.size
    m0, v0 = (np.asarray(a) for a in field.marginal(process, process.t_min))
    kl_d, w2, kl_tot, nfes = [], [], [], []
    for n in steps:
        ts = _samplers.log_snr_grid(process, n)
        kw = {}
        if method == "pc":
            kw["corrector_eps"] = None if pc_ratio is None else \
                _samplers.pc_corrector_eps(process, ts, pc_ratio)
        me, we = sampler_law(method, process, field, ts, init="exact", **kw)
        mp, wp = sampler_law(method, process, field, ts, init="prior", **kw)
        kl_d.append(_laws.kl(me, we, m0, v0) / d)
        w2.append(math.sqrt(_laws.w2_sq(me, we, m0, v0)))
        kl_tot.append(_laws.kl(mp, wp, m0, v0) / d)
        nfes.append(_samplers.nfe(method, n))
    return dict(nfe=np.array(nfes), kl_per_dim=np.array(kl_d), w2=np.array(w2),
                kl_total_per_dim=np.array(kl_tot))


def girsanov_bound(field: GaussianField, model: GaussianField, process: Process, t) -> dict:
    r"""The score error of ``model`` on ``field`` along ``t`` and the Girsanov path KL.

    With :math:`\varepsilon(t)=E_{p_t}\|\hat s-\nabla\log p_t\|^2` (:func:`score_error`) and
    :math:`\beta(t)` the squared diffusion coefficient (its mean over coefficients: an isotropic
    process), by the trapezoidal rule on ``t``:

    .. math:: I=\int\varepsilon(t)\,dt,\qquad G=\tfrac12\int\beta(t)\,\varepsilon(t)\,dt,

    :math:`G` the KL between the paths of the *continuous* reverse SDEs with the true and the
    model score from the same :math:`p_T` (Girsanov); it bounds
    :math:`\mathrm{KL}(p_{t_0}\|\hat p_{t_0})` (data first).

    Args:
        t: increasing times ``[n_t]`` in :math:`[t_{\min},T]`.

    Returns:
        ``t``, ``score_error`` (``[n_t]``), ``score_error_integral`` (:math:`I`), ``girsanov``
        (:math:`G`).
    """
    t = np.asarray(t, np.float64)
    err = np.asarray(jax.jit(jax.vmap(
        lambda s: score_error(field, model, process, s)))(jnp.asarray(t)))
    beta = np.asarray(jax.vmap(lambda s: jnp.mean(process.diffusion2(s)))(jnp.asarray(t)))
    return dict(t=t, score_error=err, score_error_integral=float(np.trapezoid(err, t)),
                girsanov=float(0.5 * np.trapezoid(beta * err, t)))


def score_error_split(field: GaussianField, process: Process, *, delta: float, methods,
                      nfe: int, girsanov_steps, n_t: int) -> dict:
    r"""A controlled score error and what it costs each sampler.

    The model is the exact denoiser of ``field`` with its variances inflated,
    :math:`\lambda(1+\delta)`. Returned:

    - the score error along :math:`n_t` log-spaced times in :math:`[t_{\min},T]` and the
      Girsanov path KL :math:`G` (:func:`girsanov_bound`);
    - ``kl_pt0_vs_model_sampler``: per stochastic method of ``methods``, ``[len(girsanov_steps)]``
      values :math:`\mathrm{KL}(p_{t_0}\|\hat p)` of the sampler with the model's score from the
      exact :math:`p_T` on log-SNR grids of ``girsanov_steps`` steps — at most :math:`G` in the
      limit of many steps (data first: the Girsanov direction);
    - ``samplers``: per method, :func:`error_split` at ``nfe`` evaluations
      (:math:`\max(1,\lfloor\mathrm{nfe}/\mathrm{nfe}_1\rfloor)` log-SNR steps, ``n_steps``).
    """
    model = GaussianField(field.shape, field.basis, field.mean, field.var * (1 + delta))
    out = girsanov_bound(field, model, process, np.geomspace(process.t_min, process.T, n_t))
    m0, v0 = (np.asarray(a) for a in field.marginal(process, process.t_min))
    out["kl_pt0_vs_model_sampler"] = {meth: np.array([_laws.kl(m0, v0, *sampler_law(
        meth, process, field, _samplers.log_snr_grid(process, n), model=model, init="exact"))
        for n in girsanov_steps]) for meth in methods if meth in _samplers.STOCHASTIC}
    ns = {m: max(1, nfe // _samplers.nfe(m, 1)) for m in methods}
    out["samplers"] = {m: dict(error_split(m, process, field, _samplers.log_snr_grid(process, n),
                                           model=model), n_steps=n) for m, n in ns.items()}
    return out


def monte_carlo_agreement(method: str, process: Process, field: GaussianField, ts, *,
                          n: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    r"""Two independent computations of one law: the sampler itself
    (:func:`opdiff.diffusion.samplers.sample`, on ``n`` samples drawn from the prior with keys
    from ``seed``, exact denoiser) against :func:`sampler_law`, per coefficient.

    Returns:
        ``(max |z| of the sample means, max |sample var / w - 1|, 6 sqrt(2/n))``: the means'
        z-scores :math:`(\bar z-m)/\sqrt{w/n}` are :math:`N(0,1)`; the variance ratio has
        standard deviation :math:`\approx\sqrt{2/n}`, the third value is a 6-sigma tolerance
        for it.
    """
    key = jax.random.key(seed)
    m0, w0 = process.prior(field.mean, field.var)
    z0 = jnp.asarray(m0) + jnp.sqrt(jnp.asarray(w0)) * jax.random.normal(
        jax.random.fold_in(key, 0), (n, *field.shape), jnp.float64)
    x = _samplers.sample(method, field.denoiser(process), process, process.from_basis(z0), ts,
                         key=jax.random.fold_in(key, 1))
    z = np.asarray(process.to_basis(x), np.float64)
    m, w = (np.asarray(a, np.float64) for a in sampler_law(method, process, field, ts))
    zmax = float(np.max(np.abs(z.mean(0) - m) / np.sqrt(w / n)))
    vdev = float(np.max(np.abs(z.var(0) / w - 1)))
    return zmax, vdev, 6 * math.sqrt(2 / n)


# ----------------------------------------------------------------------------- mixtures


@dataclasses.dataclass(frozen=True, eq=False)
class GaussianMixture:
    r"""A Gaussian mixture :math:`\sum_j\pi_jN(\mu_j,\Sigma_j)` in :math:`\mathbb R^d` (dense).

    Under a process with per-coordinate :math:`a_t, s_t` (``identity`` basis, or any isotropic
    process), :math:`p_t=\sum_j\pi_jN(a_t\mu_j,\ \mathrm{diag}(a_t)\Sigma_j\mathrm{diag}(a_t)+
    \mathrm{diag}(s_t^2))`; scores and denoisers follow with responsibilities
    :math:`w_j(x)\propto\pi_jN(x;\cdot)` (log-sum-exp).
    """

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray

    def __post_init__(self):
        w = np.asarray(self.weights, np.float64)
        mu = np.asarray(self.means, np.float64)
        cov = np.asarray(self.covs, np.float64)
        if w.ndim != 1 or mu.ndim != 2 or mu.shape[0] != w.shape[0]:
            raise ValueError(f"weights [K] and means [K, d] must agree, got {w.shape}, {mu.shape}")
        if cov.shape != (mu.shape[0], mu.shape[1], mu.shape[1]):
            raise ValueError(f"covs must have shape {(mu.shape[0], mu.shape[1], mu.shape[1])}, "
                             f"got {cov.shape}")
        if np.any(w <= 0) or not np.isclose(w.sum(), 1.0):
            raise ValueError(f"weights must be positive and sum to 1, got {w}")
        if not np.allclose(cov, np.swapaxes(cov, -1, -2)) or np.any(
                np.linalg.eigvalsh(0.5 * (cov + np.swapaxes(cov, -1, -2))) <= 0):
            raise ValueError("covs must be symmetric positive definite")
        for name, arr in (("weights", w), ("means", mu), ("covs", cov)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def _check(self, process):
        if process.shape != (self.dim,):
            raise ValueError(f"the process shape {process.shape} does not match the mixture "
                             f"dimension ({self.dim},)")
        if process.basis != "identity" and not process.isotropic:
            raise ValueError("a mixture needs a process diagonal in the identity basis")

    def _batched(self, process, one, x, t):
        """``one(x, t)`` on one point ``[d]``, or vmapped over a batch ``[B, d]`` with ``t`` a
        scalar or one time per point ``[B]``."""
        self._check(process)
        x = jnp.asarray(x)
        if x.ndim == 1 and x.shape == (self.dim,):
            return one(x, t)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must be one point of shape ({self.dim},) or a batch "
                             f"[B, {self.dim}], got {x.shape}")
        t = jnp.asarray(t)
        if t.ndim == 0:
            return jax.vmap(one, in_axes=(0, None))(x, t)
        if t.shape != x.shape[:1]:
            raise ValueError(f"t must be a scalar or have shape [{x.shape[0]}] (one time per "
                             f"point), got {t.shape}")
        return jax.vmap(one)(x, t)

    def _components(self, process, t, dtype):
        a = process.scale(t).astype(dtype)
        s2 = process.variance(t).astype(dtype)
        cov = jnp.asarray(self.covs, dtype) * a[None, :, None] * a[None, None, :]
        cov = cov + jnp.eye(self.dim, dtype=dtype) * s2
        return a, cov

    def log_density(self, process: Process, x: Float[Array, "*batch d"], t) -> Array:
        """:math:`\\log p_t(x)` for one point ``[d]`` or a batch ``[B, d]`` (``t`` a scalar or
        ``[B]``)."""

        def one(x, t):
            a, cov = self._components(process, t, x.dtype)
            means = a * jnp.asarray(self.means, x.dtype)
            chol = jnp.linalg.cholesky(cov)
            diff = x[None] - means
            sol = jax.scipy.linalg.solve_triangular(chol, diff[..., None], lower=True)[..., 0]
            logdet = 2 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), -1)
            logn = -0.5 * (jnp.sum(sol**2, -1) + logdet + self.dim * math.log(2 * math.pi))
            return jax.nn.logsumexp(logn + jnp.log(jnp.asarray(self.weights, x.dtype)))

        return self._batched(process, one, x, t)

    def score(self, process: Process, x: Float[Array, "*batch d"], t) -> Array:
        r"""Exact :math:`-\sum_jw_j(x)C_{j,t}^{-1}(x-a_t\mu_j)`, one point or a batch (as
        :meth:`log_density`)."""

        def one(x, t):
            a, cov = self._components(process, t, x.dtype)
            diff = x[None] - a * jnp.asarray(self.means, x.dtype)
            prec_diff = jnp.linalg.solve(cov, diff[..., None])[..., 0]
            return -jnp.sum(self._responsibilities(process, x, t)[:, None] * prec_diff, 0)

        return self._batched(process, one, x, t)

    def _responsibilities(self, process, x, t):
        a, cov = self._components(process, t, x.dtype)
        diff = x[None] - a * jnp.asarray(self.means, x.dtype)
        chol = jnp.linalg.cholesky(cov)
        sol = jax.scipy.linalg.solve_triangular(chol, diff[..., None], lower=True)[..., 0]
        logdet = 2 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), -1)
        logits = -0.5 * (jnp.sum(sol**2, -1) + logdet) + jnp.log(jnp.asarray(self.weights, x.dtype))
        return jax.nn.softmax(logits)

    def responsibilities(self, process: Process, x, t) -> Array:
        r"""The posterior component probabilities :math:`w_j(x)` ``[K]`` (``[B, K]`` for a
        batch)."""
        return self._batched(process, lambda x, t: self._responsibilities(process, x, t), x, t)

    def posterior_terms(self, process: Process, x: Float[Array, "B d"], t
                        ) -> tuple[Float[Array, "B K d"], Float[Array, "B K"]]:
        r"""The two parts of the exact denoiser for a batch at one time: the per-component
        posterior means :math:`\mu_j+\Sigma_ja_tC_{j,t}^{-1}(x-a_t\mu_j)` ``[B, K, d]`` and
        the responsibilities :math:`w_j(x)` ``[B, K]``, with one Cholesky factor per component
        shared by the whole batch (:meth:`denoise` is :math:`\sum_jw_j[\ldots]_j`; a
        class-conditional denoiser picks one component).

        Raises:
            ValueError: if ``x`` is not ``[B, d]`` or ``t`` is not a scalar.
        """
        self._check(process)
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must be a batch [B, {self.dim}], got {x.shape}")
        if jnp.ndim(t) != 0:
            raise ValueError(f"t must be a scalar (one time for the batch), got shape "
                             f"{jnp.shape(t)}")
        a, cov = self._components(process, t, x.dtype)
        mus = jnp.asarray(self.means, x.dtype)
        chol = jnp.broadcast_to(jnp.linalg.cholesky(cov), (x.shape[0], *cov.shape))
        diff = x[:, None, :] - a * mus[None]  # [B, K, d]
        sol = jax.scipy.linalg.solve_triangular(chol, diff[..., None], lower=True)
        prec_diff = jax.scipy.linalg.solve_triangular(chol, sol, lower=True, trans=1)[..., 0]
        logdet = 2 * jnp.sum(jnp.log(jnp.diagonal(chol[0], axis1=-2, axis2=-1)), -1)  # [K]
        logits = (-0.5 * (jnp.sum(sol[..., 0] ** 2, -1) + logdet[None])
                  + jnp.log(jnp.asarray(self.weights, x.dtype))[None])
        post = mus[None] + jnp.einsum("kij,bkj->bki", jnp.asarray(self.covs, x.dtype),
                                      a * prec_diff)
        return post, jax.nn.softmax(logits, axis=-1)

    def denoise(self, process: Process, x: Float[Array, "*batch d"], t) -> Array:
        r"""Exact :math:`\sum_jw_j(x)[\mu_j+\Sigma_ja_tC_{j,t}^{-1}(x-a_t\mu_j)]` for one point
        ``[d]`` or a batch ``[B, d]`` with ``t`` a scalar or one time per point ``[B]``."""

        def one(x, t):
            a, cov = self._components(process, t, x.dtype)
            mus = jnp.asarray(self.means, x.dtype)
            diff = x[None] - a * mus
            prec_diff = jnp.linalg.solve(cov, diff[..., None])[..., 0]
            post = mus + jnp.einsum("kij,kj->ki", jnp.asarray(self.covs, x.dtype), a * prec_diff)
            return jnp.sum(self._responsibilities(process, x, t)[:, None] * post, 0)

        return self._batched(process, one, x, t)

    def sample(self, key: PRNGKeyArray, n: int, dtype=jnp.float32) -> Array:
        k1, k2 = jax.random.split(key)
        comp = jax.random.choice(k1, len(self.weights), (int(n),), p=jnp.asarray(self.weights))
        chol = jnp.linalg.cholesky(jnp.asarray(self.covs, dtype))
        z = jax.random.normal(k2, (int(n), self.dim), dtype)
        return jnp.asarray(self.means, dtype)[comp] + jnp.einsum("nij,nj->ni", chol[comp], z)
