r"""One step of every reverse-time sampler, written once: on samples and on Gaussian laws.

A step goes from time :math:`t` down to :math:`s<t` on the coefficients :math:`z=Bx` of the
process's basis. With :math:`h=t-s`, :math:`a,s^2,f,g^2` the schedule per coefficient
(:class:`Coeffs`), :math:`r=a_t/a_s`, :math:`\beta=s_t^2-r^2s_s^2` (the forward transition
variance), :math:`\hat D` the denoiser at :math:`(z,t)`, :math:`\hat s=(a_t\hat D-z)/s_t^2` its
score (Tweedie) and :math:`\xi\sim N(0,I)` fresh noise, the updates are:

==================  =========================================================================
``euler_maruyama``  :math:`z-h(f_tz-g_t^2\hat s)+\sqrt{hg_t^2}\,\xi` (reverse SDE)
``ancestral``       the posterior :math:`q(z_s\mid z_t,z_0=\hat D)`: mean
                    :math:`(rs_s^2/s_t^2)z+(a_s\beta/s_t^2)\hat D`, variance
                    :math:`s_s^2\beta/s_t^2` (DDPM for VP, score_sde's ancestral step for VE)
``reverse_diffus…`` score_sde's predictor :math:`(2-r)z+\beta\hat s+\sqrt\beta\,\xi`
``pf_euler``        Euler on the probability-flow ODE :math:`dz/dt=f_tz-\tfrac12g_t^2\hat s`
``pf_heun``         Heun (trapezoidal) on the same ODE (2 evaluations)
``ddim``            :math:`a_s\hat D+\sqrt{s_s^2-\sigma_\eta^2}\,\hat\varepsilon+\sigma_\eta\xi`,
                    :math:`\hat\varepsilon=(z-a_t\hat D)/s_t`, :math:`\sigma_\eta^2=\eta^2\cdot`
                    the ancestral variance (``eta=0``: deterministic)
``dpm_solver_1``    DPM-Solver++ order 1 (Lu et al. 2022), :math:`\lambda=\log(a/s)`,
                    :math:`h_\lambda=\lambda_s-\lambda_t`:
                    :math:`(s_s/s_t)z+a_s(1-e^{-h_\lambda})\hat D` (= DDIM with ``eta=0``)
``dpm_solver_2``    order 2: adds a midpoint evaluation at :math:`u=(s+t)/2`
``exponential``     Chen et al. (2023), score frozen over the step:
                    :math:`z/r+K\hat s+\sqrt{s_t^2/r^2-s_s^2}\,\xi`,
                    :math:`K=a_s\int_s^ta_u\,d(s_u^2/a_u^2)` (Gauss–Legendre); for OU
                    :math:`e^hz+2(e^h-1)\hat s+\sqrt{e^{2h}-1}\,\xi`. Needs a
                    frequency-independent scale (no blur)
``dpm_solver_2m``   DPM-Solver++(2M) (Lu et al. 2022, multistep, data prediction): with the
                    previous output :math:`\hat D_1` at :math:`t_1>t`, :math:`r=h_1/h_\lambda`
                    (:math:`h_1=\lambda_t-\lambda_{t_1}`): :math:`(s_s/s_t)z+a_s(1-e^{-h_\lambda})
                    [\hat D+(\hat D-\hat D_1)/(2r)]`; the first step is ``dpm_solver_1``
``dpm_solver_3m``   multistep order 3: :math:`\hat D` along :math:`\lambda` by the quadratic
                    through the last three outputs, integrated exactly against
                    :math:`e^{\lambda}`; the first step is ``dpm_solver_2`` (1 extra
                    evaluation), whose two outputs start the history
``pc``              score_sde's predictor–corrector: ``n_corrector`` Langevin steps
                    :math:`z+\epsilon\hat s+\sqrt{2\epsilon}\,\xi` at :math:`t`, then the
                    ``predictor``; :math:`\epsilon=2(r_{\rm snr}\|\xi\|/\|\hat s\|)^2` (norms
                    averaged over the batch) or a fixed ``corrector_eps(t)``
==================  =========================================================================

**Multistep methods** (``history > 0`` in :data:`METHODS`) also read the denoiser outputs of
the previous steps, ``c.history`` (most recent first: pairs ``(time, output)``; the first
``c.n_history`` are real, the rest placeholders), and return ``(z', D)``: the new state and this
step's output, which the loop stores (a ``start`` step returns the history itself). They are
deterministic, so along the grid every state and every stored output is affine in
:math:`z_T` per coefficient; the oracle carries those forms (:class:`Affine` coefficients)
and reads the output law :math:`N(Am_T+B,A^2w_T)` at the end.

**One definition, two readings.** Each method is one function ``step(c, z)`` of a
:class:`StepContext` ``c`` (the schedule, the denoiser, the noise) written with ``+``, ``-``
and products by per-coefficient arrays only. Run on arrays ``z`` ``[B, *shape]`` it is the
sampler (:func:`opdiff.diffusion.samplers.sample`). Run on :class:`Affine` — :math:`z` itself as
the affine form :math:`1\cdot z+0`, a denoiser that is affine per coefficient,
:math:`\hat D(z)=Gz+q` (a Gaussian field's exact one), and each :math:`\xi_k` a symbol — the
same arithmetic returns the step's exact map :math:`z'=Az+B+\sum_kN_k\xi_k`, so a diagonal
Gaussian law :math:`N(m,w)` goes to :math:`N(Am+B,\,A^2w+\sum_kN_k^2)`
(:meth:`Affine.law`; :func:`opdiff.diffusion.oracle.sampler_law` runs it along a grid). The
corrector's step-size rule needs a norm: on samples it is the batch mean of
:math:`\|x\|`, on laws :math:`(E\|x\|^2)^{1/2}` under the current law.

:data:`METHODS` registers every method with its denoiser evaluations per step, order and
randomness; :mod:`~opdiff.diffusion.samplers` and :mod:`~opdiff.diffusion.oracle` read it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from opdiff.diffusion.processes import Process

__all__ = ["METHODS", "Affine", "Coeffs", "Method", "StepContext", "check_method", "coeffs",
           "langevin"]

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)


class Coeffs(NamedTuple):
    """The schedule per coefficient at one time, in one dtype: :math:`\\log a_t`, :math:`a_t`,
    :math:`s_t^2`, :math:`s_t`, the drift :math:`f_t` and :math:`g_t^2`."""

    la: Any
    a: Any
    s2: Any
    s: Any
    f: Any
    g2: Any


def coeffs(process: Process, t, dtype) -> Coeffs:
    """:class:`Coeffs` of ``process`` at time ``t`` cast to ``dtype``."""
    la = process.log_scale(t).astype(dtype)
    s2 = process.variance(t).astype(dtype)
    return Coeffs(la, jnp.exp(la), s2, jnp.sqrt(s2), process.drift(t).astype(dtype),
                  process.diffusion2(t).astype(dtype))


class Affine:
    r"""A per-coefficient affine form :math:`Az+B+\sum_kN_k\xi_k` of a step's input :math:`z`
    and independent standard normals :math:`\xi_k` (``N`` maps ``k`` to :math:`N_k`).

    Supports ``+``, ``-`` with another form or an array, and ``*``, ``/`` by an array; a
    product of two forms is refused (a sampler step is affine in :math:`z` once the denoiser
    is). Arrays may stand on either side (``__array_ufunc__ = None`` makes NumPy defer).
    """

    __array_ufunc__ = None

    def __init__(self, A, B, N: dict | None = None):
        self.A, self.B, self.N = A, B, dict(N or {})

    @classmethod
    def identity(cls) -> "Affine":
        """:math:`z` itself."""
        return cls(1.0, 0.0)

    @classmethod
    def noise(cls, k: int = 0) -> "Affine":
        r"""The standard normal :math:`\xi_k`."""
        return cls(0.0, 0.0, {k: 1.0})

    @staticmethod
    def _lift(x) -> "Affine":
        return x if isinstance(x, Affine) else Affine(0.0, x)

    def __add__(self, other):
        o = Affine._lift(other)
        N = dict(self.N)
        for k, v in o.N.items():
            N[k] = N[k] + v if k in N else v
        return Affine(self.A + o.A, self.B + o.B, N)

    __radd__ = __add__

    def __neg__(self):
        return Affine(-self.A, -self.B, {k: -v for k, v in self.N.items()})

    def __sub__(self, other):
        return self + (-Affine._lift(other))

    def __rsub__(self, other):
        return Affine._lift(other) + (-self)

    def __mul__(self, c):
        if isinstance(c, Affine):
            raise TypeError("a product of two affine forms is not affine: a sampler step must "
                            "be affine in z once the denoiser is")
        return Affine(self.A * c, self.B * c, {k: v * c for k, v in self.N.items()})

    __rmul__ = __mul__

    def __truediv__(self, c):
        if isinstance(c, Affine):
            raise TypeError("cannot divide by an affine form")
        return Affine(self.A / c, self.B / c, {k: v / c for k, v in self.N.items()})

    def noise_variance(self):
        r""":math:`\sum_kN_k^2`."""
        return sum((v**2 for v in self.N.values()), 0.0)

    def law(self, m, w):
        r"""The law :math:`(Am+B,\ A^2w+\sum_kN_k^2)` of the form when :math:`z\sim N(m,w)`."""
        return self.A * m + self.B, self.A**2 * w + self.noise_variance()

    def second_moment(self, m, w):
        r""":math:`E[x^2]` per coefficient when :math:`z\sim N(m,w)`."""
        mean, var = self.law(m, w)
        return mean**2 + var


class StepContext:
    """What a step from ``t`` down to ``s`` sees: the schedule at both times, the denoiser on
    coefficients ``denoise(z, time)``, the noise ``noise(k)`` (the ``k``-th fresh standard
    normal of this step), a ``norm(x)`` for the corrector's step size, the options
    (``eta``, ``predictor``, ``n_corrector``, ``snr``, ``corrector_eps``) and, for a multistep
    method, ``history``: ``(time, denoiser output)`` of the previous steps, most recent first,
    of which the first ``n_history`` (an int, possibly traced) are real."""

    def __init__(self, process: Process, t, s, dtype, *, denoise: Callable, noise: Callable,
                 norm: Callable, opts: dict, history: tuple = (), n_history=0):
        self.process, self.t, self.s, self.dtype = process, t, s, dtype
        self.denoise, self.noise, self.norm, self.opts = denoise, noise, norm, opts
        self.history, self.n_history = tuple(history), n_history
        self.ct = coeffs(process, t, dtype)
        self.cs = coeffs(process, s, dtype)

    @property
    def h(self):
        return (self.t - self.s).astype(self.dtype)

    @property
    def r(self):
        """:math:`a_t/a_s\\le1`."""
        return jnp.exp(self.ct.la - self.cs.la)

    @property
    def beta(self):
        """The forward transition variance :math:`s_t^2-r^2s_s^2` from ``s`` to ``t``."""
        return self.ct.s2 - self.r**2 * self.cs.s2

    def score(self, z, d):
        r"""Tweedie's score :math:`(a_t\hat D-z)/s_t^2` at ``t``."""
        return (self.ct.a * d - z) / self.ct.s2


