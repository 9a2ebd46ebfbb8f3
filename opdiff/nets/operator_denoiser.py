r"""An operator denoiser: a DeepONet that maps a noisy field and its noise level to a field.

The denoiser of a diffusion process is an operator between function spaces,
:math:`(x_t,t)\mapsto E[x_0\mid x_t]`. Here it is learned by a DeepONet
(:class:`opdiff.nets.DeepONet`): the **branch** reads the noisy field at all :math:`m=HWC`
grid values (the sensors) together with a sinusoidal embedding :math:`e(t)` of the time
(and a learned class embedding when conditional), the **trunk** reads a query point
:math:`\xi\in[0,1]^2` through frozen random Fourier features, and

.. math:: F(x,t)(\xi)_c=\sum_{i=1}^p b_{c,i}\big(x,e(t)\big)\,\tau_{c,i}(\xi)+b_{0,c}.

Every output lies in the affine span of the ``p`` trunk functions, so without a skip path its
error is bounded below by the PCA floor of the exact denoiser's outputs (the Lanthaler et al.
bound, :mod:`opdiff.deeponet_bounds`). Wrapped in
:class:`opdiff.diffusion.preconditioned.Preconditioned` the net sees a unit-variance input and
its output starts at zero (the branch's last layer is zero-initialised), so the wrapped
denoiser starts as the Wiener filter of the data scale.

:meth:`OperatorDenoiser.query` evaluates the output at any points, e.g. a finer grid than
the input's (the trunk is a function of :math:`\xi`, not of a pixel index).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff.nets._compat import nnx
from opdiff.nets.deeponet import DeepONet
from opdiff.nets.layers import time_embedding

__all__ = ["OperatorDenoiser", "grid_points"]


def grid_points(h: int, w: int) -> np.ndarray:
    """Pixel centres of an ``h × w`` grid in :math:`[0,1]^2`, row-major, ``[h w, 2]``."""
    yy, xx = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=1).astype(np.float32)


class OperatorDenoiser(nnx.Module):
    """DeepONet denoiser network ``net(x, t[, y])`` for fields of shape ``(H, W)`` or
    ``(H, W, C)``.

    Args:
        shape: the field shape.
        p: trunk functions per channel.
        branch_width, branch_depth, trunk_width, trunk_depth: the two MLPs.
        fourier_features, fourier_scale: frozen random Fourier features of the trunk input.
        emb_dim: width of the time embedding fed to the branch.
        n_classes: classes for conditioning (``None``: unconditional); label ``n_classes`` is
            the no-label token.
        activation: hidden activation of both nets.
        key: PRNG key.
    """

    def __init__(self, shape: tuple[int, ...], *, p: int = 128, branch_width: int = 256,
                 branch_depth: int = 2, trunk_width: int = 128, trunk_depth: int = 2,
                 fourier_features: int = 32, fourier_scale: float = 4.0, emb_dim: int = 32,
                 n_classes: int | None = None, activation: str = "silu", key: PRNGKeyArray):
        shape = tuple(int(s) for s in shape)
        if len(shape) not in (2, 3) or min(shape) < 1:
            raise ValueError(f"shape must be (H, W) or (H, W, C), got {shape}")
        if not isinstance(emb_dim, int) or emb_dim < 2 or emb_dim % 2:
            raise ValueError(f"emb_dim must be an even int >= 2, got {emb_dim!r}")
        if n_classes is not None and (isinstance(n_classes, bool) or not isinstance(n_classes, int)
                                      or n_classes < 1):
            raise ValueError(f"n_classes must be a positive int or None, got {n_classes!r}")
        k_onet, k_label = jax.random.split(key)
        self.shape, self.emb_dim, self.n_classes = shape, emb_dim, n_classes
        self.channels = shape[2] if len(shape) == 3 else 1
        m = shape[0] * shape[1] * self.channels
        self.onet = DeepONet(m + emb_dim, 2, p, branch_width=branch_width,
                             branch_depth=branch_depth, trunk_width=trunk_width,
                             trunk_depth=trunk_depth, n_outputs=self.channels,
                             activation=activation, fourier_features=fourier_features,
                             fourier_scale=fourier_scale, kernel_init="lecun_normal", key=k_onet)
        last = self.onet.branch.layers[-1]
        last.kernel = nnx.Param(jnp.zeros_like(last.kernel[...]))
        self.label = (nnx.Embed(n_classes + 1, emb_dim, rngs=nnx.Rngs(k_label))
                      if n_classes else None)
        self.points = grid_points(shape[0], shape[1])

    def _branch_input(self, x, t, y):
        if tuple(x.shape) != self.shape:
            raise ValueError(f"x must have shape {self.shape} (one field; vmap over a batch), "
                             f"got {tuple(x.shape)}")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"x must be a floating-point field, got dtype {x.dtype}")
        emb = time_embedding(jnp.asarray(t, x.dtype), self.emb_dim)
        if self.label is not None:
            emb = emb + self.label(jnp.asarray(self.n_classes if y is None else y, jnp.int32))
        elif y is not None:
            raise ValueError("y was given to an unconditional OperatorDenoiser (n_classes=None)")
        return jnp.concatenate([x.ravel(), emb.astype(x.dtype)])

    def query(self, x: Float[Array, "H W *C"], t, points: Float[Array, "P 2"], y=None
              ) -> Float[Array, "P C"]:
        """The output field at arbitrary points of :math:`[0,1]^2`."""
        u = self._branch_input(x, t, y)
        b = self.onet.branch_coefficients(u)  # [C, p]
        tau = jax.vmap(self.onet.basis)(jnp.asarray(points, x.dtype))  # [P, C, p]
        return jnp.einsum("kp,qkp->qk", b, tau) + self.onet.bias[...]

    def __call__(self, x: Float[Array, "H W *C"], t, y=None) -> Float[Array, "H W *C"]:
        """The output on the input's own grid."""
        out = self.query(x, t, self.points, y)
        return out.reshape(self.shape)
