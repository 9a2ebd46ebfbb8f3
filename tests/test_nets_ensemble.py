"""opdiff.nets.ensemble: an Ensemble's members are the models its keys make (init="model") or
glorot-normal draws from their own keys (init="glorot_normal", recomputed independently);
training the stack equals training each member alone; bad input."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import opdiff
from opdiff.nets import DeepONet, Ensemble


def test_ensemble_members_match_independent_models():
    make = lambda k: DeepONet(6, 1, 4, branch_width=8, trunk_width=8, key=k)  # noqa: E731
    keys = jax.random.split(jax.random.key(9), 3)
    ens, params = Ensemble.create(make, keys)
    u = jax.random.normal(jax.random.key(1), (5, 6))
    y = jnp.linspace(0, 1, 4)[:, None]
    out = ens.map(params, lambda net, u, y: net.aligned(u, y), u, y)
    assert out.shape == (3, 5, 4, 1)
    for i, k in enumerate(keys):
        np.testing.assert_allclose(out[i], make(k).aligned(u, y), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ens.member(params, i).aligned(u, y), out[i], rtol=1e-6)


def test_ensemble_training_equals_separate_training():
    # Summed member losses have block-separable gradients: Adam on the stack = Adam on each.
    make = lambda k: DeepONet(4, 1, 3, branch_width=6, trunk_width=6, key=k)  # noqa: E731
    keys = jax.random.split(jax.random.key(3), 2)
    u = jax.random.normal(jax.random.key(4), (16, 4))
    y = jnp.linspace(0, 1, 6)[:, None]
    target = jnp.sin(3 * y[:, 0])[None, :] * u[:, :1]

    def member_loss(net):
        return jnp.mean((net.aligned(u, y)[..., 0] - target) ** 2)

    ens, params = Ensemble.create(make, keys)
    res = opdiff.fit(lambda p, b, k: jnp.sum(ens.map(p, member_loss)), params, optax.adam(1e-2),
                     lambda k: 0.0, steps=30, key=jax.random.key(0))
    for i, k in enumerate(keys):
        alone = opdiff.fit(lambda m, b, kk: member_loss(m), make(k), optax.adam(1e-2),
                           lambda kk: 0.0, steps=30, key=jax.random.key(0))
        np.testing.assert_allclose(member_loss(ens.member(res.params, i)),
                                   member_loss(alone.params), rtol=1e-4)


def test_glorot_normal_members_are_truncated_normals_of_their_own_keys():
    make = lambda k: DeepONet(30, 1, 20, branch_width=40, trunk_width=40, key=k)  # noqa: E731
    keys = jax.random.split(jax.random.key(0), 3)
    ens, params = Ensemble.create(make, keys, init="glorot_normal")
    kernel = np.asarray(params["branch"]["layers"][0]["kernel"][...])  # [3, 30, 40]
    sigma = math.sqrt(2.0 / 70) / 0.87962566103423978
    assert kernel.shape == (3, 30, 40) and np.abs(kernel).max() <= 2 * sigma
    assert kernel.std() == pytest.approx(math.sqrt(2.0 / 70), rel=0.05)  # the Glorot std
    assert not np.allclose(kernel[0], kernel[1])
    assert np.all(np.asarray(params["bias"][...]) == 0)
    assert np.all(np.asarray(params["branch"]["layers"][0]["bias"][...]) == 0)
    # independent recomputation: member j's kernels, in tree order, are consecutive pieces of
    # one truncated-normal vector drawn from keys[j], each times its own Glorot scale
    leaves = jax.tree.leaves(params)
    kernels = [np.asarray(x) for x in leaves if x.ndim == 3]
    total = sum(k[0].size for k in kernels)
    for j in range(3):
        z = np.asarray(jax.random.truncated_normal(keys[j], -2.0, 2.0, (total,), jnp.float32))
        start = 0
        for k in kernels:
            fan = sum(k.shape[1:])
            want = z[start:start + k[j].size].reshape(k.shape[1:]) * (
                math.sqrt(2.0 / fan) / 0.87962566103423978)
            np.testing.assert_allclose(k[j], want, rtol=1e-6)
            start += k[j].size
    # member j depends on keys[j] only
    _, two = Ensemble.create(make, keys[:2], init="glorot_normal")
    for a, b in zip(jax.tree.leaves(two), leaves):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b)[:2])
    u, y = jnp.ones((2, 30)), jnp.zeros((3, 1))
    assert ens.member(params, 2).aligned(u, y).shape == (2, 3, 1)


def test_create_rejects_bad_input():
    make = lambda k: DeepONet(4, 1, 3, branch_width=6, trunk_width=6, key=k)  # noqa: E731
    keys = jax.random.split(jax.random.key(0), 2)
    with pytest.raises(ValueError, match="init must be one of"):
        Ensemble.create(make, keys, init="lecun")
    with pytest.raises(ValueError, match="keys must be a non-empty vector of PRNG keys"):
        Ensemble.create(make, keys[:0])
    with pytest.raises(ValueError, match="keys must be a non-empty vector of PRNG keys"):
        Ensemble.create(make, jax.random.key(0))
    fourier = lambda k: DeepONet(4, 1, 3, fourier_features=2, key=k)  # noqa: E731
    with pytest.raises(ValueError, match="without non-trainable state"):
        Ensemble.create(fourier, keys, init="glorot_normal")
    stacked = lambda k: DeepONet(4, 1, 3, stacked=True, key=k)  # noqa: E731
    with pytest.raises(ValueError, match="dense kernels"):
        Ensemble.create(stacked, keys, init="glorot_normal")
