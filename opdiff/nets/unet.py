r"""A small U-Net denoiser with a time embedding and optional class conditioning.

:math:`D_\theta(x,t)=x+F_\theta(x,t,y)`: the network predicts the correction to its input, so
an untrained (zero-output-initialised) network is the identity, and the denoiser of a noise
process only has to learn what the noise hid. Blocks (per resolution, ``channels[i]``
features): GroupNorm (over the whole image, :func:`opdiff.nets.layers.group_norm`) → SiLU →
3×3 conv → GroupNorm, scaled and shifted per channel by a
learned projection of the embedding :math:`e(t,y)` → SiLU → 3×3 conv, with a residual
connection; average-pool down between resolutions,
nearest-neighbour up with skip connections on the way back (Ho et al. 2020 without attention).

The embedding is sinusoidal in ``t`` (:func:`opdiff.nets.layers.time_embedding`: frequencies
:math:`10^{-4k/(K-1)}`, times 1,000 as in DDPM), plus a learned class embedding when ``n_classes`` is set; label ``n_classes`` is the
"no label" token that classifier-free guidance trains with label dropout.

One example at a time: ``x`` is ``[H, W]`` or ``[H, W, C]``; ``vmap`` over a batch
(:meth:`UNet.batched`). Each side must be divisible by :math:`2^{L-1}` for ``L`` resolutions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff.nets._compat import nnx
from opdiff.nets.layers import GroupNorm, avg_pool2, time_embedding

__all__ = ["UNet"]


def _groups(c: int) -> int:
    for g in (8, 4, 2, 1):
        if c % g == 0:
            return g
    return 1


class _Block(nnx.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, rngs: nnx.Rngs):
        self.n1 = GroupNorm(c_in, num_groups=_groups(c_in), rngs=rngs)
        self.c1 = nnx.Conv(c_in, c_out, (3, 3), rngs=rngs)
        self.e = nnx.Linear(emb_dim, 2 * c_out, rngs=rngs)
        self.n2 = GroupNorm(c_out, num_groups=_groups(c_out), rngs=rngs)
        self.c2 = nnx.Conv(c_out, c_out, (3, 3), rngs=rngs)
        self.skip = nnx.Conv(c_in, c_out, (1, 1), rngs=rngs) if c_in != c_out else None

    def __call__(self, x, emb):
        h = self.c1(jax.nn.silu(self.n1(x)))
        # scale-shift after the norm (Nichol & Dhariwal's use_scale_shift_norm): an embedding
        # added before a GroupNorm would lose its per-group mean, all of it at 1 channel/group
        scale, shift = jnp.split(self.e(emb), 2)
        h = self.n2(h) * (1 + scale[None, None, :]) + shift[None, None, :]
        h = self.c2(jax.nn.silu(h))
        return h + (self.skip(x) if self.skip is not None else x)


class UNet(nnx.Module):
    """A U-Net denoiser :math:`D(x,t[,y])` for images ``[H, W]`` or ``[H, W, C]``.

    Args:
        shape: the image shape ``(H, W)`` or ``(H, W, C)``.
        channels: features per resolution, e.g. ``(32, 64)`` for 8×8 digits, ``(32, 64, 128)``
            for 28×28 or 32×32 (one pooling between consecutive entries).
        emb_dim: width of the time (and class) embedding.
        n_classes: number of classes for conditioning (``None``: unconditional).
        residual: return :math:`x+F(x,t,y)` (default; the identity at initialisation) or
            :math:`F` alone (zero at initialisation: the form
            :class:`opdiff.nets.Preconditioned` wraps).
        key: PRNG key.
    """

    def __init__(self, shape: tuple[int, ...], *, channels: tuple[int, ...] = (32, 64),
                 emb_dim: int = 64, n_classes: int | None = None, residual: bool = True,
                 key: PRNGKeyArray):
        shape = tuple(int(s) for s in shape)
        if len(shape) not in (2, 3) or min(shape) < 1:
            raise ValueError(f"shape must be (H, W) or (H, W, C), got {shape}")
        if not channels or any(int(c) < 1 for c in channels):
            raise ValueError(f"channels must be a non-empty tuple of positive ints, got {channels}")
        down = 2 ** (len(channels) - 1)
        if shape[0] % down or shape[1] % down:
            raise ValueError(f"H and W must be divisible by 2^(len(channels)-1) = {down}, got "
                             f"{shape[:2]}")
        if n_classes is not None and (not isinstance(n_classes, int) or n_classes < 1):
            raise ValueError(f"n_classes must be a positive int or None, got {n_classes!r}")
        rngs = nnx.Rngs(key)
        self.shape, self.channels, self.emb_dim = shape, tuple(channels), emb_dim
        self.n_classes, self.residual = n_classes, bool(residual)
        c_img = shape[2] if len(shape) == 3 else 1
        self.t1 = nnx.Linear(emb_dim, emb_dim, rngs=rngs)
        self.t2 = nnx.Linear(emb_dim, emb_dim, rngs=rngs)
        self.label = nnx.Embed(n_classes + 1, emb_dim, rngs=rngs) if n_classes else None
        self.inp = nnx.Conv(c_img, channels[0], (3, 3), rngs=rngs)
        self.down = nnx.List([_Block(channels[max(i - 1, 0)], c, emb_dim, rngs)
                              for i, c in enumerate(channels)])
        self.mid = _Block(channels[-1], channels[-1], emb_dim, rngs)
        self.up = nnx.List([_Block(2 * c, channels[max(i - 1, 0)], emb_dim, rngs)
                            for i, c in reversed(list(enumerate(channels)))])
        self.out_norm = GroupNorm(channels[0], num_groups=_groups(channels[0]), rngs=rngs)
        self.out = nnx.Conv(channels[0], c_img, (3, 3), kernel_init=nnx.initializers.zeros,
                            rngs=rngs)

    def __call__(self, x: Float[Array, "H W *C"], t, y=None) -> Float[Array, "H W *C"]:
        """The denoiser at one image ``x``, a scalar time ``t`` and an optional int label
        ``y`` (``n_classes`` = no label)."""
        if x.shape != self.shape:
            raise ValueError(f"x must have shape {self.shape} (one image; vmap over a batch), "
                             f"got {x.shape}")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"x must be a floating-point image, got dtype {x.dtype}")
        emb = self.t2(jax.nn.silu(self.t1(time_embedding(jnp.asarray(t, x.dtype), self.emb_dim))))
        if self.label is not None:
            label = self.n_classes if y is None else y
            emb = emb + self.label(jnp.asarray(label, jnp.int32))
        elif y is not None:
            raise ValueError("y was given to an unconditional UNet (n_classes=None)")
        h = self.inp(x if x.ndim == 3 else x[..., None])
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                h = avg_pool2(h)
            h = block(h, emb)
            skips.append(h)
        h = self.mid(h, emb)
        for j, block in enumerate(self.up):
            h = block(jnp.concatenate([h, skips.pop()], axis=-1), emb)
            if j < len(self.up) - 1:
                h = jnp.repeat(jnp.repeat(h, 2, axis=0), 2, axis=1)
        out = self.out(jax.nn.silu(self.out_norm(h)))
        out = out if x.ndim == 3 else out[..., 0]
        return x + out if self.residual else out

    def batched(self, x: Float[Array, "B H W *C"], t, y=None) -> Float[Array, "B H W *C"]:
        """The denoiser on a batch with one time per example (``[B]``) or one for all."""
        t = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])
        if y is None:
            return jax.vmap(lambda xi, ti: self(xi, ti))(x, t)
        if self.n_classes is None:
            raise ValueError("y was given to an unconditional UNet (n_classes=None)")
        y = jnp.asarray(y)
        if not jnp.issubdtype(y.dtype, jnp.integer):
            raise TypeError(f"labels y must be integers, got dtype {y.dtype}")
        try:
            yc = np.asarray(y)
        except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
            yc = None  # traced inside jit: no range check
        if yc is not None and (np.any(yc < 0) or np.any(yc > self.n_classes)):
            raise ValueError(f"labels y must be in [0, {self.n_classes}] ({self.n_classes} = "
                             f"no label), got values in [{yc.min()}, {yc.max()}]")
        return jax.vmap(self)(x, t, jnp.broadcast_to(y, x.shape[:1]))
