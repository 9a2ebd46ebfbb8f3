r"""Forward processes: linear Gaussian processes that are diagonal in an orthonormal basis.

Every forward process of the diffusion literature that opdiff studies has the form

.. math:: z_t = a_t(k)\,z_0 + s_t(k)\,\varepsilon,\qquad z=Bx,\ \varepsilon\sim N(0,I),

coefficient by coefficient in a basis :math:`B` (:mod:`opdiff.diffusion.transforms`). One class,
:class:`Process`, covers them all with

.. math:: a_t(k)=\alpha(t)\,d_t(k),\quad d_t(k)=(1-d_{\min})e^{-\lambda_k\tau(t)}+d_{\min},
          \qquad s_t(k)=\sigma(t)\,c_k,

where :math:`(\alpha,\sigma)` is a scalar noise schedule, :math:`\tau(t)` a heat time
(:math:`\tau=\sigma_B^2/2` for a Gaussian blur of width :math:`\sigma_B` pixels),
:math:`\lambda_k=|\kappa_k|^2` the Laplacian eigenvalue of coefficient :math:`k`, and
:math:`c_k^2` a noise power spectrum of mean one. The constructors give the instances:

==========================  ===============================================  =========
constructor                 :math:`a_t(k)`, :math:`s_t(k)`                   prior
==========================  ===============================================  =========
:func:`vp`                  :math:`e^{c(t)}`, :math:`\sqrt{1-e^{2c(t)}}`     N(0, I)
:func:`sub_vp`              :math:`e^{c(t)}`, :math:`1-e^{2c(t)}`            N(0, I)
:func:`ou`                  :math:`e^{-t}`, :math:`\sqrt{1-e^{-2t}}`         N(0, I)
:func:`ve`                  1, :math:`\sigma_{\min}(\sigma_{\max}/\sigma_{\min})^t`  N(0, σ_max² I)
:func:`heat_dissipation`    :math:`e^{-\lambda_k\tau(t)}`, :math:`\sigma`    blurred data
:func:`blurring`            :math:`\alpha_t d_t(k)`, :math:`\sigma_t`        N(0, σ_T² I)
:func:`coloured`            VP scale, :math:`\sigma(t)c_k`, power law        N(0, diag c²)
==========================  ===============================================  =========

with :math:`c(t)=-\tfrac14t^2(\beta_{\max}-\beta_{\min})-\tfrac12t\beta_{\min}` (score_sde).

**The SDE.** A diagonal linear Gaussian process with these marginals is the solution of
:math:`dz=f_t(k)z\,dt+g_t(k)\,dW` with

.. math:: f_t=\frac{d}{dt}\log a_t,\qquad g_t^2=\frac{d s_t^2}{dt}-2f_ts_t^2
          =a_t^2\frac{d}{dt}\Big(\frac{s_t^2}{a_t^2}\Big),

computed here by forward-mode autodiff of the schedule, so no SDE is written twice. It exists
(:math:`g^2\ge0`) iff the per-coefficient SNR :math:`a_t^2/s_t^2` never increases — true for
every instance. For VP this is :math:`f=-\beta/2`, :math:`g^2=\beta`; for VE :math:`f=0`,
:math:`g^2=d\sigma^2/dt`; for heat dissipation :math:`f=-\lambda_k\tau'(t)`,
:math:`g^2=2\lambda_k\tau'(t)\sigma^2`: an Ornstein–Uhlenbeck process per frequency whose
mean obeys the heat equation :math:`\partial_tu=\tau'(t)\Delta u`.

**The heat-equation view.** For VE, Fokker–Planck is :math:`\partial_tp=\tfrac12g^2\Delta p`:
the heat semigroup acts on the *density* at heat time :math:`\sigma^2/2`. Heat dissipation
applies the same semigroup to the *sample* on the image plane at heat time
:math:`\tau=\sigma_B^2/2`. Both are diagonal here, in different spaces.

Like score_sde's VE SDE, the marginal of :func:`ve` at time :math:`t` is
:math:`N(x_0,\sigma(t)^2)` (the :math:`\sigma_{\min}^2` offset at :math:`t=0` is ignored), and
:func:`heat_dissipation` keeps IHDM's constant noise :math:`\sigma` at every level, so its
:math:`t=0` marginal is the data plus :math:`N(0,\sigma^2)`; samplers stop at ``t_min`` and the
oracle measures the gap to the data separately.

Times are scalars; every coefficient array has the sample ``shape`` (broadcastable arrays are
expanded). Processes are immutable and hashable by identity, so they can be static arguments
of ``jax.jit``.

Every public method of a time ``t`` refuses, with a ``ValueError`` naming ``t``, a concrete
time that is NaN, ±inf or outside :math:`[0,T]` (a relative slack of ``1e-6`` absorbs the
rounding of ``T`` to float32); a traced ``t`` (under ``jit``, ``vmap``, ``grad``) is not
checked, so the methods stay traceable.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff._checks import check_finite_array, check_finite_scalar
from opdiff.diffusion import transforms as _transforms
from opdiff.functions import power_law_spectrum
from opdiff.operators.heat import heat_multiplier

__all__ = [
    "NOISE_COLOURS",
    "Process",
    "blurring",
    "check_shape",
    "coloured",
    "heat_dissipation",
    "noise_power_law",
    "ou",
    "sub_vp",
    "ve",
    "vp",
]

NOISE_SCHEDULES = ("vp", "sub_vp", "ve", "cosine", "constant")
BLURS = ("none", "log", "sin2")
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "blue": -1.0, "brown": 2.0}
_TIME_RTOL = 1e-6  # relative slack on T in the time checks (float32 rounding of T)


def _pos(name, value, *, allow_zero=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        need = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be finite and {need}, got {value!r}")
    return v


def check_shape(shape) -> tuple[int, ...]:
    """The shape of one sample as a tuple of positive ints (an int ``n`` means ``(n,)``).

    Raises:
        TypeError: if ``shape`` is neither an int nor an iterable of ints.
        ValueError: if it is empty or has an entry < 1.
    """
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(int(n) for n in shape)
    except TypeError:
        raise TypeError(f"shape must be an int or a tuple of ints, got {shape!r}") from None
    if not shape or any(n < 1 for n in shape):
        raise ValueError(f"shape must be a non-empty tuple of positive ints, got {shape!r}")
    return shape


@dataclasses.dataclass(frozen=True, eq=False)
class Process:
    r"""A forward process diagonal in ``basis``: :math:`z_t=a_t\odot z_0+s_t\odot\varepsilon`.

    Build one with a constructor (:func:`vp`, :func:`ve`, :func:`heat_dissipation`, ...);
    the fields below are their common parameterisation (module docstring).

    Attributes:
        name: a label (``"vp"``, ``"heat"``, ...).
        shape: the shape of one sample; a process applies to ``[..., *shape]``.
        basis: ``"identity"``, ``"dft"`` or ``"dct"``.
        schedule: the scalar :math:`(\alpha,\sigma)`: ``"vp"``, ``"sub_vp"``, ``"ve"``,
            ``"cosine"`` (log-SNR :math:`-2\log\tan(\cdot)` clipped to ±``logsnr_max``) or
            ``"constant"`` (:math:`\alpha=1,\sigma=` ``sigma``).
        beta_min, beta_max: VP/sub-VP rates.
        sigma_min, sigma_max: VE noise range.
        sigma: the constant noise level (``schedule="constant"``).
        logsnr_max: the clip of the cosine log-SNR.
        blur: heat-time schedule: ``"none"``; ``"log"`` (IHDM: :math:`\sigma_B(t)=
            \sigma_{B,\min}(\sigma_{B,\max}/\sigma_{B,\min})^{t/T}`); ``"sin2"``
            (blurring diffusion: :math:`\sigma_B(t)=\sigma_{B,\max}\sin^2(\pi t/2T)`).
        blur_min, blur_max: :math:`\sigma_{B,\min},\sigma_{B,\max}` in pixels.
        d_min: the blur floor :math:`d_{\min}` of blurring diffusion.
        noise_power: :math:`c_k^2` (``shape``, mean 1), or ``None`` for white noise.
        T: the horizon; ``t_min``: where samplers stop (early stopping).
    """

    name: str
    shape: tuple[int, ...]
    basis: str = "identity"
    schedule: str = "vp"
    beta_min: float = 0.1
    beta_max: float = 20.0
    sigma_min: float = 0.01
    sigma_max: float = 50.0
    sigma: float = 0.01
    logsnr_max: float = 10.0
    blur: str = "none"
    blur_min: float = 0.5
    blur_max: float = 20.0
    d_min: float = 0.0
    noise_power: np.ndarray | None = None
    T: float = 1.0
    t_min: float = 1e-3

    def __post_init__(self):
        object.__setattr__(self, "shape", check_shape(self.shape))
        _transforms.check_basis(self.basis)
        if self.schedule not in NOISE_SCHEDULES:
            raise ValueError(f"schedule must be one of {NOISE_SCHEDULES}, got {self.schedule!r}")
        if self.blur not in BLURS:
            raise ValueError(f"blur must be one of {BLURS}, got {self.blur!r}")
        for name in ("beta_min", "sigma", "blur_min", "T"):
            _pos(name, getattr(self, name))
        for name in ("beta_max", "sigma_min", "sigma_max", "logsnr_max", "blur_max"):
            _pos(name, getattr(self, name))
        _pos("d_min", self.d_min, allow_zero=True)
        _pos("t_min", self.t_min, allow_zero=True)
        if self.beta_max < self.beta_min:
            raise ValueError(f"beta_max must be >= beta_min, got {self.beta_max} < {self.beta_min}")
        if self.sigma_max <= self.sigma_min:
            raise ValueError(
                f"sigma_max must be > sigma_min, got {self.sigma_max} <= {self.sigma_min}")
        if self.blur == "log" and self.blur_max <= self.blur_min:
            raise ValueError(f"blur_max must be > blur_min, got {self.blur_max} <= {self.blur_min}")
        if not self.d_min < 1:
            raise ValueError(f"d_min must be in [0, 1), got {self.d_min}")
        if not self.t_min < self.T:
            raise ValueError(f"t_min must be < T, got t_min={self.t_min}, T={self.T}")
        if self.blur != "none" and self.basis == "identity":
            raise ValueError("a blurring process needs basis 'dft' or 'dct', got 'identity'")
        if self.noise_power is not None:
            p = np.asarray(self.noise_power, dtype=np.float64)
            if p.shape != self.shape:
                raise ValueError(
                    f"noise_power must have the sample shape {self.shape}, got {p.shape}")
            if not np.all(np.isfinite(p)) or np.any(p <= 0):
                raise ValueError("noise_power must be finite and positive everywhere")
            p = p / p.mean()
            p.setflags(write=False)
            object.__setattr__(self, "noise_power", p)
        lam = _transforms.laplacian_eigenvalues(self.shape, self.basis)
        lam.setflags(write=False)
        object.__setattr__(self, "_lam", lam)

    # ------------------------------------------------------------------ structure
    @property
    def ndim(self) -> int:
        """Number of spatial axes of one sample."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """The dimension d of one sample."""
        return math.prod(self.shape)

    @property
    def eigenvalues(self) -> np.ndarray:
        r"""Laplacian eigenvalues :math:`\lambda_k` per coefficient (``shape``, float64)."""
        return self._lam

    @property
    def isotropic(self) -> bool:
        """True when :math:`a_t, s_t` are the same for every coefficient (any basis works)."""
        return self.blur == "none" and self.noise_power is None

    @property
    def informative_prior(self) -> bool:
        """True when the prior must carry data moments (heat dissipation keeps the mean)."""
        return self.schedule == "constant"

    def to_basis(self, x: Array) -> Array:
        """Coefficients :math:`Bx` of ``x`` ``[..., *shape]``."""
        return _transforms.to_basis(x, self.basis, self.ndim)

    def from_basis(self, z: Array) -> Array:
        """Samples :math:`B^\\top z` from coefficients ``[..., *shape]``."""
        return _transforms.from_basis(z, self.basis, self.ndim)

    def check_sample(self, name: str, x, *, batched: bool = True) -> Array:
        """``x`` as an array ``[B, *shape]`` (or ``[*shape]``), else a clear ``ValueError``."""
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"{name} must be a floating-point array, got dtype {x.dtype}")
        want = (x.shape[:1] + self.shape) if batched else self.shape
        if x.shape != want or (batched and x.ndim != self.ndim + 1):
            expect = "[batch, " + ", ".join(map(str, self.shape)) + "]" if batched else str(self.shape)
            raise ValueError(
                f"{name} must have shape {expect} to match the process {self.name!r}, "
                f"got {tuple(x.shape)}")
        return x

    def check_time(self, t, name: str = "t"):
        """``t`` unchanged if every entry is finite and in :math:`[0,T]` (up to a relative
        ``1e-6``), else a ``ValueError`` naming ``name``. Traced values pass unchecked."""
        return check_finite_array(name, t, low=0.0, high=self.T, tol=self.T * _TIME_RTOL,
                                  what=f"lie in [0, T={self.T}] and be finite")

    # ------------------------------------------------------------------ schedules
    def _log_alpha_sigma(self, t):
        """Scalar :math:`(\\log\\alpha(t),\\sigma(t))`."""
        if self.schedule in ("vp", "sub_vp"):
            log_a = -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min
            one_minus = -jnp.expm1(2 * log_a)
            sig = jnp.sqrt(one_minus) if self.schedule == "vp" else one_minus
            return log_a, sig
        if self.schedule == "ve":
            return jnp.zeros_like(t), self.sigma_min * (self.sigma_max / self.sigma_min) ** (t / self.T)
        if self.schedule == "cosine":
            lo, hi = -self.logsnr_max, self.logsnr_max
            b = math.atan(math.exp(-0.5 * hi))
            a = math.atan(math.exp(-0.5 * lo)) - b
            logsnr = -2 * jnp.log(jnp.tan(a * t / self.T + b))
            return 0.5 * jax.nn.log_sigmoid(logsnr), jnp.sqrt(jax.nn.sigmoid(-logsnr))
        return jnp.zeros_like(t), self.sigma * jnp.ones_like(t)

    # The public methods of t check a concrete t once, then call these unchecked versions.
    def _heat_time(self, t):
        t = jnp.asarray(t)
        if self.blur == "none":
            return jnp.zeros_like(t)
        if self.blur == "log":
            sb = self.blur_min * (self.blur_max / self.blur_min) ** (t / self.T)
        else:
            sb = self.blur_max * jnp.sin(0.5 * jnp.pi * t / self.T) ** 2
        return 0.5 * sb**2

    def _log_scale(self, t):
        t = jnp.asarray(t, dtype=jnp.result_type(float))
        log_a, _ = self._log_alpha_sigma(t)
        out = log_a * jnp.ones(self.shape, t.dtype)
        if self.blur != "none":
            lam = jnp.asarray(self._lam, t.dtype)
            decay = heat_multiplier(lam, self._heat_time(t), log=True)  # log e^{-lambda tau}
            if self.d_min > 0:
                decay = jnp.logaddexp(math.log1p(-self.d_min) + decay, math.log(self.d_min))
            out = out + decay
        return out

    def _std(self, t):
        t = jnp.asarray(t, dtype=jnp.result_type(float))
        _, sig = self._log_alpha_sigma(t)
        out = sig * jnp.ones(self.shape, t.dtype)
        if self.noise_power is not None:
            out = out * jnp.sqrt(jnp.asarray(self.noise_power, t.dtype))
        return out

    def heat_time(self, t) -> Array:
        r"""The heat time :math:`\tau(t)=\sigma_B(t)^2/2` (0 without blur).

        Raises:
            ValueError: for a concrete ``t`` that is not finite or lies outside ``[0, T]``
                (a traced ``t`` is not checked).
        """
        return self._heat_time(self.check_time(t))

    def log_scale(self, t) -> Float[Array, "*shape"]:
        r""":math:`\log a_t(k)` for every coefficient.

        Raises:
            ValueError: for a concrete ``t`` that is not finite or lies outside ``[0, T]``
                (a traced ``t`` is not checked); the same for :meth:`scale`, :meth:`std`,
                :meth:`variance`, :meth:`drift`, :meth:`diffusion2` and :meth:`level`.
        """
        return self._log_scale(self.check_time(t))

    def scale(self, t) -> Float[Array, "*shape"]:
        """:math:`a_t(k)`; ``t`` is checked as in :meth:`log_scale`."""
        return jnp.exp(self.log_scale(t))

    def std(self, t) -> Float[Array, "*shape"]:
        """:math:`s_t(k)`; ``t`` is checked as in :meth:`log_scale`."""
        return self._std(self.check_time(t))

    def variance(self, t) -> Float[Array, "*shape"]:
        """:math:`s_t(k)^2`; ``t`` is checked as in :meth:`log_scale`."""
        return self.std(t) ** 2

    def drift(self, t) -> Float[Array, "*shape"]:
        r""":math:`f_t(k)=\frac{d}{dt}\log a_t(k)` (forward-mode autodiff of the schedule); ``t``
        is checked as in :meth:`log_scale`."""
        t = jnp.asarray(self.check_time(t), dtype=jnp.result_type(float))
        return jax.jvp(self._log_scale, (t,), (jnp.ones_like(t),))[1]

    def diffusion2(self, t) -> Float[Array, "*shape"]:
        r""":math:`g_t(k)^2=\frac{d}{dt}s_t^2-2f_ts_t^2`; ``t`` is checked as in
        :meth:`log_scale`."""
        t = jnp.asarray(self.check_time(t), dtype=jnp.result_type(float))
        s2, ds2 = jax.jvp(lambda u: self._std(u) ** 2, (t,), (jnp.ones_like(t),))
        f = jax.jvp(self._log_scale, (t,), (jnp.ones_like(t),))[1]
        return ds2 - 2 * f * s2

    def level(self, t) -> Array:
        r"""A scalar noise level increasing in :math:`t`, used to place time grids:
        :math:`\sigma(t)/\alpha(t)` — or the heat time :math:`\tau(t)` for a constant-noise
        (heat dissipation) process. ``t`` is checked as in :meth:`log_scale`."""
        t = jnp.asarray(self.check_time(t), dtype=jnp.result_type(float))
        if self.schedule == "constant":
            return self._heat_time(t)
        log_a, sig = self._log_alpha_sigma(t)
        return sig * jnp.exp(-log_a)

    # ------------------------------------------------------------------ marginals
    def marginal(self, x0: Float[Array, "*shape"], t) -> tuple[Array, Array]:
        """Mean (sample space) and per-coefficient std of :math:`x_t\\mid x_0` for one sample.

        Raises:
            ValueError: if ``x0`` does not have the sample shape, or a concrete ``t`` is not
                finite or lies outside ``[0, T]`` (a traced ``t`` is not checked).
            TypeError: if ``x0`` is not floating-point.
        """
        x0 = self.check_sample("x0", x0, batched=False)
        t = self.check_time(t)
        mean = self.from_basis(jnp.exp(self._log_scale(t)).astype(x0.dtype) * self.to_basis(x0))
        return mean, self._std(t).astype(x0.dtype)

    def sample(self, key: PRNGKeyArray, x0: Float[Array, "batch *shape"], t) -> Array:
        """Draw :math:`x_t\\sim q(x_t\\mid x_0)` for a batch ``x0`` ``[B, *shape]`` at time ``t``
        (a scalar or one time per sample, ``[B]``).

        Raises:
            ValueError: if ``x0`` is not ``[B, *shape]``, ``t`` has another shape, or a
                concrete ``t`` holds NaN, ±inf or a time outside ``[0, T]`` (a traced ``t`` is
                not checked).
            TypeError: if ``x0`` is not floating-point.
        """
        x0 = self.check_sample("x0", x0)
        t = jnp.asarray(self.check_time(t), dtype=x0.dtype)
        if t.ndim not in (0, 1) or (t.ndim == 1 and t.shape[0] != x0.shape[0]):
            raise ValueError(f"t must be a scalar or have shape [{x0.shape[0]}], got {t.shape}")
        tb = jnp.broadcast_to(t, x0.shape[:1])
        a = jax.vmap(lambda u: jnp.exp(self._log_scale(u)))(tb).astype(x0.dtype)
        s = jax.vmap(self._std)(tb).astype(x0.dtype)
        eps = jax.random.normal(key, x0.shape, x0.dtype)
        return self.from_basis(a * self.to_basis(x0) + s * eps)

    def prior(self, mean=None, var=None) -> tuple[Array, Array]:
        r"""The sampler's initial law at :math:`T`, per coefficient: :math:`(m_T, w_T)`.

        VP, sub-VP, OU and coloured noise start from their stationary law :math:`N(0,I)` /
        :math:`N(0,\mathrm{diag}\,c^2)` (score_sde), VE and blurring from :math:`N(0,s_T^2)`. Heat dissipation keeps the mean (DC)
        and the lowest frequencies forever, so its prior must come from data: IHDM draws
        blurred training images; the Gaussian equivalent is :math:`N(a_T\mu,a_T^2\Lambda+
        s_T^2)`, which needs the data's coefficient ``mean`` and ``var``.

        Raises:
            ValueError: if the heat-dissipation prior lacks ``mean`` or ``var``, or (when
                concrete) ``mean`` holds NaN/±inf or ``var`` is negative or not finite.
        """
        T = jnp.asarray(self.T, dtype=jnp.result_type(float))
        s2 = self.variance(T)
        if self.schedule in ("vp", "sub_vp"):  # the stationary law: N(0, I), or N(0, diag c^2)
            c2 = jnp.ones(self.shape, s2.dtype) if self.noise_power is None else \
                jnp.asarray(self.noise_power, s2.dtype)
            return jnp.zeros_like(s2), c2
        if not self.informative_prior:
            return jnp.zeros_like(s2), s2
        if mean is None or var is None:
            raise ValueError(
                f"the prior of {self.name!r} needs the data's coefficient mean and var")
        check_finite_array("mean", mean)
        check_finite_array("var", var, low=0.0, what="be finite and >= 0")
        a = self.scale(T)
        return a * jnp.asarray(mean), a**2 * jnp.asarray(var) + s2

    def sample_prior(self, key: PRNGKeyArray, n: int, mean=None, var=None, dtype=jnp.float32):
        """``n`` draws from :meth:`prior`, in sample space ``[n, *shape]``.

        Raises:
            ValueError: if ``n`` is not an int >= 1, or as :meth:`prior`.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        m, w = self.prior(mean, var)
        z = jax.random.normal(key, (int(n), *self.shape), dtype)
        with jax.numpy_dtype_promotion("standard"):  # the working dtype: the widest of the three
            work = jnp.result_type(m, w, z)
        x = m.astype(work) + jnp.sqrt(w.astype(work)) * z.astype(work)
        return self.from_basis(x.astype(dtype))