# ----------------------------------------------------------------------------- the methods


def euler_maruyama(c: StepContext, z):
    """Euler–Maruyama on the reverse SDE."""
    score = c.score(z, c.denoise(z, c.t))
    ct, h = c.ct, c.h
    return z - h * (ct.f * z - ct.g2 * score) + jnp.sqrt(h * ct.g2) * c.noise(0)


def ancestral(c: StepContext, z):
    """The posterior step :math:`q(z_s\\mid z_t,z_0=\\hat D)`."""
    d = c.denoise(z, c.t)
    ct, cs, beta = c.ct, c.cs, c.beta
    mean = (c.r * cs.s2 / ct.s2) * z + (cs.a * beta / ct.s2) * d
    return mean + jnp.sqrt(jnp.maximum(cs.s2 * beta / ct.s2, 0)) * c.noise(0)


def reverse_diffusion(c: StepContext, z):
    """score_sde's reverse-diffusion predictor."""
    score = c.score(z, c.denoise(z, c.t))
    beta = c.beta
    return (2 - c.r) * z + beta * score + jnp.sqrt(jnp.maximum(beta, 0)) * c.noise(0)


def _pf_drift_t(c: StepContext, z):
    return c.ct.f * z - 0.5 * c.ct.g2 * c.score(z, c.denoise(z, c.t))


