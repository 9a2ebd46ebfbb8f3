r"""Sweeps of operator networks trained at once: one compilation for a whole sweep.

A sweep over the number of basis functions ``p`` (or sensors ``m``, or training functions
``N``) is one :func:`opdiff.fit` call: every member is the real model (``DeepONet(p_j)``,
``PODDeepONet(p_j)``, ``DeepONet(m_j)``) built from its own key, zero-padded into the largest
member of the sweep (:func:`stack_members`; basis functions masked, padded inputs zero),
stacked and vmapped. Padded weights get exactly zero gradient, so Adam leaves them at zero and
each member follows the trajectory it would follow alone: the total loss
:math:`\sum_j L_j(\theta_j)` is block separable, so :math:`\nabla_{\theta_j}` of the sum is
:math:`\nabla L_j(\theta_j)`. One compilation instead of one per member (compilation, not
arithmetic, dominates small CPU runs).

* :func:`stack_members`, :class:`Sweep`: the padded, stacked members and their data;
* :func:`train_sweeps`: Adam with a cosine schedule on the sum of the members' MSEs;
* :func:`predict_sweep`: every member's predictions;
* :func:`deeponet_forward`, :func:`pod_forward`: the member forward maps; :func:`member_keys`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from opdiff import train as _train
from opdiff.nets import Ensemble, nnx

__all__ = ["Sweep", "deeponet_forward", "member_keys", "pod_forward", "predict_sweep",
           "stack_members", "train_fresh_stack", "train_sweeps"]


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
    """Members trained together in one :func:`opdiff.fit` call (see the module docstring).

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
        """The number of members ``E``."""
        return int(np.shape(self.group)[0])

    def member_map(self, params, fn, *member_args):
        """``fn(member_net, *member_args)`` vmapped over the members (leading axes)."""
        graphdef = self.ens.graphdef

        def one(p, r, *a):
            return fn(nnx.merge(graphdef, p, r), *a)

        return jax.vmap(one)(params, self.ens.rest, *member_args)


def train_sweeps(sweeps: list[Sweep], *, steps: int, batch_size: int, lr: float, key,
                 steps_per_call: int, lr_final: float = 0.01) -> tuple[list[Any], np.ndarray]:
    r"""Train every member of every sweep in one :func:`opdiff.fit` call.

    Member ``j`` minimises
    :math:`L_j=\frac1{BP}\sum_{b,q}(\mathcal N_j(u_b)(y_q)-v_b(y_q))^2` over ``batch_size``
    functions drawn uniformly (with replacement) from its first ``n_train[j]`` rows, all
    output points; the total loss is :math:`\sum_jL_j`. Adam with a cosine decay from ``lr``
    to ``lr * lr_final``. Step ``s`` draws its batches from ``fold_in(key, s)`` (the engine),
    sweep ``i`` from ``fold_in(., i)`` split over its members.

    Returns:
        The trained (stacked) parameters of each sweep, and ``[steps]`` the mean member loss
        per step.
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
    result = _train.fit(loss, tuple(s.params for s in sweeps), optax.adam(schedule), batches,
                        steps=steps, key=key, steps_per_call=min(steps_per_call, steps),
                        progress=False)
    return list(result.params), np.asarray(result.losses) / n_members


def predict_sweep(sweep: Sweep, params, group_inputs, chunk: int = 1024) -> np.ndarray:
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


# --- forward maps ------------------------------------------------------------------------------


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


def member_keys(key, n: int) -> list:
    """``n`` member keys: ``fold_in(key, i)`` for ``i = 0..n-1``."""
    return [jax.random.fold_in(key, i) for i in range(n)]


# --- stacks trained on fresh data ----------------------------------------------------------


def train_fresh_stack(make, ps, sample_pairs, points, *, n: int, steps: int, lr: float,
                      batch_size: int, steps_per_call: int, key, whiten: bool = True,
                      n_whiten: int = 1000):
    r"""Train one DeepONet per cell (a vmapped stack) on fresh data, cell ``c`` with ``ps[c]``
    basis functions and a fixed ZCA-whitened branch input.

    The stack has ``max(ps)`` trunk outputs; cell ``c`` switches off all but its first
    ``ps[c]``, which is exactly a DeepONet with ``ps[c]`` trunk functions (the switched-off
    weights get zero gradients and never move). Cell ``c`` predicts
    :math:`\sum_ib_i(W_cf)t_i(y)m_{c,i}+b_0` on the fixed query ``points``, ``W_c`` from
    :func:`opdiff.operator_learning.zca_whitening` of ``n_whiten`` samples (identity without
    ``whiten``). Every step draws a new batch ``sample_pairs(u_key, noise_key, batch_size)``
    (so the training loss is the population risk); the loss is the sum over cells of the MSE;
    Adam with a cosine decay from ``lr`` to ``lr/100``. Initial weights:
    ``Ensemble.create(make(max(ps)), split(init_key, len(ps)), init="glorot_normal")``
    (:class:`opdiff.nets.Ensemble`; glorot-normal kernels, zero biases, cell ``c`` from its
    own key).

    Args:
        make: ``make(p)(key) -> DeepONet`` with ``p`` basis functions, ``n`` sensors.
        ps: basis functions per cell.
        sample_pairs: ``(u_key, noise_key, n_funcs) -> (inputs, targets)``, each
            ``[C, n_funcs, n]``.
        points: ``[P, d]`` query points as the trunk reads them.

    Returns:
        ``predict(f [C, k, n]) -> [C, k, P]``, the per-step loss, and the training wall time.
    """
    from opdiff.operator_learning import zca_whitening

    init_key, train_key, white_key = jax.random.split(key, 3)
    cells = len(ps)
    ens, params = Ensemble.create(make(max(ps)), jax.random.split(init_key, cells),
                                  init="glorot_normal")
    mask = jnp.asarray(np.arange(max(ps))[None, :] < np.asarray(ps)[:, None], jnp.float32)
    y = jnp.asarray(points, jnp.float32)
    if whiten:
        k1, k2 = jax.random.split(white_key)
        w = jnp.asarray(zca_whitening(sample_pairs(k1, k2, n_whiten)[0]), jnp.float32)
    else:
        w = jnp.broadcast_to(jnp.eye(n, dtype=jnp.float32), (cells, n, n))

    def apply(params, f):
        def one(prm, rest, wc, mc, fc):
            net = nnx.merge(ens.graphdef, prm, rest)
            b = jax.vmap(net.branch_coefficients)(fc @ wc)[:, 0]  # [k, p]
            t = jax.vmap(net.basis)(y)[:, 0] * mc  # [P, p]
            return b @ t.T + net.bias[...][0]
        return jax.vmap(one)(params, ens.rest, w, mask, f)

    def data(k):
        u_key, noise_key = jax.random.split(k)
        return sample_pairs(u_key, noise_key, batch_size)

    def loss(params, batch, k):
        f, target = batch
        return jnp.sum(jnp.mean((apply(params, f) - target) ** 2, axis=(1, 2)))

    schedule = optax.cosine_decay_schedule(lr, steps, alpha=1e-2)
    t0 = time.perf_counter()
    result = _train.fit(loss, params, optax.adam(schedule), data, steps=steps, key=train_key,
                        steps_per_call=min(steps_per_call, steps), progress=False)
    wall = time.perf_counter() - t0
    trained, apply_jit = result.params, jax.jit(apply)  # params as arguments, not constants
    return (lambda f: apply_jit(trained, f)), result.losses, wall
