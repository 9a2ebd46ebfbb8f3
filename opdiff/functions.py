r"""Input-function spaces for operator learning, and the sensor maps that read them.

Every space is a frozen (hashable) dataclass with the same two members, so a data set can take
any of them (:class:`FunctionSpace`):

- ``grid``: the points where sampled functions are given (float64 NumPy);
- ``sample(n, *, key, dtype=jnp.float32)``: ``n`` functions on ``grid``, shape ``[n, *grid
  shape]``, drawn with the explicit key; float64 when asked (and ``jax_enable_x64`` is on).

Spaces:

- :class:`GaussianRandomField`: mean-zero GRF on an interval with an RBF or Matérn covariance,
  sampled exactly on an ``n_grid``-point grid through a Cholesky factor (with jitter) or a
  truncated Karhunen–Loève expansion; the factor is computed once per instance in float64.
  DeepONet's input space (Lu et al. 2021, DeepXDE ``GRF``) is the default: RBF kernel
  :math:`e^{-|x-x'|^2/(2l^2)}`, variance 1, :math:`l=0.2`, :math:`N=1000` points on
  :math:`[0,1]`.
- :class:`PeriodicPowerLawField`: stationary periodic field on :math:`[0,1)^d`, :math:`d=1,2`,
  with power spectrum :math:`\propto(|k|^2+k_0^2)^{-\alpha/2}` (:func:`power_law_spectrum`, the
  one definition of that spectrum in opdiff), sampled exactly by FFT.
- :class:`Sinusoids`: :math:`\sin(2\pi fx)` with :math:`f\sim U(0,f_{\max})` (the NOMAD family).

Sensors: :func:`sensor_matrix` is the linear map from grid values to interpolated values at
sensor points (piecewise linear, or the not-a-knot cubic spline of SciPy's
``interp1d(kind="cubic")`` that DeepXDE uses); :func:`interpolate` applies it to a batch.
Which one is used matters (notes §6.3): cubic interpolation is smoother than the piecewise-
linear interpolant that the sensor-count theory (Lu et al. 2021, Thm 1) is stated for. For an
RBF GRF the latter's error is

.. math:: \mathbb E\max_x|u(x)-u_m(x)| \approx \frac{c}{(m-1)^2l^2},

with :math:`c\approx0.36`–:math:`0.47` over :math:`l\in[0.1,0.4]`, :math:`m\in[11,81]`
(:math:`h^2\max|u''|/8` with :math:`\operatorname{Var}u''=3/l^4`; :math:`c` grows slowly as
:math:`l` shrinks, an extreme-value effect).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.interpolate
from jaxtyping import Array, Float, PRNGKeyArray
from opdiff._checks import check_positive_int

__all__ = [
    "FunctionSpace",
    "GaussianRandomField",
    "PeriodicPowerLawField",
    "Sinusoids",
    "power_law_spectrum",
    "KERNELS",
    "METHODS",
    "SENSOR_METHODS",
    "sensor_matrix",
    "interpolate",
    "equispaced_sensors",
    "covariance_z_scores",
]

_HIGHEST = jax.lax.Precision.HIGHEST  # full float32 matmuls on GPUs too (no TF32/bf16 passes)


def _rbf(s):
    return np.exp(-0.5 * s * s)


def _matern12(s):
    return np.exp(-s)


def _matern32(s):
    a = math.sqrt(3.0) * s
    return (1.0 + a) * np.exp(-a)


def _matern52(s):
    a = math.sqrt(5.0) * s
    return (1.0 + a + a * a / 3.0) * np.exp(-a)


# Correlation functions of s = r / l.
_CORRELATIONS = {"rbf": _rbf, "matern12": _matern12, "matern32": _matern32, "matern52": _matern52}
KERNELS = tuple(_CORRELATIONS)
METHODS = ("cholesky", "kl")
SENSOR_METHODS = ("linear", "cubic")


# ----------------------------------------------------------------------------- validation



_SIGNS = {"positive": (" > 0", lambda v: v > 0), "nonnegative": (" >= 0", lambda v: v >= 0),
          "any": ("", lambda v: True)}


def _check_real(name, value, sign="positive"):
    """A finite real number with the given sign (``"positive"``, ``"nonnegative"``, ``"any"``)."""
    suffix, holds = _SIGNS[sign]
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and holds(value)
    if not ok:
        raise ValueError(f"{name} must be a finite number{suffix}, got {value!r}")
    return value


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _check_domain(name, value):
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (a, b) of finite numbers with a < b, "
                         f"got {value!r}") from None
    if not (math.isfinite(a) and math.isfinite(b) and a < b):
        raise ValueError(f"{name} must be a pair (a, b) of finite numbers with a < b, "
                         f"got {value!r}")
    return (a, b)


def _check_dtype(dtype):
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or not jnp.issubdtype(dt, jnp.floating):
        raise ValueError(f"dtype must be a real floating dtype (float32 or float64), got {dtype!r}")
    return dt


def _set(obj, name, value):
    """Normalise a field of a frozen dataclass in ``__post_init__``."""
    object.__setattr__(obj, name, value)


def _equispaced(m, domain):
    return np.linspace(domain[0], domain[1], m)


class _IntervalGrid:
    """Shared by the spaces on a closed interval: validation of ``n_grid`` / ``domain`` and
    the equispaced ``grid`` (both endpoints included)."""

    def _validate_interval(self):
        _set(self, "n_grid", check_positive_int("n_grid", self.n_grid, minimum=2))
        _set(self, "domain", _check_domain("domain", self.domain))

    @property
    def grid(self) -> Float[np.ndarray, " n_grid"]:
        """``n_grid`` equispaced points :math:`a + (b-a)j/(n_{grid}-1)`, float64."""
        return _equispaced(self.n_grid, self.domain)


@runtime_checkable
class FunctionSpace(Protocol):
    """What a data set needs from an input-function space.

    ``sample(n, key=key)`` has shape ``[n, *S]`` and its entry ``[i, *j]`` is function ``i`` at
    the point ``grid[j]`` (1-D spaces: ``grid`` has shape ``S = [N]``; 2-D fields: ``grid`` has
    shape ``[*S, 2]``).
    """

    @property
    def grid(self) -> np.ndarray: ...

    def sample(self, n: int, *, key: PRNGKeyArray, dtype=jnp.float32) -> Array: ...


# ----------------------------------------------------------------------------- GRF


@functools.partial(jax.jit, static_argnames=("n", "dtype"))
def _gaussian_sample(key, factor, *, n, dtype):
    # u = z F^T, z ~ N(0, I): Cov(u) = F F^T. One matmul of standard normals with the factor.
    z = jax.random.normal(key, (n, factor.shape[1]), dtype)
    return jnp.matmul(z, factor.T, precision=_HIGHEST)


@dataclasses.dataclass(frozen=True)
class GaussianRandomField(_IntervalGrid):
    r"""Mean-zero Gaussian random field on an interval, sampled exactly on a grid.

    The covariance is :math:`\operatorname{Cov}(u(x),u(x'))=\sigma^2\rho(r/l)`,
    :math:`r=|x-x'|`, with

    - ``"rbf"``: :math:`\rho(s)=e^{-s^2/2}` (scikit-learn / DeepXDE convention);
    - ``"matern12"``: :math:`\rho(s)=e^{-s}` (the "AE" kernel; Brownian-like, rough paths);
    - ``"matern32"``: :math:`\rho(s)=(1+\sqrt3 s)e^{-\sqrt3 s}`;
    - ``"matern52"``: :math:`\rho(s)=(1+\sqrt5 s+5s^2/3)e^{-\sqrt5 s}`.

    Samples are :math:`u=Fz` with :math:`z\sim N(0,I_r)` and a float64 factor :math:`F`
    (``[n_grid, r]``), computed on first use and cached per field (by value):

    - ``"cholesky"``: :math:`FF^\top=K+\varepsilon I`, :math:`F` lower triangular,
      :math:`\varepsilon=` ``jitter``. The RBF matrix is numerically singular (for
      :math:`l=0.2`, :math:`N=1000` only ~16 eigenvalues exceed :math:`10^{-10}\lambda_{\max}`
      and the smallest computed ones are :math:`\approx-2\cdot10^{-13}`), so a jitter is needed:
      :math:`10^{-13}` (DeepXDE's value) is the smallest power of ten that factors it in
      float64 with OpenBLAS, only just; the default :math:`10^{-10}` leaves a margin.
    - ``"kl"``: :math:`K=V\Lambda V^\top` (``numpy.linalg.eigh``, float64), keep the
      eigenpairs with :math:`\lambda_i\ge` ``kl_tol`` :math:`\cdot\lambda_{\max}` and set
      :math:`F=V_r\Lambda_r^{1/2}` (columns by decreasing eigenvalue; ``rank`` = r). For RBF,
      :math:`l=0.2`, :math:`N=1000`, the default tolerance keeps r = 16 modes.

    Attributes:
        kernel: one of :data:`KERNELS`.
        length_scale: :math:`l>0`.
        n_grid: number of grid points, >= 2 (both endpoints included).
        domain: the interval :math:`(a,b)`, :math:`a<b`.
        variance: :math:`\sigma^2>0`, the pointwise variance.
        method: ``"kl"`` (default) or ``"cholesky"``. Both sample the same law up to the
            stated :meth:`sampling_error` (about 1e-10 relative, far below float32
            resolution); KL is the default because a smooth kernel has low numerical rank
            (16 for DeepONet's RBF, l = 0.2, N = 1000), so sampling 10,000 functions costs a
            ``[10000, 16] x [16, 1000]`` product instead of a ``1000 x 1000`` one and 10^7
            normals (0.03 s instead of 0.3 s here). Rough kernels keep nearly full rank.
        jitter: :math:`\varepsilon\ge0`, added to the diagonal (cholesky only).
        kl_tol: relative eigenvalue cut-off in :math:`[0,1)` (kl only).

    Raises:
        ValueError: naming the argument, for any invalid field (at construction); naming
            ``jitter`` when :math:`K+\varepsilon I` is numerically indefinite (at the first
            factorisation).

    Example:
        >>> grf = GaussianRandomField(length_scale=0.2, n_grid=1000)
        >>> u = grf.sample(10_000, key=jax.random.key(0))   # [10000, 1000] float32
    """

    kernel: str = "rbf"
    length_scale: float = 0.2
    n_grid: int = 1000
    domain: tuple[float, float] = (0.0, 1.0)
    variance: float = 1.0
    method: str = "kl"
    jitter: float = 1e-10
    kl_tol: float = 1e-10

    def __post_init__(self):
        _check_choice("kernel", self.kernel, KERNELS)
        _set(self, "length_scale", _check_real("length_scale", self.length_scale))
        self._validate_interval()
        _set(self, "variance", _check_real("variance", self.variance))
        _check_choice("method", self.method, METHODS)
        _set(self, "jitter", _check_real("jitter", self.jitter, "nonnegative"))
        kl_tol = _check_real("kl_tol", self.kl_tol, "nonnegative")
        if not kl_tol < 1.0:
            raise ValueError(f"kl_tol must be in [0, 1), got {kl_tol!r}")
        _set(self, "kl_tol", kl_tol)

    def covariance_function(self, r) -> np.ndarray:
        r""":math:`\sigma^2\rho(|r|/l)` at distances ``r`` (NumPy, float64, any shape)."""
        s = np.abs(np.asarray(r, dtype=np.float64)) / self.length_scale
        return self.variance * _CORRELATIONS[self.kernel](s)

    def covariance(self) -> Float[np.ndarray, "n_grid n_grid"]:
        r"""The exact kernel matrix :math:`K_{ij}=\sigma^2\rho(|x_i-x_j|/l)` on ``grid``."""
        x = self.grid
        return self.covariance_function(x[:, None] - x[None, :])

    @property
    def factor(self) -> Float[np.ndarray, "n_grid rank"]:
        r"""The float64 factor :math:`F` (read-only); samples have covariance :math:`FF^\top`.

        Computed on first use and cached per field (equal fields share it), so building a
        field anew on every call costs nothing after the first.
        """
        return _factor(self)

    @property
    def rank(self) -> int:
        """Number of standard normals per sample (columns of :attr:`factor`)."""
        return self.factor.shape[1]

    def sampling_error(self, norm: str = "2") -> float:
        r"""The covariance error of the sampler, :math:`\|FF^\top-K\|` in float64 arithmetic.

        - ``"cholesky"``: :math:`FF^\top=K+\varepsilon I`, so the error is
          :math:`\varepsilon I`: ``jitter`` in the operator 2-norm (``norm="2"``) and
          ``n_grid * jitter`` in the trace (nuclear) norm (``norm="trace"``). Rounding adds
          :math:`O(\epsilon_{\text{mach}}\|K\|_2)` (about :math:`10^{-14}` for RBF,
          :math:`l=0.2`, :math:`N=1000`), not included.
        - ``"kl"``: :math:`K-FF^\top=\sum_{i\,\text{dropped}}\lambda_iv_iv_i^\top`, so the error
          is :math:`\max_{\text{dropped}}|\lambda_i|\le` ``kl_tol`` :math:`\lambda_{\max}` in the
          2-norm and :math:`\sum_{\text{dropped}}|\lambda_i|` in the trace norm (the trace of
          the dropped part, plus the moduli of any eigenvalues that rounding made negative);
          0 when nothing is dropped. The trace norm is :math:`\mathbb E\|u-u_{\text{KL}}\|^2`
          (Euclidean norm of the grid values) when the exact field :math:`u=V\Lambda^{1/2}z`
          and its truncation are driven by the same normals :math:`z`.

        Args:
            norm: ``"2"`` (operator 2-norm) or ``"trace"`` (nuclear norm).
        """
        _check_choice("norm", norm, ("2", "trace"))
        if self.method == "cholesky":
            return float(self.jitter if norm == "2" else self.n_grid * self.jitter)
        lam = _eigh(self)[0]
        dropped = np.abs(lam[lam < self.kl_tol * lam[0]])
        if dropped.size == 0:
            return 0.0
        return float(dropped.max() if norm == "2" else dropped.sum())

    def sample(
        self, n: int, *, key: PRNGKeyArray, dtype=jnp.float32
    ) -> Float[Array, "n n_grid"]:
        """``n`` independent samples on ``grid``: one jitted matmul :math:`ZF^\\top`.

        Args:
            n: number of functions, >= 1.
            key: PRNG key (the only source of randomness; same key, same samples).
            dtype: float32 (default) or float64 (needs ``jax_enable_x64``).

        Returns:
            ``[n, n_grid]`` array of dtype ``dtype``.
        """
        n, dtype = check_positive_int("n", n), _check_dtype(dtype)
        return _gaussian_sample(key, jnp.asarray(self.factor, dtype), n=n, dtype=dtype)


@functools.lru_cache(maxsize=16)
def _eigh(grf):
    lam, vec = np.linalg.eigh(grf.covariance())
    lam, vec = lam[::-1].copy(), vec[:, ::-1].copy()  # decreasing
    lam.setflags(write=False)
    vec.setflags(write=False)
    return lam, vec


@functools.lru_cache(maxsize=16)
def _factor(grf):
    if grf.method == "cholesky":
        k = grf.covariance()
        k[np.diag_indices_from(k)] += grf.jitter
        try:
            f = np.linalg.cholesky(k)
        except np.linalg.LinAlgError:
            raise ValueError(
                f"jitter={grf.jitter!r} is too small: K + jitter*I is not numerically positive "
                f"definite for kernel={grf.kernel!r}, length_scale={grf.length_scale!r}, "
                f"n_grid={grf.n_grid}; increase jitter or use method='kl'") from None
    else:
        lam, vec = _eigh(grf)
        keep = lam >= grf.kl_tol * lam[0]
        f = vec[:, keep] * np.sqrt(lam[keep])
    f.setflags(write=False)
    return f


# ----------------------------------------------------------------------------- periodic field


DC_CONVENTIONS = ("drop", "keep")


def power_law_spectrum(k2, *, alpha: float, k0: float, total: float | None = None,
                       dc: str = "drop") -> np.ndarray:
    r"""The power-law spectrum :math:`\lambda_k=c\,(|k|^2+k_0^2)^{-\alpha/2}` per mode.

    Args:
        k2: :math:`|k|^2` per mode (any shape; the caller's wavenumber units: integers per
            axis for :class:`PeriodicPowerLawField`, cycles per longest image side for the
            diffusion bases).
        alpha: the exponent :math:`\alpha`.
        k0: the roll-off :math:`k_0\ge0` (must be > 0 when ``dc="keep"`` and ``alpha > 0``).
        total: :math:`c` makes :math:`\sum_k\lambda_k` equal ``total``; ``None``: :math:`c=1`.
        dc: the convention at :math:`|k|=0`: ``"drop"`` sets :math:`\lambda_0=0` — a field
            whose every sample has mean zero over the domain, as :class:`PeriodicPowerLawField`
            promises (its pointwise variance is then exactly the sum of the rest); ``"keep"``
            gives :math:`\lambda_0=ck_0^{-\alpha}` — a non-degenerate law, as the Gaussian
            oracle (:func:`opdiff.diffusion.oracle.power_law_field`: KL and log-densities need
            every variance > 0) and a coloured noise
            (:func:`opdiff.diffusion.processes.noise_power_law`: noise at every coefficient)
            need.

    Returns:
        :math:`\lambda` (``k2``'s shape, float64).

    Raises:
        ValueError: for an unknown ``dc``.
    """
    if dc not in DC_CONVENTIONS:
        raise ValueError(f"dc must be one of {DC_CONVENTIONS}, got {dc!r}")
    k2 = np.asarray(k2, dtype=np.float64)
    if dc == "keep":
        lam = (k2 + k0**2) ** (-alpha / 2)
    else:
        lam = np.zeros(k2.shape)
        nz = k2 > 0
        lam[nz] = (k2[nz] + k0**2) ** (-alpha / 2)
    if total is not None:
        lam *= total / lam.sum()
    return lam


@functools.partial(jax.jit, static_argnames=("n", "shape", "dtype"))
def _periodic_sample(key, amplitude, *, n, shape, dtype):
    # Real white noise w has E|fft(w)_k|^2 = N; scaling mode k by sqrt(N P_k) and inverting
    # gives E|fft(u)_k / N|^2 = P_k, and u is real because P(-k) = P(k).
    axes = tuple(range(1, len(shape) + 1))
    w = jax.random.normal(key, (n, *shape), dtype)
    spec = jnp.fft.rfftn(w, axes=axes)
    return jnp.fft.irfftn(spec * amplitude.astype(spec.dtype), s=shape, axes=axes)


@dataclasses.dataclass(frozen=True)
class PeriodicPowerLawField:
    r"""Stationary mean-zero Gaussian field on the torus :math:`[0,1)^d`, :math:`d\in\{1,2\}`.

    On the grid :math:`x_j=j/n` (per axis; :math:`N` points in all), with DFT coefficients
    :math:`\hat u_k=N^{-1}\sum_ju(x_j)e^{-2\pi ik\cdot x_j}` (``numpy.fft.fftn(u) / N``) at
    integer wavenumbers :math:`k` (``fftfreq`` order), the :math:`\hat u_k` are independent
    up to :math:`\hat u_{-k}=\overline{\hat u_k}` with

    .. math:: \mathbb E|\hat u_k|^2=P(k)=c\,(|k|^2+k_0^2)^{-\alpha/2}\ (k\ne0),\qquad P(0)=0,

    and :math:`c` normalises :math:`\sum_kP(k)=\sigma^2` (:func:`power_law_spectrum`,
    ``dc="drop"``). So the field has mean zero over the
    torus (exactly, in every sample) and pointwise variance exactly :math:`\sigma^2` on every
    grid; its covariance is circulant, :math:`C(x_j-x_l)=\sum_kP(k)e^{2\pi ik\cdot(x_j-x_l)}`.
    As :math:`n\to\infty` the grid spectrum converges to a continuum field only for
    :math:`\alpha>d` (for :math:`\alpha\le d` the normalised field gets rougher with :math:`n`);
    paths are Hölder-:math:`\gamma` for :math:`\gamma<(\alpha-d)/2`.

    Sampling is exact: real white noise, FFT, multiply by :math:`\sqrt{NP(k)}`, inverse FFT
    (``rfftn``/``irfftn``, so the result is real by construction).

    Attributes:
        n: grid size: an int for a 1-D grid of ``n`` points, ``(n1, n2)`` for a 2-D grid; each
            >= 2.
        alpha: spectral exponent :math:`\alpha` (finite; larger is smoother).
        k0: :math:`k_0\ge0`, the roll-off wavenumber.
        variance: :math:`\sigma^2>0`, the pointwise variance.
    """

    n: int | tuple[int, int] = 256
    alpha: float = 2.0
    k0: float = 1.0
    variance: float = 1.0

    def __post_init__(self):
        if isinstance(self.n, (tuple, list)):
            if len(self.n) != 2:
                raise ValueError(f"n must be an int or a pair (n1, n2), got {self.n!r}")
            _set(self, "n", tuple(check_positive_int("n", v, minimum=2) for v in self.n))
        else:
            _set(self, "n", check_positive_int("n", self.n, minimum=2))
        _set(self, "alpha", _check_real("alpha", self.alpha, "any"))
        _set(self, "k0", _check_real("k0", self.k0, "nonnegative"))
        _set(self, "variance", _check_real("variance", self.variance))

    @property
    def shape(self) -> tuple[int, ...]:
        """The grid shape: ``(n,)`` or ``(n1, n2)``."""
        return self.n if isinstance(self.n, tuple) else (self.n,)

    @property
    def ndim(self) -> int:
        """The dimension d (1 or 2)."""
        return len(self.shape)

    @property
    def grid(self) -> np.ndarray:
        """Grid points :math:`j/n`: shape ``[n]`` in 1-D, ``[n1, n2, 2]`` in 2-D (float64)."""
        axes = [np.arange(m) / m for m in self.shape]
        if self.ndim == 1:
            return axes[0]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)

    def wavenumbers(self) -> np.ndarray:
        r""":math:`|k|^2` on the FFT grid (integers, ``fftfreq`` order), grid shape."""
        ks = [np.fft.fftfreq(m, 1.0 / m) for m in self.shape]
        return sum(np.meshgrid(*[k * k for k in ks], indexing="ij"))

    @functools.cached_property
    def _spectrum(self):
        p = power_law_spectrum(self.wavenumbers(), alpha=self.alpha, k0=self.k0,
                               total=self.variance, dc="drop")
        p.setflags(write=False)
        return p

    def spectrum(self) -> np.ndarray:
        r""":math:`P(k)=\mathbb E|\hat u_k|^2` on the FFT wavenumber grid (grid shape, float64).

        :math:`P(0)=0` and :math:`\sum_kP(k)=` ``variance``.
        """
        return self._spectrum.copy()

    def covariance(self) -> Float[np.ndarray, "n n"]:
        r"""1-D only: the exact circulant covariance :math:`C_{jl}=c_{(j-l)\bmod n}`,
        :math:`c=n\cdot\texttt{ifft}(P)` (real, since :math:`P` is even), float64.

        Raises:
            ValueError: for a 2-D field (``n`` is a pair).
        """
        if self.ndim != 1:
            raise ValueError(f"n must be an int (a 1-D field) for covariance(), got n={self.n!r}")
        c = np.real(np.fft.ifft(self._spectrum)) * self.n
        j = np.arange(self.n)
        return c[(j[:, None] - j[None, :]) % self.n]

    def sample(self, n_samples: int, *, key: PRNGKeyArray, dtype=jnp.float32) -> Array:
        """``n_samples`` real fields on ``grid``: shape ``[n_samples, *shape]``.

        Args:
            n_samples: number of fields, >= 1.
            key: PRNG key.
            dtype: float32 (default) or float64 (needs ``jax_enable_x64``).
        """
        n_samples, dtype = check_positive_int("n_samples", n_samples), _check_dtype(dtype)
        half = self._spectrum[..., : self.shape[-1] // 2 + 1]
        amplitude = jnp.asarray(np.sqrt(math.prod(self.shape) * half), dtype)
        return _periodic_sample(key, amplitude, n=n_samples, shape=self.shape, dtype=dtype)


# ----------------------------------------------------------------------------- sinusoids


@functools.partial(jax.jit, static_argnames=("n", "dtype"))
def _sinusoid_sample(key, grid, f_max, *, n, dtype):
    f = jax.random.uniform(key, (n,), dtype, minval=0.0, maxval=f_max)
    f = jnp.minimum(f, jnp.nextafter(f_max, jnp.zeros((), dtype)))  # [0, f_max) after rounding
    return jnp.sin(2 * jnp.pi * f[:, None] * grid[None, :]), f


@dataclasses.dataclass(frozen=True)
class Sinusoids(_IntervalGrid):
    r"""Sine waves :math:`s(x)=\sin(2\pi fx)` with :math:`f\sim U[0,f_{\max})`.

    The family of NOMAD (Seidman et al. 2022) whose PCA spectrum decays slowly: a linear
    decoder needs many modes although the family has one parameter.

    Attributes:
        f_max: :math:`f_{\max}>0`.
        n_grid: number of grid points, >= 2.
        domain: the interval :math:`(a,b)`, :math:`a<b`.
    """

    f_max: float = 10.0
    n_grid: int = 1000
    domain: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self):
        _set(self, "f_max", _check_real("f_max", self.f_max))
        self._validate_interval()

    def sample_with_frequencies(
        self, n: int, *, key: PRNGKeyArray, dtype=jnp.float32
    ) -> tuple[Float[Array, "n n_grid"], Float[Array, " n"]]:
        """``n`` sine waves on ``grid`` and their frequencies ``f`` (``[n]``, in ``[0, f_max)``)."""
        n, dtype = check_positive_int("n", n), _check_dtype(dtype)
        grid = jnp.asarray(self.grid, dtype)
        return _sinusoid_sample(key, grid, jnp.asarray(self.f_max, dtype), n=n, dtype=dtype)

    def sample(self, n: int, *, key: PRNGKeyArray, dtype=jnp.float32) -> Float[Array, "n n_grid"]:
        """``n`` sine waves on ``grid``; same values as :meth:`sample_with_frequencies`."""
        return self.sample_with_frequencies(n, key=key, dtype=dtype)[0]


# ----------------------------------------------------------------------------- sensors


def equispaced_sensors(m: int, domain: tuple[float, float] = (0.0, 1.0)) -> Float[np.ndarray, " m"]:
    """``m >= 2`` equispaced sensor locations on ``domain``, endpoints included (float64).

    Lu et al. use ``m = 100`` on ``[0, 1]``. For ``m - 1`` dividing ``n_grid - 1`` the sensors
    are grid points of a space with the same domain.
    """
    return _equispaced(check_positive_int("m", m, minimum=2), _check_domain("domain", domain))


def _check_grid(grid, minimum):
    if isinstance(grid, jax.core.Tracer):
        raise ValueError("grid must be concrete (a NumPy array or constant), not a traced value")
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 1 or g.size < minimum:
        raise ValueError(f"grid must be 1-D with at least {minimum} points, got shape {g.shape}")
    if not np.all(np.isfinite(g)) or not np.all(np.diff(g) > 0):
        raise ValueError("grid must be finite and strictly increasing")
    return g


def _check_points(points, grid):
    if isinstance(points, jax.core.Tracer):
        raise ValueError("points must be concrete (a NumPy array or constant), not a traced value")
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"points must be 1-D (m,), got shape {p.shape}")
    lo, hi = float(grid[0]), float(grid[-1])
    tol = 1e-12 * (hi - lo)
    if not np.all(np.isfinite(p)) or np.any(p < lo - tol) or np.any(p > hi + tol):
        bad = p[~(np.isfinite(p) & (p >= lo - tol) & (p <= hi + tol))]
        raise ValueError(f"points must lie in the grid's domain [{lo!r}, {hi!r}], got {bad[:5]!r}"
                         f"{' ...' if bad.size > 5 else ''}")
    return np.clip(p, lo, hi)


@functools.lru_cache(maxsize=16)
def _sensor_matrix_cached(grid_bytes, points_bytes, method):
    grid = np.frombuffer(grid_bytes, dtype=np.float64)
    points = np.frombuffer(points_bytes, dtype=np.float64)
    n = grid.size
    if method == "linear":
        i = np.clip(np.searchsorted(grid, points, side="right") - 1, 0, n - 2)
        t = (points - grid[i]) / (grid[i + 1] - grid[i])
        s = np.zeros((points.size, n))
        rows = np.arange(points.size)
        s[rows, i] = 1.0 - t
        s[rows, i + 1] += t
    else:
        # Interpolating the identity column by column: row r holds the weights of point r.
        # make_interp_spline(k=3) has not-a-knot ends, as interp1d(kind="cubic").
        s = scipy.interpolate.make_interp_spline(grid, np.eye(n), k=3)(points)
    s.setflags(write=False)
    return s


def _sensor_matrix(grid, points, method):
    _check_choice("method", method, SENSOR_METHODS)
    g = _check_grid(grid, 4 if method == "cubic" else 2)
    p = _check_points(points, g)
    return _sensor_matrix_cached(g.tobytes(), p.tobytes(), method)


def sensor_matrix(
    grid: Float[np.ndarray, " N"], points: Float[np.ndarray, " m"], method: str = "linear"
) -> Float[np.ndarray, "m N"]:
    r"""The linear map :math:`S` from values on ``grid`` to interpolated values at ``points``.

    :math:`(Sv)_i=\mathcal I[v](p_i)`, where :math:`\mathcal I[v]` is

    - ``"linear"``: the piecewise-linear interpolant (``numpy.interp``); row :math:`i` has
      weights :math:`1-t,t` on the grid interval :math:`[x_j,x_{j+1}]\ni p_i`,
      :math:`t=(p_i-x_j)/(x_{j+1}-x_j)`; exact for linear functions.
    - ``"cubic"``: the not-a-knot cubic spline (``scipy.interpolate.make_interp_spline(k=3)``,
      the same as ``interp1d(kind="cubic")``); exact for cubic polynomials.

    Rows sum to 1. Matrices are cached per (grid, points, method), so repeated calls are cheap.

    Args:
        grid: ``[N]`` strictly increasing nodes (``N >= 2``; ``N >= 4`` for cubic).
        points: ``[m]`` evaluation points in ``[grid[0], grid[-1]]`` (a relative slack of
            1e-12 of the width is allowed for rounding, and clipped).
        method: ``"linear"`` or ``"cubic"``.

    Returns:
        ``[m, N]`` float64 matrix.

    Raises:
        ValueError: naming ``grid``, ``points`` or ``method`` when invalid.
    """
    return _sensor_matrix(grid, points, method).copy()


def interpolate(
    values: Float[Array, "*batch N"],
    grid: Float[np.ndarray, " N"],
    points: Float[np.ndarray, " m"],
    method: str = "linear",
) -> Float[Array, "*batch m"]:
    r"""Interpolate functions given on ``grid`` at ``points``: ``values @ sensor_matrix(...).T``.

    Works under ``jax.jit``/``vmap`` in ``values`` (``grid`` and ``points`` must be concrete);
    the result has the dtype of ``values`` (at least float32).

    Args:
        values: ``[..., N]`` function values on ``grid``; batch dimensions are kept.
        grid: ``[N]`` nodes; see :func:`sensor_matrix`.
        points: ``[m]`` evaluation points inside the grid's domain.
        method: ``"linear"`` or ``"cubic"``.

    Returns:
        ``[..., m]`` interpolated values.

    Raises:
        ValueError: naming ``values`` if its last dimension is not ``len(grid)`` or (when it is
            concrete, i.e. not traced under ``jit``) it contains NaN; naming ``grid``,
            ``points`` or ``method`` as in :func:`sensor_matrix`.
    """
    s = _sensor_matrix(grid, points, method)
    shape = np.shape(values)
    if len(shape) < 1 or shape[-1] != s.shape[1]:
        raise ValueError(f"values must have shape (..., {s.shape[1]}) to match len(grid), "
                         f"got {shape}")
    values = jnp.asarray(values)
    with jax.numpy_dtype_promotion("standard"):  # the output dtype: the values', >= f32
        dtype = jnp.promote_types(values.dtype, jnp.float32)
    out, has_nan = _apply_sensors(values.astype(dtype), jnp.asarray(s, dtype))
    if not isinstance(has_nan, jax.core.Tracer) and bool(has_nan):
        raise ValueError("values must not contain NaN")
    return out


@jax.jit
def _apply_sensors(values, s):
    # One compiled call per shape: the interpolated values and the NaN flag (checked by the
    # caller only when concrete; under an outer jit the flag is dead code).
    return jnp.matmul(values, s.T, precision=_HIGHEST), jnp.any(jnp.isnan(values))


# ----------------------------------------------------------------------------- sampler checks


def covariance_z_scores(samples, cov) -> np.ndarray:
    r"""z-scores of the empirical second moment of mean-zero Gaussian ``samples [n, N]`` against
    their covariance ``cov [N, N]``.

    :math:`\hat C=X^\top X/n` (the mean is known to be 0); by Isserlis,
    :math:`\mathrm{Var}(x_ix_j)=C_{ii}C_{jj}+C_{ij}^2`, so the standard error of
    :math:`\hat C_{ij}` is :math:`\sqrt{(C_{ii}C_{jj}+C_{ij}^2)/n}` and
    :math:`z_{ij}=(\hat C_{ij}-C_{ij})/\mathrm{se}_{ij}` is about standard normal for a correct
    sampler.
    """
    u = np.asarray(samples)
    n = u.shape[0]
    emp = u.T @ u / n
    d = np.diag(cov)
    std = np.sqrt((np.outer(d, d) + cov**2) / n)
    return (emp - cov) / std
