"""opdiff.nets.layers: the time embedding against its closed form, and Frozen is not trained."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from opdiff.nets import Frozen, MLP, nnx, time_embedding


def test_time_embedding_closed_form_values():
    # dim = 4: K = 2 frequencies 1 and 1e-4, so e(t) = [sin 1000t, sin 0.1t, cos 1000t, cos 0.1t]
    t = 0.25e-3
    e = np.asarray(time_embedding(jnp.float32(t), 4), np.float64)
    np.testing.assert_allclose(e, [math.sin(0.25), math.sin(0.25e-4), math.cos(0.25),
                                   math.cos(0.25e-4)], rtol=2e-6, atol=1e-7)
    # t = 0: K zeros, then K ones; an odd dim drops its last entry
    np.testing.assert_array_equal(np.asarray(time_embedding(0.0, 7)), [0, 0, 0, 1, 1, 1])
    # dim = 6: the middle frequency is 10^{-2} (geometric spacing from 1 to 1e-4)
    e6 = np.asarray(time_embedding(1.0, 6))
    assert e6[1] == pytest.approx(math.sin(10.0), abs=1e-5)
    assert e6[4] == pytest.approx(math.cos(10.0), abs=1e-5)


def test_time_embedding_keeps_the_dtype_and_traces():
    e = jax.jit(lambda t: time_embedding(t, 8))(jnp.asarray(0.5, jnp.float32))
    assert e.shape == (8,) and e.dtype == jnp.float32


def test_frozen_arrays_are_not_params():
    class WithFrozen(nnx.Module):
        def __init__(self):
            self.mlp = MLP(1, 1, width=2, depth=1, key=jax.random.key(0))
            self.scale = Frozen(jnp.ones(3))

    m = WithFrozen()
    params = nnx.state(m, nnx.Param)
    frozen = nnx.state(m, Frozen)
    assert len(jax.tree.leaves(frozen)) == 1
    assert all(leaf.shape != (3,) for leaf in jax.tree.leaves(params))


def test_avg_pool2_is_the_mean_of_2x2_windows_under_strict_promotion():
    import numpy as np

    from opdiff.nets.layers import avg_pool2

    h = np.arange(5 * 4 * 3, dtype=np.float32).reshape(5, 4, 3)
    want = h[:4].reshape(2, 2, 2, 2, 3).mean(axis=(1, 3))  # the odd last row is dropped
    got = avg_pool2(jnp.asarray(h))  # the suite runs under strict dtype promotion
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