# ----------------------------------------------------------------------------- constructors


def vp(shape, *, basis="identity", beta_min=0.1, beta_max=20.0, T=1.0, t_min=1e-3) -> Process:
    """score_sde's variance-preserving SDE (DDPM): :math:`f=-\\beta/2`, :math:`g^2=\\beta`."""
    return Process("vp", shape, basis, "vp", beta_min=beta_min, beta_max=beta_max, T=T, t_min=t_min)


def sub_vp(shape, *, basis="identity", beta_min=0.1, beta_max=20.0, T=1.0, t_min=1e-3) -> Process:
    """score_sde's sub-VP SDE: the VP mean with std :math:`1-e^{2c(t)}`."""
    return Process("sub_vp", shape, basis, "sub_vp", beta_min=beta_min, beta_max=beta_max, T=T,
                   t_min=t_min)


def ou(shape, *, basis="identity", T=5.0, t_min=1e-3) -> Process:
    """The Ornstein–Uhlenbeck process :math:`dX=-X\\,dt+\\sqrt2\\,dB` of Chen et al. (2023):
    VP with :math:`\\beta\\equiv2`, so :math:`a_t=e^{-t}`."""
    return Process("ou", shape, basis, "vp", beta_min=2.0, beta_max=2.0, T=T, t_min=t_min)


