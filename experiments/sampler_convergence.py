r"""Exact sampler convergence on Gaussian fields: KL and W2 vs steps, orders, bound shapes, and
the error split.

    python -m experiments run sampler_convergence --preset smoke   # ~15 s on a 2-core CPU
    python -m experiments run sampler_convergence                  # quick, ~35 s
    python -m experiments run sampler_convergence --preset full

**Oracle.** The data is a stationary power-law field on the torus,
:math:`\lambda_k\propto(|k|^2+1)^{-\alpha/2}` (:func:`opdiff.diffusion.oracle.power_law_field`,
DFT basis, zero mean, unit pointwise variance). Every sampler with the exact (or any affine)
denoiser maps a Gaussian law to a Gaussian law coefficient by coefficient,
:math:`(m,w)\mapsto(Am+B,A^2w+E)` (:mod:`opdiff.diffusion.oracle`), so the output law after
:math:`n` steps is exact in closed form, and KL, :math:`W_2^2=\sum_k(m_k-\mu_k)^2+(\sqrt{w_k}
-\sqrt{\lambda_k})^2` and the Bhattacharyya TV bracket :math:`1-BC\le\mathrm{TV}\le
\sqrt{1-BC^2}` are sums over coefficients — no sampling, no Monte-Carlo error. The recursion is
:func:`~opdiff.diffusion.oracle.sampler_law`, compiled once per (sampler, process) with the grid
as data. Claim 0 checks it against the sampler code itself, run on 4,000 samples (8×8, VP).
A sampler that diverges (non-finite variances) is recorded with KL = inf.

1. **Sampler sweep** (VP, score_sde's :math:`\beta\in[0.1,20]`, :math:`t_{\min}=10^{-3}`,
   log-SNR grid :func:`~opdiff.diffusion.samplers.log_snr_grid`), every sampler of
   :data:`~opdiff.diffusion.samplers.SAMPLERS`, ``steps`` :math:`n`:

   * discretisation only: from the exact marginal :math:`p_T` (``init="exact"``),
     :math:`\mathrm{KL}(\hat p\,\|\,p_{t_0})` and :math:`W_2` against :math:`p_{t_0}`;
   * total: from the process's prior :math:`N(0,I)`
     (:meth:`~opdiff.diffusion.processes.Process.prior`; initialisation + discretisation), KL
     against :math:`p_{t_0}` (the early-stopping gap :math:`\mathrm{KL}(p_{t_0}\|q)` does not
     depend on the sampler and is reported separately).

   ``pc`` is score_sde's predictor–corrector with the ``ancestral`` predictor and one Langevin
   step :math:`z+\epsilon\hat s+\sqrt{2\epsilon}\xi` at each time, with the **fixed rule**
   :math:`\epsilon_i=` ``pc_ratio`` :math:`\cdot(s_{t_i}^2-(a_{t_i}/a_{t_{i-1}})^2s_{t_{i-1}}^2)`
   — ``pc_ratio`` times the variance of the forward transition over the step, so the corrector
   step shrinks like :math:`h` and PC is consistent. score_sde's own rule
   :math:`\epsilon=2(r\|\xi\|/\|\hat s\|)^2` (:math:`r=0.16`, norms by their RMS) does not
   shrink with :math:`h`; it is run too (``pc_snr`` in the metrics) and converges to a biased
   law.

   *Claims.* (i) Fitted order :math:`p` of :math:`W_2\approx Ch^p`, :math:`h=1/n`, least
   squares over the ``order_points`` finest :math:`n`: :math:`p=2\pm` ``order_tol`` for
   ``pf_heun`` and ``dpm_solver_2``, :math:`p=1\pm` ``order_tol`` for every other sampler
   (one check each; whichever fails is reported failing). (ii) The best sampler reaches
   :math:`\mathrm{KL}/d\le10^{-3}` (total, from the prior) within 20 NFE (NFE from
   :func:`~opdiff.diffusion.samplers.nfe`; the minimum over the ``steps`` grid is the measured
   value, a log-log interpolation of the crossing is in the metrics).

2. **Bounds** on Chen et al.'s setting: OU :math:`dX=-X\,dt+\sqrt2\,dB`
   (:func:`~opdiff.diffusion.processes.ou`), exact score, the exponential integrator
   (``method="exponential"``; for OU :math:`y\leftarrow e^hy+2(e^h-1)s+\sqrt{e^{2h}-1}\,z`), from
   :math:`\gamma^d=N(0,I)` (what :meth:`Process.prior` gives for OU). Both bounds are for
   :math:`\mathrm{KL}(q\,\|\,\hat p)` (data first), which is what is measured here. Gaussian
   plug-ins: :math:`L=\max(1,1/\lambda_{\min})`, :math:`m_2^2=\sum\lambda+\|\mu\|^2`,
   :math:`\mathrm{KL}(q\|\gamma^d)`.

   * Chen et al. (Thm 9 + initialisation): shape :math:`(L^2dh+L^2m_2^2h^2)T+\mathrm{KL}(q\|
     \gamma^d)e^{-2T}` (:func:`~opdiff.theory.diffusion.chen_kl_bound` +
     :func:`~opdiff.theory.diffusion.kl_prior_term`), uniform steps :math:`h=(T-t_0)/n`,
     :math:`t_0=` ``chen_t_min`` (:math:`10^{-6}`: Chen's algorithm runs to 0; its scores are
     evaluated at the start of each step, and :math:`L<\infty` here); the TV shape
     :func:`~opdiff.theory.diffusion.chen_tv_bound` against the upper end of the exact TV
     bracket; a sweep in :math:`T` at fixed :math:`h` too.
   * Benton et al. (Thm 1): shape :math:`\kappa^2dN+\kappa dT+de^{-2T}` (exact score,
     :math:`\varepsilon^2=0`) on their schedule — steps :math:`\gamma\le\kappa\min(1,t)` in
     forward time: geometric on :math:`[\delta,1]` (ratio :math:`1+\kappa`), uniform on
     :math:`[1,T]` (step :math:`\kappa`), :math:`\kappa` solved from :math:`N`, then
     :math:`\kappa=\max_i(t_i-t_{i-1})/\min(1,t_{i-1})` measured on the grid built. KL is
     :math:`\mathrm{KL}(q_\delta\|\hat p)`, :math:`\delta=` ``benton_delta``. (Benton et al.
     assume :math:`\mathrm{Cov}(q)=I`; the power-law field is far from it — their App. C
     covers general covariances with other constants.)

   The constants are unpublished, so each shape is **fitted at one point** — the middle grid
   point (``fit_constant``) of the admissible range (for Chen: :math:`h\le1/L`, their
   theorem's condition; all points otherwise). For Chen et al. the initialisation term has no
   unknown constant (:math:`\mathrm{KL}(q_T\|\gamma^d)\le\mathrm{KL}(q\|\gamma^d)e^{-2T}`,
   then the chain rule; Pinsker for TV), so the bound is that term plus :math:`C\times` the
   discretisation shape, :math:`C` fitted to the excess over it; Benton's shape is one
   :math:`\lesssim` and gets one constant. *Claim per bound*: the fitted bound
   :math:`\ge` the exact value at every other admissible grid point. A shape with the wrong
   rate fails this whichever way the mismatch goes; the smallest constant that would hold
   everywhere (max of exact/shape) and the orders are in the metrics: measured order of the
   exact KL in :math:`h` (resp. :math:`\kappa`) vs the shape's order (1 for the dominant
   :math:`L^2dh` and :math:`\kappa dT` terms).

   *Dimension*: KL at fixed :math:`n` (``dim_steps``) and :math:`T` for the field at
   ``dim_sizes``² pixels. Claim: the fitted exponent of KL vs :math:`d` is :math:`\le1.1`
   (the bounds are linear in :math:`d` at fixed :math:`L`). The field's :math:`L=1/\lambda_
   {\min}` grows with the resolution, so the exponent of KL vs :math:`L^2d` (Chen's factor) is
   reported beside it.

3. **Error split** (:func:`~opdiff.diffusion.oracle.error_split`) at a fixed budget of
   ``split_nfe`` evaluations for ``split_samplers``, with a score error: the model is the
   exact denoiser of the field with variances :math:`\lambda(1+\delta)`, :math:`\delta=`
   ``score_delta``. Reported: the total, discretisation, initialisation, score and
   early-stopping KLs (all vs :math:`p_{t_0}` but the last, which is KL(:math:`p_{t_0}`‖data)), the score error :math:`E_{p_t}\|\hat s-\nabla\log p_t\|^2`
   (:func:`~opdiff.diffusion.oracle.score_error`) integrated over :math:`t`, and the Girsanov
   value :math:`G=\tfrac12\int_{t_0}^T\beta(t)\,E_{p_t}\|\hat s-\nabla\log p_t\|^2dt` — the
   path KL (Girsanov) between the *continuous* reverse SDEs with the true and the model score
   started from the same :math:`p_T`, which bounds :math:`\mathrm{KL}(p_{t_0}\|\hat p_{t_0})`
   (data first: the expectation is under the true path). The "score" part of the split is a
   difference of two KLs in the other direction, so it is reported, not compared (it is
   negative when the inflated model variance offsets a sampler's variance deficit). *Claim*
   per stochastic sampler: :math:`\mathrm{KL}(p_{t_0}\|\hat p)` with the model's score from
   the exact :math:`p_T` after ``girsanov_steps[-1]`` log-SNR steps is :math:`\le G` (true in
   the limit :math:`n\to\infty`; at finite :math:`n` the discretisation error adds, so it can
   fail).

**Figures.** ``sampler_convergence.png``: KL/d vs NFE (log-log, one line per sampler, from the
exact marginal), :math:`W_2` vs :math:`h` with the fitted orders, the minimal NFE to
:math:`\mathrm{KL}/d\le10^{-3}` from the prior. ``sampler_convergence_bounds.png``: Chen KL and
TV vs :math:`h`, KL vs :math:`T`, Benton KL vs :math:`N`, KL vs :math:`d`, and exact/shape ratios.
``sampler_convergence_split.png``: grouped bars of the split, the score error vs :math:`t`,
:math:`\mathrm{KL}(p_{t_0}\|\hat p)` with the model's score vs :math:`n` against :math:`G`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np

from opdiff import plotting
from opdiff.diffusion import oracle, processes, samplers
from opdiff.diffusion.bounds import fit_and_test, loglog_crossing, order
from opdiff.diffusion.laws import kl, tv_bracket, w2_sq
from opdiff.theory import diffusion as th

from experiments._config import AboveOne, AtLeastTwo, Count, OpenUnit, Positive, Range, Seed
from experiments._report import Report

NAME = "sampler_convergence"
DESCRIPTION = ("Exact KL/W2 vs steps for every sampler on Gaussian fields: orders, Chen and "
               "Benton bound shapes, dimension, and the init/discretisation/score split")
DTYPE = "float64"

SECOND_ORDER = ("pf_heun", "dpm_solver_2")
GAMMA = (0.0, 1.0)  # Chen's and Benton's initial law N(0, I) (also what Process.prior gives OU)
KL_PER_DIM_TARGET = 1e-3




# ----------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0  # unused: everything is exact (kept for the house pattern)
    size: Annotated[int, Range(lo=4)] = 64  # field side: d = size**2
    alpha: float = 2.5
    samplers: tuple[str, ...] = samplers.SAMPLERS
    steps: tuple[Count, ...] = (5, 10, 20, 40, 80, 160, 320, 640)
    order_points: AtLeastTwo = 4
    order_tol: Positive = 0.3
    pc_ratio: Positive = 1.0
    max_nfe_target: Count = 20
    # (2) bounds
    chen_T: Positive = 8.0
    chen_t_min: Positive = 1e-6
    chen_steps: tuple[Count, ...] = (20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240)
    tsweep_h: Positive = 0.01
    tsweep_T: tuple[Positive, ...] = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
    benton_T: AboveOne = 4.0
    benton_delta: OpenUnit = 1e-3
    benton_steps: tuple[Count, ...] = (20, 40, 80, 160, 320, 640, 1280)
    dim_sizes: tuple[Annotated[int, Range(lo=4)], ...] = (8, 16, 32, 64)
    dim_steps: Count = 640
    dim_exponent_max: Positive = 1.1
    # (3) split
    split_samplers: tuple[str, ...] = ("euler_maruyama", "ancestral", "ddim", "pf_heun",
                                       "dpm_solver_2")
    split_nfe: AtLeastTwo = 20
    score_delta: Positive = 0.1
    girsanov_steps: tuple[Count, ...] = (10, 40, 160, 640)
    n_score_t: Annotated[int, Range(lo=10)] = 2000

    def __post_init__(self):
        if self.size < 4:
            raise ValueError(f"size must be >= 4, got {self.size}")
        if not math.isfinite(self.alpha):
            raise ValueError(f"alpha must be finite, got {self.alpha}")
        for name in ("samplers", "split_samplers"):
            bad = [s for s in getattr(self, name) if s not in samplers.SAMPLERS]
            if bad or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty subset of {samplers.SAMPLERS}, "
                                 f"got {getattr(self, name)}")
        for name in ("steps", "chen_steps", "benton_steps", "dim_sizes", "tsweep_T",
                     "girsanov_steps"):
            v = getattr(self, name)
            if len(v) < 2 or list(v) != sorted(set(v)) or min(v) <= 0:
                raise ValueError(f"{name} must be >= 2 strictly increasing positive values, "
                                 f"got {v}")
        if not 2 <= self.order_points <= len(self.steps):
            raise ValueError(f"order_points must be in [2, len(steps)], got {self.order_points}")
        if min(self.dim_sizes) < 4:
            raise ValueError(f"dim_sizes must be >= 4, got {self.dim_sizes}")
        for name in ("order_tol", "pc_ratio", "chen_T", "chen_t_min", "tsweep_h",
                     "benton_delta", "score_delta", "dim_exponent_max"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not (self.chen_t_min < min(self.tsweep_T) and self.chen_t_min < self.chen_T):
            raise ValueError("chen_t_min must be below chen_T and every tsweep_T")
        if not self.benton_T > 1 or not 0 < self.benton_delta < 1:
            raise ValueError(f"need benton_T > 1 and 0 < benton_delta < 1, got "
                             f"{self.benton_T}, {self.benton_delta}")
        if self.tsweep_h >= min(self.tsweep_T):
            raise ValueError(f"tsweep_h must be below every tsweep_T, got {self.tsweep_h}")
        if self.max_nfe_target < 1 or self.split_nfe < 2 or self.dim_steps < 1:
            raise ValueError("max_nfe_target, dim_steps must be >= 1 and split_nfe >= 2")
        if self.n_score_t < 10:
            raise ValueError(f"n_score_t must be >= 10, got {self.n_score_t}")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "n_score_t * size ** 2": self.n_score_t * self.size ** 2,
            "max(size, max(dim_sizes)) ** 2 * len(samplers)":
                max(self.size, max(self.dim_sizes)) ** 2 * len(self.samplers),
            "max(chen_steps + benton_steps + girsanov_steps + steps)":
                max(self.chen_steps + self.benton_steps + self.girsanov_steps + self.steps),
        }


PRESETS = {
    "smoke": Config(size=16, samplers=("ancestral", "pf_heun", "pc"),
                    steps=(5, 10, 20, 40), order_points=3, chen_steps=(40, 160, 640, 2560),
                    tsweep_T=(0.5, 8.0), benton_steps=(20, 80, 320), dim_sizes=(8, 16),
                    dim_steps=160, split_samplers=("ancestral",), n_score_t=200,
                    girsanov_steps=(10, 40)),
    "quick": Config(),
    "full": Config(size=128, steps=(5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560),
                   chen_steps=(20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 20480),
                   girsanov_steps=(10, 40, 160, 640, 2560),
                   dim_sizes=(8, 16, 32, 64, 128), dim_steps=2560,
                   benton_steps=(20, 40, 80, 160, 320, 640, 1280, 2560, 5120)),
}


# ----------------------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=None)
def _ou(size: int, T: float, t_min: float):
    """One OU process per (size, T, t_min): processes are static arguments of the compiled law,
    so reusing the object reuses the compile."""
    return processes.ou((size, size), basis="dft", T=T, t_min=t_min)


def _claimed_order(method: str) -> int:
    return 2 if method in SECOND_ORDER else 1


# ----------------------------------------------------------------------------- the parts


def sweep_part(cfg: Config, field, vp) -> dict:
    d = field.size
    t0 = vp.t_min
    m0, v0 = (np.asarray(a) for a in field.marginal(vp, t0))
    out = {}
    runs = [(meth, "fixed") for meth in cfg.samplers]
    if "pc" in cfg.samplers:
        runs.append(("pc", "snr"))
    for meth, rule in runs:
        label = meth if rule == "fixed" else "pc_snr"
        kl_d, w2, kl_tot, nfes = [], [], [], []
        for n in cfg.steps:
            ts = samplers.log_snr_grid(vp, n)
            kw = {}
            if meth == "pc":
                kw["corrector_eps"] = samplers.pc_corrector_eps(vp, ts, cfg.pc_ratio) \
                    if rule == "fixed" else None
            me, we = oracle.sampler_law(meth, vp, field, ts, init="exact", **kw)
            mp, wp = oracle.sampler_law(meth, vp, field, ts, init="prior", **kw)
            kl_d.append(kl(me, we, m0, v0) / d)
            w2.append(math.sqrt(w2_sq(me, we, m0, v0)))
            kl_tot.append(kl(mp, wp, m0, v0) / d)
            nfes.append(samplers.nfe(meth, n))
        out[label] = dict(nfe=np.array(nfes), kl_per_dim=np.array(kl_d), w2=np.array(w2),
                          kl_total_per_dim=np.array(kl_tot))
    return out


def bounds_part(cfg: Config, field) -> dict:
    d = field.size
    lam, mu = field.var, field.mean
    L = th.gaussian_lipschitz(lam)
    m2 = th.gaussian_m2(mu, lam)
    klp = th.kl_to_standard_normal(mu, lam)
    res = dict(L=L, m2=m2, kl_prior=klp)

    # Chen: h sweep at fixed T, uniform steps, KL(q || p_hat) from N(0, I).
    ou = _ou(field.shape[0], cfg.chen_T, cfg.chen_t_min)
    hs, kl_qp, kl_pq, kl_disc, tv_lo, tv_hi = [], [], [], [], [], []
    for n in cfg.chen_steps:
        ts = samplers.uniform_grid(ou, n)
        hs.append((cfg.chen_T - cfg.chen_t_min) / n)
        m, w = oracle.sampler_law("exponential", ou, field, ts, init=GAMMA)
        kl_qp.append(kl(mu, lam, m, w))
        kl_pq.append(kl(m, w, mu, lam))
        lo, hi = tv_bracket(m, w, mu, lam)
        tv_lo.append(lo)
        tv_hi.append(hi)
        me, we = oracle.sampler_law("exponential", ou, field, ts, init="exact")
        mt, vt = (np.asarray(a) for a in field.marginal(ou, ts[0]))
        kl_disc.append(kl(mt, vt, me, we))
    hs = np.array(hs)
    shape_kl = np.asarray(th.chen_kl_bound(L=L, d=d, m2=m2, h=hs, T=cfg.chen_T, eps_score=0.0))
    shape_tv = np.asarray(th.chen_tv_bound(kl_prior=0.0, L=L, d=d, m2=m2, h=hs, T=cfg.chen_T,
                                           eps_score=0.0))
    prior_kl = th.kl_prior_term(klp, cfg.chen_T)
    prior_tv = th.pinsker(prior_kl)
    adm = hs <= 1 / L
    res["chen"] = dict(h=hs, admissible=adm, kl=np.array(kl_qp), kl_out_vs_data=np.array(kl_pq),
                       kl_disc=np.array(kl_disc), tv_lower=np.array(tv_lo),
                       tv_upper=np.array(tv_hi), shape_kl=shape_kl, shape_tv=shape_tv,
                       prior_kl=prior_kl, prior_tv=prior_tv,
                       fit_kl=fit_and_test(shape_kl, kl_qp, adm, prior_kl),
                       fit_tv=fit_and_test(shape_tv, tv_hi, adm & (np.array(tv_hi) < 1),
                                            prior_tv),
                       order_kl=order(hs, kl_qp, adm), order_kl_disc=order(hs, kl_disc, adm),
                       order_shape=order(hs, shape_kl, adm))

    # Chen: T sweep at fixed h.
    Ts, kls, shapes, priors = [], [], [], []
    for T in cfg.tsweep_T:
        n = max(1, round((T - cfg.chen_t_min) / cfg.tsweep_h))
        p = _ou(field.shape[0], T, cfg.chen_t_min)
        m, w = oracle.sampler_law("exponential", p, field, samplers.uniform_grid(p, n), init=GAMMA)
        h = (T - cfg.chen_t_min) / n
        Ts.append(T)
        kls.append(kl(mu, lam, m, w))
        shapes.append(float(th.chen_kl_bound(L=L, d=d, m2=m2, h=h, T=T, eps_score=0.0)))
        priors.append(th.kl_prior_term(klp, T))
    res["chen_T"] = dict(T=np.array(Ts), kl=np.array(kls), shape_kl=np.array(shapes),
                         prior_kl=np.array(priors),
                         fit=fit_and_test(shapes, kls, np.ones(len(Ts), bool), priors))

    # Benton: their schedule, KL(q_delta || p_hat).
    ou_b = _ou(field.shape[0], cfg.benton_T, cfg.benton_delta)
    md, vd = (np.asarray(a) for a in field.marginal(ou_b, cfg.benton_delta))
    Ns, kappas, kls, klu = [], [], [], []
    for N in cfg.benton_steps:
        grid, kappa = samplers.benton_grid(cfg.benton_T, cfg.benton_delta, N)
        m, w = oracle.sampler_law("exponential", ou_b, field, grid, init=GAMMA)
        Ns.append(N)
        kappas.append(kappa)
        kls.append(kl(md, vd, m, w))
        mu_, wu = oracle.sampler_law("exponential", ou_b, field, samplers.uniform_grid(ou_b, N),
                            init=GAMMA)
        klu.append(kl(md, vd, mu_, wu))
    kappas = np.array(kappas)
    shape_b = np.asarray(th.benton_kl_bound(eps_score2=0.0, kappa=kappas, d=d, N=np.array(Ns),
                                            T=cfg.benton_T))
    res["benton"] = dict(N=np.array(Ns), kappa=kappas, kl=np.array(kls), kl_uniform=np.array(klu),
                         shape_kl=shape_b, fit=fit_and_test(shape_b, kls, np.ones(len(Ns), bool)),
                         order_kappa=order(kappas, kls), order_shape=order(kappas, shape_b))

    # Dimension.
    ds, kls, l2d = [], [], []
    for size in cfg.dim_sizes:
        f = oracle.power_law_field((size, size), "dft", alpha=cfg.alpha)
        p = _ou(size, cfg.chen_T, cfg.chen_t_min)
        m, w = oracle.sampler_law("exponential", p, f, samplers.uniform_grid(p, cfg.dim_steps),
                         init=GAMMA)
        ds.append(f.size)
        kls.append(kl(f.mean, f.var, m, w))
        l2d.append(th.gaussian_lipschitz(f.var) ** 2 * f.size)
    res["dimension"] = dict(d=np.array(ds), kl=np.array(kls), L2d=np.array(l2d),
                            exponent_d=order(ds, kls), exponent_L2d=order(l2d, kls))
    return res


def split_part(cfg: Config, field, vp) -> dict:
    model = oracle.GaussianField(field.shape, field.basis, field.mean,
                                 field.var * (1 + cfg.score_delta))
    t = np.geomspace(vp.t_min, vp.T, cfg.n_score_t)
    err = np.asarray(jax.jit(jax.vmap(
        lambda s: oracle.score_error(field, model, vp, s)))(jnp.asarray(t)))
    beta = np.asarray(jax.vmap(lambda s: jnp.mean(vp.diffusion2(s)))(jnp.asarray(t)))
    integral = float(np.trapezoid(err, t))
    girsanov = float(0.5 * np.trapezoid(beta * err, t))
    out = dict(t=t, score_error=err, score_error_integral=integral, girsanov=girsanov,
               samplers={})
    m0, v0 = (np.asarray(a) for a in field.marginal(vp, vp.t_min))
    out["girsanov_kl"] = {}
    for meth in [m for m in cfg.split_samplers if m in samplers.STOCHASTIC]:
        vals = []
        for n in cfg.girsanov_steps:
            mm, ww = oracle.sampler_law(meth, vp, field, samplers.log_snr_grid(vp, n), model=model,
                               init="exact")
            vals.append(kl(m0, v0, mm, ww))
        out["girsanov_kl"][meth] = np.array(vals)
    for meth in cfg.split_samplers:
        n = max(1, cfg.split_nfe // samplers.nfe(meth, 1))
        ts = samplers.log_snr_grid(vp, n)
        parts = oracle.error_split(meth, vp, field, ts, model=model)
        parts["n_steps"] = n
        out["samplers"][meth] = parts
    return out


# ----------------------------------------------------------------------------- run


def run(cfg: Config, out_dir: Path) -> Report:
    rep = Report()
    shape = (cfg.size, cfg.size)
    field = oracle.power_law_field(shape, "dft", alpha=cfg.alpha)
    vp = processes.vp(shape, basis="dft")
    d = field.size

    # 0. the oracle's law against the sampler code run on samples (8x8, independent paths)
    f8 = oracle.power_law_field((8, 8), "dft", alpha=cfg.alpha)
    v8 = processes.vp(f8.shape, basis="dft")
    for meth in ("ancestral", "dpm_solver_2"):
        zmax, vdev, vtol = oracle.monte_carlo_agreement(meth, v8, f8, samplers.log_snr_grid(v8, 10),
                                                 seed=cfg.seed)
        rep.check(f"{meth}: samples from samplers.sample (8x8, 4000 draws, 10 steps) match the "
                  "oracle law: max |z| of the means <= 5 and max |var ratio - 1| <= 6 sqrt(2/n)",
                  [zmax, vdev], [5.0, vtol], zmax <= 5.0 and vdev <= vtol)

    # 1. sweep
    sw = sweep_part(cfg, field, vp)
    m0, v0 = (np.asarray(a) for a in field.marginal(vp, vp.t_min))
    early = kl(m0, v0, field.mean, field.var)
    h = 1.0 / np.asarray(cfg.steps, float)
    tail = np.arange(len(cfg.steps) - cfg.order_points, len(cfg.steps))
    orders, min_nfe, min_nfe_interp = {}, {}, {}
    for label, r in sw.items():
        orders[label] = order(h, r["w2"], tail)
        ok = np.flatnonzero(r["kl_total_per_dim"] <= KL_PER_DIM_TARGET)
        min_nfe[label] = int(r["nfe"][ok[0]]) if ok.size else math.inf
        min_nfe_interp[label] = loglog_crossing(r["nfe"], r["kl_total_per_dim"],
                                                 KL_PER_DIM_TARGET)
    for meth in cfg.samplers:
        p, want = orders[meth], _claimed_order(meth)
        rep.check(f"{meth}: fitted order of W2 ~ h^p on the VP log-SNR grid (finest "
                  f"{cfg.order_points} of n = {list(cfg.steps)}) is {want} +- {cfg.order_tol:g}",
                  p, want, bool(np.isfinite(p) and abs(p - want) <= cfg.order_tol))
    best = min(cfg.samplers, key=lambda s: min_nfe[s])
    rep.check(f"the best sampler reaches KL(p_hat || p_t0)/d <= {KL_PER_DIM_TARGET:g} from the "
              f"VP prior within {cfg.max_nfe_target} NFE (minimum over the steps grid; "
              f"best: {best})", min_nfe[best], cfg.max_nfe_target,
              min_nfe[best] <= cfg.max_nfe_target)
    rep.metrics.update(
        d=d, L=th.gaussian_lipschitz(field.var), early_stopping_kl=early, steps=cfg.steps,
        sweep={k: dict(v) for k, v in sw.items()}, fitted_order_w2=orders,
        min_nfe_to_target=min_nfe, min_nfe_to_target_interpolated=min_nfe_interp,
        kl_per_dim_target=KL_PER_DIM_TARGET,
        pc_rule=f"ancestral predictor + 1 Langevin step, eps_i = {cfg.pc_ratio:g} x forward "
                "transition variance of the step; pc_snr: score_sde's rule, snr = 0.16")

    # 2. bounds
    bd = bounds_part(cfg, field)
    ch, chT, bt, dm = bd["chen"], bd["chen_T"], bd["benton"], bd["dimension"]
    for key, r, what in (
            ("chen_kl", ch["fit_kl"], "Chen et al. KL: KL(q||gamma) e^{-2T} + C (L^2 d h + "
             "L^2 m2^2 h^2) T vs exact KL(q || p_hat) of the exponential integrator over h "
             "(h <= 1/L)"),
            ("chen_tv", ch["fit_tv"], "Chen et al. TV: sqrt(KL(q||gamma) e^{-2T}/2) + C (L sqrt(dh)"
             " + L m2 h) sqrt(T) vs the upper end of the exact TV bracket over h (h <= 1/L, "
             "TV < 1)"),
            ("chen_T", chT["fit"], f"Chen et al. KL (as above) vs exact KL over T at h = "
             f"{cfg.tsweep_h:g}"),
            ("benton", bt["fit"], "Benton et al. KL shape kappa^2 d N + kappa d T + d e^{-2T} "
             "vs exact KL(q_delta || p_hat) on their schedule over N")):
        rep.check(f"{what}: with C fitted at the middle point, the bound is >= the exact value "
                  f"at every other point (max exact/bound)", r["worst"], 1.0,
                  bool(np.all(r["held"])))
    rep.check(f"dimension: fitted exponent of the exact KL vs d at n = {cfg.dim_steps}, "
              f"T = {cfg.chen_T:g} (d = {[int(x) for x in dm['d']]}) is <= "
              f"{cfg.dim_exponent_max:g}",
              dm["exponent_d"], cfg.dim_exponent_max,
              bool(dm["exponent_d"] <= cfg.dim_exponent_max))
    rep.bounds.update(
        chen_kl_fitted=ch["fit_kl"]["bound"], chen_kl_constant=ch["fit_kl"]["C"],
        chen_tv_fitted=ch["fit_tv"]["bound"], chen_tv_constant=ch["fit_tv"]["C"],
        chen_T_fitted=chT["fit"]["bound"], benton_fitted=bt["fit"]["bound"],
        benton_constant=bt["fit"]["C"])
    rep.metrics["bounds"] = dict(
        L=bd["L"], m2=bd["m2"], kl_prior=bd["kl_prior"],
        chen=dict(h=ch["h"], admissible=ch["admissible"], kl_q_vs_out=ch["kl"],
                  kl_out_vs_q=ch["kl_out_vs_data"], kl_discretisation=ch["kl_disc"],
                  tv_lower=ch["tv_lower"], tv_upper=ch["tv_upper"], shape_kl=ch["shape_kl"],
                  shape_tv=ch["shape_tv"], order_exact_kl=ch["order_kl"],
                  order_exact_kl_discretisation=ch["order_kl_disc"],
                  order_shape=ch["order_shape"],
                  kl_constant_needed_everywhere=ch["fit_kl"]["C_needed"],
                  kl_exact_over_shape_spread=ch["fit_kl"]["ratio_spread"],
                  tv_constant_needed_everywhere=ch["fit_tv"]["C_needed"],
                  tv_exact_over_shape_spread=ch["fit_tv"]["ratio_spread"]),
        chen_T=dict(T=chT["T"], kl=chT["kl"], shape_kl=chT["shape_kl"],
                    constant_needed=chT["fit"]["C_needed"]),
        benton=dict(N=bt["N"], kappa=bt["kappa"], kl=bt["kl"], kl_uniform_grid=bt["kl_uniform"],
                    shape=bt["shape_kl"], order_exact_in_kappa=bt["order_kappa"],
                    order_shape_in_kappa=bt["order_shape"],
                    constant_needed=bt["fit"]["C_needed"], spread=bt["fit"]["ratio_spread"]),
        dimension=dict(d=dm["d"], kl=dm["kl"], L2d=dm["L2d"], exponent_d=dm["exponent_d"],
                       exponent_L2d=dm["exponent_L2d"]))

    # 3. split
    sp = split_part(cfg, field, vp)
    for meth, vals in sp["girsanov_kl"].items():
        rep.check(f"{meth} with the model's score (var x {1 + cfg.score_delta:g}) from the exact "
                  f"p_T, n = {cfg.girsanov_steps[-1]} log-SNR steps: KL(p_t0 || p_hat) <= the "
                  f"Girsanov path KL 1/2 int beta E_pt|s_hat - s|^2 dt of the continuous reverse "
                  f"SDE", float(vals[-1]), sp["girsanov"], bool(vals[-1] <= sp["girsanov"]))
    rep.metrics["split"] = dict(
        nfe=cfg.split_nfe, score_delta=cfg.score_delta,
        score_error_integral=sp["score_error_integral"], girsanov=sp["girsanov"],
        samplers=sp["samplers"], girsanov_steps=cfg.girsanov_steps,
        kl_pt0_vs_model_sampler=sp["girsanov_kl"])
    rep.bounds["girsanov_score_kl"] = sp["girsanov"]

    rep.figures += _figure_sweep(cfg, sw, orders, min_nfe, out_dir)
    rep.figures += _figure_bounds(cfg, bd, out_dir)
    rep.figures += _figure_split(cfg, sp, out_dir)
    return rep


# ----------------------------------------------------------------------------- figures


def _styles(labels):
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    markers = "osD^v<>phX*"
    out = {}
    for i, lab in enumerate(labels):
        out[lab] = dict(color=cmap(i % 10), marker=markers[i % len(markers)], linestyle="-")
    if "pc_snr" in out:
        out["pc_snr"] = dict(color="k", marker="*", linestyle="--")
    return out


def _figure_sweep(cfg, sw, orders, min_nfe, out_dir):
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    fig, axes = plotting.new_figure(1, 3, width=4.8, height=4.3)
    st = _styles(list(sw))
    ax = axes[0, 0]
    for lab, r in sw.items():
        y = np.where(np.isfinite(r["kl_per_dim"]), r["kl_per_dim"], np.nan)
        ax.plot(r["nfe"], y, markersize=3.5, linewidth=1.2, **st[lab])
    ax.axhline(KL_PER_DIM_TARGET, color="k", linewidth=0.8, linestyle=":")
    ax.set(xscale="log", yscale="log", xlabel="NFE", ylabel=r"KL$(\hat p\,\|\,p_{t_0})/d$",
           title=rf"discretisation only (exact $p_T$), d={cfg.size}$^2$")
    ax.grid(True, which="major", alpha=0.3)

    ax = axes[0, 1]
    h = 1.0 / np.asarray(cfg.steps, float)
    for lab, r in sw.items():
        y = np.where(np.isfinite(r["w2"]), r["w2"], np.nan)
        ax.plot(h, y, markersize=3.5, linewidth=1.2, label=f"{lab} (p = {orders[lab]:.2f})",
                **st[lab])
    for p, ls in ((1, (0, (5, 2))), (2, (0, (1, 1.5)))):
        finest = [r["w2"][-1] for lab, r in sw.items()
                  if _claimed_order(lab.replace("pc_snr", "pc")) == p and np.isfinite(r["w2"][-1])]
        if finest:
            ax.plot(h, 0.4 * np.min(finest) * (h / h[-1]) ** p, color="0.5", linestyle=ls,
                    linewidth=1.2, label=f"$h^{p}$ (reference)")
    ax.set(xscale="log", yscale="log", xlabel="h = 1/n", ylabel=r"$W_2(\hat p, p_{t_0})$",
           title=f"$W_2$ vs h; order p fitted on the finest {cfg.order_points} n")
    ax.grid(True, which="major", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(7, len(labels)),
               fontsize=7.5, frameon=False)

    ax = axes[0, 2]
    labs = list(sw)
    vals = [min_nfe[lab] for lab in labs]
    finite = [v for v in vals if np.isfinite(v)]
    top = max(finite + [cfg.max_nfe_target]) * 2
    bars = ax.bar(range(len(labs)), [v if np.isfinite(v) else top for v in vals],
                  color=[st[lab]["color"] for lab in labs])
    for b, v in zip(bars, vals):
        if not np.isfinite(v):
            b.set_hatch("//")
            b.set_alpha(0.4)
        ax.text(b.get_x() + b.get_width() / 2, b.get_height() * 1.06,
                f"{v:.0f}" if np.isfinite(v) else "none", ha="center", fontsize=7)
    ax.axhline(cfg.max_nfe_target, color="k", linewidth=0.9, linestyle=":",
               label=f"claim: {cfg.max_nfe_target} NFE")
    ax.set_xticks(range(len(labs)), labs, rotation=55, ha="right", fontsize=7.5)
    ax.set_yscale("log")
    ticks = [t for t in (5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560) if t <= top * 1.5]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.set_ylim(min(finite + [cfg.max_nfe_target]) / 1.6, top * 1.6)
    ax.set(ylabel="smallest NFE on the grid",
           title=rf"NFE to KL$(\hat p\|p_{{t_0}})/d\leq${KL_PER_DIM_TARGET:g}, from the prior")
    ax.legend(fontsize=7.5, loc="upper left")
    ax.grid(True, axis="y", which="major", alpha=0.3)
    return plotting.save(fig, out_dir / "sampler_convergence.png")


def _figure_bounds(cfg, bd, out_dir):
    fig, axes = plotting.new_figure(2, 3, width=4.4, height=3.5)
    ch, chT, bt, dm = bd["chen"], bd["chen_T"], bd["benton"], bd["dimension"]

    def shade(ax, x, adm):
        if not adm.all():
            ax.axvspan(1 / bd["L"], x.max() * 1.3, color="0.9", zorder=0, label=r"$h>1/L$")

    ax = axes[0, 0]
    shade(ax, ch["h"], ch["admissible"])
    ax.plot(ch["h"], ch["kl"], "o-", label=r"exact KL$(q\|\hat p)$")
    ax.plot(ch["h"], ch["kl_disc"], "s:", markersize=3, label="exact, discretisation only")
    ax.plot(ch["h"], ch["fit_kl"]["bound"], "--", label="Chen shape, fitted")
    ax.plot(ch["h"][ch["fit_kl"]["at"]], ch["kl"][ch["fit_kl"]["at"]], "k*", markersize=9,
            label="fit point")
    ax.set(xscale="log", yscale="log", xlabel="h", ylabel="KL",
           title=f"Chen et al., EI on OU, T={cfg.chen_T:g}")
    ax.legend(fontsize=6.5)

    ax = axes[0, 1]
    shade(ax, ch["h"], ch["admissible"])
    ax.fill_between(ch["h"], np.maximum(ch["tv_lower"], 1e-12), ch["tv_upper"], alpha=0.35,
                    label="exact TV bracket")
    ax.plot(ch["h"], ch["fit_tv"]["bound"], "--", label="Chen TV shape, fitted")
    ax.axhline(1, color="k", linewidth=0.6)
    ax.set(xscale="log", yscale="log", xlabel="h", ylabel="TV", title="TV vs h")
    ax.legend(fontsize=6.5)

    ax = axes[0, 2]
    ax.plot(chT["T"], chT["kl"], "o-", label="exact KL")
    ax.plot(chT["T"], chT["fit"]["bound"], "--", label="Chen shape, fitted")
    ax.set(yscale="log", xlabel="T", ylabel="KL", title=f"KL vs T at h={cfg.tsweep_h:g}")
    ax.legend(fontsize=6.5)

    ax = axes[1, 0]
    ax.plot(bt["N"], bt["kl"], "o-", label=r"exact KL$(q_\delta\|\hat p)$, Benton grid")
    ax.plot(bt["N"], bt["kl_uniform"], "s:", markersize=3, label="exact, uniform grid")
    ax.plot(bt["N"], bt["fit"]["bound"], "--", label="Benton shape, fitted")
    ax.set(xscale="log", yscale="log", xlabel="N steps", ylabel="KL",
           title=rf"Benton et al., $\delta$={cfg.benton_delta:g}, T={cfg.benton_T:g}")
    ax.legend(fontsize=6.5)

    ax = axes[1, 1]
    ax.plot(dm["d"], dm["kl"], "o-", label=f"exact KL (exponent {dm['exponent_d']:.2f})")
    ax.plot(dm["d"], dm["kl"][0] * dm["d"] / dm["d"][0], "--", label=r"$\propto d$")
    ax.plot(dm["d"], dm["kl"][0] * dm["L2d"] / dm["L2d"][0], ":",
            label=rf"$\propto L^2d$ (exponent {dm['exponent_L2d']:.2f})")
    ax.set(xscale="log", yscale="log", xlabel="d", ylabel="KL",
           title=f"dimension, n={cfg.dim_steps}, T={cfg.chen_T:g}")
    ax.legend(fontsize=6.5)

    ax = axes[1, 2]
    for x, r, lab in ((ch["h"], ch["fit_kl"], "Chen KL vs h"),
                      (ch["h"], ch["fit_tv"], "Chen TV vs h"),
                      (bt["kappa"], bt["fit"], r"Benton vs $\kappa$")):
        meas = (ch["kl"] if lab == "Chen KL vs h" else ch["tv_upper"] if lab == "Chen TV vs h"
                else bt["kl"])
        ax.plot(x, meas / r["bound"], "o-", markersize=3.5, label=lab)
    ax.axhline(1, color="k", linewidth=0.8, linestyle=":")
    ax.set(xscale="log", yscale="log", xlabel=r"h or $\kappa$", ylabel="exact / fitted bound",
           title="> 1: the fitted bound fails")
    ax.legend(fontsize=6.5)
    from matplotlib.ticker import NullFormatter

    for ax in axes.ravel():
        ax.grid(True, which="major", alpha=0.3)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_minor_formatter(NullFormatter())
    return plotting.save(fig, out_dir / "sampler_convergence_bounds.png")


def _figure_split(cfg, sp, out_dir):
    fig, axes = plotting.new_figure(1, 3, width=4.7, height=3.9)
    ax = axes[0, 0]
    parts = ("total", "discretisation", "initialisation", "score", "early_stopping")
    labs = list(sp["samplers"])
    width = 0.8 / len(parts)
    for j, part in enumerate(parts):
        vals = np.array([sp["samplers"][m][part] for m in labs], float)
        bars = ax.bar(np.arange(len(labs)) + (j - (len(parts) - 1) / 2) * width,
                      np.where(vals != 0, np.abs(vals), np.nan), width, label=part,
                      color=f"C{j}")
        for b, v in zip(bars, vals):
            if v < 0:
                b.set_hatch("xx")
                b.set_facecolor("white")
                b.set_edgecolor(f"C{j}")
    ax.set_xticks(range(len(labs)),
                  [f"{m}\n(n={sp['samplers'][m]['n_steps']})" for m in labs], fontsize=7)
    ax.set(yscale="log", ylabel="KL(output || data)",
           title=f"split at {cfg.split_nfe} NFE, model var x{1 + cfg.score_delta:g}")
    ax.set_ylim(top=ax.get_ylim()[1] * 300)
    ax.legend(fontsize=6.5, ncol=2, title="hatched: part < 0, |value| shown",
              title_fontsize=6.5)
    ax.grid(True, axis="y", which="major", alpha=0.3)

    ax = axes[0, 1]
    ax.plot(sp["t"], sp["score_error"])
    ax.set(xscale="log", yscale="log", xlabel="t",
           ylabel=r"$E_{p_t}\|\hat s-\nabla\log p_t\|^2$",
           title=f"score error (integral over t: {sp['score_error_integral']:.3g})")
    ax.grid(True, which="major", alpha=0.3)

    ax = axes[0, 2]
    for meth, vals in sp["girsanov_kl"].items():
        ax.plot(cfg.girsanov_steps, vals, "o-", label=meth)
    ax.axhline(sp["girsanov"], color="k", linestyle="--", linewidth=1,
               label=rf"Girsanov $G$ = {sp['girsanov']:.3g}")
    ax.set(xscale="log", yscale="log", xlabel="n steps (log-SNR grid)",
           ylabel=r"KL$(p_{t_0}\,\|\,\hat p)$, model score, exact $p_T$",
           title="score error alone vs the path-KL bound")
    ax.legend(fontsize=7)
    ax.grid(True, which="major", alpha=0.3)
    return plotting.save(fig, out_dir / "sampler_convergence_split.png")
