r"""Shared pieces of the DeepONet experiments (``deeponet_basis_floor``, ``deeponet_sensors``,
``deeponet_data_size``). Private: not an experiment.

* **Exact linear-Gaussian labels and floors** (float64 NumPy). A GRF sample is its values
  ``u = F z`` on a fine grid (``F`` the float64 factor the sampler uses), the antiderivative at
  the output points is ``A u`` with ``A`` rows of the cumulative-trapezoid matrix (the same map
  as :func:`opdiff.operators.integral.antiderivative`, exact for the piecewise-linear input),
  and the sensors read ``S u`` (``S`` from :func:`opdiff.functions.sensor_matrix`). Then every
  second moment is a matrix product: the PCA floor of the outputs, the Bayes floor of *any*
  predictor that sees only the sensor values (the conditional variance
  :math:`\mathbb E\|s-\mathbb E[s\mid Su]\|^2`), and the joint floor of any predictor that
  sees the sensors *and* has outputs in an affine ``p``-dimensional space.
* **Members trained at once.** A sweep over ``p`` (or ``m``, or the data size ``N``) is one
  ``opdiff.fit`` call: every member is the real model (``DeepONet(p_j)``, ``PODDeepONet(p_j)``,
  ``DeepONet(m_j)``) built from its own key, zero-padded into the largest one of the sweep
  (basis functions masked, padded inputs zero), stacked and vmapped. Padded weights get exactly
  zero gradient, so Adam leaves them at zero and each member follows the trajectory it would
  follow alone; the sum of the members' losses is block separable. One compilation instead of
  one per member (compilation, not arithmetic, dominates these small CPU runs).
* **Errors** in the Bochner norm :math:`(\mathbb E\|v-\hat v\|_{L^2}^2)^{1/2}` with trapezoid
  weights on the output grid, absolute or relative to :math:`(\mathbb E\|v\|^2)^{1/2}`: the
  norm in which the PCA floor is stated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import opdiff
from opdiff.nets import Ensemble, nnx
from opdiff.theory import checks

# --- exact linear maps ----------------------------------------------------------------------


def cumulative_trapezoid_matrix(grid) -> np.ndarray:
    """``J [N, N]`` with ``(J u)_i = sum_{j<i} (x_{j+1}-x_j)(u_j+u_{j+1})/2`` (float64)."""
    x = np.asarray(grid, np.float64)
    h = np.diff(x)
    inc = np.zeros((x.size - 1, x.size))
    rows = np.arange(x.size - 1)
    inc[rows, rows] = h / 2
    inc[rows, rows + 1] += h / 2
    return np.vstack([np.zeros((1, x.size)), np.cumsum(inc, axis=0)])


def subgrid(n_grid: int, n_points: int) -> np.ndarray:
    """Indices of ``n_points`` equispaced fine-grid points (endpoints included)."""
    if (n_grid - 1) % (n_points - 1):
        raise ValueError(f"n_points - 1 = {n_points - 1} must divide n_grid - 1 = {n_grid - 1}")
    return np.arange(0, n_grid, (n_grid - 1) // (n_points - 1))


def weighted_svals2(mat, w) -> np.ndarray:
    """Squared singular values of ``diag(sqrt w) @ mat``: the eigenvalues of the covariance
    ``mat mat^T`` in the ``w``-weighted inner product (descending)."""
    return np.linalg.svd(np.sqrt(w)[:, None] * mat, compute_uv=False) ** 2


def gaussian_floors(B, w, SF=None) -> dict:
    r"""Population second moments for outputs ``s = B z``, ``z ~ N(0, I)`` (mean zero).

    Args:
        B: ``[P, r]`` output map times the input factor (``A F``).
        w: ``[P]`` quadrature weights of the output points.
        SF: ``[m, r]`` sensor map times the factor (``S F``); ``None``: no sensor floor.

    Returns:
        ``eigs`` (output covariance eigenvalues), ``second_moment``, and with ``SF``:
        ``sensor_sq`` (:math:`\mathbb E\|s-\mathbb E[s|Su]\|^2`, the Bayes floor squared) and
        ``explained_eigs`` (eigenvalues of the covariance of :math:`\mathbb E[s|Su]`). The
        projection onto the row space of ``SF`` is taken from a QR factorisation (stable when
        the sensor covariance is numerically singular, as for the RBF kernel).
    """
    B = np.asarray(B, np.float64)
    out = {"eigs": weighted_svals2(B, w)}
    out["second_moment"] = float(np.sum(out["eigs"]))
    if SF is not None:
        q, _ = np.linalg.qr(np.asarray(SF, np.float64).T)
        bq = B @ q
        resid = B - bq @ q.T
        out["sensor_sq"] = float(np.sum(w[:, None] * resid**2))
        out["explained_eigs"] = weighted_svals2(bq, w)
    return out


def tail(eigs, p) -> np.ndarray:
    r""":math:`\sum_{k>p}\lambda_k` for each ``p`` (float64)."""
    lam = np.clip(np.sort(np.asarray(eigs, np.float64))[::-1], 0.0, None)
    t = np.concatenate([np.cumsum(lam[::-1])[::-1], [0.0]])
    return t[np.minimum(np.asarray(p), lam.size)]


# --- errors ---------------------------------------------------------------------------------


def sq_errors(pred, true, w) -> np.ndarray:
    r"""Per-function :math:`\|v-\hat v\|_w^2 = \sum_j w_j(v_j-\hat v_j)^2` in float64 (over
    the last axis)."""
    d = np.asarray(pred, np.float64) - np.asarray(true, np.float64)
    return np.sum(np.asarray(w, np.float64) * d * d, axis=-1)


def bochner(sq) -> float:
    r""":math:`(\frac1n\sum_i\|e_i\|^2)^{1/2}` from per-function squared errors."""
    return float(np.sqrt(np.mean(sq)))


def mc_rtol(sq, z: float = 3.0) -> float:
    r"""Relative Monte-Carlo slack of the Bochner error :math:`(\overline{\|e\|^2})^{1/2}`:
    ``z`` standard errors of the mean of ``sq``, carried through the square root (capped)."""
    sq = np.asarray(sq, np.float64)
    rel = z * sq.std(ddof=1) / np.sqrt(sq.size) / max(sq.mean(), 1e-300)
    return float(min(0.9, 1.0 - np.sqrt(max(0.0, 1.0 - rel))))


def lower_bound_all(claim: str, measured, bounds, *, rtol,
                    labels=None) -> tuple[bool, list[dict]]:
    """:func:`opdiff.theory.checks.lower_bound` for every pair; holds iff every one holds.

    Arrays are flattened; ``rtol`` is one number or one per pair; ``labels`` (one per pair)
    name the records. Returns the verdict and the per-pair records.
    """
    measured = np.ravel(np.asarray(measured, np.float64))
    bounds = np.ravel(np.asarray(bounds, np.float64))
    rtols = np.ravel(np.asarray(rtol, np.float64))
    if rtols.size == 1:
        rtols = np.full(measured.size, rtols[0])
    if not bounds.size == rtols.size == measured.size:
        raise ValueError(f"{measured.size} measurements, {bounds.size} bounds, {rtols.size} rtols")
    labels = [str(i) for i in range(measured.size)] if labels is None else list(labels)
    recs = [checks.lower_bound(f"{claim} [{lab}]", m, b, rtol=float(r))
            for lab, m, b, r in zip(labels, measured, bounds, rtols)]
    return all(r["holds"] for r in recs), recs


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


# --- members: padding, stacking, training -------------------------------------------------


def _pad(small, big):
    small = jnp.asarray(small)
    if small.shape == big.shape:
        return small.astype(big.dtype)
    if small.ndim != big.ndim or any(s > b for s, b in zip(small.shape, big.shape)):
        raise ValueError(f"cannot pad shape {small.shape} into {big.shape}")
    out = jnp.zeros(big.shape, big.dtype)
    return out.at[tuple(slice(0, s) for s in small.shape)].set(small.astype(big.dtype))


def stack_members(template, members) -> tuple[Ensemble, Any]:
    """Zero-pad every member module into ``template``'s shapes (leading corner) and stack.

    The template (the largest member of the sweep) gives the graph; returns an
    :class:`opdiff.nets.Ensemble` (graph + stacked non-trainable state) and the stacked
    trainable parameters.
    """
    graphdef, tparams, trest = nnx.split(template, nnx.Param, ...)
    ps, rs = [], []
    for mod in members:
        _, p, r = nnx.split(mod, nnx.Param, ...)
        ps.append(jax.tree.map(_pad, p, tparams))
        rs.append(jax.tree.map(_pad, r, trest))
    stack = lambda *xs: jnp.stack(xs)  # noqa: E731
    return Ensemble(graphdef, jax.tree.map(stack, *rs)), jax.tree.map(stack, *ps)


@dataclasses.dataclass
class Sweep:
    """Members trained together in one ``opdiff.fit`` call (see the module docstring).

    Attributes:
        ens, params: from :func:`stack_members`.
        forward: ``forward(net, extra, u [B, m]) -> [B, P]`` for one member (normalised units).
        extra: per-member pytree with a leading member axis (masks), or ``None``.
        inputs: ``[G, N, m]`` normalised inputs of ``G`` input groups (sensor sets, data pools).
        outputs: ``[G, N, P]`` normalised outputs.
        group: ``[E]`` input group of each member.
        n_train: ``[E]`` rows ``0..n_train-1`` of its group each member trains on.
        out_scale: outputs were divided by this (predictions are multiplied back).
    """

    ens: Ensemble
    params: Any
    forward: Callable
    extra: Any
    inputs: np.ndarray
    outputs: np.ndarray
    group: np.ndarray
    n_train: np.ndarray
    out_scale: float = 1.0

    @property
    def size(self) -> int:
        return int(np.shape(self.group)[0])

    def member_map(self, params, fn, *member_args):
        graphdef = self.ens.graphdef

        def one(p, r, *a):
            return fn(nnx.merge(graphdef, p, r), *a)

        return jax.vmap(one)(params, self.ens.rest, *member_args)


def train(sweeps: list[Sweep], *, steps: int, batch_size: int, lr: float, key,
          steps_per_call: int, lr_final: float = 0.01) -> tuple[list[Any], np.ndarray]:
    r"""Train every member of every sweep in one ``opdiff.fit`` call.

    Member ``j`` minimises the MSE over ``batch_size`` functions drawn uniformly (with
    replacement) from its first ``n_train[j]`` rows, all output points; the total loss is the
    sum over members. Adam with a cosine decay from ``lr`` to ``lr * lr_final``. Returns the
    trained parameters of each sweep and the mean member loss per step.
    """
    data = []
    for s in sweeps:
        data.append(dict(u=jnp.asarray(s.inputs, jnp.float32),
                         v=jnp.asarray(s.outputs, jnp.float32),
                         g=jnp.asarray(s.group, jnp.int32), n=jnp.asarray(s.n_train, jnp.int32)))
    n_members = sum(s.size for s in sweeps)

    def batches(k):
        out = []
        for i, d in enumerate(data):
            keys = jax.random.split(jax.random.fold_in(k, i), d["g"].shape[0])

            def draw(kk, g, n, d=d):
                idx = jax.random.randint(kk, (batch_size,), 0, n)
                return d["u"][g, idx], d["v"][g, idx]

            out.append(jax.vmap(draw)(keys, d["g"], d["n"]))
        return tuple(out)

    def loss(params, batch, _key):
        total = 0.0
        for s, p, (u, v) in zip(sweeps, params, batch):
            extra = s.extra
            if extra is None:
                pred = s.member_map(p, lambda net, uu: s.forward(net, None, uu), u)
            else:
                pred = s.member_map(p, s.forward, extra, u)
            total = total + jnp.sum(jnp.mean((pred - v) ** 2, axis=(1, 2)))
        return total

    schedule = optax.cosine_decay_schedule(lr, steps, alpha=lr_final)
    result = opdiff.fit(loss, tuple(s.params for s in sweeps), optax.adam(schedule), batches,
                        steps=steps, key=key, steps_per_call=min(steps_per_call, steps),
                        progress=False)
    return list(result.params), np.asarray(result.losses) / n_members


def predict(sweep: Sweep, params, group_inputs, chunk: int = 1024) -> np.ndarray:
    """Predictions of every member, ``[E, n, P]`` float32 in the original output units.

    ``group_inputs``: ``[G, n, m]`` normalised inputs (member ``j`` reads group ``group[j]``).
    """
    g = jnp.asarray(sweep.group, jnp.int32)

    @jax.jit
    def run(p, u):
        uj = u[g]  # [E, c, m]
        if sweep.extra is None:
            return sweep.member_map(p, lambda net, uu: sweep.forward(net, None, uu), uj)
        return sweep.member_map(p, sweep.forward, sweep.extra, uj)

    u = jnp.asarray(group_inputs, jnp.float32)
    parts = [np.asarray(run(params, u[:, i:i + chunk])) for i in range(0, u.shape[1], chunk)]
    return np.concatenate(parts, axis=1) * sweep.out_scale


# --- forward maps -----------------------------------------------------------------------


def deeponet_forward(points):
    """``forward(net, mask, u)`` for a :class:`~opdiff.nets.DeepONet` on fixed ``points``:
    :meth:`DeepONet.aligned` with the basis functions ``i`` where ``mask[i] = 0`` removed
    (``mask=None``: all of them)."""
    y = jnp.asarray(points, jnp.float32)

    def forward(net, mask, u):
        if mask is None:
            return net.aligned(u, y)[..., 0]
        b = jax.vmap(net.branch_coefficients)(u)  # [B, 1, p]
        t = jax.vmap(net.basis)(y)  # [P, 1, p]
        return jnp.einsum("nkp,qkp,p->nq", b, t, mask) + net.bias[...][0]

    return forward


def pod_forward(net, _extra, u):
    """``forward`` of a :class:`~opdiff.nets.PODDeepONet`."""
    return net.aligned(u)


def member_keys(key, n: int):
    return [jax.random.fold_in(key, i) for i in range(n)]