def pf_euler(c: StepContext, z):
    """Euler on the probability-flow ODE."""
    return z - c.h * _pf_drift_t(c, z)


def pf_heun(c: StepContext, z):
    """Heun (trapezoidal rule) on the probability-flow ODE."""
    cs, h = c.cs, c.h
    drift_t = _pf_drift_t(c, z)
    z1 = z - h * drift_t
    d1 = c.denoise(z1, c.s)
    drift_s = cs.f * z1 - 0.5 * cs.g2 * (cs.a * d1 - z1) / cs.s2
    return z - 0.5 * h * (drift_t + drift_s)


def ddim(c: StepContext, z):
    """DDIM with stochasticity ``eta``."""
    d = c.denoise(z, c.t)
    ct, cs, eta = c.ct, c.cs, c.opts["eta"]
    eps = (z - ct.a * d) / ct.s
    var_eta = eta**2 * jnp.maximum(cs.s2 * c.beta / ct.s2, 0)
    out = cs.a * d + jnp.sqrt(jnp.maximum(cs.s2 - var_eta, 0)) * eps
    return out + jnp.sqrt(var_eta) * c.noise(0) if eta > 0 else out


def _dpm(c: StepContext, z, second_order: bool, keep: bool = False):
    """DPM-Solver++ 1 or 2 (singlestep); ``keep``: also the outputs ``((u, D_u), (t, D_t))``."""
    d = c.denoise(z, c.t)
    ct, cs = c.ct, c.cs
    lam_t, lam_s = ct.la - jnp.log(ct.s), cs.la - jnp.log(cs.s)
    hl = lam_s - lam_t
    phi = -jnp.expm1(-hl)  # 1 - e^{-h}
    if not second_order:
        return (cs.s / ct.s) * z + cs.a * phi * d
    u = 0.5 * (c.s + c.t)
    cu = coeffs(c.process, u, c.dtype)
    hu = cu.la - jnp.log(cu.s) - lam_t
    zu = (cu.s / ct.s) * z - cu.a * jnp.expm1(-hu) * d
    du = c.denoise(zu, u)
    ratio = jnp.where(hu != 0, hl / jnp.where(hu != 0, 2 * hu, 1), 0.5)
    out = (cs.s / ct.s) * z + cs.a * phi * (d + ratio * (du - d))
    return (out, ((u, du), (c.t, d))) if keep else out


