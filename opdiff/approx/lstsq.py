r"""Linear least squares: plain, ridge and weighted, by QR, SVD, the normal equations or LSQR.

Every fit in the random-feature and sampling experiments solves

.. math:: \hat c = \arg\min_c \sum_{i=1}^n w_i\,\big(y_i-(Ac)_i\big)^2 + \alpha\|c\|_2^2,

with :math:`A\in\mathbb R^{n\times m}` (rows = samples, columns = features or basis functions),
optional weights :math:`w_i\ge0` and ridge :math:`\alpha\ge0`. Weights enter by row scaling,
:math:`\tilde A=\mathrm{diag}(\sqrt w)A`, :math:`\tilde y=\sqrt w\odot y`. The three methods:

- ``"qr"``: Householder QR of :math:`[\tilde A\,|\,\tilde y]` (rows
  :math:`[\sqrt\alpha I\,|\,0]` appended when :math:`\alpha>0`); its last columns hold
  :math:`Q^\top\tilde y`, so :math:`Q` is never formed, and :math:`R\hat c=Q^\top\tilde y`.
  Backward stable; the accuracy is governed by :math:`\kappa(\tilde A)`, not its square.
  The default.
- ``"svd"``: :math:`\tilde A=U\,\mathrm{diag}(s)V^\top` and filter factors
  :math:`s_i/(s_i^2+\alpha)`; with :math:`\alpha=0` singular values below
  ``rcond * s_1`` are dropped, which gives the minimum-norm solution — the only method that
  accepts fewer samples than unknowns without a ridge.
- ``"cholesky"``: the normal equations :math:`(\tilde A^\top\tilde A+\alpha I)\hat c=
  \tilde A^\top\tilde y`. About half the flops of QR for tall matrices, but the condition
  number is squared: only for well-conditioned or well-regularised problems.
- ``"cholesky_lsqr"``: the Gram matrix as preconditioner, LSQR on the problem itself (below).
  QR's accuracy at about the normal equations' cost for tall matrices.

**Cholesky-preconditioned LSQR.** The Gram matrix :math:`G=\tilde A^\top\tilde A` is formed
once as a symmetric rank-:math:`n` update (BLAS ``syrk``: :math:`nm^2` flops, half of a general
``A.T @ A``; on the CPU through NumPy's BLAS, elsewhere as an XLA dot), then
:math:`R^\top R=G+\alpha I+sI` (upper :math:`R`, LAPACK ``potrf``) with a small shift
:math:`s=u\,\mathrm{tr}(G)` (:math:`u` the unit roundoff), which lets the factorisation of a
numerically singular Gram succeed; if it fails even so (a pivot :math:`r_{ii}^2<s/2`, which
exact arithmetic rules out, or NaN), it is redone with the shift of shifted CholeskyQR,
:math:`s=11(n+m+1)\,u\,\mathrm{tr}(G)` (Fukaya et al. 2020, with
:math:`\|A\|_F^2=\mathrm{tr}\,G` bounding their :math:`m\|A\|_2^2`). :math:`R` is only a
preconditioner: LSQR (Paige & Saunders 1982) then solves
:math:`\min_z\|B z-b\|` for :math:`B=\begin{bmatrix}\tilde A\\ \sqrt\alpha I\end{bmatrix}R^{-1}`,
:math:`b=\begin{bmatrix}\tilde y\\0\end{bmatrix}`, and :math:`\hat c=R^{-1}z`, with products by
:math:`\tilde A` itself, so the accuracy is that of a backward-stable least-squares solve and not
that of :math:`G` (whose rounding errors, :math:`u\|A\|^2`, limit the normal equations to
:math:`u\,\kappa(A)^2`). In exact arithmetic :math:`B` has orthonormal columns but for the shift:
its singular values are :math:`\sigma_i/\sqrt{\sigma_i^2+s}` (:math:`\alpha=0`), all near 1
except for the :math:`\sigma_i\lesssim\sqrt s`, so LSQR converges in 2-6 iterations for
:math:`\kappa(A)\lesssim10^6` and needs more only for the few singular values below
:math:`\sqrt s` (numerically rank-deficient or :math:`\kappa\sim10^8` designs: tens of
iterations, each two products by :math:`\tilde A`, :math:`4nm` flops, and two triangular
solves; an explicit :math:`R^{-1}`, a triangular solve with :math:`I`, was tried and cost more
than it saved where few iterations are needed). It stops when
:math:`\|r\|\le\mathrm{tol}\,(\|b\|+\|B\|\|z\|)` (a compatible system) or
:math:`\|B^\top r\|\le\mathrm{tol}\,\|B\|\|r\|` (Paige & Saunders' tests, :math:`\|B\|`
estimated by the largest Lanczos coefficient seen), or after ``maxiter`` iterations, or
before a step whose pivot :math:`\rho_k` of the bidiagonal factor is below
:math:`100\sqrt\varepsilon\,\|B\|` (that step is rejected): with the shift, rounding errors
give :math:`B` spurious singular values near :math:`\sqrt u\,\|B\|` in the null space of a
numerically rank-deficient :math:`A`, and following them gives huge coefficients whose
cancellation spoils the residual. (Paige & Saunders' cumulative estimate of
:math:`\kappa(B)` was tried first as the guard: it either let the spurious step through or
stopped early on genuinely tiny singular values, with residuals up to 40 times ``lstsq``'s on
random-feature designs of rank 9 out of 40.)
Cost for :math:`n=4m`: :math:`nm^2+m^3/3` plus :math:`O(nm)` per iteration, against
:math:`2nm^2-2m^3/3` for Householder QR (whose panels are BLAS-2 bound) and
:math:`2nm^2+11m^3` for NumPy's ``lstsq``. CholeskyQR2 (two Grams and a triangular solve
:math:`\tilde AR^{-1}`, :math:`3nm^2`) gives an explicit orthonormal factor at more cost and
breaks down for numerically rank-deficient :math:`A` (its second Gram is singular), which
random-feature designs often are.

All four are single ``jax.jit``-compiled functions of arrays, so they ``vmap`` over stacks of
problems of equal shape (e.g. a sweep over seeds or bandwidths).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = ["METHODS", "gram", "solve", "residual"]

METHODS = ("qr", "svd", "cholesky", "cholesky_lsqr")


def _concrete(x) -> float | None:
    """``float(x)``, or None for a traced value (under ``jit``/``vmap``)."""
    try:
        return float(x)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError, TypeError):
        return None


def _check(A, y, weights, ridge, method, rcond, tol, maxiter):
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if getattr(A, "ndim", None) != 2:
        raise ValueError(f"A must be a 2-D (samples, features) array, got shape "
                         f"{getattr(A, 'shape', type(A).__name__)}")
    n, m = A.shape
    if getattr(y, "ndim", None) not in (1, 2) or y.shape[0] != n:
        raise ValueError(f"y must have shape ({n},) or ({n}, k) to match A {A.shape}, "
                         f"got {getattr(y, 'shape', type(y).__name__)}")
    if weights is not None and tuple(getattr(weights, "shape", ())) != (n,):
        raise ValueError(f"weights must have shape ({n},), got "
                         f"{getattr(weights, 'shape', type(weights).__name__)}")
    r = _concrete(ridge)
    if r is not None:
        if not r >= 0.0:
            raise ValueError(f"ridge must be >= 0, got {ridge!r}")
        if r == 0.0 and method != "svd" and n < m:
            raise ValueError(
                f"plain least squares needs at least as many samples as unknowns: A has "
                f"{n} rows (samples) and {m} columns (basis functions/features); add samples, "
                "pass ridge > 0, or use method='svd' for the minimum-norm solution"
            )
    if rcond is not None and not 0.0 <= float(rcond) < 1.0:
        raise ValueError(f"rcond must be in [0, 1), got {rcond!r}")
    if tol is not None and not 0.0 < float(tol) < 1.0:
        raise ValueError(f"tol must be in (0, 1), got {tol!r}")
    if isinstance(maxiter, bool) or not isinstance(maxiter, int) or maxiter < 1:
        raise ValueError(f"maxiter must be an int >= 1, got {maxiter!r}")


def solve(
    A: Float[Array, "n m"],
    y: Float[Array, "n *k"],
    *,
    weights: Float[Array, " n"] | None = None,
    ridge: float = 0.0,
    method: str = "qr",
    rcond: float | None = None,
    tol: float | None = None,
    maxiter: int = 200,
) -> Float[Array, "m *k"]:
    r"""The (weighted, ridge) least-squares coefficients :math:`\hat c` (module docstring).

    Args:
        A: design matrix, one row per sample.
        y: targets, ``(n,)`` or ``(n, k)`` for ``k`` right-hand sides at once.
        weights: optional nonnegative sample weights :math:`w_i` (e.g. the optimal
            :math:`m/k_m(x_i)` of Cohen–Migliorati).
        ridge: :math:`\alpha\ge0`.
        method: ``"qr"`` (default), ``"svd"``, ``"cholesky"`` or ``"cholesky_lsqr"``.
        rcond: relative singular-value cut-off for ``"svd"`` (default: ``max(n, m)`` times
            machine epsilon of the dtype, as in ``numpy.linalg.lstsq``).
        tol: relative stopping tolerance of ``"cholesky_lsqr"`` (module docstring; default
            ``50`` times machine epsilon of the dtype, about ``1.1e-14`` in float64).
        maxiter: the most LSQR iterations of ``"cholesky_lsqr"``.

    Returns:
        :math:`\hat c` with shape ``(m,)`` or ``(m, k)``.

    Raises:
        ValueError: for a bad shape, ``ridge < 0``, an unknown method, ``tol`` outside (0, 1),
            ``maxiter`` not an int >= 1, or plain least squares (``ridge == 0`` and a method
            other than ``"svd"``) with fewer samples than unknowns, where the solution is not
            unique.
    """
    A = jnp.asarray(A)
    y = jnp.asarray(y)
    _check(A, y, weights, ridge, method, rcond, tol, maxiter)
    with jax.numpy_dtype_promotion("standard"):  # the solve's dtype: the widest input, >= f32
        dtype = jnp.result_type(A.dtype, y.dtype, jnp.float32)
    A, y = A.astype(dtype), y.astype(dtype)
    if rcond is None:
        rcond = max(A.shape) * float(jnp.finfo(dtype).eps)
    if tol is None:
        tol = 50.0 * float(jnp.finfo(dtype).eps)
    w = None if weights is None else jnp.asarray(weights, dtype)
    # A ridge known to be zero lets QR skip the sqrt(ridge) I block (25-100 % of the work).
    augment = _concrete(ridge) != 0.0
    return _solve(A, y, w, jnp.asarray(ridge, dtype), method=method, rcond=float(rcond),
                  augment=augment, tol=float(tol), maxiter=maxiter)


@partial(jax.jit, static_argnames=("method", "rcond", "augment", "tol", "maxiter"))
def _solve(A, y, w, ridge, *, method, rcond, augment, tol=None, maxiter=200):
    if w is not None:
        sw = jnp.sqrt(w)
        A = A * sw[:, None]
        y = y * (sw if y.ndim == 1 else sw[:, None])
    m = A.shape[1]
    if method == "qr":
        if augment:  # [A; sqrt(ridge) I] keeps QR's stability with a ridge
            A = jnp.concatenate([A, jnp.sqrt(ridge) * jnp.eye(m, dtype=A.dtype)], axis=0)
            y = jnp.concatenate([y, jnp.zeros((m,) + y.shape[1:], y.dtype)], axis=0)
        # One QR of [A | y] without forming Q: the top-right block of R is Q^T y. Forming the
        # n x m factor Q (LAPACK orgqr) costs as much again as the factorisation itself.
        y2 = y if y.ndim == 2 else y[:, None]
        r = jnp.linalg.qr(jnp.concatenate([A, y2], axis=1), mode="r")
        c = jax.scipy.linalg.solve_triangular(r[:m, :m], r[:m, m:], lower=False)
        return c if y.ndim == 2 else c[:, 0]
    if method == "svd":
        u, s, vt = jnp.linalg.svd(A, full_matrices=False)
        keep = s > rcond * s[0]
        filt = jnp.where(keep, s / (s * s + ridge), 0.0)
        uty = u.T @ y
        return vt.T @ (filt[:, None] * uty if y.ndim == 2 else filt * uty)
    if method == "cholesky_lsqr":
        if tol is None:
            tol = 50.0 * float(jnp.finfo(A.dtype).eps)
        return _cholesky_lsqr(A, y, ridge, augment=augment, tol=tol, maxiter=maxiter)[0]
    gram = A.T @ A + ridge * jnp.eye(m, dtype=A.dtype)
    chol = jax.scipy.linalg.cho_factor(gram, lower=True)
    return jax.scipy.linalg.cho_solve(chol, A.T @ y)


def _host_gram(a: np.ndarray) -> np.ndarray:
    r""":math:`a^\top a` on the host: NumPy computes ``a.T @ a`` by BLAS ``syrk`` (the operands
    share one buffer) and mirrors the triangle."""
    a = np.asarray(a)
    return a.T @ a


def gram(A: Float[Array, "n m"]) -> Float[Array, "m m"]:
    r""":math:`A^\top A` as a symmetric rank-:math:`n` update: :math:`nm^2` flops.

    On the CPU, BLAS ``dsyrk``/``ssyrk`` through NumPy (a ``jax.pure_callback``, so it runs under
    ``jit`` and ``vmap``, one problem at a time): XLA's CPU dot computes the full product with
    Eigen, twice the flops at a lower rate. On other backends, an XLA dot at full precision.
    """
    A = jnp.asarray(A)
    if A.dtype not in (jnp.float32, jnp.float64):
        raise TypeError(f"A must be float32 or float64, got {A.dtype}")
    out = jax.ShapeDtypeStruct((A.shape[1], A.shape[1]), A.dtype)

    def cpu(a):
        return jax.pure_callback(_host_gram, out, a, vmap_method="sequential")

    def other(a):
        return jnp.matmul(a.T, a, precision=jax.lax.Precision.HIGHEST)

    return jax.lax.platform_dependent(A, cpu=cpu, default=other)


def _preconditioner(A, ridge):
    """Upper :math:`R` with :math:`R^\top R=A^\top A+(\alpha+s)I` (module docstring)."""
    n, m = A.shape
    g = gram(A)
    u = 0.5 * float(jnp.finfo(A.dtype).eps)
    scale = jnp.trace(g) + ridge + jnp.finfo(A.dtype).tiny  # > 0 even for A = 0
    eye = jnp.eye(m, dtype=A.dtype)
    g = g + ridge * eye

    def factor(shift):
        # cholesky returns the lower factor L (L L^T = g); R = L^T.
        return jax.lax.linalg.cholesky(g + shift * eye, symmetrize_input=False).T

    # In exact arithmetic every pivot r_ii^2 of G + sI is >= s; a smaller one (or NaN) means the
    # rounding errors of G exceeded the shift, and R is no preconditioner: factor again with
    # the shift of shifted CholeskyQR, which bounds them.
    shift = u * scale
    r = factor(shift)
    ok = jnp.all(jnp.isfinite(r)) & (jnp.min(jnp.diagonal(r)) ** 2 >= 0.5 * shift)
    return jax.lax.cond(ok, lambda: r, lambda: factor(11.0 * (n + m + 1) * u * scale))


def _cholesky_lsqr(A, y, ridge, *, augment, tol, maxiter):
    """``(c, iterations)`` of ``"cholesky_lsqr"`` (iterations per right-hand side)."""
    r = _preconditioner(A, ridge)
    one = partial(_lsqr, A, r, jnp.sqrt(ridge) if augment else None, tol=tol, maxiter=maxiter)
    return one(y) if y.ndim == 1 else jax.vmap(one, in_axes=1, out_axes=(1, 0))(y)


def _lsqr(A, r, sqrt_ridge, b, *, tol, maxiter):
    r"""LSQR for :math:`\min_z\|[A;\sqrt\alpha I]R^{-1}z-[b;0]\|`: :math:`(R^{-1}z,` iterations).

    Paige & Saunders' bidiagonalisation; ``sqrt_ridge`` None drops the :math:`\sqrt\alpha I`
    block. Stopping rules in the module docstring.
    """
    hi = jax.lax.Precision.HIGHEST
    tri = jax.scipy.linalg.solve_triangular

    def fwd(v):  # B v as (top, bottom) blocks
        t = tri(r, v, lower=False)
        return jnp.matmul(A, t, precision=hi), (None if sqrt_ridge is None else sqrt_ridge * t)

    def adj(p, q):  # B^T [p; q]
        t = jnp.matmul(p, A, precision=hi)
        return tri(r, t if q is None else t + sqrt_ridge * q, lower=False, trans=1)

    def norm(p, q):
        return jnp.sqrt(jnp.sum(p * p) + (0.0 if q is None else jnp.sum(q * q)))

    def anorm_est(anorm, alpha, beta):  # |B| >= every Lanczos coefficient
        return jnp.maximum(anorm, jnp.maximum(alpha, beta))

    def div(x, d):
        return x / jnp.where(d > 0, d, 1.0)

    p, q = b, (None if sqrt_ridge is None else jnp.zeros(A.shape[1], b.dtype))
    beta = norm(p, q)
    p, q = div(p, beta), (None if q is None else div(q, beta))
    v = adj(p, q)
    alpha = jnp.linalg.norm(v)
    v = div(v, alpha)
    rho_min = 100.0 * float(np.sqrt(jnp.finfo(b.dtype).eps))
    state = dict(it=jnp.asarray(0), p=p, q=q, v=v, w=v, z=jnp.zeros_like(v), alpha=alpha,
                 phibar=beta, rhobar=alpha, anorm=alpha, done=(alpha == 0) | (beta == 0))
    if q is None:
        del state["q"]

    def body(s):
        q_old = s.get("q")
        fp, fq = fwd(s["v"])
        p = fp - s["alpha"] * s["p"]
        q = None if q_old is None else fq - s["alpha"] * q_old
        beta = norm(p, q)
        p, q = div(p, beta), (None if q is None else div(q, beta))
        v = adj(p, q) - beta * s["v"]
        alpha = jnp.linalg.norm(v)
        v = div(v, alpha)
        rho = jnp.hypot(s["rhobar"], beta)
        c, sn = div(s["rhobar"], rho), div(beta, rho)
        theta, rhobar = sn * alpha, -c * alpha
        phi, phibar = c * s["phibar"], sn * s["phibar"]
        # A step with a pivot rho below rho_min = 100 sqrt(eps) |B| is rejected and ends the
        # iteration: with the shift, rounding errors give B spurious singular values near
        # sqrt(u) |B| in the null space of a numerically rank-deficient A, and following them
        # gives huge coefficients whose cancellation spoils the residual.
        ill = rho < rho_min * anorm_est(s["anorm"], alpha, beta)
        z = jnp.where(ill, s["z"], s["z"] + div(phi, rho) * s["w"])
        w = v - div(theta, rho) * s["w"]
        anorm = anorm_est(s["anorm"], alpha, beta)
        it = s["it"] + 1
        done = ((phibar <= tol * (state["phibar"] + anorm * jnp.linalg.norm(z)))
                | (phibar * alpha * jnp.abs(c) <= tol * anorm * phibar)
                | ill
                | (it >= maxiter) | (rho == 0))
        out = dict(it=it, p=p, v=v, w=w, z=z, alpha=alpha, phibar=phibar, rhobar=rhobar,
                   anorm=anorm, done=done)
        if q is not None:
            out["q"] = q
        return out

    final = jax.lax.while_loop(lambda s: ~s["done"], body, state)
    return tri(r, final["z"], lower=False), final["it"]


def residual(
    A: Float[Array, "n m"],
    c: Float[Array, "m *k"],
    y: Float[Array, "n *k"],
    weights: Float[Array, " n"] | None = None,
) -> Float[Array, "*k"]:
    r"""Weighted mean-square residual :math:`\frac1n\sum_i w_i(y_i-(Ac)_i)^2`."""
    r = (jnp.asarray(y) - jnp.asarray(A) @ jnp.asarray(c)) ** 2
    if weights is not None:
        w = jnp.asarray(weights)
        r = r * (w if r.ndim == 1 else w[:, None])
    return jnp.mean(r, axis=0)
