r"""The neural tangent kernel of a fully connected network: empirical and infinite-width.

**Network (NTK parameterisation).** With widths :math:`(n_0=d, n_1, \dots, n_L, n_{L+1})`,
all weights and biases :math:`W^l_{ij}, b^l_i \sim N(0,1)` and :math:`h^0 = x`,

.. math::
    z^l = \frac{\sigma_w}{\sqrt{n_{l-1}}} W^l h^{l-1} + \sigma_b b^l,\qquad
    h^l = \phi(z^l),\qquad f(x) = z^{L+1}(x).

``depth`` :math:`L` counts hidden layers. The scale sits in the forward pass, not in the
initialisation, so every parameter moves :math:`O(1)` under a width-independent learning rate
and the kernel below has a finite limit (Jacot, Gabriel, Hongler 2018).

**Empirical NTK.** :math:`\hat\Theta(x,x') = \sum_p \partial_p f(x)\,\partial_p f(x')
= J(x)J(x')^\top`, summed over every parameter :math:`p` (:func:`empirical_ntk`).

**Infinite-width limit** (:func:`analytic_ntk`). As :math:`n_1,\dots,n_L\to\infty`,
:math:`\hat\Theta\to\Theta^{L+1}` at initialisation, where

.. math::
    \Sigma^1(x,x') &= \sigma_w^2\, x^\top x'/d + \sigma_b^2, \\
    \Sigma^{l+1}(x,x') &= \sigma_w^2\, \mathbb E_{(u,v)\sim N(0,\Lambda^l)}[\phi(u)\phi(v)]
        + \sigma_b^2, \\
    \dot\Sigma^{l+1}(x,x') &= \sigma_w^2\, \mathbb E_{(u,v)\sim N(0,\Lambda^l)}
        [\phi'(u)\phi'(v)], \\
    \Theta^1 &= \Sigma^1,\qquad \Theta^{l+1} = \Theta^l\,\dot\Sigma^{l+1} + \Sigma^{l+1},

with :math:`\Lambda^l = \begin{pmatrix}\Sigma^l(x,x) & \Sigma^l(x,x')\\ \Sigma^l(x,x') &
\Sigma^l(x',x')\end{pmatrix}`. :math:`\Sigma^{L+1}` is the NNGP kernel (the covariance of
:math:`f` at initialisation) and :math:`\Theta^{L+1}` the NTK. The two Gaussian expectations
are closed form for

* ReLU (arc-cosine kernels, Cho & Saul 2009): with :math:`u=\Sigma(x,x)`, :math:`v=\Sigma(x',x')`,
  :math:`c=\Sigma(x,x')` and :math:`\theta=\arccos(c/\sqrt{uv})`,
  :math:`\mathbb E[\phi(u)\phi(v)] = \sqrt{uv}\,(\sin\theta+(\pi-\theta)\cos\theta)/(2\pi)` and
  :math:`\mathbb E[\phi'(u)\phi'(v)] = (\pi-\theta)/(2\pi)`;
* erf (Williams 1997): :math:`\mathbb E[\phi(u)\phi(v)] = \frac2\pi\arcsin
  \frac{2c}{\sqrt{(1+2u)(1+2v)}}` and :math:`\mathbb E[\phi'(u)\phi'(v)] =
  \frac4\pi\big((1+2u)(1+2v)-4c^2\big)^{-1/2}`.

The relative Frobenius distance between the empirical and the limiting kernel decays like
:math:`n^{-1/2}` (about :math:`2.2/\sqrt n` for one hidden ReLU layer, ``d = 5``, 20 inputs);
during gradient descent with an :math:`O(1)` learning rate the kernel moves by
:math:`O(n^{-1/2})` at most (Lee et al. 2019; measured closer to :math:`n^{-1}`, see
``experiments/ntk.py``). Neither needs ``neural-tangents``, which does not import on current JAX.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = [
    "ACTIVATIONS",
    "NTK_METHODS",
    "init_params",
    "apply",
    "empirical_ntk",
    "analytic_ntk",
    "gaussian_expectations",
]

ACTIVATIONS = ("relu", "erf")
NTK_METHODS = ("jacobian", "ntvp")

Params = list[dict[str, Array]]


# --- validation ---------------------------------------------------------------------------------


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def _check_sigmas(sigma_w, sigma_b):
    # Python floats only: a traced value cannot be checked and passes through.
    if isinstance(sigma_w, (int, float)) and not sigma_w > 0:
        raise ValueError(f"sigma_w must be > 0, got {sigma_w!r}")
    if isinstance(sigma_b, (int, float)) and not sigma_b >= 0:
        raise ValueError(f"sigma_b must be >= 0, got {sigma_b!r}")


def _check_widths(widths):
    if not isinstance(widths, Sequence) or len(widths) < 2:
        raise ValueError(
            f"widths must be a sequence (d_in, n_1, ..., n_L, d_out) of length >= 2, got {widths!r}"
        )
    for w in widths:
        if not isinstance(w, (int, np.integer)) or isinstance(w, bool) or w < 1:
            raise ValueError(f"widths must hold positive ints, got {tuple(widths)!r}")


# --- the network ------------------------------------------------------------------------------


def init_params(key: PRNGKeyArray, widths: Sequence[int], *, dtype=None) -> Params:
    r"""Standard-normal weights and biases for a network with the given ``widths``.

    Args:
        key: PRNG key; all :math:`P` parameters are one ``jax.random.normal(key, (P,))`` draw,
            cut in layer order (``W`` then ``b``).
        widths: :math:`(d, n_1, \dots, n_L, d_{out})`; ``len(widths) - 2`` hidden layers.
        dtype: parameter dtype; ``None`` is the default float (float64 under ``jax_enable_x64``).

    Returns:
        A list with one ``{"W": (n_l, n_{l-1}), "b": (n_l,)}`` dict per affine layer, every
        entry :math:`N(0,1)`. The :math:`\sigma_w/\sqrt{n_{l-1}}` scale is applied by
        :func:`apply`.

    Raises:
        ValueError: if ``widths`` has fewer than two entries or a non-positive one.
    """
    _check_widths(widths)
    dtype = jnp.zeros((), dtype if dtype is not None else float).dtype
    shapes = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        shapes += [(int(n_out), int(n_in)), (int(n_out),)]
    # One draw for all parameters: a single threefry kernel compiles ~4x faster than one per
    # leaf, which dominates small-model compile times.
    z = jax.random.normal(key, (sum(math.prod(s) for s in shapes),), dtype)
    offsets = np.cumsum([0] + [math.prod(s) for s in shapes])
    leaves = [z[a:b].reshape(s) for a, b, s in zip(offsets[:-1], offsets[1:], shapes)]
    params = [{"W": w, "b": b} for w, b in zip(leaves[0::2], leaves[1::2])]
    return params


def _phi(activation: str, z):
    return jax.nn.relu(z) if activation == "relu" else jax.scipy.special.erf(z)


def apply(
    params: Params,
    x: Float[Array, " d"],
    *,
    activation: str = "relu",
    sigma_w: float = 1.0,
    sigma_b: float = 0.0,
) -> Float[Array, " d_out"]:
    r"""The network :math:`f(x)=z^{L+1}(x)` at ONE input (``jax.vmap`` it over a batch).

    Layer :math:`l` computes :math:`z^l=(\sigma_w/\sqrt{n_{l-1}})W^l h^{l-1}+\sigma_b b^l`;
    hidden layers apply :math:`\phi` (``"relu"`` or ``"erf"``), the last layer is linear.

    Args:
        params: from :func:`init_params` (or trained from it).
        x: one input of shape ``(d,)``.
        activation: ``"relu"`` or ``"erf"``.
        sigma_w: weight scale :math:`\sigma_w > 0`.
        sigma_b: bias scale :math:`\sigma_b \ge 0` (``0``: biases have no effect and no gradient).

    Returns:
        The output, shape ``(d_out,)``.

    Raises:
        ValueError: for an unknown ``activation``, bad sigmas, or ``x`` not of shape ``(d,)``.
    """
    _check_activation(activation)
    _check_sigmas(sigma_w, sigma_b)
    d = params[0]["W"].shape[1]
    if jnp.ndim(x) != 1 or jnp.shape(x)[0] != d:
        raise ValueError(f"x must have shape ({d},) (one input; vmap over a batch), got "
                         f"{jnp.shape(x)}")
    h = x
    for layer, p in enumerate(params):
        z = (sigma_w / math.sqrt(p["W"].shape[1])) * (p["W"] @ h) + sigma_b * p["b"]
        h = z if layer == len(params) - 1 else _phi(activation, z)
    return h


# --- empirical kernel -------------------------------------------------------------------------


def _batch_shapes(x1, x2):
    x1 = jnp.asarray(x1)
    if x1.ndim < 2:
        raise ValueError(f"x1 must be a batch of shape (N1, ...), got shape {x1.shape}")
    if x2 is None:
        return x1, None
    x2 = jnp.asarray(x2)
    if x2.ndim != x1.ndim or x2.shape[1:] != x1.shape[1:]:
        raise ValueError(
            f"x2 must have shape (N2, {', '.join(map(str, x1.shape[1:]))}) to match x1, "
            f"got {x2.shape}"
        )
    return x1, x2


def _flat_jacobian(fn, params, x) -> tuple[list[Array], int]:
    """Per leaf, the Jacobian of ``fn(params, x_i)`` as ``(N, k, P_leaf)`` (``k`` outputs)."""
    jac = jax.vmap(jax.jacrev(fn), in_axes=(None, 0))(params, x)
    n = x.shape[0]
    out = jax.eval_shape(fn, params, x[0]).shape
    k = math.prod(out)
    return [leaf.reshape(n, k, -1) for leaf in jax.tree.leaves(jac)], k


def _jacobian_ntk(fn, params, x1, x2):
    j1, k = _flat_jacobian(fn, params, x1)
    j2 = j1 if x2 is None else _flat_jacobian(fn, params, x2)[0]
    return sum(jnp.einsum("ikp,jkp->ij", a, b) for a, b in zip(j1, j2)) / k


def _ntvp_ntk(fn, params, x1, x2):
    x2 = x1 if x2 is None else x2
    k = math.prod(jax.eval_shape(fn, params, x1[0]).shape)

    def batch_out(p):
        return jax.vmap(fn, in_axes=(None, 0))(p, x2).reshape(x2.shape[0], k)

    def row(xi):
        # J(x_i)^T one output at a time (memory: one parameter vector), then J(x2) times it.
        grads = jax.jacrev(lambda p: fn(p, xi).reshape(k))(params)

        def one_output(a):
            g = jax.tree.map(lambda leaf: leaf[a], grads)
            return jax.jvp(batch_out, (params,), (g,))[1][:, a]

        return jnp.mean(jax.lax.map(one_output, jnp.arange(k)), axis=0)

    return jax.lax.map(row, x1)


def empirical_ntk(
    fn: Callable[[Any, Array], Array],
    params: Any,
    x1: Float[Array, "N1 ..."],
    x2: Float[Array, "N2 ..."] | None = None,
    *,
    method: str = "jacobian",
) -> Float[Array, "N1 N2"]:
    r"""The empirical NTK :math:`\hat\Theta(x,x')=\sum_p\partial_pf(x)\,\partial_pf(x')`.

    For a vector output :math:`f\in\mathbb R^k` this returns the trace over outputs divided by
    :math:`k`, :math:`\frac1k\sum_{a}\sum_p\partial_pf_a(x)\partial_pf_a(x')`: the full kernel
    of an NTK-parameterised net tends to :math:`\Theta^\infty\otimes I_k`, so this mean has the
    same limit as the scalar-output kernel. A scalar or ``(1,)`` output gives the plain kernel.

    Args:
        fn: ``fn(params, x) -> scalar or (k,)`` for ONE input ``x``.
        params: any pytree of arrays; every leaf is a parameter.
        x1: inputs stacked on the first axis, ``(N1, ...)``.
        x2: inputs ``(N2, ...)``; ``None`` uses ``x1`` (and, for ``"jacobian"``, one Jacobian).
        method: ``"jacobian"``: :math:`J_1J_2^\top` with :math:`J` from ``jax.jacrev`` vmapped
            over the inputs, per parameter leaf (memory :math:`(N_1+N_2)kP`; fastest for small
            models). ``"ntvp"``: for each :math:`x_i\in x_1`, :math:`g=J(x_i)^\top` by reverse
            mode, then :math:`J_2 g` by one forward-mode ``jax.jvp`` over the batch ``x2``,
            inside ``lax.map`` (memory :math:`kP` beyond the forward pass; for wide deep nets,
            at about :math:`N_1` times the work).

    Returns:
        :math:`\hat\Theta(x_1, x_2)`, shape ``(N1, N2)``. Traceable: wrap it in ``jax.jit``.

    Raises:
        ValueError: for an unknown ``method``, or ``x1``/``x2`` of mismatched shapes.
    """
    if method not in NTK_METHODS:
        raise ValueError(f"method must be one of {NTK_METHODS}, got {method!r}")
    x1, x2 = _batch_shapes(x1, x2)
    if method == "jacobian":
        return _jacobian_ntk(fn, params, x1, x2)
    return _ntvp_ntk(fn, params, x1, x2)


# --- infinite-width kernel --------------------------------------------------------------------


def gaussian_expectations(
    u: Float[Array, "..."], v: Float[Array, "..."], c: Float[Array, "..."], activation: str
) -> tuple[Float[Array, "..."], Float[Array, "..."]]:
    r""":math:`(\mathbb E[\phi(a)\phi(b)],\ \mathbb E[\phi'(a)\phi'(b)])` for
    :math:`(a,b)\sim N\big(0,\begin{pmatrix}u&c\\c&v\end{pmatrix}\big)`, elementwise.

    ReLU uses :math:`\theta=\operatorname{atan2}(\sqrt{uv-c^2},\,c)` (equal to
    :math:`\arccos(c/\sqrt{uv})`, but exact at :math:`x=x'` and finite at :math:`u=0`), so
    :math:`\mathbb E[\phi\phi]=(\sqrt{uv-c^2}+(\pi-\theta)c)/(2\pi)` and
    :math:`\mathbb E[\phi'\phi']=(\pi-\theta)/(2\pi)`; :math:`uv-c^2` within a few ulps of
    0 counts as 0 (identical inputs whose inner products rounded differently). erf uses
    Williams' formulas (module docstring). ``u, v >= 0`` and :math:`c^2\le uv` are assumed
    (a covariance matrix).
    """
    _check_activation(activation)
    if activation == "relu":
        det = u * v - c * c
        # At x = x' rounding leaves det ~ eps*uv > 0 and sqrt would turn it into an O(sqrt eps)
        # angle; treat det below a few ulps of uv as 0 (theta below ~1e-7 in float64).
        tiny = 8 * jnp.finfo(jnp.result_type(det)).eps * jnp.abs(u * v)
        s = jnp.sqrt(jnp.where(det > tiny, det, 0.0))
        theta = jnp.arctan2(s, c)
        return (s + (jnp.pi - theta) * c) / (2 * jnp.pi), (jnp.pi - theta) / (2 * jnp.pi)
    q = (1 + 2 * u) * (1 + 2 * v)
    return (2 / jnp.pi) * jnp.arcsin(2 * c / jnp.sqrt(q)), (4 / jnp.pi) / jnp.sqrt(q - 4 * c * c)


@partial(jax.jit, static_argnames=("depth", "activation"))
def _analytic(x1, x2, sigma_w, sigma_b, *, depth, activation):
    d = x1.shape[1]
    sw2, sb2 = sigma_w**2, sigma_b**2
    s11 = sw2 * jnp.sum(x1 * x1, axis=1) / d + sb2  # Sigma^l(x, x)  for x in x1
    s22 = sw2 * jnp.sum(x2 * x2, axis=1) / d + sb2  # Sigma^l(x', x') for x' in x2
    s12 = sw2 * (x1 @ x2.T) / d + sb2  # Sigma^l(x, x')
    theta = s12
    for _ in range(depth):
        k12, kdot12 = gaussian_expectations(s11[:, None], s22[None, :], s12, activation)
        k11, _ = gaussian_expectations(s11, s11, s11, activation)
        k22, _ = gaussian_expectations(s22, s22, s22, activation)
        s12 = sw2 * k12 + sb2
        theta = theta * (sw2 * kdot12) + s12
        s11, s22 = sw2 * k11 + sb2, sw2 * k22 + sb2
    return s12, theta


def analytic_ntk(
    x1: Float[Array, "N1 d"],
    x2: Float[Array, "N2 d"] | None = None,
    *,
    depth: int,
    activation: str = "relu",
    sigma_w: float = 1.0,
    sigma_b: float = 0.0,
) -> tuple[Float[Array, "N1 N2"], Float[Array, "N1 N2"]]:
    r"""The infinite-width NNGP kernel :math:`\Sigma^{L+1}` and NTK :math:`\Theta^{L+1}`.

    The recursion of the module docstring, for a network of :func:`apply` with ``depth``
    hidden layers. Per pair it tracks :math:`u=\Sigma^l(x,x)`, :math:`v=\Sigma^l(x',x')`
    (diagonal recursions for ``x1`` and ``x2``) and the cross term :math:`c=\Sigma^l(x,x')`.
    Computed in the dtype of the inputs (pass float64 with ``jax_enable_x64`` on).

    Args:
        x1: inputs ``(N1, d)``.
        x2: inputs ``(N2, d)``; ``None`` uses ``x1``.
        depth: number of hidden layers :math:`L \ge 1`.
        activation: ``"relu"`` or ``"erf"``.
        sigma_w: weight scale :math:`\sigma_w > 0`.
        sigma_b: bias scale :math:`\sigma_b \ge 0`.

    Returns:
        ``(nngp, ntk)``, each ``(N1, N2)``.

    Raises:
        ValueError: for an unknown ``activation``, ``depth < 1``, bad sigmas, or inputs that are
            not 2-D with the same ``d``.

    Example:
        >>> import jax.numpy as jnp
        >>> nngp, ntk = analytic_ntk(jnp.eye(2), depth=1)
        >>> ntk.shape
        (2, 2)
    """
    _check_activation(activation)
    if not isinstance(depth, (int, np.integer)) or isinstance(depth, bool) or depth < 1:
        raise ValueError(f"depth must be an int >= 1 (hidden layers), got {depth!r}")
    _check_sigmas(sigma_w, sigma_b)
    x1 = jnp.asarray(x1)
    if x1.ndim != 2:
        raise ValueError(f"x1 must have shape (N1, d), got {x1.shape}")
    x2 = x1 if x2 is None else jnp.asarray(x2)
    if x2.ndim != 2 or x2.shape[1] != x1.shape[1]:
        raise ValueError(f"x2 must have shape (N2, {x1.shape[1]}) to match x1, got {x2.shape}")
    dtype = jnp.result_type(x1, x2, float)
    return _analytic(x1.astype(dtype), x2.astype(dtype), jnp.asarray(sigma_w, dtype),
                     jnp.asarray(sigma_b, dtype), depth=int(depth), activation=activation)
