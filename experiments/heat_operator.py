r"""DeepONet learns the heat semigroup forward and backward, measured against the exact oracles.

    python -m experiments run heat_operator              # ~1 min on a 2-core CPU (float32)

Periodic grid :math:`x_j=j/N` on :math:`[0,1)`, prior :math:`u\sim N(0,C)` the periodic
power-law field (:class:`opdiff.functions.PeriodicPowerLawField`, eigenvalue :math:`\mu_k` per
real Fourier coordinate, :math:`\mu_k\propto(k^2+k_0^2)^{-\alpha/2}`), heat multiplier
:math:`a_k=e^{-4\pi^2k^2\nu t}`.

1. **Backward** (ill-posed): from :math:`f=e^{t\nu\Delta}u+\eta` (every :math:`L^2`-orthonormal
   Fourier coordinate of :math:`\eta` of variance :math:`\delta^2`, :func:`opdiff.operators.heat.
   observe`) recover :math:`u`, for every :math:`(t,\delta)` cell. The prior is Gaussian, so the
   Wiener filter is the posterior mean and its MSE (:func:`~opdiff.operators.heat.wiener_mse`)
   is the smallest any estimator can reach; the best spectral cutoff
   (:math:`\min_K` :func:`~opdiff.operators.heat.cutoff_mse`) and the naive inverse are the
   classical competitors. A DeepONet whose outputs span ``p_backward`` trunk functions has the
   sharper floor :math:`\mathrm{MSE}_{\rm Wiener}+\sum_{i>p}\lambda^{\rm post}_i`,
   :math:`\lambda^{\rm post}_k=\mu_k^2a_k^2/(a_k^2\mu_k+\delta^2)` the spectrum of the posterior
   mean (Pythagoras: the error splits into the posterior-mean error and the distance of the
   network's output from the posterior mean, which is at least the PCA tail of the latter;
   bound ``deeponet_p_floor``, within 1e-4 of the Wiener MSE at the presets' ``p_backward``).
   Claim, per cell: learned test MSE :math:`\ge` Wiener MSE :math:`-3\,\mathrm{SE}`, SE the
   Monte-Carlo standard error of the test-set mean. ``heat_operator_mse.png``,
   ``heat_operator_examples.png``.
2. **Forward** (compact): :math:`u\mapsto e^{t\nu\Delta}u`. Its outputs are Gaussian with
   eigenvalue :math:`\lambda_k=\mu_ka_k^2` per coordinate, so every DeepONet with ``p`` trunk
   functions has RMS error at least :math:`(\sum_{i>p}\lambda_{(i)})^{1/2}` (the PCA floor, from
   the exact spectrum). Claim, per (t, p): learned MSE :math:`\ge` floor² :math:`-3\,`SE.
   ``heat_operator_forward.png``.

Model: an unstacked DeepONet (GELU, Glorot normal) with the ``N`` grid values as sensors
(``m = N``) and the aligned layout with the ``N`` grid points as query points.

* **Periodic trunk**: the query point enters as the harmonics
  :math:`(\sin2\pi jx,\cos2\pi jx)_{j\le J}` (``trunk_harmonics`` = J), so every trunk
  function is exactly 1-periodic. With J = 1, i.e. :math:`(\sin2\pi x,\cos2\pi x)`, the trunk
  did not resolve wavenumbers :math:`\gtrsim6` at the quick budget and the learned MSE was up
  to 10x the Wiener MMSE (small :math:`\delta`); the random, non-integer frequencies of
  ``DeepONet(fourier_features=...)`` would break periodicity.
* **Whitened branch input**: the sensors pass through a fixed ZCA whitening
  :math:`W=\hat C^{-1/2}` estimated from unlabelled input samples before the branch. For a
  linear branch the Hessian of the risk is the input covariance, eigenvalues
  :math:`a_k^2\mu_k+\delta^2` per mode: the condition number :math:`\approx\mu_1/\delta^2` is the
  ill-posedness itself, and gradient training leaves the weak modes unlearned. Whitening cut
  the learned/Wiener ratio at :math:`\nu t=2.5\cdot10^{-4},\delta=10^{-3}` from 1.9 to 1.2
  (``whiten=false`` turns it off).
* **Fresh data**: every training step draws new prior samples and new noise (``data(key)``),
  so the training loss is the population risk, whose minimiser over all maps is the posterior
  mean; the test set is drawn from its own key.
* **Stacked cells**: all cells of one kind train at once as a vmapped stack of independent
  networks (block-separable loss and Adam: the same as training each alone); the forward cells
  of different ``p`` share the stack by switching off trunk outputs beyond their ``p``.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np
import optax

import opdiff
from opdiff import functions, plotting
from opdiff.nets import DeepONet, Ensemble, nnx
from opdiff.nets.mlp import ACTIVATIONS
from opdiff.operators import heat
from opdiff.theory import checks
from opdiff.theory import deeponet as deeponet_theory

from experiments._config import Count, NonNegative, Positive, Range, Seed
from experiments._report import Report

NAME = "heat_operator"
DESCRIPTION = "DeepONet on the heat semigroup: forward vs PCA floor, backward vs Wiener MMSE"
DTYPE = "float32"


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    n: Annotated[int, Range(lo=8)] = 64  # grid points = sensors = query points
    alpha: float = 3.0
    k0: NonNegative = 1.0
    nu: Positive = 0.05
    times: tuple[Positive, ...] = (0.005, 0.02)
    deltas: tuple[Positive, ...] = (1e-3, 1e-2, 1e-1)
    p_backward: Count = 48
    p_forward: tuple[Count, ...] = (4, 8, 12)
    branch_width: Count = 128
    branch_depth: Count = 2
    trunk_width: Count = 64
    trunk_depth: Count = 2
    trunk_harmonics: Count = 16
    whiten: bool = True
    activation: str = "gelu"
    steps: Count = 3000
    forward_steps: Count = 1500
    batch_size: Count = 128
    lr: Positive = 3e-3
    steps_per_call: Count = 100
    n_test: Count = 2000

    def __post_init__(self):
        if self.n < 8 or self.n % 2:
            raise ValueError(f"n must be an even int >= 8, got {self.n}")
        if not self.times or min(self.times) <= 0:
            raise ValueError("times must be a non-empty tuple of positive times")
        if not self.deltas or min(self.deltas) <= 0:
            raise ValueError("deltas must be a non-empty tuple of positive noise levels")
        if self.nu <= 0:
            raise ValueError("nu must be > 0")
        for name in ("p_backward", "branch_width", "branch_depth", "trunk_width", "trunk_depth",
                     "trunk_harmonics", "steps", "forward_steps", "batch_size",
                     "steps_per_call"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not self.p_forward or min(self.p_forward) < 1:
            raise ValueError("p_forward must be a non-empty tuple of positive ints")
        if self.n_test < 2 * self.n:
            raise ValueError(f"n_test must be >= 2 n = {2 * self.n} (it also sizes the "
                             "sample that estimates the whitening)")
        if self.lr <= 0:
            raise ValueError("lr must be > 0")
        if self.trunk_harmonics > self.n // 2:
            raise ValueError(f"trunk_harmonics must be <= n/2 = {self.n // 2}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "len(times) * len(deltas) * n_test * n":
                len(self.times) * len(self.deltas) * self.n_test * self.n,
            "len(times) * len(deltas) * n ** 2": len(self.times) * len(self.deltas) * self.n ** 2,
            "batch_size * max(branch_width, trunk_width) * n":
                self.batch_size * max(self.branch_width, self.trunk_width) * self.n,
        }


PRESETS = {
    "smoke": Config(n=32, times=(0.02,), deltas=(1e-2, 1e-1), p_backward=16, p_forward=(6,),
                    trunk_harmonics=8, branch_width=32, trunk_width=32, steps=200,
                    forward_steps=200, batch_size=32, n_test=500),
    "quick": Config(),
    "full": Config(n=128, times=(0.002, 0.005, 0.02), deltas=(1e-4, 1e-3, 1e-2, 1e-1),
                   p_backward=96, p_forward=(4, 8, 12, 16, 24), trunk_harmonics=32,
                   branch_width=256, branch_depth=3, trunk_width=128, trunk_depth=3,
                   steps=50000, forward_steps=20000, batch_size=512, n_test=20000),
}


# --- problem ----------------------------------------------------------------------------------


def prior(cfg: Config):
    """The input field and its eigenvalue per rFFT bin (heat.py's ``mu``)."""
    field = functions.PeriodicPowerLawField(n=cfg.n, alpha=cfg.alpha, k0=cfg.k0)
    return field, np.asarray(field.spectrum())[: cfg.n // 2 + 1]


def trunk_points(cfg: Config) -> np.ndarray:
    """The query points as the trunk reads them: harmonics of the grid points, ``[N, 2J]``."""
    x = heat.periodic_grid(cfg.n)
    j = np.arange(1, cfg.trunk_harmonics + 1)
    z = 2 * np.pi * x[:, None] * j[None, :]
    return np.concatenate([np.sin(z), np.cos(z)], axis=1)


@functools.partial(jax.jit, static_argnames=("field", "cells", "nu", "n_funcs", "dtype"))
def make_pairs(field, cells, nu, u_key, noise_key, n_funcs, dtype=jnp.float32):
    """Inputs and targets ``[C, n_funcs, N]`` for every cell ``(kind, t, delta)``.

    ``kind == "backward"``: input :math:`f=e^{t\\nu\\Delta}u+\\eta`, target :math:`u`;
    ``kind == "forward"``: input :math:`u`, target :math:`e^{t\\nu\\Delta}u`. The cells share the
    prior draws; each has its own noise.
    """
    u = field.sample(n_funcs, key=u_key, dtype=dtype)
    ins, outs = [], []
    for i, (kind, t, delta) in enumerate(cells):
        if kind == "backward":
            ins.append(heat.observe(u, t, nu, delta, key=jax.random.fold_in(noise_key, i)))
            outs.append(u)
        else:
            ins.append(u)
            outs.append(heat.periodic(u, t, nu))
    return jnp.stack(ins), jnp.stack(outs)


# --- training ---------------------------------------------------------------------------------


def _make_net(cfg: Config, p: int):
    def make(k):
        return DeepONet(cfg.n, 2 * cfg.trunk_harmonics, p, branch_width=cfg.branch_width,
                        branch_depth=cfg.branch_depth, trunk_width=cfg.trunk_width,
                        trunk_depth=cfg.trunk_depth, activation=cfg.activation,
                        kernel_init="glorot_normal", key=k)
    return make


def whitening(inputs) -> np.ndarray:
    r"""ZCA whitening matrices ``[C, N, N]`` of sample inputs ``[C, n, N]``:
    :math:`W=V\Lambda^{-1/2}V^\top` from the empirical (uncentred) second moment, eigenvalues
    floored at :math:`10^{-6}\lambda_{\max}` (the zero-mean mode k = 0 has none)."""
    x = np.asarray(inputs, np.float64)
    out = []
    for xc in x:
        lam, v = np.linalg.eigh(xc.T @ xc / xc.shape[0])
        lam = np.maximum(lam, 1e-6 * lam.max())
        out.append((v / np.sqrt(lam)) @ v.T)
    return np.stack(out)


def _ensemble(make, members: int, rng: np.random.Generator):
    """``members`` independent DeepONets as an :class:`~opdiff.nets.Ensemble` with stacked
    parameters, initialised in NumPy as DeepONet's ``glorot_normal`` does (truncated normal,
    zero biases): XLA takes 5-10 s to compile JAX's threefry initialiser on a 2-core CPU."""
    abstract = nnx.eval_shape(lambda: make(jax.random.key(0)))
    graphdef, params, rest = nnx.split(abstract, nnx.Param, ...)
    if jax.tree.leaves(rest):
        raise ValueError("expected a DeepONet without non-trainable state")

    def draw(leaf):
        shape = (members, *leaf.shape)
        if len(leaf.shape) != 2:
            return jnp.zeros(shape, leaf.dtype)
        z = rng.standard_normal(shape)
        while np.any(bad := np.abs(z) > 2.0):  # truncate at 2 sd by resampling
            z[bad] = rng.standard_normal(int(bad.sum()))
        std = np.sqrt(2.0 / sum(leaf.shape)) / 0.87962566103423978  # std of N(0,1) on [-2, 2]
        return jnp.asarray(z * std, leaf.dtype)

    return Ensemble(graphdef, rest), jax.tree.map(draw, params)


def train_cells(cfg: Config, field, cells, ps, steps: int, key):
    """Train one DeepONet per cell (a vmapped stack), cell ``c`` with ``ps[c]`` trunk functions.

    The stack has ``max(ps)`` trunk outputs; cell ``c`` switches off (zeroes) all but its first
    ``ps[c]``, which is exactly a DeepONet with ``ps[c]`` trunk functions (the switched-off
    weights get zero gradients and never move). Returns ``predict(f [C, n, N]) -> [C, n, N]``,
    the per-step training loss (summed over cells) and the training wall time.
    """
    init_key, train_key, white_key = jax.random.split(key, 3)
    seed = np.asarray(jax.random.key_data(init_key)).ravel().tolist()
    ens, params = _ensemble(_make_net(cfg, max(ps)), len(cells), np.random.default_rng(seed))
    mask = jnp.asarray(np.arange(max(ps))[None, :] < np.asarray(ps)[:, None], jnp.float32)
    y = jnp.asarray(trunk_points(cfg), jnp.float32)
    if cfg.whiten:
        k1, k2 = jax.random.split(white_key)
        # n_test samples, as for the test set: one compilation of make_pairs serves both
        w = jnp.asarray(whitening(make_pairs(field, cells, cfg.nu, k1, k2, cfg.n_test)[0]),
                        jnp.float32)
    else:
        w = jnp.broadcast_to(jnp.eye(cfg.n, dtype=jnp.float32), (len(cells), cfg.n, cfg.n))

    def apply(params, f):
        def one(prm, rest, wc, mc, fc):
            # DeepONet.aligned with the trunk outputs masked: sum_i b_i(W f) t_i(y) m_i + b0
            net = nnx.merge(ens.graphdef, prm, rest)
            b = jax.vmap(net.branch_coefficients)(fc @ wc)[:, 0]  # [n, p]
            t = jax.vmap(net.basis)(y)[:, 0] * mc  # [N, p]
            return b @ t.T + net.bias[...][0]
        return jax.vmap(one)(params, ens.rest, w, mask, f)

    def data(k):
        u_key, noise_key = jax.random.split(k)
        return make_pairs(field, cells, cfg.nu, u_key, noise_key, cfg.batch_size)

    def loss(params, batch, k):
        f, target = batch
        per_cell = jnp.mean((apply(params, f) - target) ** 2, axis=(1, 2))
        return jnp.sum(per_cell)

    schedule = optax.cosine_decay_schedule(cfg.lr, steps, alpha=1e-2)
    t0 = time.perf_counter()
    result = opdiff.fit(loss, params, optax.adam(schedule), data, steps=steps, key=train_key,
                        steps_per_call=min(cfg.steps_per_call, steps), progress=False)
    wall = time.perf_counter() - t0
    trained, apply_jit = result.params, jax.jit(apply)  # params as arguments, not constants
    return (lambda f: apply_jit(trained, f)), result.losses, wall


def evaluate(pred, target) -> dict:
    """Per-function :math:`L^2(0,1)` squared errors (grid means) -> MSE and its standard error."""
    err = np.mean((np.asarray(pred, np.float64) - np.asarray(target, np.float64)) ** 2, axis=-1)
    return dict(per_function=err, mse=float(err.mean()),
                se=float(err.std(ddof=1) / np.sqrt(err.size)))


# --- oracles ----------------------------------------------------------------------------------


def backward_oracles(cfg: Config, mu, t: float, delta: float) -> dict:
    """Exact MSEs of the Wiener filter, the best spectral cutoff and the naive inverse, and the
    floor of a DeepONet with ``p_backward`` trunk functions."""
    n = cfg.n
    cutoffs = np.arange(n // 2 + 1)
    cut = heat.cutoff_mse(n, mu, t, cfg.nu, delta, cutoffs)
    wiener = heat.wiener_mse(n, mu, t, cfg.nu, delta)
    a = heat.periodic_multiplier(heat.wavenumbers(n), t, cfg.nu)
    post = mu**2 * a**2 / (a**2 * mu + delta**2)  # posterior-mean variance per coordinate
    post = np.repeat(post, heat.multiplicities(n).astype(int))
    tail = deeponet_theory.pca_floor(post, min(cfg.p_backward, post.size)) ** 2
    return dict(wiener=wiener, best_cutoff=float(cut.min()), best_k=int(np.argmin(cut)),
                naive=heat.naive_mse(n, t, cfg.nu, delta), floor_p=wiener + tail)


def forward_spectrum(cfg: Config, mu, t: float) -> np.ndarray:
    r"""Eigenvalues of the covariance of :math:`e^{t\nu\Delta}u`, one per real coordinate:
    :math:`\mu_ka_k^2` repeated by multiplicity (descending)."""
    a = heat.periodic_multiplier(heat.wavenumbers(cfg.n), t, cfg.nu)
    lam = np.repeat(mu * a**2, heat.multiplicities(cfg.n).astype(int))
    return np.sort(lam)[::-1]


def _lower_check(rep: Report, claim: str, mse: float, se: float, bound: float):
    """``mse >= bound - 3 SE`` as :func:`opdiff.theory.checks.lower_bound` with
    ``rtol = 3 SE / bound`` (capped below 1)."""
    rtol = min(3.0 * se / bound, 0.999)
    rep.check(**checks.lower_bound(claim, mse, bound, rtol=rtol))
    return rtol


# --- the experiment ---------------------------------------------------------------------------


def run(cfg: Config, out_dir: Path) -> Report:
    key = jax.random.key(cfg.seed)
    rep = Report()
    field, mu = prior(cfg)
    test_u_key, test_noise_key = jax.random.split(jax.random.fold_in(key, 1))

    # 1. backward: every (t, delta) cell, one stacked training run
    cells = tuple(("backward", t, d) for t in cfg.times for d in cfg.deltas)
    predict, losses, wall_b = train_cells(cfg, field, cells, [cfg.p_backward] * len(cells),
                                          cfg.steps, jax.random.fold_in(key, 2))
    f_test, u_test = make_pairs(field, cells, cfg.nu, test_u_key, test_noise_key, cfg.n_test)
    pred = np.asarray(predict(f_test), np.float64)
    f_test, u_test = np.asarray(f_test, np.float64), np.asarray(u_test, np.float64)
    back = {}
    for i, (_, t, d) in enumerate(cells):
        o = backward_oracles(cfg, mu, t, d)
        ev = evaluate(pred[i], u_test[i])
        wiener_est = np.asarray(heat.wiener_inverse(f_test[i], t, cfg.nu, d, mu), np.float64)
        ev_w = evaluate(wiener_est, u_test[i])
        diff = ev["per_function"] - ev_w["per_function"]
        back[(t, d)] = dict(**o, mse=ev["mse"], se=ev["se"], mc_wiener=ev_w["mse"],
                            excess=float(diff.mean()),
                            excess_se=float(diff.std(ddof=1) / np.sqrt(diff.size)),
                            example=dict(u=u_test[i, 0], f=f_test[i, 0], learned=pred[i, 0],
                                         wiener=wiener_est[0]))
    rep.metrics["backward_train_s"] = wall_b
    rep.metrics["backward_final_loss"] = float(np.mean(losses[-max(1, len(losses) // 20):]))
    for (t, d), b in back.items():
        tag = f"t={t:g},delta={d:g}"
        rep.metrics[f"backward_mse[{tag}]"] = b["mse"]
        rep.metrics[f"backward_mse_se[{tag}]"] = b["se"]
        rep.metrics[f"backward_ratio_wiener[{tag}]"] = b["mse"] / b["wiener"]
        rep.metrics[f"backward_ratio_best_cutoff[{tag}]"] = b["mse"] / b["best_cutoff"]
        rep.metrics[f"backward_mc_wiener[{tag}]"] = b["mc_wiener"]
        rep.metrics[f"backward_excess_over_mc_wiener[{tag}]"] = b["excess"]
        rep.metrics[f"backward_excess_se[{tag}]"] = b["excess_se"]
        rep.bounds[f"wiener_mse[{tag}]"] = b["wiener"]
        rep.bounds[f"best_cutoff_mse[{tag}]"] = b["best_cutoff"]
        rep.bounds[f"best_cutoff_K[{tag}]"] = b["best_k"]
        rep.bounds[f"naive_mse[{tag}]"] = b["naive"]
        rep.bounds[f"deeponet_p_floor[{tag}]"] = b["floor_p"]
        _lower_check(rep, f"backward {tag}: learned test MSE >= Wiener MMSE - 3 SE "
                          f"(SE = {b['se']:.2g}, {cfg.n_test} test functions)",
                     b["mse"], b["se"], b["wiener"])

    # 2. forward: every (t, p) cell, one stacked training run
    fcells = tuple(("forward", t, 0.0) for p in cfg.p_forward for t in cfg.times)
    fps = [p for p in cfg.p_forward for _ in cfg.times]
    predict_f, _, wall_f = train_cells(cfg, field, fcells, fps, cfg.forward_steps,
                                       jax.random.fold_in(key, 3))
    fin, fout = make_pairs(field, fcells, cfg.nu, test_u_key, test_noise_key, cfg.n_test)
    fpred = np.asarray(predict_f(fin), np.float64)
    fin, fout = np.asarray(fin, np.float64), np.asarray(fout, np.float64)
    fwd = {}
    for i, ((_, t, _), p) in enumerate(zip(fcells, fps)):
        ev = evaluate(fpred[i], fout[i])
        lam = forward_spectrum(cfg, mu, t)
        fwd[(t, p)] = dict(mse=ev["mse"], se=ev["se"], floor=deeponet_theory.pca_floor(lam, p),
                           energy=float(lam.sum()),
                           example=dict(u=fin[i, 0], out=fout[i, 0], learned=fpred[i, 0]))
    rep.metrics["forward_train_s"] = wall_f
    for (t, p), fw in fwd.items():
        tag = f"t={t:g},p={p}"
        rep.metrics[f"forward_rms[{tag}]"] = np.sqrt(fw["mse"])
        rep.metrics[f"forward_relative_rms[{tag}]"] = np.sqrt(fw["mse"] / fw["energy"])
        rep.metrics[f"forward_ratio_floor[{tag}]"] = np.sqrt(fw["mse"]) / fw["floor"]
        rep.bounds[f"forward_pca_floor[{tag}]"] = fw["floor"]
        _lower_check(rep, f"forward {tag}: learned test MSE >= PCA floor^2 - 3 SE "
                          f"(floor {fw['floor']:.3g} from the exact spectrum)",
                     fw["mse"], fw["se"], fw["floor"] ** 2)

    rep.figures += mse_figure(cfg, back, out_dir)
    rep.figures += examples_figure(cfg, back, out_dir)
    rep.figures += forward_figure(cfg, mu, fwd, out_dir)
    return rep


# --- figures ----------------------------------------------------------------------------------


def mse_figure(cfg: Config, back: dict, out_dir: Path) -> list[str]:
    nt = len(cfg.times)
    fig, axes = plotting.new_figure(1, nt + 1, width=3.9, height=3.3)
    d = np.asarray(cfg.deltas, float)
    dd = np.geomspace(d.min() / 1.5, d.max() * 1.5, 60)
    for j, t in enumerate(cfg.times):
        ax = axes[0, j]
        cells = [back[(t, x)] for x in cfg.deltas]
        ax.errorbar(d, [c["mse"] for c in cells], [2 * c["se"] for c in cells], fmt="o", ms=5,
                    color="C0", label="DeepONet (test MSE ± 2 SE)", zorder=3)
        # the exact oracles are smooth in delta: draw them on a fine grid
        _, mu = prior(cfg)
        ax.plot(dd, [heat.wiener_mse(cfg.n, mu, t, cfg.nu, x) for x in dd], "-", color="C1",
                label="Wiener MMSE (exact)")
        ax.plot(dd, [float(np.min(heat.cutoff_mse(cfg.n, mu, t, cfg.nu, x,
                                                  np.arange(cfg.n // 2 + 1)))) for x in dd],
                "--", color="C2", label="best spectral cutoff (exact)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("noise level δ")
        ax.set_ylabel("MSE in L²(0,1)")
        ax.set_title(f"backward, νt = {cfg.nu * t:g}", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        naive = [c["naive"] for c in cells]
        ax.text(0.97, 0.03, f"naive inverse: MSE {min(naive):.0e}–{max(naive):.0e}\n(off scale)",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7)
        ax.legend(fontsize=6.5, loc="upper left")
    ax = axes[0, nt]
    for j, t in enumerate(cfg.times):
        cells = [back[(t, x)] for x in cfg.deltas]
        ax.plot(d, [c["mse"] / c["wiener"] for c in cells], "o-", color=f"C{j}",
                label=f"learned / Wiener, νt={cfg.nu * t:g}")
        ax.plot(d, [c["mse"] / c["best_cutoff"] for c in cells], "s--", color=f"C{j}",
                label=f"learned / best cutoff, νt={cfg.nu * t:g}", alpha=0.7)
    ax.axhline(1.0, color="k", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("noise level δ")
    ax.set_ylabel("MSE ratio")
    ax.set_title("learned MSE relative to the oracles", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6.5)
    return plotting.save(fig, out_dir / "heat_operator_mse.png")


def examples_figure(cfg: Config, back: dict, out_dir: Path) -> list[str]:
    nt, nd = len(cfg.times), len(cfg.deltas)
    fig, axes = plotting.new_figure(nt, nd, width=3.5, height=2.7)
    x = heat.periodic_grid(cfg.n)
    for i, t in enumerate(cfg.times):
        for j, d in enumerate(cfg.deltas):
            ax, ex = axes[i, j], back[(t, d)]["example"]
            ax.plot(x, ex["f"], "-", color="0.6", linewidth=0.8, label="observed f")
            ax.plot(x, ex["u"], "-", color="k", linewidth=1.6, label="true u")
            ax.plot(x, ex["wiener"], "--", color="C1", linewidth=1.2,
                    label="Wiener (posterior mean)")
            ax.plot(x, ex["learned"], "-", color="C0", linewidth=1.0, label="DeepONet")
            ax.set_title(f"νt = {cfg.nu * t:g}, δ = {d:g}", fontsize=9)
            ax.grid(alpha=0.3)
            if i == nt - 1:
                ax.set_xlabel("x")
            if i == 0 and j == 0:
                ax.legend(fontsize=6.5)
    return plotting.save(fig, out_dir / "heat_operator_examples.png")


def forward_figure(cfg: Config, mu, fwd: dict, out_dir: Path) -> list[str]:
    nt = len(cfg.times)
    fig, axes = plotting.new_figure(1, nt + 1, width=3.9, height=3.3)
    ps = np.asarray(cfg.p_forward)
    pp = np.arange(1, max(2 * ps.max(), 24) + 1)
    for j, t in enumerate(cfg.times):
        ax = axes[0, j]
        lam = forward_spectrum(cfg, mu, t)
        ax.plot(pp, deeponet_theory.pca_floor(lam, pp), "--", color="C1",
                label="PCA floor (exact spectrum)")
        rms = np.array([np.sqrt(fwd[(t, p)]["mse"]) for p in ps])
        # 2 SE of the MSE, carried to the RMS: d sqrt(m) = dm / (2 sqrt(m))
        err = np.array([fwd[(t, p)]["se"] for p in ps]) / rms
        ax.errorbar(ps, rms, err, fmt="o", ms=5, color="C0", label="DeepONet (test RMS ± 2 SE)")
        ax.set_yscale("log")
        ax.set_xlabel("trunk functions p")
        ax.set_ylabel("RMS error in L²(0,1)")
        ax.set_title(f"forward e^(tνΔ), νt = {cfg.nu * t:g}", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6.5)
    ax = axes[0, nt]
    x = heat.periodic_grid(cfg.n)
    t, p = cfg.times[-1], cfg.p_forward[-1]
    ex = fwd[(t, p)]["example"]
    ax.plot(x, ex["u"], "-", color="0.6", linewidth=0.8, label="input u")
    ax.plot(x, ex["out"], "-", color="k", linewidth=1.6, label="e^(tνΔ)u (exact)")
    ax.plot(x, ex["learned"], "--", color="C0", linewidth=1.2, label=f"DeepONet, p={p}")
    ax.set_title(f"forward example, νt = {cfg.nu * t:g}", fontsize=10)
    ax.set_xlabel("x")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5)
    return plotting.save(fig, out_dir / "heat_operator_forward.png")