def ve(shape, *, basis="identity", sigma_min=0.01, sigma_max=50.0, T=1.0, t_min=1e-5) -> Process:
    """score_sde's variance-exploding SDE: :math:`x_t=x_0+\\sigma(t)\\varepsilon`."""
    return Process("ve", shape, basis, "ve", sigma_min=sigma_min, sigma_max=sigma_max, T=T,
                   t_min=t_min)


def heat_dissipation(shape, *, basis="dct", sigma=0.01, blur_min=0.5, blur_max=None, T=1.0,
                     t_min=0.0) -> Process:
    r"""Inverse heat dissipation (Rissanen et al. 2023): :math:`a_t(k)=e^{-\lambda_k\tau(t)}`,
    :math:`s=\sigma`, blur width log-spaced from ``blur_min`` to ``blur_max`` pixels (default:
    the image side; IHDM uses 20 for 28 px MNIST and 24 for 32 px CIFAR-10)."""
    if blur_max is None:
        blur_max = float(max(check_shape(shape)))
    return Process("heat", shape, basis, "constant", sigma=sigma, blur="log", blur_min=blur_min,
                   blur_max=blur_max, T=T, t_min=t_min)


def blurring(shape, *, basis="dct", blur_max=None, d_min=1e-3, logsnr_max=10.0, T=1.0,
             t_min=1e-3) -> Process:
    r"""Blurring diffusion (Hoogeboom & Salimans 2023): :math:`a_t(k)=\alpha_td_t(k)`,
    :math:`s_t=\sigma_t`, cosine log-SNR clipped to :math:`\pm10`, :math:`\sigma_B(t)=
    \sigma_{B,\max}\sin^2(\pi t/2)`, :math:`d_{\min}=10^{-3}`."""
    if blur_max is None:
        blur_max = float(max(check_shape(shape))) / 2
    return Process("blurring", shape, basis, "cosine", logsnr_max=logsnr_max, blur="sin2",
                   blur_max=blur_max, d_min=d_min, T=T, t_min=t_min)


