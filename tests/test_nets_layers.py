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


def _group_norm_numpy(x, groups, scale, bias, eps):
    # independent: float64, the group statistics by an explicit loop over groups
    x = np.asarray(x, np.float64)
    c = x.shape[-1]
    k = c // groups
    out = np.empty_like(x)
    for g in range(groups):
        block = x[..., g * k:(g + 1) * k]
        out[..., g * k:(g + 1) * k] = (block - block.mean()) / np.sqrt(block.var() + eps)
    return out * scale + bias


@pytest.mark.parametrize("shape, groups", [((6, 5, 8), 4), ((7, 6), 2), ((4, 4, 3, 6), 3),
                                           ((5, 8), 8)])
def test_group_norm_against_numpy_over_the_whole_example(shape, groups):
    from opdiff.nets.layers import group_norm

    rng = np.random.default_rng(0)
    # rows with very different offsets: a per-row norm (flax's on one image) would differ
    x = rng.standard_normal(shape) + 5 * np.arange(shape[0]).reshape(-1, *[1] * (len(shape) - 1))
    scale, bias = rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])
    got = group_norm(jnp.asarray(x, jnp.float32), groups, jnp.asarray(scale, jnp.float32),
                     jnp.asarray(bias, jnp.float32), 1e-6)
    assert got.dtype == jnp.float32 and got.shape == shape
    np.testing.assert_allclose(np.asarray(got), _group_norm_numpy(x, groups, scale, bias, 1e-6),
                               rtol=2e-5, atol=2e-5)


def test_group_norm_variance_about_the_mean_keeps_digits_at_a_large_offset():
    # mean 1e4, spread 1: E[x^2] - mu^2 in float32 would lose every digit of the variance
    from opdiff.nets.layers import group_norm

    rng = np.random.default_rng(1)
    x = 1e4 + rng.standard_normal((8, 8, 4))
    got = group_norm(jnp.asarray(x, jnp.float32), 2, jnp.ones(4), jnp.zeros(4))
    want = _group_norm_numpy(np.asarray(jnp.asarray(x, jnp.float32)), 2, 1.0, 0.0, 1e-6)
    np.testing.assert_allclose(np.asarray(got), want, atol=5e-3)


def test_group_norm_module_is_per_example_and_checks_its_input():
    from opdiff.nets.layers import GroupNorm

    gn = GroupNorm(6, num_groups=3)
    assert isinstance(gn.scale, nnx.Param) and isinstance(gn.bias, nnx.Param)  # flax's names
    assert gn.scale[...].shape == gn.bias[...].shape == (6,)
    xb = jax.random.normal(jax.random.key(0), (4, 5, 5, 6)) * jnp.arange(1.0, 5.0)[:, None, None,
                                                                                  None]
    batched = jax.vmap(gn)(xb)
    for i in range(4):  # vmap = one example at a time; each example normalised on its own
        np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(gn(xb[i])), atol=1e-6)
        per_group = np.asarray(batched[i]).reshape(25, 3, 2).transpose(1, 0, 2).reshape(3, -1)
        np.testing.assert_allclose(per_group.mean(1), 0, atol=1e-5)
        np.testing.assert_allclose(per_group.std(1), 1, atol=1e-4)
    assert gn(xb[0].astype(jnp.bfloat16)).dtype == jnp.bfloat16
    with pytest.raises(ValueError, match="num_groups must be a positive divisor"):
        GroupNorm(6, num_groups=4)
    with pytest.raises(ValueError, match="must have 6 channels"):
        gn(jnp.ones((3, 5)))
