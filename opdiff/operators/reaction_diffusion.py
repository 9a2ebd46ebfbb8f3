r"""Diffusion–reaction with a source: :math:`s_t=Ds_{xx}+ks^2+u(x)` on :math:`[0,1]\times[0,T]`.

DeepONet's diffusion–reaction operator (Lu et al. 2021; reference notes §1.2): :math:`D=k=0.01`,
:math:`T=1`, :math:`s(x,0)=0`, :math:`s(0,t)=s(1,t)=0`, source :math:`u` given on the grid
:math:`x_j=j/(N_x-1)` (its boundary values are not used).

**Space.** Second-order central differences on the interior nodes, :math:`L=\frac1{h^2}
\mathrm{tridiag}(1,-2,1)`, :math:`h=1/(N_x-1)`: the method-of-lines system is
:math:`\dot s=DLs+ks^2+u`. :math:`L` is diagonalised by the orthonormal type-I sine matrix
:math:`S_{jl}=\sqrt{2/M}\sin(\pi jl/M)` (:math:`M=N_x-1`, :math:`S^2=I`), eigenvalues
:math:`\mu_l=-\frac4{h^2}\sin^2\frac{\pi l}{2M}`.

**Time: IMEX CNAB2** (Crank–Nicolson for diffusion, Adams–Bashforth-2 for reaction and
source), step :math:`\Delta t=T/n_t`, :math:`a=D\Delta t/2`, :math:`f(s)=ks^2+u`:

.. math:: (I-aL)s^{n+1}=(I+aL)s^n+\Delta t\left(\tfrac32f(s^n)-\tfrac12f(s^{n-1})\right),

i.e. :math:`s^{n+1}=A s^n+B(\tfrac32f^n-\tfrac12f^{n-1})` with the dense matrices
:math:`A=S\,\mathrm{diag}\frac{1+a\mu}{1-a\mu}S` and
:math:`B=S\,\mathrm{diag}\frac{\Delta t}{1-a\mu}S`, built in closed form from the sine basis
(no factorisation) and applied by matmul, so a batch is two GEMMs per step. The first step is
Heun-type (predictor with :math:`f^{-1}:=f^0`, corrector with :math:`\frac12(f^0+f(s^{1,*}))`),
local error :math:`O(\Delta t^3)`. Global error :math:`O(\Delta t^2+h^2)`.

**Closed form** (:math:`k=0`, :math:`u=\sin\pi x`): :math:`\sin\pi x` is an eigenvector of
:math:`L` (eigenvalue :math:`\mu_1`) and AB2 of a constant source is exact, so the scheme gives
exactly :math:`s^n=(1-r^n)\sin(\pi x)/(D|\mu_1|)`, :math:`r=(1+a\mu_1)/(1-a\mu_1)`, against the
PDE's :math:`(1-e^{-D\pi^2t})\sin(\pi x)/(D\pi^2)`.

**Stability.** Crank–Nicolson is unconditionally stable for the diffusion (stiff high modes
are not damped, :math:`r\to-1`, but the zero initial state and smooth source do not excite
them); the explicit AB2 reaction needs :math:`\Delta t\,|2ks|` well below 1, which holds by a
wide margin for the paper's :math:`k=0.01`, :math:`\Delta t=0.01`.

The paper's solver (``solve_ADR``) is Crank–Nicolson-type with the reaction linearised; CNAB2
is second order as well and keeps one constant matrix for the whole batch.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

from opdiff.operators._validate import check_batch, check_int, check_real, float_dtype

__all__ = ["diffusion_reaction", "grid", "laplacian_eigenvalues"]

_HI = lax.Precision.HIGHEST  # no TF32/bf16 passes for float32 matmuls on GPUs/TPUs


def grid(nx: int, dtype=None) -> Float[Array, " nx"]:
    """The spatial grid :math:`x_j=j/(N_x-1)`, ``j = 0..nx-1`` (boundary nodes included);
    ``dtype`` defaults to the default float (float32, or float64 under x64)."""
    nx = check_int("nx", nx, minimum=3)
    return jnp.arange(nx, dtype=dtype if dtype is not None else float_dtype()) / (nx - 1)


def laplacian_eigenvalues(nx: int, dtype=None) -> Float[Array, " nx-2"]:
    r""":math:`\mu_l=-\frac4{h^2}\sin^2\frac{\pi l}{2(N_x-1)}`, ``l = 1..nx-2``, the eigenvalues of
    the Dirichlet second-difference matrix (eigenvectors :math:`\sin(\pi l x_j)`)."""
    nx = check_int("nx", nx, minimum=3)
    return _eigenvalues(nx, dtype if dtype is not None else float_dtype())


def _eigenvalues(nx, dtype):
    m = nx - 1
    lvec = jnp.arange(1, m, dtype=dtype)
    return -4.0 * m * m * jnp.sin(jnp.pi * lvec / (2 * m)) ** 2


def _sine_matrix(nx, dtype):
    m = nx - 1
    j = jnp.arange(1, m)
    phase = (j[:, None] * j[None, :]) % (2 * m)  # exact integer argument reduction
    return jnp.sqrt(jnp.asarray(2.0 / m, dtype)) * jnp.sin(jnp.pi * phase.astype(dtype) / m)


def diffusion_reaction(
    u: Float[Array, "n_funcs nx"],
    *,
    D: float = 0.01,
    k: float = 0.01,
    nt: int = 100,
    t_final: float = 1.0,
) -> Float[Array, "n_funcs nt+1 nx"]:
    r"""Solve :math:`s_t=Ds_{xx}+ks^2+u(x)`, zero initial and boundary values, by CNAB2.

    Args:
        u: source values on :func:`grid` (``nx`` nodes including both ends), shape
            ``(n_funcs, nx)``, ``nx >= 3``.
        D: diffusivity, ``>= 0``.
        k: reaction coefficient (any real).
        nt: time steps, ``>= 1``; :math:`\Delta t=` ``t_final / nt``.
        t_final: final time, ``> 0``.

    ``D``, ``k`` and ``t_final`` are traced: changing them does not recompile.

    Returns:
        :math:`s(x_j,t_n)` with :math:`t_n=n\Delta t`, shape ``(n_funcs, nt+1, nx)``;
        row ``n = 0`` and the boundary columns are zero.

    Raises:
        ValueError: if ``u`` is not a finite 2-D batch with ``nx >= 3``, ``nt < 1``,
            ``D < 0``, ``t_final <= 0`` or a parameter is not a finite real.
    """
    u = check_batch(u, min_points=3, size="nx")
    nt = check_int("nt", nt)
    check_real("D", D, low=0.0)
    check_real("k", k)
    check_real("t_final", t_final, low=0.0, strict=True)
    dtype = float_dtype(u)
    return _diffusion_reaction(u.astype(dtype), D, k, t_final, nt)


@partial(jax.jit, static_argnames=("nt",))
def _diffusion_reaction(u, D, k, t_final, nt):
    dtype = u.dtype
    nx = u.shape[1]
    dt = jnp.asarray(t_final, dtype) / nt
    a = 0.5 * dt * jnp.asarray(D, dtype)
    mu = _eigenvalues(nx, dtype)
    s_mat = _sine_matrix(nx, dtype)
    step_a = jnp.matmul(s_mat * ((1 + a * mu) / (1 - a * mu)), s_mat, precision=_HI)
    step_b = jnp.matmul(s_mat * (dt / (1 - a * mu)), s_mat, precision=_HI)
    k = jnp.asarray(k, dtype)
    return jax.vmap(_cnab2_one, in_axes=(0, None, None, None, None))(u, step_a, step_b, k, nt)


def _cnab2_one(u, step_a, step_b, k, nt):
    src = u[1:-1]

    def f(s):
        return k * s * s + src

    def advance(s, g):
        return jnp.matmul(step_a, s, precision=_HI) + jnp.matmul(step_b, g, precision=_HI)

    s0 = jnp.zeros_like(src)
    f0 = f(s0)
    s_pred = advance(s0, f0)  # CN + forward Euler
    s1 = advance(s0, 0.5 * (f0 + f(s_pred)))  # CN + explicit trapezoid (Heun)

    def body(carry, _):
        s, f_prev = carry
        f_now = f(s)
        s_new = advance(s, 1.5 * f_now - 0.5 * f_prev)
        return (s_new, f_now), s_new

    _, rest = lax.scan(body, (s1, f0), None, length=nt - 1)
    interior = jnp.concatenate([s0[None], s1[None], rest], axis=0)
    return jnp.pad(interior, ((0, 0), (1, 1)))