def noise_power_law(shape, basis: str, exponent: float, k0: float = 1.0) -> np.ndarray:
    r"""A noise power spectrum :math:`c_k^2\propto(|k|^2+k_0^2)^{-\gamma/2}` of mean one, with
    :math:`|k|` the radial frequency in cycles per (longest) image side (``exponent`` :math:`\gamma`:
    0 white, 1 pink, −1 blue, 2 brown).

    Raises:
        ValueError: for the identity basis, a non-finite ``exponent``, a ``k0`` that is not
            finite and >= 0, or ``k0 = 0`` with ``exponent > 0`` (infinite power at DC).
        TypeError: if ``exponent`` or ``k0`` is not a real number.
    """
    shape = check_shape(shape)
    exponent = check_finite_scalar("exponent", exponent)
    k0 = check_finite_scalar("k0", k0, low=0.0, what="be a finite number >= 0")
    if k0 == 0 and exponent > 0:
        raise ValueError(f"k0 must be > 0 for a power law with exponent {exponent} > 0 (the DC "
                         f"power (0 + k0^2)^(-exponent/2) is infinite), got k0={k0}")
    if _transforms.check_basis(basis) == "identity":
        raise ValueError("a coloured (power-law) noise needs a frequency basis: basis 'dft' or "
                         "'dct', got 'identity'")
    # cycles per longest side: the same physical frequency gets the same power on any grid
    p = power_law_spectrum(_transforms.cycles_squared(shape, basis), alpha=exponent, k0=float(k0),
                           dc="keep")
    return p / p.mean()


