r"""Wiring shared by the operator-zoo and resolution experiments: the periodic problems, the
three model families behind one forward map, one training loop through :func:`opdiff.fit`,
and the test scores.

Every problem lives on the periodic grid :math:`x_j=j/n`; a model's forward map takes inputs
``[B, n]`` to outputs ``[B, n]``. ``cfg`` is any object with the attributes each function reads
(the experiments pass their ``Config``).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from opdiff import claims as cl
from opdiff import deeponet_bounds as db
from opdiff import functions
from opdiff.nets.deeponet import DeepONet, PODDeepONet
from opdiff.nets.unet import UNet
from opdiff.nets import nnx
from opdiff.nets.fno import FNO
from opdiff.operator_learning import fno_bounds as fb
from opdiff.operator_learning import problems as op
from opdiff.operators import catalog, heat
from opdiff.train import fit

__all__ = ["at_shape", "fit_aligned", "floors", "make_data", "make_model",
           "periodic_antiderivative", "score", "transfer"]


def periodic_antiderivative(u: np.ndarray) -> np.ndarray:
    r""":math:`\int_0^x u` of the trigonometric interpolant of mean-zero grid values ``u [.., n]``
    (float64): :math:`\hat s_k=\hat u_k/(2\pi ik)`, then the constant making :math:`s(0)=0`."""
    n = u.shape[-1]
    k = np.fft.fftfreq(n, 1.0 / n)
    uh = np.fft.fft(np.asarray(u, np.float64), axis=-1)
    sh = np.where(k != 0, uh / np.where(k != 0, 2j * np.pi * k, 1.0), 0.0)
    if n % 2 == 0:
        sh[..., n // 2] = 0.0  # the Nyquist mode has no real antiderivative on the grid
    s = np.fft.ifft(sh, axis=-1).real
    return s - s[..., :1]


def _dr(cfg):
    return catalog.diffusion_reaction(cfg.n, cfg.dr_nt, D=0.01, k=0.01)


def _heat2d(cfg):
    """The 2-D field on ``cfg.n2``² points and the heat factor on its FFT grid."""
    field = functions.PeriodicPowerLawField(n=(cfg.n2, cfg.n2), alpha=cfg.alpha, k0=cfg.k0)
    return field, heat.heat_multiplier(4 * np.pi ** 2 * cfg.nu * field.wavenumbers(), cfg.t)


def make_data(name: str, cfg, key, n_funcs: int):
    """``(inputs [n_funcs, m], targets [n_funcs, P])`` (float32) of problem ``name``: ``m = P =
    n`` except for diffusion--reaction (``P = n (nt + 1)``, t-major, on ``[0, 1]`` with its
    ends; inputs a Gaussian random field of length scale ``cfg.dr_length_scale``) and the 2-D
    backward heat problem ``heat2d_backward`` (``m = P = n2²``, row-major)."""
    ku, kn = jax.random.split(key)
    if name == "heat2d_backward":
        field, a = _heat2d(cfg)
        u = field.sample(n_funcs, key=ku)
        f = jnp.fft.ifft2(jnp.fft.fft2(u) * jnp.asarray(a, jnp.complex64)).real
        f = f + cfg.delta * cfg.n2 * jax.random.normal(kn, u.shape, u.dtype)
        return f.reshape(n_funcs, -1), u.reshape(n_funcs, -1)
    if name == "diffusion_reaction":
        grf = functions.GaussianRandomField(length_scale=cfg.dr_length_scale, n_grid=cfg.n)
        u = grf.sample(n_funcs, key=ku)
        return u, _dr(cfg).apply(u)
    if name == "burgers":
        field = functions.PeriodicPowerLawField(n=cfg.n, alpha=4.0, k0=op.BURGERS_K0,
                                                variance=op.burgers_input_variance(cfg.n))
    else:
        field = functions.PeriodicPowerLawField(n=cfg.n, alpha=cfg.alpha, k0=cfg.k0)
    u = field.sample(n_funcs, key=ku)
    if name == "antiderivative":
        return u, jnp.asarray(periodic_antiderivative(np.asarray(u)), jnp.float32)
    if name == "heat_forward":
        return u, heat.periodic(u, cfg.t, cfg.nu)
    if name == "heat_backward":
        return heat.observe(u, cfg.t, cfg.nu, cfg.delta, key=kn), u
    return u, catalog.burgers(cfg.n, nu=cfg.burgers_nu, t_final=cfg.burgers_t,
                              nt=cfg.burgers_nt).apply(u)


def fit_aligned(model, forward, u, v, *, steps, batch_size, lr, steps_per_call, key):
    """Adam (cosine decay to 1 %) on the grid MSE of ``forward(model, u) ~ v``; returns the
    trained model and the wall time (compilation included)."""
    def loss(m, batch, _key):
        return jnp.mean((forward(m, batch["u"]) - batch["v"]) ** 2)

    opt = optax.adam(optax.cosine_decay_schedule(lr, steps, alpha=1e-2))
    t0 = time.perf_counter()
    res = fit(loss, model, opt, {"u": jnp.asarray(u), "v": jnp.asarray(v)}, steps=steps,
              batch_size=batch_size, steps_per_call=min(steps_per_call, steps), key=key)
    return res.params, time.perf_counter() - t0


def make_model(kind: str, cfg, key, v_train, problem: str = ""):
    """A model and its forward map ``(model, u [B, m]) -> [B, P]`` (:func:`make_data`'s
    layout): the DeepONet's trunk reads ``x`` (``(x, t)`` for diffusion--reaction, ``(x1, x2)``
    in 2-D); the FNO reads ``u`` and the coordinate, and returns the ``nt + 1`` time slices as
    output channels for diffusion--reaction; ``kind="unet"`` (2-D only) is the U-Net
    :math:`x+F(x)` at time 0, channels ``cfg.unet_channels``."""
    dr, two = problem == "diffusion_reaction", problem == "heat2d_backward"
    if two:
        g = np.arange(cfg.n2) / cfg.n2
        pts = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    else:
        pts = _dr(cfg).output_points if dr else np.arange(cfg.n)[:, None] / cfg.n
    y, m_in = jnp.asarray(pts, jnp.float32), cfg.n2 ** 2 if two else cfg.n
    if two and kind in ("fno", "unet"):
        side = (cfg.n2, cfg.n2)
        if kind == "unet":
            m = UNet(side, channels=tuple(cfg.unet_channels), emb_dim=16, key=key)
            return m, lambda mm, u: jax.vmap(lambda x: mm(x, 0.0))(
                u.reshape(-1, *side)).reshape(len(u), -1)
        m = FNO(1, 1, (cfg.fno2_modes,) * 2, width=cfg.fno_width, depth=cfg.fno_depth,
                projection_width=cfg.fno_projection, key=key)
        return m, lambda mm, u: mm.batched(u.reshape(-1, *side, 1)).reshape(len(u), -1)
    if kind == "deeponet":
        m = DeepONet(m_in, y.shape[1], cfg.p, branch_width=cfg.width, branch_depth=cfg.depth,
                     trunk_width=cfg.width, trunk_depth=cfg.depth, activation="gelu", key=key)
        return m, lambda mm, u: mm.aligned(u, y)[..., 0]
    if kind == "pod_deeponet":
        pca = db.pca(np.asarray(v_train), np.full(y.shape[0], 1.0 / y.shape[0]))
        m = PODDeepONet(m_in, pca.mean, pca.modes[: cfg.p], branch_width=cfg.width,
                        branch_depth=cfg.depth, activation="gelu", key=key)
        return m, lambda mm, u: mm.aligned(u)
    out = cfg.dr_nt + 1 if dr else 1
    m = FNO(1, out, cfg.fno_modes, width=cfg.fno_width, depth=cfg.fno_depth,
            projection_width=cfg.fno_projection, positional=True, key=key)
    return m, lambda mm, u: jnp.swapaxes(mm.batched(u[..., None]), 1, 2).reshape(len(u), -1)


def score(pred, v) -> dict:
    """Test MSE (grid mean, mean over functions) ± SE, and the mean relative L2 error."""
    pred, v = np.asarray(pred, np.float64), np.asarray(v, np.float64)
    per = np.mean((pred - v) ** 2, axis=1)
    mse, se = cl.mean_se(per)
    rel = np.sqrt(per / np.mean(v ** 2, axis=1))
    return dict(mse=float(mse), se=float(se), rel_l2=float(rel.mean()),
                rel_l2_se=float(rel.std(ddof=1) / np.sqrt(rel.size)))


def transfer(model, n: int) -> np.ndarray:
    """The transfer function on the ``n``-grid of a linear, shift-invariant one-channel model
    (FFT of its impulse response minus its response to 0)."""
    impulse = np.zeros((n, 1), np.float32)
    impulse[0] = 1.0
    resp = np.asarray(model(jnp.asarray(impulse)), np.float64) - np.asarray(
        model(jnp.zeros((n, 1))), np.float64)
    return np.fft.fft(resp[:, 0])


def floors(name: str, cfg, v_test) -> dict:
    """The floors of problem ``name`` in MSE units (``None`` where none applies)."""
    if name == "heat2d_backward":
        field, a = _heat2d(cfg)
        pca = db.pca(np.asarray(v_test, np.float64), np.full(cfg.n2 ** 2, cfg.n2 ** -2.0))
        return dict(pca=db.pca_floor(pca.eigenvalues, cfg.p) ** 2, linear_fno=None,
                    wiener=fb.wiener_mse(field.spectrum(), a, cfg.delta ** 2))
    mu = functions.PeriodicPowerLawField(n=cfg.n, alpha=cfg.alpha, k0=cfg.k0).spectrum()
    v = np.asarray(v_test, np.float64)
    pca = db.pca(v, np.full(v.shape[1], 1.0 / v.shape[1]))
    out = dict(pca=db.pca_floor(pca.eigenvalues, cfg.p) ** 2, wiener=None, linear_fno=None)
    if name == "heat_backward":
        out["wiener"] = heat.wiener_mse(cfg.n, mu[: cfg.n // 2 + 1], cfg.t, cfg.nu, cfg.delta)
    if name == "heat_forward":
        a = heat.periodic_multiplier(np.fft.fftfreq(cfg.n, 1.0 / cfg.n), cfg.t, cfg.nu)
        out["linear_fno"] = fb.linear_fno_floor(mu, a, cfg.fno_modes)
    return out


def at_shape(model, fresh):
    """``fresh``, the same architecture built for another input shape (a U-Net at 64² for one
    trained at 32²), with ``model``'s trained parameters copied in; returned."""
    nnx.update(fresh, nnx.state(model, nnx.Param))
    return fresh
