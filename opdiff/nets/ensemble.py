r"""Ensembles: ``E`` independently initialised copies of one model, trained at once.

The parameters of an :class:`Ensemble` are one pytree with a leading member axis;
:meth:`Ensemble.map` vmaps a function of one member over all of them. A loss that sums the
members' losses, :math:`\sum_j L_j(\theta_j)`, has block-separable gradients
(:math:`\nabla_{\theta_j}\sum_i L_i = \nabla L_j(\theta_j)`), so training the ensemble with
Adam through :func:`opdiff.fit` equals training each member alone, for one compilation.

Every member is drawn from its own PRNG key (:meth:`Ensemble.create`):

* ``init="model"``: member ``j`` *is* ``make(keys[j])``, the model's own initialiser, vmapped
  over the keys in one compiled call. Exact, but XLA compiles the model's initialiser (one
  threefry stream per layer): seconds on a small CPU (3.7 s and 7.4 s for heat_operator's smoke
  and quick DeepONets, 6 layers, on a loaded 2-core CPU).
* ``init="glorot_normal"``: the law of ``glorot_normal`` kernels and zero biases (the
  DeepONet paper's initialisation), drawn as one truncated-normal vector per member key,
  vmapped: a single threefry stream (0.5-1.4 s there, nearly all of it compiling that
  stream). Member ``j`` depends on ``keys[j]`` only, but is not bitwise ``make(keys[j])``.

Members of *different* shapes (a sweep over widths or basis sizes) are padded into one
ensemble by :func:`opdiff.deeponet_sweep.stack_members`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from opdiff.nets._compat import nnx

__all__ = ["Ensemble", "INITS"]

INITS = ("model", "glorot_normal")
# the standard deviation of N(0, 1) truncated to [-2, 2] (flax's variance_scaling divides by it)
_TRUNCATED_STD = 0.87962566103423978


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """``E`` independently initialised copies of one model, trained at once (module docstring).

    Attributes:
        graphdef: the nnx graph of one member.
        rest: the members' non-trainable state, stacked on a leading member axis.

    Example:
        >>> keys = jax.random.split(key, 4)
        >>> ens, params = Ensemble.create(lambda k: DeepONet(10, key=k), keys)
        >>> preds = ens.map(params, lambda net, u, y: net.aligned(u, y), u, y)   # [4, n, P, 1]
    """

    graphdef: Any
    rest: Any

    @staticmethod
    def create(make: Callable[[PRNGKeyArray], Any], keys, *,
               init: str = "model") -> tuple[Ensemble, Any]:
        r"""One member per key; returns the ensemble and the stacked trainable parameters.

        Args:
            make: ``make(key) -> nnx module``; traced (under ``jit``/``vmap``), never run
                eagerly.
            keys: ``[E]`` PRNG keys (or ``[E, 2]`` raw ``uint32`` key data), ``E >= 1``.
            init: ``"model"``: member ``j`` is ``make(keys[j])`` (every parameter and every
                non-trainable array as the model initialises them). ``"glorot_normal"``: only
                the structure of ``make``'s module is used; every 2-D ``nnx.Param`` (a dense
                kernel ``[fan_in, fan_out]``) of member ``j`` is
                :math:`\sigma z`, :math:`\sigma=\sqrt{2/(\text{fan-in}+\text{fan-out})}/0.8796`,
                :math:`z` standard normal truncated to :math:`[-2, 2]` (0.8796 its standard
                deviation, so the kernel's is Glorot's), all kernels of a member read from one
                ``jax.random.truncated_normal`` draw of ``keys[j]``; every 0-/1-D parameter
                (the biases) is zero.

        Raises:
            ValueError: ``keys`` empty or not a vector of keys; ``init`` unknown; with
                ``"glorot_normal"``, a module with non-trainable state (its values would be
                the model's own) or a parameter of more than 2 dimensions (its fans are not a
                dense layer's).
        """
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        keys = keys if isinstance(keys, jax.Array) else jnp.asarray(keys)
        typed = jnp.issubdtype(keys.dtype, jax.dtypes.prng_key)
        if keys.ndim != (1 if typed else 2) or keys.shape[0] < 1:
            raise ValueError(f"keys must be a non-empty vector of PRNG keys [E] (or raw key data "
                             f"[E, 2]), got shape {keys.shape} dtype {keys.dtype}")
        abstract = nnx.eval_shape(lambda: make(keys[0]))
        graphdef, shapes, rest_shapes = nnx.split(abstract, nnx.Param, ...)
        if init == "model":
            def one(k):
                _, params, rest = nnx.split(make(k), nnx.Param, ...)
                return params, rest

            params, rest = jax.jit(jax.vmap(one))(keys)
            return Ensemble(graphdef, rest), params
        if jax.tree.leaves(rest_shapes):
            raise ValueError("init='glorot_normal' needs a module without non-trainable state "
                             "(e.g. no Fourier features or POD modes); use init='model'")
        return Ensemble(graphdef, rest_shapes), _glorot_normal(shapes, keys)

    def member(self, params, i: int):
        """Member ``i`` as an ordinary nnx module."""
        take = lambda x: x[i]  # noqa: E731
        return nnx.merge(self.graphdef, jax.tree.map(take, params), jax.tree.map(take, self.rest))

    def map(self, params, fn: Callable, *args):
        """``fn(member, *args)`` for every member, stacked on a leading axis."""
        def one(p, r):
            return fn(nnx.merge(self.graphdef, p, r), *args)

        return jax.vmap(one)(params, self.rest)


def _glorot_normal(shapes, keys):
    """Stacked parameters of the ``shapes`` pytree (``ShapeDtypeStruct`` leaves), one member per
    key: glorot-normal 2-D kernels from one truncated-normal vector per key, zero elsewhere."""
    leaves, treedef = jax.tree.flatten(shapes)
    for leaf in leaves:
        if len(leaf.shape) > 2:
            raise ValueError(f"init='glorot_normal' draws dense kernels [fan_in, fan_out] only, "
                             f"got a parameter of shape {leaf.shape}; use init='model'")
    kernels = [leaf for leaf in leaves if len(leaf.shape) == 2]
    total = sum(math.prod(leaf.shape) for leaf in kernels)
    dtype = jnp.result_type(*(leaf.dtype for leaf in kernels)) if kernels else jnp.float32

    draw = jax.jit(jax.vmap(lambda k: jax.random.truncated_normal(k, -2.0, 2.0, (total,), dtype)))
    z = np.asarray(draw(keys))  # [E, total]; sliced on the host (slices under jit compile slowly)
    out, start = [], 0
    for leaf in leaves:
        shape = (z.shape[0], *leaf.shape)
        if len(leaf.shape) != 2:
            out.append(jnp.asarray(np.zeros(shape, leaf.dtype)))
            continue
        size = math.prod(leaf.shape)
        std = math.sqrt(2.0 / sum(leaf.shape)) / _TRUNCATED_STD
        out.append(jnp.asarray((z[:, start:start + size].reshape(shape) * std).astype(leaf.dtype)))
        start += size
    return jax.tree.unflatten(treedef, out)