def coloured(shape, noise="pink", *, basis="dft", k0=1.0, beta_min=0.1, beta_max=20.0, T=1.0,
             t_min=1e-3) -> Process:
    r"""VP with coloured noise: :math:`s_t(k)=\sqrt{1-a_t^2}\,c_k`, prior :math:`N(0,\mathrm{diag}\,c^2)`.

    Args:
        noise: ``"white"``, ``"pink"``, ``"blue"``, ``"brown"``, a number (the exponent
            :math:`\gamma` of :func:`noise_power_law`), or an array of the sample shape — the
            noise power per coefficient, e.g. the data spectrum for "equal SNR" (Falck et al.
            2025): then every frequency has the same SNR at every time.

    Raises:
        ValueError: for an unknown colour name, a non-finite exponent or ``k0`` (see
            :func:`noise_power_law`), or a noise array of the wrong shape or not finite and
            positive.
    """
    shape = check_shape(shape)
    if isinstance(noise, str):
        if noise not in NOISE_COLOURS:
            raise ValueError(f"noise must be one of {tuple(NOISE_COLOURS)}, a number or an array, "
                             f"got {noise!r}")
        name, power = noise, noise_power_law(shape, basis, NOISE_COLOURS[noise], k0)
    elif np.ndim(noise) == 0:
        gamma = check_finite_scalar("noise", noise,
                                    what="be a colour name, a finite exponent or an array")
        name, power = f"gamma={gamma:g}", noise_power_law(shape, basis, gamma, k0)
    else:
        name, power = "custom", np.asarray(noise, dtype=np.float64)
    return Process(f"coloured-{name}", shape, basis, "vp", beta_min=beta_min, beta_max=beta_max,
                   noise_power=power, T=T, t_min=t_min)
