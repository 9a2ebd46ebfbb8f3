"""The U-Net denoiser: shapes at the issue's sizes, the identity at initialisation (its output
convolution starts at zero, so D(x, t) = x exactly), class conditioning, bad input, and a
training run through the engine that must cut a fixed-batch DSM loss by more than half."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import opdiff
from opdiff.diffusion import losses as L
from opdiff.diffusion import processes as P
from opdiff.images import load_digits
from opdiff.nets.unet import UNet


@pytest.mark.parametrize("shape, channels", [((8, 8), (16, 32)), ((28, 28), (8, 16, 32)),
                                             ((32, 32, 3), (8, 16, 32))])
def test_shapes_and_identity_at_init(shape, channels):
    net = UNet(shape, channels=channels, emb_dim=16, n_classes=10, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (3, *shape))
    out = net.batched(x, jnp.array([0.1, 0.5, 0.9]), jnp.array([0, 9, 10]))
    assert out.shape == x.shape
    np.testing.assert_array_equal(np.asarray(out), np.asarray(x))


def test_conditioning_changes_the_output_once_trained_weights_are_nonzero():
    net = UNet((8, 8), channels=(8, 16), emb_dim=16, n_classes=3, key=jax.random.key(0))
    # give the output convolution non-zero weights: labels and times must then matter
    net.out.kernel[...] = 0.1 * jax.random.normal(jax.random.key(2), net.out.kernel[...].shape)
    x = jax.random.normal(jax.random.key(1), (8, 8))
    a, b, c = net(x, 0.5, 0), net(x, 0.5, 1), net(x, 0.2, 0)
    assert float(jnp.abs(a - b).max()) > 1e-4 and float(jnp.abs(a - c).max()) > 1e-4


def test_bad_input():
    with pytest.raises(ValueError, match="divisible"):
        UNet((10, 10), channels=(8, 16, 32), key=jax.random.key(0))
    with pytest.raises(ValueError, match="shape must be"):
        UNet((8,), key=jax.random.key(0))
    net = UNet((8, 8), channels=(8, 16), emb_dim=16, n_classes=10, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"x must have shape \(8, 8\)"):
        net(jnp.zeros((7, 8)), 0.5)
    with pytest.raises(TypeError, match="floating-point"):
        net(jnp.zeros((8, 8), jnp.int32), 0.5)
    with pytest.raises(ValueError, match=r"labels y must be in \[0, 10\]"):
        net.batched(jnp.zeros((2, 8, 8)), 0.5, jnp.array([3, 11]))
    with pytest.raises(TypeError, match="labels y must be integers"):
        net.batched(jnp.zeros((2, 8, 8)), 0.5, jnp.array([0.5, 1.0]))
    plain = UNet((8, 8), channels=(8, 16), emb_dim=16, key=jax.random.key(0))
    with pytest.raises(ValueError, match="unconditional"):
        plain.batched(jnp.zeros((2, 8, 8)), 0.5, jnp.array([1, 2]))


@pytest.mark.slow
def test_training_through_the_engine_cuts_a_fixed_batch_loss():
    x = jnp.asarray(load_digits()[0][:256] * 2 - 1)
    proc = P.vp((8, 8))
    net = UNet((8, 8), channels=(8, 16), emb_dim=16, key=jax.random.key(0))
    key = jax.random.key(5)  # the same (t, eps) every step: a deterministic objective

    def loss(model, batch, _):
        return L.dsm_loss(model.batched, proc, batch, key, parameterization="denoiser",
                          reduce="mean")

    res = opdiff.fit(loss, net, optax.adam(3e-3), lambda k: x, steps=40, key=jax.random.key(1),
                     steps_per_call=40)
    assert np.all(np.isfinite(res.losses))
    assert res.losses[-1] < 0.5 * res.losses[0], (res.losses[0], res.losses[-1])  # 0.27 -> 0.10
