r"""The Fourier neural operator (Li et al. 2021), 1-D and 2-D, on the periodic grid.

On the grid :math:`x_j=j/n` (per axis) a function is identified with its trigonometric
interpolant, coefficients :math:`\hat v_k=n^{-d}\sum_j v(x_j)e^{-2\pi ik\cdot x_j}` (the FFT
with ``norm="forward"``: the same numbers at every resolution for a bandlimited function). The
network maps ``u [*grid, c_in]`` to ``[*grid, c_out]``:

.. math::
    v_0 &= P_0\,[u(x), x] \quad\text{(lifting; } x \text{ only when ``positional``)},\\
    v_{l+1} &= \sigma\big(\mathcal K_l v_l + W_l v_l + b_l\big),\quad l=0..L-1
        \ (\text{no } \sigma \text{ after the last layer}),\\
    (\mathcal K_l v)(x) &= \sum_{k\in\mathcal M} R_{l,k}\,\hat v_k\,e^{2\pi ik\cdot x},
        \qquad \mathcal M=\{k:\ |k_i|<m_i\ \forall i\},\\
    G_\theta(u) &= Q(v_L)\quad\text{(projection: linear, or a one-hidden-layer MLP)}.

:math:`R_{l,k}\in\mathbb C^{c\times c}` are the spectral weights (two real arrays), kept on the
retained block of the real FFT: :math:`k_d=0..m_d-1` on the last axis and
:math:`k_i=-(m_i-1)..m_i-1` on the others; the negative half of the last axis follows by
Hermitian symmetry (the output is real). :math:`W_l` is the pointwise skip (``skip=False``
drops it: every layer's output is then bandlimited to :math:`\mathcal M`).

**Any resolution.** Nothing depends on ``n``: the same weights act on every grid with
:math:`n_i\ge 2m_i` (every retained mode strictly below the grid's Nyquist frequency). A linear
FNO evaluated on a function bandlimited below the coarser grid's Nyquist frequency gives the
same values at shared points on every grid (up to rounding); the pointwise nonlinearity creates
harmonics that a coarse grid aliases, so a nonlinear FNO is invariant only approximately
(``tests/test_fno.py`` states the tolerance). The ``positional`` channel :math:`x\in[0,1)` is a
sawtooth on the torus, with energy at every frequency: it too is aliased differently on each
grid, so it trades exact invariance for the ability to represent operators that are not
translation-equivariant (the antiderivative with :math:`s(0)=0`).

One example at a time: ``model(u)`` with ``u [*grid, c_in]``; :meth:`FNO.batched` vmaps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff._checks import check_positive_int
from opdiff.nets._compat import nnx
from opdiff.nets.mlp import ACTIVATIONS

__all__ = ["FNO", "SpectralConv", "retained_indices"]


def _modes(modes) -> tuple[int, ...]:
    if isinstance(modes, (int, np.integer)) and not isinstance(modes, bool):
        modes = (int(modes),)
    if not isinstance(modes, (tuple, list)) or len(modes) not in (1, 2):
        raise ValueError(f"modes must be an int (1-D) or a tuple of 1 or 2 ints, got {modes!r}")
    return tuple(check_positive_int("modes", m) for m in modes)


def retained_indices(shape: tuple[int, ...], modes: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Indices of the retained block in the real FFT of a grid of ``shape``: per leading axis
    ``0..m-1`` then ``n-m+1..n-1`` (wavenumbers ``-(m-1)..-1``), on the last axis ``0..m-1``;
    broadcastable against each other (``np.ix_``)."""
    idx = [np.concatenate([np.arange(m), np.arange(n - m + 1, n)]) for n, m in
           zip(shape[:-1], modes[:-1])] + [np.arange(modes[-1])]
    return np.ix_(*idx)


def check_grid(name: str, shape: tuple[int, ...], modes: tuple[int, ...]):
    """Raise ValueError unless every side ``n_i >= 2 m_i``."""
    if len(shape) != len(modes) or any(n < 2 * m for n, m in zip(shape, modes)):
        raise ValueError(f"{name} must have {len(modes)} grid axes each >= 2 * modes = "
                         f"{tuple(2 * m for m in modes)} (every retained mode below the grid's "
                         f"Nyquist frequency), got grid shape {tuple(shape)}")


class SpectralConv(nnx.Module):
    r"""One spectral convolution :math:`v\mapsto\sum_{k\in\mathcal M}R_k\hat v_ke^{2\pi ikx}`
    on ``v [*grid, c_in]``; see the module docstring.

    Weights: ``real``, ``imag`` of shape ``[2m_1-1, m_2, c_in, c_out]`` (2-D) or
    ``[m, c_in, c_out]`` (1-D), each entry :math:`N(0, 1/(2c_{in}))`.
    """

    def __init__(self, c_in: int, c_out: int, modes, *, key: PRNGKeyArray,
                 param_dtype=jnp.float32):
        self.modes = _modes(modes)
        self.c_in = check_positive_int("c_in", c_in)
        self.c_out = check_positive_int("c_out", c_out)
        block = tuple(2 * m - 1 for m in self.modes[:-1]) + (self.modes[-1],)
        kr, ki = jax.random.split(key)
        std = (2.0 * c_in) ** -0.5
        shape = (*block, c_in, c_out)
        self.real = nnx.Param(std * jax.random.normal(kr, shape, param_dtype))
        self.imag = nnx.Param(std * jax.random.normal(ki, shape, param_dtype))

    def __call__(self, v: Float[Array, "*grid c_in"]) -> Float[Array, "*grid c_out"]:
        grid = v.shape[:-1]
        check_grid("v", grid, self.modes)
        if v.shape[-1] != self.c_in:
            raise ValueError(f"v must have {self.c_in} channels (last axis), got {v.shape[-1]}")
        axes = tuple(range(len(grid)))
        vh = jnp.fft.rfftn(v, axes=axes, norm="forward")
        idx = retained_indices(grid, self.modes)
        w = jax.lax.complex(self.real[...], self.imag[...]).astype(vh.dtype)
        block = jnp.einsum("...i,...io->...o", vh[idx], w)
        out = jnp.zeros((*vh.shape[:-1], self.c_out), vh.dtype).at[idx].set(block)
        return jnp.fft.irfftn(out, s=grid, axes=axes, norm="forward").astype(v.dtype)


