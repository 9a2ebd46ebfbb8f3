r"""ReLU networks in one dimension: Yarotsky's sawtooth construction and a piece-count bound.

**Yarotsky (2017).** The tooth :math:`g(x)=2\sigma(x)-4\sigma(x-\tfrac12)+2\sigma(x-1)` maps
:math:`[0,1]` onto itself (:math:`2x` then :math:`2(1-x)`); its :math:`s`-fold composition
:math:`g_s` is a sawtooth with :math:`2^{s-1}` teeth. The depth-:math:`m` ReLU network

.. math:: f_m(x) = x-\sum_{s=1}^m \frac{g_s(x)}{4^s}

is the piecewise-linear interpolant of :math:`x^2` on the :math:`2^m+1` dyadic nodes, so its
error is exactly :math:`\max_{[0,1]}|x^2-f_m(x)| = h^2/4 = 2^{-2m-2}` with :math:`h=2^{-m}`.

**Piece-count lower bound.** A ReLU network :math:`\mathbb R\to\mathbb R` with ``depth`` hidden
layers of ``width`` neurons is continuous piecewise linear with at most
:math:`(W+1)^L` pieces (each layer adds at most one breakpoint per neuron per existing piece).
Restricted to grid points :math:`x_1<\dots<x_P`, each piece is one contiguous group fitted by one
line, so its squared error on the grid is at least

.. math:: E_K^2 = \min_{\text{partitions into }\le K\text{ contiguous groups}}
          \sum_{\text{groups}} \min_{a,b}\sum_{i\in g}(y_i-a-bx_i)^2,

computed exactly by dynamic programming. No trained network of that size can do better on the
grid: a rigorous floor for the measured error.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = [
    "tooth",
    "sawtooth",
    "yarotsky_square",
    "yarotsky_error",
    "max_pieces",
    "segment_sse",
    "best_piecewise_linear_sse",
    "yarotsky_sup_errors",
    "piece_floor_rms",
    "fit_relu_mlp",
]


def tooth(x: Float[Array, "..."]) -> Float[Array, "..."]:
    r"""The tooth :math:`g(x)=2\sigma(x)-4\sigma(x-1/2)+2\sigma(x-1)`, three ReLU neurons."""
    r = jax.nn.relu
    return 2.0 * r(x) - 4.0 * r(x - 0.5) + 2.0 * r(x - 1.0)


def _check_m(m):
    if not isinstance(m, int) or isinstance(m, bool) or m < 0:
        raise ValueError(f"m must be a non-negative int, got {m!r}")


def sawtooth(x: Float[Array, "..."], s: int) -> Float[Array, "..."]:
    """The ``s``-fold composition :math:`g_s = g\\circ\\dots\\circ g` (a depth-``s`` network)."""
    _check_m(s)
    return _sawtooth(jnp.asarray(x), s)


@partial(jax.jit, static_argnums=1)
def _sawtooth(x, s):
    for _ in range(s):
        x = tooth(x)
    return x


def yarotsky_square(x: Float[Array, "..."], m: int) -> Float[Array, "..."]:
    r""":math:`f_m(x)=x-\sum_{s=1}^m g_s(x)/4^s`, Yarotsky's depth-``m`` approximation of
    :math:`x^2` on :math:`[0,1]`."""
    _check_m(m)
    return _yarotsky(jnp.asarray(x), m)


@partial(jax.jit, static_argnums=1)
def _yarotsky(x, m):
    out = x
    g = x
    for s in range(1, m + 1):
        g = tooth(g)
        out = out - g / 4.0**s
    return out


def yarotsky_error(m) -> np.ndarray:
    r"""The exact sup error :math:`2^{-2m-2}` of :func:`yarotsky_square`."""
    return 2.0 ** (-2.0 * np.asarray(m, dtype=np.float64) - 2.0)


def max_pieces(width: int, depth: int) -> int:
    """Upper bound :math:`(W+1)^L` on the linear pieces of a 1-D ReLU network."""
    for name, v in (("width", width), ("depth", depth)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    return (width + 1) ** depth


def segment_sse(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``C[i, j]`` = residual sum of squares of the least-squares line through points ``i..j-1``.

    Entries with ``j <= i`` are ``+inf`` (empty group), groups of one or two points have zero
    residual. Computed in float64 from centred prefix sums.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of equal length, got {x.shape} and {y.shape}")
    x = x - x.mean()
    y = y - y.mean()
    zero = np.zeros(1)
    s1 = np.concatenate([zero, np.cumsum(np.ones_like(x))])
    sx = np.concatenate([zero, np.cumsum(x)])
    sy = np.concatenate([zero, np.cumsum(y)])
    sxx = np.concatenate([zero, np.cumsum(x * x)])
    sxy = np.concatenate([zero, np.cumsum(x * y)])
    syy = np.concatenate([zero, np.cumsum(y * y)])

    def d(s):
        return s[None, :] - s[:, None]

    n, Sx, Sy, Sxx, Sxy, Syy = (d(s) for s in (s1, sx, sy, sxx, sxy, syy))
    with np.errstate(divide="ignore", invalid="ignore"):
        vx = Sxx - Sx * Sx / n
        vy = Syy - Sy * Sy / n
        cxy = Sxy - Sx * Sy / n
        sse = vy - np.where(vx > 0, cxy * cxy / np.where(vx > 0, vx, 1.0), 0.0)
    sse = np.where(n >= 3, np.maximum(sse, 0.0), 0.0)
    return np.where(n >= 1, sse, np.inf)


def best_piecewise_linear_sse(x: np.ndarray, y: np.ndarray, max_groups) -> np.ndarray:
    r"""The exact :math:`E_K^2` above for every ``K`` in ``max_groups``.

    Dynamic programming over contiguous partitions: :math:`D_k(j)=\min_i D_{k-1}(i)+C[i,j]`,
    :math:`O(K P^2)` in time.

    Args:
        x: increasing grid, shape ``(P,)``.
        y: values on the grid, shape ``(P,)``.
        max_groups: an int or a sequence of ints ``K >= 1``.

    Returns:
        Array of the minimal residual sums of squares, one per ``K``.

    Raises:
        ValueError: if ``x`` is not strictly increasing or a ``K`` is not positive.
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 1 or np.any(np.diff(x) <= 0):
        raise ValueError("x must be a strictly increasing 1-D grid")
    ks = np.atleast_1d(np.asarray(max_groups))
    if ks.size == 0 or np.any(ks < 1):
        raise ValueError(f"max_groups must be positive ints, got {max_groups!r}")
    p = x.shape[0]
    cost = segment_sse(x, y)
    k_top = int(min(ks.max(), p))
    best = np.full(k_top + 1, np.inf)
    row = cost[0].copy()  # D_1(j): one group covering points 0..j-1
    best[1] = row[p]
    for k in range(2, k_top + 1):
        row = np.min(row[:, None] + cost, axis=0)
        best[k] = min(row[p], best[k - 1])
    return np.array([best[min(int(k), k_top)] for k in ks])


