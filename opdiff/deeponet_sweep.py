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
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from opdiff import train as _train
from opdiff.nets import Ensemble, nnx

__all__ = ["Sweep", "deeponet_forward", "member_keys", "pod_forward", "predict_sweep",
           "stack_members", "train_sweeps"]


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