class FNO(nnx.Module):
    """A Fourier neural operator on the periodic grid; see the module docstring.

    Args:
        in_channels: channels ``c_in`` of an input function (the last axis of ``u``).
        out_channels: channels of the output.
        modes: the cutoff: an int (1-D) or ``(m1, m2)`` (2-D); wavenumbers ``|k_i| < m_i``.
        width: channels ``c`` of the hidden functions.
        depth: number ``L`` of Fourier layers.
        activation: a name from :data:`opdiff.nets.mlp.ACTIVATIONS`, or ``None`` (linear).
        projection_width: hidden width of the projection MLP (``activation`` between its two
            layers); ``None``: a linear projection.
        skip: keep the pointwise skip :math:`W_l` (the FNO's default).
        positional: append the coordinates ``j/n`` of each axis to the input channels.
        key: PRNG key for every initial weight.

    Raises:
        ValueError: a size not a positive int, ``modes`` of the wrong form, an unknown
            activation.
    """

    def __init__(self, in_channels: int, out_channels: int, modes, *, width: int = 32,
                 depth: int = 4, activation: str | None = "gelu",
                 projection_width: int | None = 128, skip: bool = True,
                 positional: bool = False, key: PRNGKeyArray, param_dtype=jnp.float32):
        self.modes = _modes(modes)
        self.ndim = len(self.modes)
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        self.width = check_positive_int("width", width)
        self.depth = check_positive_int("depth", depth)
        if activation is not None and activation not in ACTIVATIONS:
            raise ValueError(f"activation must be None or one of {sorted(ACTIVATIONS)}, got "
                             f"{activation!r}")
        if projection_width is not None:
            check_positive_int("projection_width", projection_width)
        self.activation = activation
        self.skip, self.positional = bool(skip), bool(positional)
        keys = iter(jax.random.split(key, 3 * depth + 3))
        rngs = lambda: nnx.Rngs(next(keys))  # noqa: E731
        lin = dict(param_dtype=param_dtype)
        c0 = in_channels + (self.ndim if positional else 0)
        self.lift = nnx.Linear(c0, width, rngs=rngs(), **lin)
        self.spectral = nnx.List([SpectralConv(width, width, self.modes, key=next(keys),
                                               param_dtype=param_dtype) for _ in range(depth)])
        if self.skip:
            self.pointwise = nnx.List([nnx.Linear(width, width, rngs=rngs(), **lin)
                                       for _ in range(depth)])
        else:  # a bias only: every layer's output stays in the retained modes
            self.pointwise = nnx.List([nnx.Param(jnp.zeros((width,), param_dtype))
                                       for _ in range(depth)])
        if projection_width is None:
            self.project = nnx.List([nnx.Linear(width, out_channels, rngs=rngs(), **lin)])
        else:
            self.project = nnx.List([nnx.Linear(width, projection_width, rngs=rngs(), **lin),
                                     nnx.Linear(projection_width, out_channels, rngs=rngs(),
                                                **lin)])

    def _act(self, h):
        return h if self.activation is None else ACTIVATIONS[self.activation](h)

    def __call__(self, u: Float[Array, "*grid c_in"]) -> Float[Array, "*grid c_out"]:
        """The operator at one input function ``u [*grid, in_channels]``, any grid with
        ``n_i >= 2 m_i``."""
        u = jnp.asarray(u)
        if u.ndim != self.ndim + 1:
            raise ValueError(f"u must have shape (*grid, in_channels) with {self.ndim} grid "
                             f"axes (one example; vmap or batched over many), got {u.shape}")
        if u.shape[-1] != self.in_channels:
            raise ValueError(f"u must have in_channels = {self.in_channels} channels (last "
                             f"axis), got {u.shape[-1]}")
        if not jnp.issubdtype(u.dtype, jnp.floating):
            raise TypeError(f"u must be floating point, got dtype {u.dtype}")
        grid = u.shape[:-1]
        check_grid("u", grid, self.modes)
        dtype = self.lift.kernel[...].dtype
        h = u.astype(dtype)
        if self.positional:
            axes = [jnp.arange(n, dtype=dtype) / n for n in grid]
            coords = jnp.stack(jnp.meshgrid(*axes, indexing="ij"), axis=-1)
            h = jnp.concatenate([h, coords], axis=-1)
        h = self.lift(h)
        for i, (spec, point) in enumerate(zip(self.spectral, self.pointwise)):
            h = spec(h) + (point(h) if self.skip else point[...])
            if i < self.depth - 1:
                h = self._act(h)
        for i, layer in enumerate(self.project):
            h = layer(h)
            if i < len(self.project) - 1:
                h = self._act(h)
        return h

    def batched(self, u: Float[Array, "batch *grid c_in"]) -> Float[Array, "batch *grid c_out"]:
        """``self`` vmapped over a leading batch axis."""
        return jax.vmap(self)(u)