def dpm_solver_1(c: StepContext, z):
    """DPM-Solver++ of order 1 (data prediction)."""
    return _dpm(c, z, False)


def dpm_solver_2(c: StepContext, z):
    """DPM-Solver++ of order 2 (midpoint)."""
    return _dpm(c, z, True)


def _log_snr(c: Coeffs):
    return c.la - jnp.log(c.s)


def _past(c: StepContext, k: int):
    r"""The ``k``-th previous output (0: the most recent), its :math:`\lambda` and whether it is
    real (1.0) or a placeholder (0.0). A placeholder's :math:`\lambda` is :math:`\lambda_t`
    and its output is never used except multiplied by 0."""
    tk, dk = c.history[k]
    real = (jnp.asarray(c.n_history) > k).astype(c.dtype)
    tk = jnp.where(real > 0, tk, c.t)
    return dk, _log_snr(coeffs(c.process, tk, c.dtype)), real


def _divided(d_new, d_old, gap, real):
    r""":math:`(D_{new}-D_{old})/\mathrm{gap}` where ``real``, else 0 (never a 0/0)."""
    return (d_new - d_old) * (real / jnp.where(real > 0, gap, 1))


def dpm_solver_2m(c: StepContext, z):
    r"""DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): order 1 on the first step, then the
    linear extrapolation of the data prediction from the previous step's output."""
    d = c.denoise(z, c.t)
    ct, cs = c.ct, c.cs
    lam_t = _log_snr(ct)
    hl = _log_snr(cs) - lam_t
    d1, lam_1, real = _past(c, 0)
    slope = _divided(d, d1, lam_t - lam_1, real)  # dD/dlambda, backward difference
    phi = -jnp.expm1(-hl)  # 1 - e^{-h}
    return (cs.s / ct.s) * z + cs.a * phi * (d + (0.5 * hl) * slope), d