def yarotsky_sup_errors(depths) -> np.ndarray:
    r"""Measured :math:`\max_{[0,1]}|x^2-f_m(x)|` of the depth-:math:`m` sawtooth network, per
    :math:`m` in ``depths``, on the dyadic grid of spacing :math:`2^{-m-3}` (it contains every
    midpoint of the :math:`2^m` linear pieces, where the error peaks)."""
    out = []
    for m in np.asarray(depths):
        x = np.linspace(0.0, 1.0, 2 ** (int(m) + 3) + 1)
        out.append(float(np.max(np.abs(x * x - np.asarray(yarotsky_square(x, int(m)))))))
    return np.asarray(out)


def piece_floor_rms(x: np.ndarray, y: np.ndarray, widths, depth: int) -> np.ndarray:
    r"""The grid RMS floor :math:`\sqrt{E_K^2/P}` with :math:`K=(W+1)^L` pieces, per width
    :math:`W` in ``widths`` and depth :math:`L`: no ReLU network of that size does better on
    the grid ``x``."""
    pieces = [max_pieces(int(w), depth) for w in np.asarray(widths)]
    return np.sqrt(best_piecewise_linear_sse(x, y, pieces) / np.asarray(x).shape[0])


def fit_relu_mlp(x, y, width: int, depth: int, *, steps: int, lr: float,
                 steps_per_call: int, key) -> float:
    r"""Train a ReLU MLP :math:`\mathbb R\to\mathbb R` on the grid data ``(x, y)`` with Adam and a
    cosine-decayed rate (``lr`` to ``lr/100``) through :func:`opdiff.fit`; return its grid RMS
    error.

    The first layer's biases are drawn so that its breakpoints :math:`-b_j/w_j` are uniform
    on [-1, 1] (zero biases would put every breakpoint at 0).

    Args:
        x, y: float64 arrays of shape ``(P, 1)``.
        width, depth: hidden width and number of hidden layers.
        steps, lr, steps_per_call: the optimisation budget.
        key: PRNG key (init, biases and training draw from its splits).

    Returns:
        :math:`\sqrt{\frac1P\sum_i (f(x_i)-y_i)^2}` after training.
    """
    import optax

    from opdiff.nets import MLP
    from opdiff.train import fit

    init_key, bias_key, train_key = jax.random.split(key, 3)
    net = MLP(1, 1, width=width, depth=depth, activation="relu", key=init_key,
              param_dtype=jnp.float64)
    first = net.layers[0]
    t = jax.random.uniform(bias_key, (width,), jnp.float64, -1.0, 1.0)
    first.bias[...] = -first.kernel[...][0] * t

    def loss(model, batch, key):
        xb, yb = batch
        return jnp.mean((jax.vmap(model)(xb) - yb) ** 2)

    schedule = optax.cosine_decay_schedule(lr, steps, alpha=1e-2)
    result = fit(loss, net, optax.adam(schedule), (x, y), steps=steps, key=train_key,
                 steps_per_call=steps_per_call, progress=False)
    pred = jax.vmap(result.params)(x)
    return float(jnp.sqrt(jnp.mean((pred - y) ** 2)))
