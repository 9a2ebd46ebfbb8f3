r"""Bandlimited random-feature networks: frozen hidden weights, a linear output layer.

.. math:: f_c(x)=\sum_{j=1}^N c_j\,\sigma(a_j\cdot x-b_j),\qquad (a_j,b_j)\overset{iid}{\sim}Q_\lambda,

where :math:`Q_\lambda` has **bounded support** set by the bandwidth :math:`\lambda` (Li, Sonoda,
Cao, Wang, Liang, ICML 2023; the Wang–Li stochastic configuration networks draw
:math:`a,b\sim U[-\lambda,\lambda]`). The hidden parameters are drawn once from an explicit key
and frozen; only :math:`c` is fitted — exactly, by (ridge / weighted) least squares
(:func:`solve`, via :mod:`opdiff.approx.lstsq`), or by gradient descent through
:func:`opdiff.fit` (:class:`RandomFeatureNet`), for comparison.

Weight laws for :math:`a\in\mathbb R^d` (:data:`DISTRIBUTIONS`):

- ``"box"``: :math:`a_i\sim U[-\lambda,\lambda]` independently;
- ``"ball"``: :math:`a` uniform in the Euclidean ball :math:`\{|a|\le\lambda\}`;
- ``"gaussian"``: :math:`a_i\sim N(0,(\lambda/2)^2)` truncated to :math:`[-\lambda,\lambda]`;
- ``integer=True`` (box only): :math:`a_i` uniform on the integers :math:`\{-\lfloor\lambda\rfloor,
  \dots,\lfloor\lambda\rfloor\}` — lattice frequencies for the torus, where the out-of-band
  energy is an exact floor (:func:`opdiff.approx.bounds.out_of_band_energy`).

Bias laws (:data:`BIASES`): ``"box"`` :math:`b\sim U[-\lambda_b,\lambda_b]` with
:math:`\lambda_b` = ``bias_bandwidth`` (default :math:`\lambda`, as in SCN); ``"phase"``
:math:`b\sim U[0,2\pi)` (Fourier features: :math:`\cos(k x-b)` spans :math:`\cos kx` and
:math:`\sin kx`); ``"zero"``.

Functions take one example and are batched with ``vmap``; :func:`solve_sweep` fits a whole
(bandwidth × seed) grid at one width in a single compiled call.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff._checks import check_finite_array, check_finite_scalar, check_positive_int
from opdiff.approx import lstsq
from opdiff._compat import nnx
from opdiff.nets.layers import Frozen

__all__ = [
    "ACTIVATIONS",
    "BIASES",
    "DISTRIBUTIONS",
    "Hidden",
    "RandomFeatureNet",
    "design_matrix",
    "features",
    "solve",
    "solve_sweep",
    "predict",
    "sample_hidden",
]

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "sin": jnp.sin,
    "cos": jnp.cos,
    "gaussian": lambda t: jnp.exp(-t * t),
}
DISTRIBUTIONS = ("box", "ball", "gaussian")
BIASES = ("box", "phase", "zero")


class Hidden(NamedTuple):
    """The frozen hidden layer: rows :math:`a_j` of ``weights`` and offsets :math:`b_j`."""

    weights: Float[Array, "N d"]
    biases: Float[Array, " N"]


def _check_activation(activation: str) -> Callable[[Array], Array]:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return ACTIVATIONS[activation]


def _check_positive(name: str, value) -> None:
    """A finite scalar > 0 (a traced value, e.g. a bandwidth under ``vmap``, is not checked)."""
    check_finite_scalar(name, value, low=0.0, low_open=True, what="be > 0 and finite")


def _check_count(name: str, value) -> None:
    check_positive_int(name, value)


def _check_ridge(ridge) -> None:
    check_finite_scalar("ridge", ridge, low=0.0, what="be >= 0 and finite")


def _check_data(**arrays) -> None:
    """Every concrete array given (``None`` skipped) is free of NaN and ±inf."""
    for name, value in arrays.items():
        if value is not None:
            check_finite_array(name, value)


def sample_hidden(
    key: PRNGKeyArray,
    n_features: int,
    dim: int,
    *,
    bandwidth: float | Array,
    distribution: str = "box",
    bias: str = "box",
    bias_bandwidth: float | Array | None = None,
    integer: bool = False,
    dtype=None,
) -> Hidden:
    r"""Draw :math:`N` hidden units :math:`(a_j,b_j)` from the bounded law :math:`Q_\lambda`.

    Args:
        key: PRNG key; the same key gives the same features.
        n_features: :math:`N\ge1`.
        dim: input dimension :math:`d\ge1`.
        bandwidth: :math:`\lambda>0` (may be a traced scalar, e.g. under ``vmap``).
        distribution: ``"box"``, ``"ball"`` or ``"gaussian"`` (module docstring).
        bias: ``"box"``, ``"phase"`` or ``"zero"``.
        bias_bandwidth: half-width of the ``"box"`` bias law; defaults to ``bandwidth``.
        integer: integer frequencies :math:`|a_i|\le\lfloor\lambda\rfloor` (``"box"`` only).
        dtype: float dtype (default: jax's default float).

    Returns:
        :class:`Hidden` with ``weights`` ``(N, d)`` and ``biases`` ``(N,)``.

    Raises:
        ValueError: if ``n_features`` or ``dim`` is not an int >= 1 (NumPy integers are
            accepted, bools and floats are not); if ``bandwidth`` or ``bias_bandwidth`` is not
            finite and > 0 (checked when concrete: a traced bandwidth passes unchecked); for an
            unknown ``distribution`` or ``bias``, or ``integer=True`` without ``"box"``.
        TypeError: if ``bandwidth`` or ``bias_bandwidth`` is not a real scalar.
    """
    _check_count("n_features", n_features)
    _check_count("dim", dim)
    _check_positive("bandwidth", bandwidth)
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if bias not in BIASES:
        raise ValueError(f"bias must be one of {BIASES}, got {bias!r}")
    if integer and distribution != "box":
        raise ValueError(f"integer=True needs distribution='box', got {distribution!r}")
    if bias_bandwidth is not None:
        _check_positive("bias_bandwidth", bias_bandwidth)
    dtype = dtype or jnp.zeros(()).dtype
    lam = jnp.asarray(bandwidth, dtype)
    lam_b = lam if bias_bandwidth is None else jnp.asarray(bias_bandwidth, dtype)
    k_w, k_r, k_b = jax.random.split(key, 3)
    shape = (n_features, dim)
    if integer:
        top = jnp.floor(lam)
        u = jax.random.uniform(k_w, shape, dtype)  # uniform on {-top, ..., top}
        a = jnp.minimum(jnp.floor(u * (2 * top + 1)), 2 * top) - top
    elif distribution == "box":
        a = jax.random.uniform(k_w, shape, dtype, -1.0, 1.0) * lam
    elif distribution == "ball":
        g = jax.random.normal(k_w, shape, dtype)
        radius = jax.random.uniform(k_r, (n_features, 1), dtype) ** (1.0 / dim)
        a = lam * radius * g / jnp.linalg.norm(g, axis=1, keepdims=True)
    else:
        a = 0.5 * lam * jax.random.truncated_normal(k_w, -2.0, 2.0, shape, dtype)
    if bias == "box":
        b = jax.random.uniform(k_b, (n_features,), dtype, -1.0, 1.0) * lam_b
    elif bias == "phase":
        b = jax.random.uniform(k_b, (n_features,), dtype, 0.0, 2 * jnp.pi)
    else:
        b = jnp.zeros((n_features,), dtype)
    return Hidden(a, b)


def features(hidden: Hidden, x: Float[Array, " d"], activation: str = "sigmoid"
             ) -> Float[Array, " N"]:
    r"""The feature vector :math:`\big(\sigma(a_j\cdot x-b_j)\big)_{j=1}^N` of one input."""
    sigma = _check_activation(activation)
    return sigma(hidden.weights @ x - hidden.biases)


def _as_batch(x, dim: int):
    x = jnp.asarray(x)
    if x.ndim == 1 and dim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"x must have shape (n, {dim}) (or (n,) when d = 1), got {x.shape}")
    return x


def design_matrix(hidden: Hidden, x: Float[Array, "n d"], activation: str = "sigmoid"
                  ) -> Float[Array, "n N"]:
    """Row :math:`i` is :func:`features` of :math:`x_i`; ``x`` may be ``(n,)`` when ``d = 1``."""
    x = _as_batch(x, hidden.weights.shape[1])
    _check_activation(activation)
    return jax.vmap(lambda xi: features(hidden, xi, activation))(x)


def solve(
    hidden: Hidden,
    x: Float[Array, "n d"],
    y: Float[Array, "n *k"],
    activation: str = "sigmoid",
    *,
    ridge: float = 0.0,
    weights: Float[Array, " n"] | None = None,
    method: str = "qr",
) -> Float[Array, "N *k"]:
    r"""Output coefficients :math:`\hat c=\arg\min\sum_iw_i(y_i-f_c(x_i))^2+\alpha\|c\|^2`.

    See :func:`opdiff.approx.lstsq.solve` for ``ridge``, ``weights`` and ``method``; plain
    least squares with fewer samples than features is refused there with a clear error.

    Raises:
        ValueError: if ``x``, ``y`` or ``weights`` holds NaN or ±inf, ``weights`` is negative
            somewhere, or ``ridge`` is not finite and >= 0 (value checks run on concrete
            inputs only; under ``jit`` the traced values pass unchecked); for a bad shape or
            an unknown activation or method.
    """
    _check_data(x=x, y=y)
    if weights is not None:
        check_finite_array("weights", weights, low=0.0, what="be finite and >= 0")
    _check_ridge(ridge)
    A = design_matrix(hidden, x, activation)
    return lstsq.solve(A, y, weights=weights, ridge=ridge, method=method)


def predict(hidden: Hidden, coef: Float[Array, "N *k"], x: Float[Array, "n d"],
            activation: str = "sigmoid") -> Float[Array, "n *k"]:
    """:math:`f_c(x_i)` for every row of ``x``."""
    return design_matrix(hidden, x, activation) @ coef


def solve_sweep(
    key: PRNGKeyArray,
    x: Float[Array, "n d"],
    y: Float[Array, " n"],
    x_test: Float[Array, "t d"],
    y_test: Float[Array, " t"],
    *,
    n_features: int,
    bandwidths: Float[Array, " L"],
    n_seeds: int,
    activation: str = "sigmoid",
    distribution: str = "box",
    bias: str = "box",
    integer: bool = False,
    ridge: float = 0.0,
    relative_ridge: bool = False,
    method: str = "qr",
) -> Float[Array, "L S"]:
    r"""Test RMS error of least-squares fits over a (bandwidth × seed) grid at one width.

    Seed :math:`s` uses ``fold_in(key, s)`` for every bandwidth, so rows differ only in
    :math:`\lambda` (common random numbers). Both axes are ``vmap``-ed: one compiled call.

    Args:
        relative_ridge: if true, the ridge is ``ridge * trace(AᵀA) / N`` (scale-free, as in
            the Li et al. / SCN reproductions); otherwise ``ridge`` is absolute.
        (others): as in :func:`sample_hidden` and :func:`solve`.

    Returns:
        RMS test errors, shape ``(len(bandwidths), n_seeds)``.

    Raises:
        ValueError: if ``n_features`` or ``n_seeds`` is not an int >= 1; if ``bandwidths`` is
            not a non-empty 1-D array of finite values > 0; if ``x``, ``y``, ``x_test`` or
            ``y_test`` holds NaN or ±inf; if ``ridge`` is not finite and >= 0; for plain least
            squares with fewer samples than features, a bad shape or an unknown name.
    """
    _check_count("n_features", n_features)
    _check_count("n_seeds", n_seeds)
    _check_activation(activation)
    bandwidths = jnp.asarray(bandwidths)
    if bandwidths.ndim != 1 or bandwidths.size < 1:
        raise ValueError(f"bandwidths must be a non-empty 1-D array, got shape {bandwidths.shape}")
    check_finite_array("bandwidths", bandwidths, low=0.0, low_open=True,
                       what="all be > 0 and finite")
    _check_data(x=x, y=y, x_test=x_test, y_test=y_test)
    _check_ridge(ridge)
    x = jnp.asarray(x)
    dim = 1 if x.ndim == 1 else x.shape[-1]
    x, x_test = _as_batch(x, dim), _as_batch(x_test, dim)
    if ridge == 0.0 and method != "svd" and x.shape[0] < n_features:
        raise ValueError(f"plain least squares needs n >= N: got {x.shape[0]} samples for "
                         f"{n_features} features; pass ridge > 0 or method='svd'")
    return _solve_sweep(key, x, jnp.asarray(y), x_test, jnp.asarray(y_test), bandwidths,
                      n_features=n_features, n_seeds=n_seeds, activation=activation,
                      distribution=distribution, bias=bias, integer=integer, ridge=float(ridge),
                      relative_ridge=relative_ridge, method=method)


@partial(jax.jit, static_argnames=("n_features", "n_seeds", "activation", "distribution",
                                   "bias", "integer", "ridge", "relative_ridge", "method"))
def _solve_sweep(key, x, y, x_test, y_test, bandwidths, *, n_features, n_seeds, activation,
               distribution, bias, integer, ridge, relative_ridge, method):
    dim = x.shape[1]

    def one(lam, seed):
        h = sample_hidden(jax.random.fold_in(key, seed), n_features, dim, bandwidth=lam,
                          distribution=distribution, bias=bias, integer=integer,
                          dtype=x.dtype)
        A = design_matrix(h, x, activation)
        alpha = ridge * jnp.sum(A * A) / n_features if relative_ridge else ridge
        c = lstsq._solve(A, y, None, jnp.asarray(alpha, A.dtype), method=method,
                         rcond=max(A.shape) * float(jnp.finfo(A.dtype).eps),
                         augment=ridge != 0.0)
        r = design_matrix(h, x_test, activation) @ c - y_test
        return jnp.sqrt(jnp.mean(r * r))

    seeds = jnp.arange(n_seeds)
    return jax.vmap(lambda lam: jax.vmap(lambda s: one(lam, s))(seeds))(bandwidths)


class RandomFeatureNet(nnx.Module):
    r""":math:`x\mapsto C^\top\sigma(Ax-b)` with :math:`(A,b)` frozen (:class:`Frozen`) and
    :math:`C` an ``nnx.Param``: :func:`opdiff.fit` trains the output layer only.

    Args:
        in_features: input dimension :math:`d`.
        n_features: width :math:`N`.
        bandwidth: :math:`\lambda>0`.
        key: PRNG key for the hidden layer (the output layer starts at zero).
        out_features: output dimension.
        activation, distribution, bias, bias_bandwidth, integer: see :func:`sample_hidden`.
        param_dtype: dtype of every array.

    Raises:
        ValueError: as :func:`sample_hidden` (``bandwidth`` and ``bias_bandwidth`` finite and
            > 0, sizes ints >= 1), and if ``out_features`` is not an int >= 1.
    """

    def __init__(self, in_features: int, n_features: int, *, bandwidth: float,
                 key: PRNGKeyArray, out_features: int = 1, activation: str = "sigmoid",
                 distribution: str = "box", bias: str = "box",
                 bias_bandwidth: float | None = None, integer: bool = False,
                 param_dtype=jnp.float32):
        _check_activation(activation)
        _check_count("out_features", out_features)
        h = sample_hidden(key, n_features, in_features, bandwidth=bandwidth,
                          distribution=distribution, bias=bias, bias_bandwidth=bias_bandwidth,
                          integer=integer, dtype=param_dtype)
        self.activation = activation
        self.in_features = in_features
        self.weights = Frozen(h.weights)
        self.biases = Frozen(h.biases)
        self.coef = nnx.Param(jnp.zeros((n_features, out_features), param_dtype))

    @property
    def hidden(self) -> Hidden:
        return Hidden(self.weights[...], self.biases[...])

    def __call__(self, x: Float[Array, " d"]) -> Float[Array, " out"]:
        if x.shape != (self.in_features,):
            raise ValueError(f"x must have shape ({self.in_features},) (one example; vmap for "
                             f"a batch), got {x.shape}")
        return features(self.hidden, x, self.activation) @ self.coef[...]

    def solve(self, x: Float[Array, "n d"], y: Float[Array, "n *out"], *, ridge: float = 0.0,
              weights: Float[Array, " n"] | None = None, method: str = "qr"
              ) -> RandomFeatureNet:
        """Set the output layer to the exact least-squares solution (in place); return self.

        Raises:
            ValueError: as :func:`solve` (non-finite ``x``, ``y`` or ``weights``, negative
                weights, ``ridge`` not finite and >= 0), or ``y`` of the wrong shape.
        """
        y = jnp.asarray(y)
        y2 = y[:, None] if y.ndim == 1 else y
        if y2.shape[1:] != self.coef.shape[1:]:
            raise ValueError(f"y must have shape (n,) or (n, {self.coef.shape[1]}), got {y.shape}")
        self.coef[...] = solve(self.hidden, x, y2, self.activation, ridge=ridge, weights=weights,
                             method=method).astype(self.coef.dtype)
        return self