def dpm_solver_3m(c: StepContext, z):
    r"""Multistep order 3 in data prediction (the first step is :func:`dpm_solver_3m_start`).
    With :math:`u=\lambda-\lambda_t` and the
    quadratic :math:`p(u)=\hat D+\delta_1u+\tfrac12\delta_2u^2` through the last three
    outputs (Newton divided differences; fewer while the history is short), the exact solution of
    the data-prediction ODE with :math:`p` in place of :math:`\hat D` is

    .. math:: z_s=\frac{s_s}{s_t}z+a_s\Big[(1-e^{-h})\hat D+h\varphi_2\delta_1
              -h^2\varphi_3\delta_2\Big],\quad \varphi_2=1+\frac{e^{-h}-1}{h},\
              \varphi_3=\frac{\varphi_2}{h}-\frac12,

    since :math:`\int_0^he^{u-h}u\,du=h\varphi_2` and
    :math:`\int_0^he^{u-h}\tfrac{u^2}2du=-h^2\varphi_3`.
    """
    d = c.denoise(z, c.t)
    ct, cs = c.ct, c.cs
    lam_t = _log_snr(ct)
    h = _log_snr(cs) - lam_t
    d1, lam_1, real1 = _past(c, 0)
    d2, lam_2, real2 = _past(c, 1)
    h0, h1 = lam_t - lam_1, lam_1 - lam_2
    a = _divided(d, d1, h0, real1)  # p[0, -h0]
    b = _divided(d1, d2, h1, real2)  # p[-h0, -h0-h1]
    curv = _divided(a, b, h0 + h1, real2)  # p[0, -h0, -h0-h1]
    em1 = jnp.expm1(-h)
    hphi2, h2phi3 = _phi_terms(h)
    delta1 = a + h0 * curv
    return (cs.s / ct.s) * z + cs.a * (-em1 * d + hphi2 * delta1 - (2 * h2phi3) * curv), d


def dpm_solver_3m_start(c: StepContext, z):
    """The first step of ``dpm_solver_3m``: ``dpm_solver_2``'s midpoint step (2 evaluations,
    local error :math:`O(h^3)`, so the start does not cap the order at 2 as an order-1 first
    step would), keeping both outputs as the history of the next step."""
    return _dpm(c, z, True, keep=True)


def _phi_terms(h):
    r""":math:`h\varphi_2=h+e^{-h}-1=\sum_{k\ge2}(-h)^k/k!` and
    :math:`h^2\varphi_3=h\varphi_2-h^2/2=\sum_{k\ge3}(-h)^k/k!`, by their series (Horner, to
    :math:`k=11`) for :math:`h<1/4` where the closed forms cancel."""
    em1 = jnp.expm1(-h)
    direct2, small = h + em1, h < 0.25
    hs = jnp.where(small, h, 0.0)
    series3 = jnp.zeros_like(hs)
    for k in range(11, 2, -1):
        series3 = (-hs / k) * (1 + series3)
    series3 = series3 * (hs * hs / 2)  # (-h)^k/k! = (h^2/2) prod_{j=3..k} (-h/j)
    series2 = hs * hs / 2 + series3
    hphi2 = jnp.where(small, series2, direct2)
    return hphi2, jnp.where(small, series3, direct2 - h * h / 2)


def _exp_integrator_K(process: Process, s, t, dtype):
    """:math:`K=a_s\\int_s^ta_u\\,d(s_u^2/a_u^2)` by 16-point Gauss–Legendre."""

    def nsr(u):
        return process.variance(u) / process.scale(u) ** 2

    nodes = 0.5 * (t - s) * jnp.asarray(_GL_NODES) + 0.5 * (t + s)
    w = 0.5 * (t - s) * jnp.asarray(_GL_WEIGHTS)

    def integrand(u):
        d = jax.jvp(nsr, (u,), (jnp.ones_like(u),))[1]
        return process.scale(u) * d

    vals = jax.vmap(integrand)(nodes)
    return (process.scale(s) * jnp.tensordot(w, vals, axes=1)).astype(dtype)


