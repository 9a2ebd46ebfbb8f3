r"""Sampling for weighted least squares: optimal (Christoffel) sampling, projection DPPs,
volume-rescaled sampling, and the errors of the resulting fits.

Let :math:`\varphi_0..\varphi_{m-1}` be orthonormal in :math:`L^2(\mu)`
(:mod:`opdiff.approx.bases`), :math:`\Phi(x)=(\varphi_j(x))_j` and :math:`V_m` their span.

- **Inverse Christoffel function** :math:`k_m(x)=\sum_j\varphi_j(x)^2=\|\Phi(x)\|^2`,
  :math:`\int k_m\,d\mu=m`.
- **Optimal sampling** (Cohen & Migliorati 2017): draw :math:`x_i` i.i.d. from
  :math:`d\rho=(k_m/m)\,d\mu` and weight them by :math:`w=m/k_m`, so that the weighted Gram
  matrix :math:`G=\frac1n\sum_iw(x_i)\Phi(x_i)\Phi(x_i)^\top` has :math:`\mathbb E G=I` and
  every term is bounded, :math:`w\|\Phi\|^2=m`. Quasi-optimality
  :math:`\mathbb E\|f-\hat f\|^2\lesssim\|f-P_mf\|^2` needs :math:`n\gtrsim m\log m` (constants
  in their Thm 2.1; stated from memory, tagged R in the reference notes §4.1).
- **Projection DPP** with kernel :math:`K(x,y)=\Phi(x)^\top\Phi(y)` w.r.t. :math:`\mu`: exactly
  :math:`m` points with joint density :math:`\det[K(x_i,x_j)]/m!=\det\Phi(X)^2/m!`. Its one-point
  density is :math:`K(x,x)/m=k_m/m` w.r.t. :math:`\mu` (per point, the intensity is
  :math:`k_m`), i.e. each point is marginally :math:`\rho`-distributed. For :math:`n=m`
  (interpolation :math:`I_S`) one has the exact identity
  :math:`\mathbb E\|f-I_Sf\|^2=(m+1)\|f-P_mf\|^2` (a martingale along the HKPV steps,
  :func:`interpolation_error_rb`, which also gives lower-variance estimators of it).
  Sampled by :func:`projection_dpp` (one draw, ``vmap``-able over keys) or
  :func:`projection_dpp_batch` (many draws from one key, same law, faster to compile).
- **Volume-rescaled sampling** (Dereziński–Warmuth–Hsu): the law on :math:`n\ge m` points with
  density :math:`\propto\det(\sum_iw(x_i)\Phi(x_i)\Phi(x_i)^\top)\prod_i\rho(x_i)` is one
  projection DPP of size :math:`m` plus :math:`n-m` i.i.d. :math:`\rho`-points, randomly
  permuted (:func:`volume_rescaled`). (That Nouy & Michel's "generalized volume-rescaled
  sampling" is this construction is a reading tagged **R** in the reference notes, §4.2.)

Fits and errors: :func:`fit` (weighted least squares through :func:`opdiff.approx.lstsq.solve`),
:func:`fit_errors` (a stack of draws, fitted on prefixes of any length ``n >= m``),
:func:`best_error_sq` (:math:`\|f-P_mf\|^2`), all :math:`L^2(\mu)` norms by Gauss quadrature
(:func:`opdiff.approx.bases.quadrature`).

All samplers draw by rejection from the envelope law :math:`\nu` of the basis
(:class:`opdiff.approx.bases.Basis`): :math:`\varphi_j^2\le e`, :math:`\nu=e\,d\mu/C`, so every
target :math:`r\,d\mu` with :math:`r\le m\,e` is sampled by proposing :math:`x\sim\nu` and
accepting with probability :math:`r(x)/(m\,e(x))`. A fixed number of proposals (the *budget*)
keeps them ``jit``-able and ``vmap``-able over keys; every sample carries an ``ok`` flag that is
false when the budget ran out (then the points are not from the target law), and
:func:`ensure_ok` turns a false flag into an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from opdiff._checks import check_positive_int
from opdiff.approx import bases, lstsq

__all__ = [
    "Sample",
    "DPPSample",
    "inverse_christoffel",
    "christoffel_density",
    "optimal_weights",
    "optimal_cdf",
    "iid",
    "sample_optimal",
    "projection_dpp",
    "projection_dpp_batch",
    "volume_rescaled",
    "ensure_ok",
    "expected_dpp_proposals",
    "fit",
    "projection_coefficients",
    "l2_error_sq",
    "best_error_sq",
    "fit_errors",
    "interpolation_error_rb",
]


class Sample(NamedTuple):
    """Points, their least-squares weights, and whether the sampler stayed within budget."""

    x: Float[Array, "*draws n"]
    weights: Float[Array, "*draws n"]
    ok: Bool[Array, "*draws"]


class DPPSample(NamedTuple):
    """The ``m`` points of a projection DPP, the budget flag and the proposals it used."""

    x: Float[Array, "*draws m"]
    ok: Bool[Array, "*draws"]
    proposals: Int[Array, "*draws"]



def _resolve(basis) -> Callable:
    if callable(basis):
        return basis
    bases.get(basis)
    return partial(bases.evaluate, basis)


def _dtype():
    return jnp.result_type(float)


def _uniform(key, shape, dtype):
    # Drawn flat and reshaped: XLA compiles the (partitionable) threefry for a multi-axis
    # shape several times slower (0.9 s vs 0.2 s on CPU for (200, 2, 8)).
    return jax.random.uniform(key, (math.prod(shape),), dtype).reshape(shape)


# --------------------------------------------------------------------------- Christoffel


def inverse_christoffel(basis: str | Callable, x: Float[Array, "*batch"],
                        m: int) -> Float[Array, "*batch"]:
    r""":math:`k_m(x)=\sum_{j<m}\varphi_j(x)^2`, the inverse Christoffel function.

    Args:
        basis: a name in :data:`opdiff.approx.bases.BASES`, or a callable ``(x, m) -> (..., m)``
            returning functions orthonormal in :math:`L^2(\mu)`.
        x: points.
        m: dimension of :math:`V_m`.

    Raises:
        ValueError: for an unknown basis name or ``m < 1``.
    """
    m = check_positive_int("m", m, minimum=1)
    phi = _resolve(basis)(bases._float(x), m)
    return jnp.sum(phi * phi, axis=-1)


def christoffel_density(basis: str | Callable, x: Float[Array, "*batch"],
                        m: int) -> Float[Array, "*batch"]:
    r"""The optimal sampling density :math:`k_m(x)/m` w.r.t. :math:`\mu` (it integrates to 1)."""
    return inverse_christoffel(basis, x, m) / m


def optimal_weights(basis: str | Callable, x: Float[Array, "*batch"],
                    m: int) -> Float[Array, "*batch"]:
    r"""Cohen–Migliorati weights :math:`w(x)=m/k_m(x)` (:math:`=d\mu/d\rho`)."""
    return m / inverse_christoffel(basis, x, m)


def optimal_cdf(name: str, x: Float[Array, " p"], m: int) -> Float[Array, " p"]:
    r"""CDF of :math:`\rho=(k_m/m)d\mu`, :math:`F(x)=\int_{y\le x}k_m/m\,d\mu`, by quadrature.

    Exact up to round-off for Legendre (Gauss–Legendre with :math:`m` nodes integrates the
    degree :math:`2m-2` integrand); for Chebyshev/Fourier ``m + 24`` nodes of a smooth periodic
    integrand (see :func:`opdiff.approx.bases.cdf_nodes`).
    """
    m = check_positive_int("m", m, minimum=1)
    bases.get(name)
    return _optimal_cdf(name, bases._float(x), m)


@partial(jax.jit, static_argnums=(0, 2))
def _optimal_cdf(name, x, m):
    nodes, w = bases.cdf_nodes(name, x, m + 24)
    phi = bases.get(name).evaluate(nodes, m)
    return jnp.sum(w * jnp.sum(phi * phi, axis=-1), axis=-1) / m


# --------------------------------------------------------------------------- samplers


def iid(key: PRNGKeyArray, basis_name: str, n: int) -> Sample:
    r"""``n`` i.i.d. points from the reference measure :math:`\mu`, unit weights (plain LS)."""
    n = check_positive_int("n", n, minimum=1)
    x = bases.sample_measure(key, basis_name, (n,))
    return Sample(x, jnp.ones_like(x), jnp.asarray(True))


def _default_pool(n: int, c: float) -> int:
    # Accepted ~ Binomial(N, 1/C); N/C - n is >= 8 standard deviations (+ a margin for tiny n),
    # so running out has probability < 1e-15.
    return int(math.ceil(c * (n + 8.0 * math.sqrt((c - 1.0) * n) + 40.0)))


def sample_optimal(key: PRNGKeyArray, basis_name: str, m: int, n: int, *,
                   budget: int | None = None) -> Sample:
    r"""``n`` i.i.d. points from :math:`d\rho=(k_m/m)d\mu` and their weights :math:`m/k_m`.

    :math:`\rho=\frac1m\sum_j\varphi_j^2d\mu` is a mixture: each proposal picks :math:`j`
    uniformly in :math:`\{0..m-1\}`, draws :math:`x\sim\nu` (the envelope law of the basis) and
    is accepted with probability :math:`\varphi_j(x)^2/e(x)`. Accepted points are
    :math:`\varphi_j^2d\mu`-distributed and, since the acceptance rate :math:`1/C` is the same
    for every :math:`j`, the accepted :math:`j` stay uniform. The first ``n`` accepted of
    ``budget`` proposals are returned (order-preserving, hence i.i.d.).

    Args:
        key: PRNG key.
        basis_name: one of :data:`opdiff.approx.bases.BASES`.
        m: dimension of :math:`V_m`.
        n: number of points.
        budget: number of proposals (default: enough that running out has probability
            below 1e-15; the mean need is :math:`Cn`).

    Returns:
        :class:`Sample` with ``ok`` false if fewer than ``n`` proposals were accepted.

    Raises:
        ValueError: for an unknown basis, ``m < 1``, ``n < 1`` or ``budget < n``.
    """
    spec = bases.get(basis_name)
    m = check_positive_int("m", m, minimum=1)
    n = check_positive_int("n", n, minimum=1)
    if budget is None:
        budget = _default_pool(n, spec.envelope_mass)
    budget = check_positive_int("budget", budget, minimum=n)
    return _sample_optimal(key, spec.name, m, n, budget)


@partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _sample_optimal(key, name, m, n, budget):
    spec = bases.get(name)
    # One uniform draw for index, proposal and acceptance (each threefry call site costs
    # compile time).
    u = _uniform(key, (3, budget), _dtype())
    j = jnp.minimum((u[0] * m).astype(jnp.int32), m - 1)
    x = spec.proposal(u[1])
    phi = spec.evaluate(x, m)
    phij = jnp.sum(jnp.where(j[:, None] == jnp.arange(m, dtype=j.dtype), phi, 0.0), axis=-1)
    accept = u[2] < phij * phij * spec.inv_envelope(x)
    idx = jnp.argsort(~accept, stable=True)[:n]  # accepted proposals first, in order
    xs = x[idx]
    k = jnp.sum(phi[idx] ** 2, axis=-1)
    return Sample(xs, m / k, jnp.sum(accept) >= n)


def _default_dpp_budget(m: int, c: float, chunk: int) -> int:
    # The hardest step (the last) accepts with probability 1/(C m); 36 C m proposals fail with
    # probability exp(-36) ~ 2e-16 there.
    need = 36.0 * c * m
    return int(math.ceil(need / chunk)) * chunk


def projection_dpp(key: PRNGKeyArray, basis_name: str, m: int, *, budget: int | None = None,
                   chunk: int = 8) -> DPPSample:
    r"""One draw of the projection DPP with kernel :math:`K(x,y)=\sum_{j<m}\varphi_j(x)
    \varphi_j(y)` w.r.t. :math:`\mu`.

    HKPV sampler (Hough–Krishnapur–Peres–Virág 2006, Alg. 18): with :math:`E` an orthonormal
    basis of the span of :math:`\Phi(x_1),..,\Phi(x_{i-1})`, draw :math:`x_i` with density

    .. math:: \frac{\|(I-P_E)\Phi(x)\|^2}{m-i+1}\quad\text{w.r.t. }\mu,

    then Gram–Schmidt :math:`\Phi(x_i)` against :math:`E` (twice, for stability). Each step is a
    rejection sampler: the reference notes propose from :math:`(k_m/m)d\mu` and accept with
    probability :math:`\|(I-P_E)\Phi\|^2/\|\Phi\|^2`; here the proposal from :math:`\rho` is
    itself a rejection from :math:`\nu` with acceptance :math:`k_m/(me)`, and the two stages
    are merged into one: propose :math:`x\sim\nu`, accept with probability
    :math:`\|(I-P_E)\Phi(x)\|^2/(m\,e(x))`. Step :math:`i` then accepts at rate
    :math:`(m-i+1)/(Cm)`, so a draw needs :math:`C\,m\,H_m` proposals on average
    (:func:`expected_dpp_proposals`).

    Proposals are made ``chunk`` at a time in a ``lax.while_loop`` that stops at the first
    acceptance or after ``budget`` proposals for that point, so the function is ``jit``-able and
    ``vmap``-able over keys (under ``vmap`` the loop runs until every draw in the batch is done).

    Args:
        key: PRNG key (the ``t``-th chunk of proposals uses ``fold_in(key, t)``).
        basis_name: one of :data:`opdiff.approx.bases.BASES`.
        m: number of points (= dimension of :math:`V_m`).
        budget: maximum proposals per point (rounded up to a multiple of ``chunk``; default
            :math:`36Cm`, which runs out with probability ~1e-16 per point).
        chunk: proposals evaluated together.

    Returns:
        :class:`DPPSample`: points in the order drawn, ``ok`` (false if some point ran out of
        budget; the points are then meaningless), and the number of proposals made.

    Raises:
        ValueError: for an unknown basis, ``m < 1``, ``chunk < 1`` or ``budget < 1``.
    """
    spec, m, max_chunks, chunk = _dpp_args(basis_name, m, budget, chunk)
    out = _projection_dpp(key, jnp.asarray(max_chunks), spec.name, m, chunk, 1)
    return DPPSample(*(a[0] for a in out))


def projection_dpp_batch(key: PRNGKeyArray, basis_name: str, m: int, draws: int, *,
                         budget: int | None = None, chunk: int = 8) -> DPPSample:
    r"""``draws`` independent draws of :func:`projection_dpp`, batched natively from one key.

    The same sampler with a leading batch axis: every draw runs its own HKPV steps, lane ``b``
    of the ``t``-th round using row ``b`` of a ``(draws, 2, chunk)`` uniform array drawn from
    ``fold_in(key, t)``.
    Same law as ``vmap(projection_dpp)`` over split keys (not the same numbers), but it compiles
    faster: ``vmap`` over keys batches the threefry hash, which XLA compiles slowly.

    Returns:
        :class:`DPPSample` with a leading axis of length ``draws``.

    Raises:
        ValueError: as :func:`projection_dpp`, or ``draws < 1``.
    """
    spec, m, max_chunks, chunk = _dpp_args(basis_name, m, budget, chunk)
    draws = check_positive_int("draws", draws, minimum=1)
    return _projection_dpp(key, jnp.asarray(max_chunks), spec.name, m, chunk, draws)


def _dpp_args(basis_name, m, budget, chunk):
    spec = bases.get(basis_name)
    m = check_positive_int("m", m, minimum=1)
    chunk = check_positive_int("chunk", chunk, minimum=1)
    if budget is None:
        budget = _default_dpp_budget(m, spec.envelope_mass, chunk)
    budget = check_positive_int("budget", budget, minimum=1)
    return spec, m, -(-budget // chunk), chunk


@partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _projection_dpp(key, max_chunks, name, m, chunk, batch):
    # One while_loop over rounds; in each round every unfinished draw ("lane") tests one chunk
    # of proposals for its current point i. A batch waits for its slowest *draw* (a sum of m
    # geometric waiting times, which concentrates), not for its slowest draw at every point.
    spec = bases.get(name)
    dtype = _dtype()

    def lane(state, u):
        i, c, rows, xs, ok, total = state
        x = spec.proposal(u[0])
        phi = spec.evaluate(x, m)
        proj = phi @ rows.T  # coordinates in E; unfilled rows are zero
        # ||(I - P_E) Phi||^2 = k_m - ||E Phi||^2: the round-off (~eps k_m) only moves the
        # acceptance probability by ~1e-16.
        res2 = jnp.clip(jnp.sum(phi * phi, axis=-1) - jnp.sum(proj * proj, axis=-1), 0.0)
        acc = u[1] < res2 * spec.inv_envelope(x) / m
        live = i < m
        found = jnp.any(acc) & live
        first = jnp.argmax(acc)
        give_up = ~found & live & (c + 1 >= max_chunks)
        advance = found | give_up
        # Masks instead of dynamic indexing: they stay elementwise when batched.
        pick = (jnp.arange(chunk) == first)[:, None]
        v = jnp.sum(jnp.where(pick, phi, 0.0), axis=0)
        x_new = jnp.sum(jnp.where(pick[:, 0], x, 0.0))
        v = v - rows.T @ (rows @ v)
        v = v - rows.T @ (rows @ v)  # classical Gram-Schmidt twice, for orthogonality
        nrm = jnp.sqrt(jnp.sum(v * v))
        e = v / jnp.where(nrm > 0, nrm, 1.0)
        row_i = (jnp.arange(m, dtype=i.dtype) == i)[:, None]
        rows = jnp.where(row_i & found, e[None, :], rows)
        xs = jnp.where(row_i[:, 0] & advance, x_new, xs)
        ok = ok & ~give_up & (~found | (nrm > 0))
        used = jnp.where(found, first + 1, jnp.where(live, chunk, 0))
        c = jnp.where(advance, 0, c + live.astype(c.dtype))
        return (i + advance.astype(i.dtype), c, rows, xs, ok, total + used.astype(total.dtype))

    def cond(s):
        return jnp.any(s[0][0] < m)

    def body(s):
        state, t = s
        u = _uniform(jax.random.fold_in(key, t), (batch, 2, chunk), dtype)
        return jax.vmap(lane)(state, u), t + 1

    z = jnp.zeros((batch,), jnp.int32)
    state = (z, z, jnp.zeros((batch, m, m), dtype), jnp.zeros((batch, m), dtype),
             jnp.ones((batch,), bool), z)
    (_, _, _, xs, ok, total), _ = jax.lax.while_loop(cond, body, (state, jnp.asarray(0)))
    return DPPSample(xs, ok, total)


def expected_dpp_proposals(basis_name: str, m: int) -> float:
    r""":math:`\mathbb E[\#\text{proposals}]=\sum_{i=1}^m\frac{Cm}{m-i+1}=C\,m\,H_m` for
    :func:`projection_dpp` (geometric waiting times)."""
    m = check_positive_int("m", m, minimum=1)
    return bases.get(basis_name).envelope_mass * m * float(np.sum(1.0 / np.arange(1, m + 1)))


def volume_rescaled(key: PRNGKeyArray, basis_name: str, m: int, n: int, *,
                    top_up: str = "optimal", permute: bool = True,
                    dpp: DPPSample | None = None) -> Sample:
    r"""``n >= m`` points: one projection DPP of size ``m`` plus ``n - m`` i.i.d. points,
    randomly permuted, with least-squares weights.

    With ``top_up="optimal"`` the extra points come from :math:`\rho=(k_m/m)d\mu` and all
    weights are :math:`m/k_m`: this is Dereziński–Warmuth–Hsu *volume-rescaled sampling* of the
    weighted features :math:`\sqrt w\,\Phi` w.r.t. :math:`\rho` (the size-:math:`m` volume
    sampling part is the projection DPP because :math:`\prod_iw(x_i)\rho(x_i)=\prod_i\mu(x_i)`).
    Reading it as Nouy & Michel's generalized volume-rescaled sampling is tagged **R** in the
    reference notes (§4.2): the construction and its quasi-optimality in expectation for
    :math:`n=O(m\log m)` are stated from memory, not checked against the paper.

    With ``top_up="measure"`` the extra points come from :math:`\mu` and the weights are 1:
    plain volume sampling of :math:`\Phi` w.r.t. :math:`\mu` (the same DPP, as
    :math:`\det\Phi(X)^2\prod\mu(x_i)` is its density), fitted by unweighted least squares.

    With ``permute=False`` the DPP points come first: then every prefix of length
    :math:`n'\in[m,n]` is, up to order (which least squares ignores), a volume-rescaled draw of
    size :math:`n'`, so one draw serves a whole sweep over :math:`n`.

    Args:
        key: PRNG key (split into DPP, top-up and permutation keys).
        basis_name: one of :data:`opdiff.approx.bases.BASES`.
        m: dimension of :math:`V_m` (= size of the DPP part).
        n: total number of points, ``n >= m``.
        top_up: ``"optimal"`` (weighted) or ``"measure"`` (unweighted).
        permute: randomly permute the ``n`` points (their law is then exchangeable).
        dpp: a :func:`projection_dpp` draw of size ``m`` to use instead of drawing one (e.g. to
            share one DPP between designs or with an interpolation study); its ``ok`` is kept.

    Raises:
        ValueError: for an unknown basis or top-up, ``m < 1``, ``n < m``, or a ``dpp`` whose
            points do not have shape ``(m,)``.
    """
    spec = bases.get(basis_name)
    m = check_positive_int("m", m, minimum=1)
    n = check_positive_int("n", n, minimum=1)
    if n < m:
        raise ValueError(f"n must be >= m for volume-rescaled sampling, got n={n} < m={m}")
    if top_up not in ("optimal", "measure"):
        raise ValueError(f"top_up must be 'optimal' or 'measure', got {top_up!r}")
    kd, ki, kp = jax.random.split(key, 3)
    if dpp is None:
        dpp = projection_dpp(kd, spec.name, m)
    elif tuple(jnp.shape(dpp.x)) != (m,):
        raise ValueError(f"dpp.x must have shape (m,) = ({m},), got {tuple(jnp.shape(dpp.x))}")
    if n > m:
        extra = (sample_optimal(ki, spec.name, m, n - m) if top_up == "optimal"
                 else iid(ki, spec.name, n - m))
        x = jnp.concatenate([dpp.x, extra.x])
        ok = dpp.ok & extra.ok
    else:
        x, ok = dpp.x, dpp.ok
    if permute:
        x = jax.random.permutation(kp, x)
    w = optimal_weights(spec.name, x, m) if top_up == "optimal" else jnp.ones_like(x)
    return Sample(x, w, ok)


def ensure_ok(sample: Sample | DPPSample, what: str = "sampler") -> Sample | DPPSample:
    """Return ``sample`` unchanged, or raise if any draw in it ran out of its proposal budget.

    Raises:
        RuntimeError: naming how many draws failed; increase ``budget``.
    """
    ok = np.asarray(sample.ok)
    if not ok.all():
        bad = int(ok.size - ok.sum())
        raise RuntimeError(
            f"{what}: proposal budget exhausted in {bad} of {ok.size} draw(s); the points of "
            "those draws are not from the target law (pass a larger budget=)"
        )
    return sample


# --------------------------------------------------------------------------- fits and errors


def fit(basis_name: str, x: Float[Array, " n"], y: Float[Array, " n"], m: int,
        weights: Float[Array, " n"] | None = None, *, method: str = "qr") -> Float[Array, " m"]:
    r"""Weighted least-squares coefficients :math:`\arg\min_c\sum_iw_i(y_i-\Phi(x_i)^\top c)^2`.

    Solved by :func:`opdiff.approx.lstsq.solve`; with ``n == m`` this is interpolation.

    Raises:
        ValueError: if ``x``/``y`` are not 1-D of equal length, or ``n < m`` (not unique).
    """
    m = check_positive_int("m", m, minimum=1)
    x, y = bases._float(x), bases._float(y)
    if x.ndim != 1 or y.shape != x.shape:
        raise ValueError(f"x and y must be 1-D of equal length, got {x.shape} and {y.shape}")
    if x.shape[0] < m:
        raise ValueError(
            f"least squares in V_m needs n >= m samples, got n={x.shape[0]} < m={m}")
    A = bases.evaluate(basis_name, x, m)
    return lstsq.solve(A, y, weights=weights, method=method)


def projection_coefficients(basis_name: str, f: Callable, m: int, *,
                            n_quad: int = 512) -> Float[Array, " m"]:
    r""":math:`c_j=\int f\varphi_j\,d\mu` by an ``n_quad``-point rule (:func:`bases.quadrature`).

    ``f`` is a vectorised JAX function; it is a static argument of the compiled computation.
    """
    m = check_positive_int("m", m, minimum=1)
    bases.quadrature(basis_name, n_quad)
    return _projection_coefficients(basis_name, f, m, n_quad)


@partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _projection_coefficients(basis_name, f, m, n_quad):
    xq, wq = bases.quadrature(basis_name, n_quad)
    xq = jnp.asarray(xq, _dtype())
    return (jnp.asarray(wq, _dtype()) * f(xq)) @ bases.get(basis_name).evaluate(xq, m)


def l2_error_sq(basis_name: str, f: Callable, coeffs: Float[Array, "*draws m"], *,
                n_quad: int = 512) -> Float[Array, "*draws"]:
    r""":math:`\|f-\sum_jc_j\varphi_j\|^2_{L^2(\mu)}` by quadrature, for a stack of coefficients."""
    bases.quadrature(basis_name, n_quad)
    return _l2_error_sq(basis_name, f, n_quad, jnp.asarray(coeffs))


@partial(jax.jit, static_argnums=(0, 1, 2))
def _l2_error_sq(basis_name, f, n_quad, coeffs):
    xq, wq = bases.quadrature(basis_name, n_quad)
    xq = jnp.asarray(xq, _dtype())
    phi = bases.get(basis_name).evaluate(xq, coeffs.shape[-1])
    r = f(xq) - coeffs @ phi.T
    return jnp.sum(jnp.asarray(wq, _dtype()) * r * r, axis=-1)


def best_error_sq(basis_name: str, f: Callable, m: int, *, n_quad: int = 512) -> float:
    r""":math:`\|f-P_mf\|^2_{L^2(\mu)}`, the error of the orthogonal projection onto
    :math:`V_m`, by quadrature of the residual (not :math:`\|f\|^2-\sum c_j^2`, which cancels)."""
    m = check_positive_int("m", m, minimum=1)
    bases.quadrature(basis_name, n_quad)
    return float(_best_error_sq(basis_name, f, m, n_quad))


@partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _best_error_sq(basis_name, f, m, n_quad):
    return _l2_error_sq(basis_name, f, n_quad, _projection_coefficients(basis_name, f, m, n_quad))


def fit_errors(basis_name: str, f: Callable, m: int, samples: Sample, *, n: int | None = None,
               n_quad: int = 512, method: str = "qr") -> Float[Array, " draws"]:
    r""":math:`\|f-\hat f\|^2_{L^2(\mu)}` for each draw of a stacked :class:`Sample`.

    ``samples.x`` and ``samples.weights`` have shape ``(draws, N)``; every draw is fitted by
    weighted least squares (:func:`fit`) and measured by quadrature (:func:`l2_error_sq`).

    Args:
        basis_name: one of :data:`opdiff.approx.bases.BASES`.
        f: the target, a vectorised JAX function (static: the compiled fit is cached per ``f``).
        m: dimension of :math:`V_m`.
        samples: stacked draws.
        n: fit on the first ``n`` points of each draw only (default all ``N``). The rest get
            weight 0, so the compiled fit is shared by every ``n`` of a sweep.
        n_quad: quadrature nodes for the error.
        method: least-squares method of :func:`opdiff.approx.lstsq.solve`.

    Raises:
        ValueError: if ``samples.x`` is not 2-D, or ``n`` is not in ``[m, N]``.
    """
    m = check_positive_int("m", m, minimum=1)
    bases.get(basis_name)
    x = jnp.asarray(samples.x)
    if x.ndim != 2:
        raise ValueError(f"samples.x must have shape (draws, n), got {x.shape}")
    total = x.shape[1]
    n = total if n is None else n
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not m <= n <= total:
        raise ValueError(
            f"least squares in V_m needs m <= n <= {total} samples per draw, got n={n!r}, m={m}")
    w = jnp.broadcast_to(jnp.asarray(samples.weights, x.dtype), x.shape)
    return _fit_errors(basis_name, f, m, n_quad, method, x, w, jnp.asarray(n))


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _fit_errors(basis_name, f, m, n_quad, method, x, w, n):
    w = jnp.where(jnp.arange(x.shape[1]) < n, w, 0.0)
    evaluate = bases.get(basis_name).evaluate
    coeffs = jax.vmap(lambda xi, wi: lstsq.solve(evaluate(xi, m), f(xi), weights=wi,
                                                 method=method))(x, w)
    return _l2_error_sq(basis_name, f, n_quad, coeffs)


def interpolation_error_rb(basis_name: str, f: Callable, m: int, x: Float[Array, "draws m"], *,
                           integrate: int = 1, n_quad: int = 512) -> Float[Array, " draws"]:
    r"""Rao–Blackwellised :math:`\|f-I_Sf\|^2` for projection-DPP draws: the last
    ``integrate`` points integrated out exactly.

    Let :math:`g=f-P_mf` and, for the first :math:`k` points :math:`S_k` (HKPV order),
    :math:`c^{(k)}` the minimum-norm solution of :math:`\Phi(x_i)^\top c=g(x_i)`, :math:`i\le k`.
    Given :math:`S_{k-1}` the HKPV step draws :math:`x_k` with density
    :math:`\|U^\top\Phi(x)\|^2/(m-k+1)` (:math:`U` an orthonormal basis of the null space of
    the first :math:`k-1` rows), and :math:`\|c^{(k)}\|^2=\|c^{(k-1)}\|^2+t^2`,
    :math:`t=(g(x_k)-\Phi(x_k)^\top c^{(k-1)})/\|U^\top\Phi(x_k)\|`. Integrating over
    :math:`x_k`, using :math:`g\perp V_m` and orthonormality,

    .. math:: \mathbb E\big[\|c^{(k)}\|^2\,\big|\,S_{k-1}\big]
              =\|c^{(k-1)}\|^2+\frac{\|g\|^2+\|c^{(k-1)}\|^2}{m-k+1},

    so :math:`Z_k=(m-k+1)(\|g\|^2+\|c^{(k)}\|^2)` is a martingale with :math:`Z_0=(m+1)\|g\|^2`
    and :math:`Z_m=\|g\|^2+\|c^{(m)}\|^2=\|f-I_Sf\|^2`: this proves
    :math:`\mathbb E\|f-I_Sf\|^2=(m+1)\|f-P_mf\|^2`, and every :math:`Z_{m-j}` is an unbiased
    estimator of it that uses the sampled law of the first :math:`m-j` points and the exact
    conditional law of the last :math:`j`. This function returns :math:`Z_{m-j}`,
    ``j = integrate``: ``0`` is the plain interpolation error, ``m`` the constant
    :math:`(m+1)\|g\|^2`.

    Why: the plain :math:`Z_m` is heavy-tailed (a gap among the points makes the interpolant
    blow up; empirical Hill tail index ~1.3–2 for Legendre, i.e. effectively infinite variance),
    so its Monte-Carlo mean converges slowly and its standard error is unreliable. Each point
    integrated out lightens the tail (Legendre/Runge, m = 50, 2·10⁴ draws: relative standard
    error 17 % for j = 1, 1.4 % for j = 3, 0.2 % for j = 25).

    Args:
        basis_name: one of :data:`opdiff.approx.bases.BASES`.
        f: the target (vectorised JAX function, static for compilation).
        m: dimension of :math:`V_m`.
        x: ``(draws, m)`` DPP points in the order drawn (HKPV order; any order works for the
            exchangeable DPP law, since every ordering has the same joint law).
        integrate: number :math:`j\in[0,m]` of final points integrated out.
        n_quad: quadrature nodes for :math:`P_mf` and :math:`\|g\|^2`.

    Raises:
        ValueError: if ``x`` does not have shape ``(draws, m)`` or ``integrate`` is not in
            ``[0, m]``.
    """
    m = check_positive_int("m", m, minimum=1)
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[1] != m:
        raise ValueError(f"x must have shape (draws, m={m}), got {x.shape}")
    j = check_positive_int("integrate", integrate, minimum=0)
    if j > m:
        raise ValueError(f"integrate must be in [0, m] = [0, {m}], got {integrate!r}")
    bases.quadrature(basis_name, n_quad)
    return _interpolation_error_rb(basis_name, f, m, n_quad, j, x)


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _interpolation_error_rb(basis_name, f, m, n_quad, j, x):
    c = _projection_coefficients(basis_name, f, m, n_quad)
    g2 = _l2_error_sq(basis_name, f, n_quad, c)
    k = m - j
    if k == 0:
        return jnp.full(x.shape[:1], (m + 1) * g2)
    evaluate = bases.get(basis_name).evaluate

    def one(xi):
        xi = xi[:k]
        A = evaluate(xi, m)  # (k, m), full row rank for distinct points
        # Minimum-norm solution of A c0 = g(x): with A^T = QR, c0 = Q R^{-T} g, so
        # ||c0|| = ||R^{-T} g||.
        r = jnp.linalg.qr(A.T, mode="r")
        z = jax.scipy.linalg.solve_triangular(r.T, f(xi) - A @ c, lower=True)
        return (j + 1) * (g2 + z @ z)

    return jax.vmap(one)(x)
