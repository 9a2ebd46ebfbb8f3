"""The learned convolutional autoencoder (opdiff.nets.autoencoder) on the digits.

After 300 Adam steps (batch 64, latent 4x4x2 = 32 numbers for 64 pixels) the held-out
reconstruction MSE is below 25 % of the held-out variance about the training mean (measured
~13 % at 400 steps); the untrained network is far above that bound, so the bound
discriminates. The latents are rescaled to unit variance on the training set.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from opdiff import images
from opdiff.nets.autoencoder import ConvAutoencoder, autoencoder_loss, train_autoencoder


def _digits():
    x, _ = images.load_digits()
    x = 2 * x.astype(np.float32) - 1
    perm = np.random.default_rng(0).permutation(len(x))
    return x[perm[200:]], x[perm[:200]]


def _relative_error(model, x_test, x_train):
    rec = np.asarray(model.decode(model.encode(jnp.asarray(x_test))))
    return float(np.mean((rec - x_test) ** 2) / np.mean((x_test - x_train.mean(0)) ** 2))


def test_held_out_reconstruction_after_short_training():
    x_train, x_test = _digits()
    model, res = train_autoencoder(x_train, key=jax.random.key(0), steps=300, batch_size=64,
                                   latent_channels=2)
    assert model.latent_shape == (4, 4, 2)
    err = _relative_error(model, x_test, x_train)
    assert err < 0.25, err
    untrained = ConvAutoencoder((8, 8), latent_channels=2, key=jax.random.key(0))
    assert _relative_error(untrained, x_test, x_train) > 0.5  # the bound can fail
    z = np.asarray(model.encode(jnp.asarray(x_train)), np.float64)
    np.testing.assert_allclose(z.std(), 1.0, rtol=1e-4)  # unit-variance latents
    assert res.losses[-1] < res.losses[0] / 3


def test_bad_input_names_the_argument():
    model = ConvAutoencoder((8, 8), latent_channels=3, key=jax.random.key(0))
    with pytest.raises(ValueError, match="z must have shape"):
        model.decode(jnp.zeros((2, 4, 4, 2), jnp.float32))
    with pytest.raises(ValueError, match="z must have dtype float32"):
        model.decode(np.zeros((2, 4, 4, 3), np.int32))
    with pytest.raises(ValueError, match="x must have shape"):
        model.encode(jnp.zeros((2, 6, 6), jnp.float32))
    with pytest.raises(ValueError, match="shape must be"):
        ConvAutoencoder((7, 8), key=jax.random.key(0))
    with pytest.raises(ValueError, match="latent_channels"):
        ConvAutoencoder((8, 8), latent_channels=0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="latent_penalty"):
        autoencoder_loss(-1.0)
