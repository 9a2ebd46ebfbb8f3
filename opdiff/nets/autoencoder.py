r"""A small convolutional autoencoder (flax nnx) for latent diffusion.

Encoder: 3×3 conv → SiLU → 3×3 conv of stride 2 → SiLU → 1×1 conv to ``latent_channels``, so
an ``(H, W[, C])`` image becomes an ``(H/2, W/2, latent_channels)`` latent. Decoder: 3×3 conv
→ SiLU → nearest-neighbour ×2 upsampling → 3×3 conv → SiLU → 3×3 conv back to the image
channels. Trained through :func:`opdiff.fit` on

.. math:: L=\frac1B\sum_b\frac{\|D(E(x_b))-x_b\|^2}{N}+\beta\,\frac{\|E(x_b)\|^2}{N_z},

the reconstruction MSE plus a small latent-scale penalty :math:`\beta` (the role of the weak
KL term of Rombach et al.'s LDM autoencoders: it keeps the latent from drifting to large
values). After training the latents are rescaled to unit variance: ``latent_scale`` is the
standard deviation of :math:`E(x)` over the training set, and ``encode`` returns
:math:`E(x)/\text{scale}`, ``decode`` applies :math:`D(\text{scale}\cdot z)` (LDM's scale
factor).

The interface is the one of :mod:`opdiff.diffusion.latent`: ``shape``, ``latent_shape``,
``encode(x [B, *shape]) -> z``, ``decode(z [B, *latent_shape]) -> x``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff._checks import check_images, check_positive_int
from opdiff.nets._compat import nnx

__all__ = ["ConvAutoencoder", "autoencoder_loss", "decode_latents", "encode_images",
           "latent_std", "train_autoencoder"]


class ConvAutoencoder(nnx.Module):
    """Convolutional autoencoder with a 2× downsampled latent (module docstring).

    Args:
        shape: the image shape ``(H, W)`` or ``(H, W, C)``, ``H`` and ``W`` even.
        latent_channels: channels of the latent ``(H/2, W/2, latent_channels)``.
        channels: ``(c0, c1)`` features at full and half resolution.
        key: PRNG key for the initial weights.
    """

    def __init__(self, shape: tuple[int, ...], *, latent_channels: int = 2,
                 channels: tuple[int, int] = (16, 32), key: PRNGKeyArray):
        shape = tuple(int(s) for s in shape)
        if len(shape) not in (2, 3) or min(shape) < 2 or shape[0] % 2 or shape[1] % 2:
            raise ValueError(f"shape must be (H, W) or (H, W, C) with H and W even, got {shape}")
        lc = check_positive_int("latent_channels", latent_channels)
        if len(channels) != 2 or any(int(c) < 1 for c in channels):
            raise ValueError(f"channels must be two positive ints, got {channels}")
        c0, c1 = (int(c) for c in channels)
        cin = shape[2] if len(shape) == 3 else 1
        rngs = nnx.Rngs(key)
        self.shape = shape
        self.latent_shape = (shape[0] // 2, shape[1] // 2, lc)
        self.latent_scale = 1.0
        self.enc = nnx.List([nnx.Conv(cin, c0, (3, 3), rngs=rngs),
                             nnx.Conv(c0, c1, (3, 3), strides=(2, 2), rngs=rngs),
                             nnx.Conv(c1, lc, (1, 1), rngs=rngs)])
        self.dec = nnx.List([nnx.Conv(lc, c1, (3, 3), rngs=rngs),
                             nnx.Conv(c1, c0, (3, 3), rngs=rngs),
                             nnx.Conv(c0, cin, (3, 3), rngs=rngs)])

    def raw_encode(self, x: Float[Array, "B H W *C"]) -> Float[Array, "B h w c"]:
        """:math:`E(x)`, not rescaled."""
        h = x if len(self.shape) == 3 else x[..., None]
        h = jax.nn.silu(self.enc[0](h))
        h = jax.nn.silu(self.enc[1](h))
        return self.enc[2](h)

    def raw_decode(self, z: Float[Array, "B h w c"]) -> Float[Array, "B H W *C"]:
        """:math:`D(z)` of a raw latent."""
        h = jax.nn.silu(self.dec[0](z))
        h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
        h = jax.nn.silu(self.dec[1](h))
        x = self.dec[2](h)
        return x if len(self.shape) == 3 else x[..., 0]

    def encode(self, x: Float[Array, "B H W *C"]) -> Float[Array, "B h w c"]:
        """Unit-variance latents :math:`E(x)/\\text{latent\\_scale}`.

        Raises:
            TypeError: non-floating ``x``. ValueError: ``x`` not ``[B, *shape]``.
        """
        x = check_images("x", x, self.shape)
        return self.raw_encode(x) / jnp.asarray(self.latent_scale, x.dtype)

    def decode(self, z: Float[Array, "B h w c"]) -> Float[Array, "B H W *C"]:
        """Images :math:`D(\\text{latent\\_scale}\\cdot z)`.

        Raises:
            ValueError: ``z`` not ``[B, *latent_shape]`` or not float32 (the weights' dtype).
        """
        if not hasattr(z, "dtype"):
            z = np.asarray(z)
        if z.dtype != jnp.float32:
            raise ValueError(f"z must have dtype float32 (the autoencoder's), got {z.dtype}")
        if z.ndim != 4 or tuple(z.shape[1:]) != self.latent_shape:
            raise ValueError(f"z must have shape [batch, {', '.join(map(str, self.latent_shape))}"
                             f"], got {tuple(z.shape)}")
        return self.raw_decode(z * jnp.asarray(self.latent_scale, z.dtype))


def autoencoder_loss(latent_penalty: float = 1e-4):
    r"""The engine loss of a :class:`ConvAutoencoder` on a batch ``x``: reconstruction MSE
    plus ``latent_penalty`` times the mean squared raw latent (module docstring).

    Raises:
        ValueError: a negative or non-finite ``latent_penalty``.
    """
    beta = float(latent_penalty)
    if not (np.isfinite(beta) and beta >= 0):
        raise ValueError(f"latent_penalty must be finite and >= 0, got {latent_penalty!r}")

    def loss(model, x, key):
        del key
        z = model.raw_encode(x)
        return jnp.mean((model.raw_decode(z) - x) ** 2) + beta * jnp.mean(z**2)

    return loss


@nnx.jit
def _raw_chunk(model, x):
    return model.raw_encode(x)


@nnx.jit
def _encode_chunk(model, x):
    return model.encode(x)


@nnx.jit
def _decode_chunk(model, z):
    return model.decode(z)


def _chunked(fn, model, x, chunk: int) -> np.ndarray:
    return np.concatenate([np.asarray(fn(model, jnp.asarray(x[i:i + chunk])))
                           for i in range(0, len(x), chunk)])


def latent_std(model: ConvAutoencoder, images, chunk: int = 512) -> float:
    """The standard deviation of the raw latents :math:`E(x)` over ``images`` (all entries)."""
    x = np.asarray(check_images("images", images, model.shape), np.float32)
    return float(_chunked(_raw_chunk, model, x, chunk).astype(np.float64).std())


def encode_images(model: ConvAutoencoder, images, chunk: int = 512) -> np.ndarray:
    """``model.encode`` compiled, in chunks of ``chunk`` (float32 numpy latents)."""
    x = np.asarray(check_images("images", images, model.shape), np.float32)
    return _chunked(_encode_chunk, model, x, chunk)


def decode_latents(model: ConvAutoencoder, z, chunk: int = 512) -> np.ndarray:
    """``model.decode`` compiled, in chunks of ``chunk`` (float32 numpy images).

    Raises:
        ValueError: ``z`` not ``[B, *latent_shape]`` float32.
    """
    if not hasattr(z, "dtype"):
        z = np.asarray(z)
    model.decode(z[:1])  # the checks, on one latent
    return _chunked(_decode_chunk, model, z, chunk)


def train_autoencoder(images, *, key: PRNGKeyArray, steps: int = 1000, batch_size: int = 128,
                      lr: float = 2e-3, latent_channels: int = 2,
                      channels: tuple[int, int] = (16, 32), latent_penalty: float = 1e-4,
                      progress: bool | None = False):
    r"""Build and train a :class:`ConvAutoencoder` through :func:`opdiff.fit` (Adam, cosine
    schedule), then set ``latent_scale`` so the training latents have unit variance.

    Args:
        images: ``[N, H, W]`` or ``[N, H, W, C]`` float32 training images.
        key: PRNG key (split: initial weights, batches).
        steps, batch_size, lr: the optimisation; latent_channels, channels: the architecture;
        latent_penalty: :math:`\beta` of :func:`autoencoder_loss`.

    Returns:
        ``(model, result)``: the trained model (``result.params`` with its scale set) and the
        engine's :class:`opdiff.train.TrainResult`.
    """
    from opdiff.train import fit

    if np.ndim(images) not in (3, 4):
        raise ValueError(f"images must be [N, H, W] or [N, H, W, C], got shape "
                         f"{np.shape(images)}")
    images = check_images("images", images, tuple(np.shape(images)[1:]))
    k_init, k_fit = jax.random.split(key)
    model = ConvAutoencoder(tuple(images.shape[1:]), latent_channels=latent_channels,
                            channels=channels, key=k_init)
    opt = optax.adam(optax.cosine_decay_schedule(lr, steps))
    res = fit(autoencoder_loss(latent_penalty), model, opt, images, steps=steps, key=k_fit,
              batch_size=batch_size, progress=progress)
    trained = res.params
    trained.latent_scale = latent_std(trained, np.asarray(images))
    return trained, res