def exponential(c: StepContext, z):
    """Chen et al.'s exponential integrator of the reverse SDE (score frozen over the step)."""
    score = c.score(z, c.denoise(z, c.t))
    r = c.r
    K = _exp_integrator_K(c.process, c.s, c.t, c.dtype)
    var = jnp.maximum(c.ct.s2 / r**2 - c.cs.s2, 0)
    return z / r + K * score + jnp.sqrt(var) * c.noise(0)


def langevin(c: StepContext, z, j: int = 0):
    r"""Langevin corrector ``j`` at ``t``: :math:`z+\epsilon\hat s+\sqrt{2\epsilon}\,\xi`, noise
    ``noise(1000 + j)``; :math:`\epsilon` is ``corrector_eps(t)`` or score_sde's
    :math:`2(r_{\rm snr}\|\xi\|/\|\hat s\|)^2`."""
    score = c.score(z, c.denoise(z, c.t))
    xi = c.noise(1000 + j)
    if c.opts["corrector_eps"] is not None:
        eps = jnp.asarray(c.opts["corrector_eps"](c.t), c.dtype)
    else:
        eps = 2 * (c.opts["snr"] * c.norm(xi) / c.norm(score)) ** 2
    return z + eps * score + jnp.sqrt(2 * eps) * xi


def pc(c: StepContext, z):
    """Predictor–corrector: ``n_corrector`` :func:`langevin` steps at ``t``, then the
    ``predictor``'s step."""
    for j in range(c.opts["n_corrector"]):
        z = langevin(c, z, j)
    return METHODS[c.opts["predictor"]].step(c, z)


# ----------------------------------------------------------------------------- the registry


class Method(NamedTuple):
    """A sampler: its step, denoiser evaluations per step (``pc`` adds one per corrector
    step), its order :math:`p` in the step (:math:`W_2\\approx Ch^p`, exact score, smooth grid),
    whether it draws noise (``ddim`` only with ``eta > 0``), whether it needs the same
    scale :math:`a_t` for every coefficient, and how many previous denoiser outputs it reads
    (``history``; such a step returns ``(z', D)``, module docstring); a multistep method may
    replace its first step by ``start(c, z) -> (z', history)``, which spends ``start_evals``
    evaluations more than a step."""

    step: Callable
    evals: int
    order: int
    stochastic: bool
    constant_scale: bool = False
    history: int = 0
    start: Callable | None = None
    start_evals: int = 0


METHODS: dict[str, Method] = {
    "euler_maruyama": Method(euler_maruyama, 1, 1, True),
    "ancestral": Method(ancestral, 1, 1, True),
    "reverse_diffusion": Method(reverse_diffusion, 1, 1, True),
    "pf_euler": Method(pf_euler, 1, 1, False),
    "pf_heun": Method(pf_heun, 2, 2, False),
    "ddim": Method(ddim, 1, 1, False),
    "dpm_solver_1": Method(dpm_solver_1, 1, 1, False),
    "dpm_solver_2": Method(dpm_solver_2, 2, 2, False),
    "exponential": Method(exponential, 1, 1, True, constant_scale=True),
    "pc": Method(pc, 1, 1, True),
    "dpm_solver_2m": Method(dpm_solver_2m, 1, 2, False, history=1),
    "dpm_solver_3m": Method(dpm_solver_3m, 1, 3, False, history=2, start=dpm_solver_3m_start,
                            start_evals=1),
}


def check_method(method: str, process: Process | None = None) -> Method:
    """The registered :class:`Method` of ``method``, else a ``ValueError``; with ``process``,
    also refuses a method that needs a frequency-independent scale on a blurring process."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {tuple(METHODS)}, got {method!r}")
    m = METHODS[method]
    if process is not None and m.constant_scale and process.blur != "none":
        raise ValueError(f"the {method!r} sampler needs a frequency-independent scale a_t; "
                         f"{process.name!r} blurs — use 'ancestral', 'ddim' or 'dpm_solver_2'")
    return m
