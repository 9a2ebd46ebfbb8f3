"""The MLP: shapes, determinism per key, parameter count, gradients, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from opdiff.nets import MLP, nnx


def test_shapes_parameter_count_and_vmap():
    net = MLP(3, 2, width=5, depth=2, key=jax.random.key(0))
    assert net(jnp.ones(3)).shape == (2,)
    assert jax.vmap(net)(jnp.ones((7, 3))).shape == (7, 2)
    n_params = sum(x.size for x in jax.tree.leaves(nnx.state(net, nnx.Param)))
    assert n_params == (3 + 1) * 5 + (5 + 1) * 5 + (5 + 1) * 2


def test_same_key_same_weights_other_key_differs():
    def leaves(seed):
        return jax.tree.leaves(nnx.state(MLP(2, 1, width=4, depth=1, key=jax.random.key(seed))))

    for a, b in zip(leaves(1), leaves(1)):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(leaves(1), leaves(2)))


def test_shallow_relu_is_the_explicit_formula():
    net = MLP(1, 1, width=3, depth=1, activation="relu", key=jax.random.key(3))
    w1, b1 = net.layers[0].kernel[...], net.layers[0].bias[...]
    w2, b2 = net.layers[1].kernel[...], net.layers[1].bias[...]
    x = jnp.linspace(-2, 2, 11)
    expected = jnp.maximum(x[:, None] * w1[0] + b1, 0.0) @ w2[:, 0] + b2[0]
    np.testing.assert_allclose(jax.vmap(net)(x[:, None])[:, 0], expected, rtol=1e-6, atol=1e-6)


def test_gradients_match_finite_differences(x64):
    net = MLP(2, 1, width=4, depth=2, activation="tanh", key=jax.random.key(0),
              param_dtype=jnp.float64)
    check_grads(lambda x: net(x), (jnp.array([0.3, -0.7]),), order=1, modes=["rev"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(width=0), "width must be a positive int"),
        (dict(depth=0), "depth must be a positive int"),
        (dict(activation="nope"), "activation must be"),
    ],
)
def test_bad_construction(kwargs, match):
    args = dict(width=4, depth=1, key=jax.random.key(0))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MLP(2, 1, **args)


def test_wrong_input_shape_names_the_shape():
    net = MLP(2, 1, width=4, depth=1, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"x must have shape \(2,\)"):
        net(jnp.ones((5, 2)))
