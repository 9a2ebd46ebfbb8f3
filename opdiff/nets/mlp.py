"""A multilayer perceptron, written for one example and batched with ``jax.vmap``."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff.nets._compat import nnx

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "sin": jnp.sin,
}


INITIALIZERS: dict[str, Callable] = {
    "lecun_normal": nnx.initializers.lecun_normal,
    "lecun_uniform": nnx.initializers.lecun_uniform,
    "glorot_normal": nnx.initializers.glorot_normal,
    "glorot_uniform": nnx.initializers.glorot_uniform,
}


class MLP(nnx.Module):
    r"""Fully connected network :math:`x \mapsto W_L\sigma(\cdots\sigma(W_1x+b_1)\cdots)+b_L`.

    ``depth`` counts hidden layers, so ``depth=1`` is a shallow network with ``width`` neurons
    and ``depth + 1`` affine maps in total.

    Args:
        in_features: input dimension ``d_in``.
        out_features: output dimension ``d_out``.
        width: neurons per hidden layer.
        depth: number of hidden layers (>= 1).
        activation: a callable, or one of ``"relu"``, ``"tanh"``, ``"gelu"``, ``"silu"``,
            ``"sin"``.
        key: PRNG key for the initial weights (zero biases).
        param_dtype: dtype of the parameters.
        kernel_init: ``"lecun_normal"`` (default), ``"glorot_normal"`` (the DeepONet paper's),
            ``"glorot_uniform"`` or ``"lecun_uniform"``.
        final_activation: also apply the activation after the last affine map (DeepONet's
            trunk does).

    Raises:
        ValueError: if a size is not a positive integer or the activation name is unknown.

    Example:
        >>> import jax
        >>> net = MLP(2, 1, width=16, depth=2, key=jax.random.key(0))
        >>> net(jax.numpy.ones(2)).shape
        (1,)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        width: int,
        depth: int,
        activation: str | Callable[[Array], Array] = "tanh",
        key: PRNGKeyArray,
        param_dtype=jnp.float32,
        kernel_init: str = "lecun_normal",
        final_activation: bool = False,
    ):
        for name, value in (
            ("in_features", in_features),
            ("out_features", out_features),
            ("width", width),
            ("depth", depth),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if kernel_init not in INITIALIZERS:
            raise ValueError(
                f"kernel_init must be one of {sorted(INITIALIZERS)}, got {kernel_init!r}"
            )
        if isinstance(activation, str):
            if activation not in ACTIVATIONS:
                raise ValueError(
                    f"activation must be a callable or one of {sorted(ACTIVATIONS)}, "
                    f"got {activation!r}"
                )
            activation = ACTIVATIONS[activation]
        self.activation = activation
        self.in_features = in_features
        self.final_activation = final_activation
        init = INITIALIZERS[kernel_init]()
        sizes = [in_features] + [width] * depth + [out_features]
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = nnx.List(
            [
                nnx.Linear(a, b, rngs=nnx.Rngs(k), param_dtype=param_dtype, kernel_init=init)
                for a, b, k in zip(sizes[:-1], sizes[1:], keys)
            ]
        )

    def __call__(self, x: Float[Array, " d_in"]) -> Float[Array, " d_out"]:
        """Evaluate on one example ``x`` of shape ``(in_features,)``."""
        if x.shape != (self.in_features,):
            raise ValueError(
                f"x must have shape ({self.in_features},) (one example; vmap over a batch), "
                f"got {x.shape}"
            )
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        x = self.layers[-1](x)
        return self.activation(x) if self.final_activation else x
