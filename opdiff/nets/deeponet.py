r"""DeepONet (Lu et al. 2021) and POD-DeepONet (Lu et al. 2022).

A DeepONet approximates an operator :math:`G` by

.. math:: G(u)(y)_k \approx \sum_{i=1}^{p} b_{k,i}(u(x_1),\dots,u(x_m))\,t_{k,i}(y) + b_{0,k},

a *branch* net :math:`b` reading the input function at ``m`` sensors, a *trunk* net :math:`t`
reading the query point :math:`y\in\mathbb R^d`, ``p`` basis functions per output and a
scalar output bias per output ``k = 1..n_outputs``. Every output lies in the affine span of
the ``p`` trunk functions, which is why the PCA floor of the output distribution
(:func:`opdiff.deeponet_bounds.pca_floor`) bounds its error from below.

* **unstacked** (the paper's default): one branch MLP with ``n_outputs * p`` outputs;
* **stacked**: ``p`` independent branch MLPs with one output each (evaluated together as one
  batched MLP);
* the trunk applies the activation to its last layer too, as DeepXDE does;
* an optional random Fourier-feature layer :math:`y\mapsto(\sin 2\pi By,\cos 2\pi By)`,
  :math:`B_{ij}\sim N(0,\sigma^2)` frozen, in front of the trunk.

Evaluation, written for one example and vmapped:

* ``model(u, y)``: one function at one point, shape ``(n_outputs,)``;
* :meth:`DeepONet.unaligned`: ``u [n, m]``, ``y [n, d]`` -> ``[n, n_outputs]``;
* :meth:`DeepONet.aligned`: ``u [n, m]``, ``y [P, d]`` -> ``[n, P, n_outputs]`` with the branch
  evaluated ``n`` times, the trunk ``P`` times and one einsum.

**POD-DeepONet** replaces the trunk by the mean and the first ``p`` principal components of the
*training* outputs on a fixed set of points (:class:`PODDeepONet`).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff._checks import check_finite_array, check_finite_scalar, check_positive_int
from opdiff.nets._compat import nnx
from opdiff.nets.layers import Frozen
from opdiff.nets.mlp import ACTIVATIONS, INITIALIZERS, MLP

__all__ = ["DeepONet", "PODDeepONet", "StackedMLP", "n_params", "param_count"]


def n_params(model) -> int:
    """The number of trainable values (``nnx.Param`` entries) of ``model``."""
    return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))


def param_count(n_sensors: int, p: int, *, branch_width: int = 40, branch_depth: int = 1,
                trunk_width: int = 40, trunk_depth: int = 1, coord_dim: int = 1,
                n_outputs: int = 1) -> int:
    r"""Trainable parameters of an unstacked :class:`DeepONet` without Fourier features.

    An MLP with layer sizes :math:`s_0,\dots,s_L` has :math:`\sum_l(s_{l-1}+1)s_l`
    parameters; the branch is :math:`[m, w_b^{d_b}, Kp]`, the trunk :math:`[d, w_t^{d_t}, Kp]`,
    plus ``K`` output biases (Lu et al.'s ``[100, 40, 40] x [1, 40, 40]``: 7401).
    """
    def mlp(sizes):
        return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))

    kp = n_outputs * p
    return (mlp([n_sensors] + [branch_width] * branch_depth + [kp])
            + mlp([coord_dim] + [trunk_width] * trunk_depth + [kp]) + n_outputs)



class StackedMLP(nnx.Module):
    """``count`` independent MLPs ``in -> width^depth -> out`` with stacked weights.

    ``self(x)`` with ``x [in]`` returns ``[count, out]``: every member reads the same input.
    """

    def __init__(self, count: int, in_features: int, out_features: int, *, width: int,
                 depth: int, activation: Callable, kernel_init: str, key: PRNGKeyArray,
                 param_dtype=jnp.float32):
        sizes = [in_features] + [width] * depth + [out_features]
        init = INITIALIZERS[kernel_init]()
        keys = jax.random.split(key, len(sizes) - 1)
        self.kernels = nnx.List([
            nnx.Param(jax.vmap(lambda k, a=a, b=b: init(k, (a, b), param_dtype))(
                jax.random.split(kk, count)))
            for a, b, kk in zip(sizes[:-1], sizes[1:], keys)
        ])
        self.biases = nnx.List([nnx.Param(jnp.zeros((count, b), param_dtype)) for b in sizes[1:]])
        self.activation = activation

    def __call__(self, x: Float[Array, " d_in"]) -> Float[Array, "count d_out"]:
        h = jnp.einsum("a,cab->cb", x, self.kernels[0][...]) + self.biases[0][...]
        for w, b in zip(list(self.kernels)[1:], list(self.biases)[1:]):
            h = jnp.einsum("ca,cab->cb", self.activation(h), w[...]) + b[...]
        return h


class DeepONet(nnx.Module):
    """Branch/trunk operator network; see the module docstring.

    Args:
        n_sensors: ``m``, the number of sensor values the branch reads.
        coord_dim: ``d``, the dimension of a query point.
        p: basis functions per output (the last width of branch and trunk).
        branch_width, branch_depth: hidden layers of the branch (the paper: 40, 1, i.e.
            ``[m, 40, p]``).
        trunk_width, trunk_depth: hidden layers of the trunk (the paper: 40, 1).
        n_outputs: number of output components ``K``.
        activation: name from :data:`opdiff.nets.mlp.ACTIVATIONS` (the paper: ``"relu"``).
        stacked: ``p`` separate branch nets instead of one.
        fourier_features: number ``F`` of random Fourier features in front of the trunk
            (0: none); ``fourier_scale`` is the standard deviation of their frequencies, a
            finite number > 0.
        kernel_init: ``"glorot_normal"`` (the paper's) or another name of
            :data:`opdiff.nets.mlp.INITIALIZERS`.
        key: PRNG key for every initial weight.

    Raises:
        ValueError: if a size is not a positive int (``fourier_features``: >= 0), a name is
            unknown, or ``fourier_scale`` is NaN, ±inf or <= 0 (checked whenever it is
            concrete, with or without Fourier features).
        TypeError: if ``fourier_scale`` is not a real number.
    """

    def __init__(
        self,
        n_sensors: int,
        coord_dim: int = 1,
        p: int = 40,
        *,
        branch_width: int = 40,
        branch_depth: int = 1,
        trunk_width: int = 40,
        trunk_depth: int = 1,
        n_outputs: int = 1,
        activation: str = "relu",
        stacked: bool = False,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        kernel_init: str = "glorot_normal",
        key: PRNGKeyArray,
        param_dtype=jnp.float32,
    ):
        self.n_sensors = check_positive_int("n_sensors", n_sensors)
        self.coord_dim = check_positive_int("coord_dim", coord_dim)
        self.p = check_positive_int("p", p)
        self.n_outputs = check_positive_int("n_outputs", n_outputs)
        check_positive_int("fourier_features", fourier_features, minimum=0)
        check_finite_scalar("fourier_scale", fourier_scale, low=0.0, low_open=True,
                            what="be a finite number > 0")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if kernel_init not in INITIALIZERS:
            raise ValueError(f"kernel_init must be one of {sorted(INITIALIZERS)}, got {kernel_init!r}")
        branch_key, trunk_key, ff_key = jax.random.split(key, 3)
        kp = self.n_outputs * self.p
        self.stacked = bool(stacked)
        if self.stacked:
            self.branch = StackedMLP(kp, n_sensors, 1, width=branch_width, depth=branch_depth,
                                     activation=ACTIVATIONS[activation], kernel_init=kernel_init,
                                     key=branch_key, param_dtype=param_dtype)
        else:
            self.branch = MLP(n_sensors, kp, width=branch_width, depth=branch_depth,
                              activation=activation, kernel_init=kernel_init, key=branch_key,
                              param_dtype=param_dtype)
        trunk_in = coord_dim
        if fourier_features:
            b = fourier_scale * jax.random.normal(ff_key, (coord_dim, fourier_features), param_dtype)
            self.fourier = Frozen(b)
            trunk_in = 2 * fourier_features
        else:
            self.fourier = None
        self.trunk = MLP(trunk_in, kp, width=trunk_width, depth=trunk_depth,
                         activation=activation, kernel_init=kernel_init, key=trunk_key,
                         param_dtype=param_dtype, final_activation=True)
        self.bias = nnx.Param(jnp.zeros((self.n_outputs,), param_dtype))

    # --- one example --------------------------------------------------------------------
    def branch_coefficients(self, u: Float[Array, " m"]) -> Float[Array, "K p"]:
        """Branch outputs :math:`b_{k,i}(u)` for one input function."""
        out = self.branch(u)
        return out.reshape(self.n_outputs, self.p)

    def basis(self, y: Float[Array, " d"]) -> Float[Array, "K p"]:
        """Trunk outputs :math:`t_{k,i}(y)` at one query point."""
        if self.fourier is not None:
            z = 2 * jnp.pi * (y @ self.fourier[...])
            y = jnp.concatenate([jnp.sin(z), jnp.cos(z)])
        return self.trunk(y).reshape(self.n_outputs, self.p)

    def __call__(self, u: Float[Array, " m"], y: Float[Array, " d"]) -> Float[Array, " K"]:
        """:math:`G(u)(y)` for one function ``u [m]`` at one point ``y [d]``."""
        self._check(u, y, batched=False)
        # One contraction over p (not a product then a sum over the last axis): on XLA:CPU the
        # latter becomes a [n, K, p] reduce that cost a third of the paper network's step.
        return jnp.einsum("kp,kp->k", self.branch_coefficients(u), self.basis(y)) + self.bias[...]

    # --- batches --------------------------------------------------------------------------
    def unaligned(self, u: Float[Array, "n m"], y: Float[Array, "n d"]) -> Float[Array, "n K"]:
        """Row ``i``: :math:`G(u_i)(y_i)` (triplet data)."""
        self._check(u, y, batched=True)
        if u.shape[0] != y.shape[0]:
            raise ValueError(f"u and y must have the same number of rows, got {u.shape[0]} "
                             f"and {y.shape[0]}")
        return jax.vmap(self.__call__)(u, y)

    def aligned(self, u: Float[Array, "n m"], y: Float[Array, "P d"]) -> Float[Array, "n P K"]:
        """:math:`G(u_i)(y_j)` for all pairs (Cartesian-product data), one einsum."""
        self._check(u, y, batched=True)
        b = jax.vmap(self.branch_coefficients)(u)  # [n, K, p]
        t = jax.vmap(self.basis)(y)  # [P, K, p]
        return jnp.einsum("nkp,qkp->nqk", b, t) + self.bias[...]

    def _check(self, u, y, batched):
        lead = 1 if batched else 0
        if np.ndim(u) != 1 + lead or np.shape(u)[-1] != self.n_sensors:
            want = "(n, m)" if batched else "(m,)"
            raise ValueError(f"u must have shape {want} with m = n_sensors = {self.n_sensors} "
                             f"sensor values, got {np.shape(u)}")
        if np.ndim(y) != 1 + lead or np.shape(y)[-1] != self.coord_dim:
            want = "(n, d)" if batched else "(d,)"
            raise ValueError(f"y must have shape {want} with d = coord_dim = {self.coord_dim}, "
                             f"got {np.shape(y)}")


class PODDeepONet(nnx.Module):
    r"""POD-DeepONet: :math:`G(u)(y_j)\approx\bar v(y_j)+\sum_{i\le p}b_i(u)\,\phi_i(y_j)` on the
    fixed points ``y_j`` where the basis was computed.

    Args:
        n_sensors: ``m``.
        mean: ``[P]`` mean of the training outputs.
        modes: ``[p, P]`` principal components of the training outputs (see
            :func:`opdiff.deeponet_bounds.pca`), frozen.
        branch_width, branch_depth, activation, kernel_init: the branch MLP.
        key: PRNG key for the branch weights.

    Raises:
        ValueError: if ``n_sensors`` is not an int >= 1, the shapes of ``mean`` and ``modes``
            disagree, or (when concrete) either holds NaN or ±inf.
    """

    def __init__(self, n_sensors: int, mean, modes, *, branch_width: int = 40,
                 branch_depth: int = 1, activation: str = "relu",
                 kernel_init: str = "glorot_normal", key: PRNGKeyArray,
                 param_dtype=jnp.float32):
        self.n_sensors = check_positive_int("n_sensors", n_sensors)
        modes = jnp.asarray(modes, param_dtype)
        mean = jnp.asarray(mean, param_dtype)
        if modes.ndim != 2 or modes.shape[0] < 1:
            raise ValueError(f"modes must have shape (p, P) with p >= 1, got {modes.shape}")
        if mean.shape != modes.shape[1:]:
            raise ValueError(f"mean must have shape ({modes.shape[1]},) like the modes' points, "
                             f"got {mean.shape}")
        check_finite_array("modes", modes)
        check_finite_array("mean", mean)
        self.p = int(modes.shape[0])
        self.modes = Frozen(modes)
        self.mean = Frozen(mean)
        self.branch = MLP(n_sensors, self.p, width=branch_width, depth=branch_depth,
                          activation=activation, kernel_init=kernel_init, key=key,
                          param_dtype=param_dtype)

    def __call__(self, u: Float[Array, " m"]) -> Float[Array, " P"]:
        """The predicted output at every basis point for one input function."""
        if np.shape(u) != (self.n_sensors,):
            raise ValueError(f"u must have shape ({self.n_sensors},), got {np.shape(u)}")
        return self.mean[...] + self.branch(u) @ self.modes[...]

    def aligned(self, u: Float[Array, "n m"]) -> Float[Array, "n P"]:
        if np.ndim(u) != 2 or np.shape(u)[1] != self.n_sensors:
            raise ValueError(f"u must have shape (n, {self.n_sensors}), got {np.shape(u)}")
        return jax.vmap(self.__call__)(u)
