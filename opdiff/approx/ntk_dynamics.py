r"""The empirical NTK of many seeds at initialisation and during full-batch gradient descent.

Built on :mod:`opdiff.approx.ntk` (NTK-parameterised networks, empirical and analytic kernels).
Seeds are a leading axis of every parameter leaf (``vmap`` over keys); widths are static, so
each width compiles once.

- :func:`init_kernels`, :func:`init_state`, :func:`kernel_state`: the empirical kernel of
  freshly initialised (or trained) networks per seed, with the outputs where needed;
- :func:`relative_frobenius`: :math:`\|A-B\|_F/\|B\|_F`, the distance every part reports;
- :func:`linearised_prediction`: the exact discrete-GD prediction of the linearised model;
- :func:`train_drift`: kernel drift and distance from the linearised model after training.

Data helpers: :func:`sphere_points` (uniform on :math:`S^{d-1}`) and :func:`smooth_target`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff.approx import ntk

__all__ = [
    "check_width_sweep",
    "init_kernels",
    "init_state",
    "kernel_state",
    "linearised_prediction",
    "relative_frobenius",
    "scalar_network",
    "smooth_target",
    "sphere_points",
    "train_drift",
]


def check_width_sweep(name: str, values, *, allow_empty: bool = False) -> None:
    """Refuse a width sweep that is empty (unless allowed), holds a non-int or an int < 1, or is
    not strictly increasing; the ``ValueError`` names ``name``."""
    if not values and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
        raise ValueError(f"{name} must hold positive ints, got {values!r}")
    if list(values) != sorted(set(values)):
        raise ValueError(f"{name} must be strictly increasing, got {values!r}")


def sphere_points(key: PRNGKeyArray, n: int, d: int) -> Float[Array, "n d"]:
    """``n`` points uniform on :math:`S^{d-1}` (normalised standard Gaussians)."""
    g = jax.random.normal(key, (n, d))
    return g / jnp.linalg.norm(g, axis=1, keepdims=True)


def smooth_target(x: Float[Array, " d"]) -> Float[Array, ""]:
    r""":math:`y=\sin(3x_1)+x_2x_3` at one point (smooth, :math:`O(1)` on the sphere;
    ``d >= 3``)."""
    return jnp.sin(3.0 * x[0]) + x[1] * x[2]


@functools.lru_cache(maxsize=None)
def scalar_network(activation: str, sigma_w: float, sigma_b: float) -> Callable:
    """``f(params, x)``: the scalar output of :func:`opdiff.approx.ntk.apply` at one input (one
    function object per arguments, so ``jit`` caches by it)."""
    net = partial(ntk.apply, activation=activation, sigma_w=sigma_w, sigma_b=sigma_b)
    return lambda p, x: net(p, x)[0]


def relative_frobenius(a: Float[Array, "*b n m"], b: Float[Array, "*b n m"]
                       ) -> Float[Array, "*b"]:
    r""":math:`\|a-b\|_F/\|b\|_F` over the last two axes."""
    return jnp.linalg.norm(a - b, axis=(-2, -1)) / jnp.linalg.norm(b, axis=(-2, -1))


def _measure(params, x, x_test, fn) -> dict:
    z = jnp.concatenate([x, x_test])
    n = x.shape[0]

    def one(p):
        k = ntk.empirical_ntk(fn, p, z)
        f = jax.vmap(lambda zi: fn(p, zi))(z)
        return dict(theta=k[:n, :n], theta_tx=k[n:, :n], f_x=f[:n], f_t=f[n:])

    return jax.vmap(one)(params)


kernel_state = jax.jit(_measure, static_argnames=("fn",))
kernel_state.__doc__ = r"""Per seed (leading axis of ``params``): the empirical NTK ``theta`` on
``x``, ``theta_tx`` on ``(x_test, x)``, and the outputs ``f_x``, ``f_t``; one Jacobian of all
``N + N_test`` inputs gives both kernel blocks. Signature ``(params, x, x_test, fn)``."""


@partial(jax.jit, static_argnames=("widths", "fn"))
def init_state(keys: PRNGKeyArray, x, x_test, widths: tuple[int, ...], fn):
    """One network of ``widths`` per key (:func:`opdiff.approx.ntk.init_params`) and its
    :func:`kernel_state`; returns ``(params, state)``."""
    params = jax.vmap(lambda k: ntk.init_params(k, widths))(keys)
    return params, _measure(params, x, x_test, fn)


@partial(jax.jit, static_argnames=("widths", "fn"))
def init_kernels(keys: PRNGKeyArray, x, widths: tuple[int, ...], fn) -> Float[Array, "s n n"]:
    r"""Per key, the empirical NTK on ``x`` of a freshly initialised network: depth 1 by the
    Jacobian, deeper nets by NTK-vector products (``method="ntvp"``, memory :math:`O(P)` per
    seed where the Jacobian needs :math:`O(NP)`, :math:`P\approx n^2`)."""
    method = "ntvp" if len(widths) > 3 else "jacobian"
    return jax.vmap(lambda k: ntk.empirical_ntk(fn, ntk.init_params(k, widths), x,
                                                method=method))(keys)


def linearised_prediction(theta_xx, theta_tx, f0_x, f0_t, y, eta_over_n: float, steps: int):
    r""":math:`f^{lin}_T` at the test points after ``steps`` steps of full-batch GD on
    :math:`L=\frac1{2N}\sum(f-y)^2` for the model linearised at init (exact):

    .. math:: f^{lin}_T(x)=f_0(x)-\hat\Theta_0(x,X)\hat\Theta_0^{-1}
              \big(I-(I-\eta\hat\Theta_0/N)^T\big)(f_0(X)-y),

    by the eigendecomposition of :math:`\hat\Theta_0(X,X)`."""
    lam, v = jnp.linalg.eigh(theta_xx)
    decay = (1.0 - (1.0 - eta_over_n * lam) ** steps) / lam
    return f0_t - theta_tx @ (v @ (decay * (v.T @ (f0_x - y))))


def train_drift(inits: dict, x, y, x_test, eta: float, steps: int, key: PRNGKeyArray,
                fn) -> dict:
    r"""Train every width of ``inits`` (``{n: (params0, state0)}``, seeds stacked, ``state0``
    from :func:`kernel_state` with the same ``fn``) by ``steps`` steps of full-batch SGD
    (``optax.sgd(eta)`` through :func:`opdiff.fit`, key ``fold_in(key, n)``) on the sum over
    seeds of :math:`\frac1{2N}\sum_i(f(x_i)-y_i)^2` (block separable: the same as training each
    seed alone).

    Returns:
        dict of ``(widths, seeds)`` arrays: ``drift``
        :math:`\|\hat\Theta_T-\hat\Theta_0\|_F/\|\hat\Theta_0\|_F`, ``gap``
        :math:`\|f_T-f^{lin}_T\|/\|f^{lin}_T\|` on ``x_test``
        (:func:`linearised_prediction`), ``final_loss``.
    """
    import optax

    from opdiff.train import fit

    def loss(params, batch, _key):
        xb, yb = batch
        pred = jax.vmap(lambda p: jax.vmap(lambda xi: fn(p, xi))(xb))(params)  # (seeds, N)
        return 0.5 * jnp.sum(jnp.mean((pred - yb) ** 2, axis=1))

    lin = jax.jit(jax.vmap(linearised_prediction, in_axes=(0, 0, 0, 0, None, None, None)),
                  static_argnums=6)
    drift, gap, final_loss = [], [], []
    for n, (params0, s0) in inits.items():
        res = fit(loss, params0, optax.sgd(eta), (x, y), steps=steps,
                  key=jax.random.fold_in(key, n), steps_per_call=steps, progress=False)
        s_t = kernel_state(res.params, x, x_test, fn)
        f_lin = lin(s0["theta"], s0["theta_tx"], s0["f_x"], s0["f_t"], y, eta / x.shape[0],
                    steps)
        drift.append(relative_frobenius(s_t["theta"], s0["theta"]))
        gap.append(jnp.linalg.norm(s_t["f_t"] - f_lin, axis=1) / jnp.linalg.norm(f_lin, axis=1))
        final_loss.append(0.5 * jnp.mean((s_t["f_x"] - y) ** 2, axis=1))
    return {k: np.stack([np.asarray(v) for v in vals])
            for k, vals in (("drift", drift), ("gap", gap), ("final_loss", final_loss))}

