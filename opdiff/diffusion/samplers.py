r"""Reverse-time samplers, generic over a denoiser and a diagonal forward process.

The model is a **denoiser** :math:`D(x,t)\approx E[x_0\mid x_t=x]` acting on a batch
``[B, *shape]`` at a scalar time. The score follows by Tweedie's formula, per coefficient
:math:`z=Bx` of the process's basis,

.. math:: \nabla\log p_t = (a_t\,D - z)/s_t^2 ,

which is always well conditioned (:math:`a_t\le1`, :math:`s_t>0`). The converse,
:math:`D=(z+s_t^2\nabla\log p_t)/a_t`, divides by :math:`a_t`, which underflows for the high
frequencies of a heat-dissipation process — so samplers take denoisers, and
:func:`denoiser_from_score` is offered for score models of noise processes.

Every sampler integrates backwards along an increasing time grid ``ts`` (:math:`t_0<\dots<t_N`,
:math:`t_0` the early-stopping time), starting from ``x_T`` at :math:`t_N`. The methods —
``euler_maruyama``, ``ancestral``, ``reverse_diffusion``, ``pf_euler``, ``pf_heun``, ``ddim``,
``dpm_solver_1``, ``dpm_solver_2``, ``exponential``, ``pc`` (:data:`SAMPLERS`) and the
multistep ``dpm_solver_2m``, ``dpm_solver_3m`` (:data:`MULTISTEP`) — are defined once each in
:mod:`opdiff.diffusion.steps`, where their updates are written out (the same definitions give
the exact output laws of :func:`opdiff.diffusion.oracle.sampler_law`). This module runs them
along a grid, builds the grids, and offers :func:`pf_ode_adaptive`: the probability-flow ODE
solved by diffrax (Dormand–Prince 5(4), PID step control) — the reference solution.

Randomness: step :math:`i` (counted from :math:`T`) uses ``fold_in(key, i)``; its ``k``-th
normal is drawn with ``fold_in(fold_in(key, i), k)`` (``k = 0`` for the predictor, ``1000 + j``
for corrector ``j``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff.diffusion import _ode
from opdiff.diffusion import steps as _steps
from opdiff.diffusion.processes import Process

__all__ = [
    "MULTISTEP",
    "SAMPLERS",
    "benton_grid",
    "best_at_budget",
    "check_grid",
    "least_at_budget",
    "pc_corrector_eps",
    "steps_for_budgets",
    "check_options",
    "denoiser_from_score",
    "karras_grid",
    "log_level_between",
    "log_snr_grid",
    "nfe",
    "order",
    "pf_ode_adaptive",
    "sample",
    "score_from_denoiser",
    "uniform_grid",
]

Denoiser = Callable[[Array, Array], Array]

# the one-step methods of the registry of opdiff.diffusion.steps, in its order (the experiments'
# default sampler sets); the multistep ones are MULTISTEP. sample() and the oracle take both.
SAMPLERS = tuple(m for m, spec in _steps.METHODS.items() if not spec.history)
MULTISTEP = tuple(m for m, spec in _steps.METHODS.items() if spec.history)
STOCHASTIC = tuple(m for m, spec in _steps.METHODS.items() if spec.stochastic)
SECOND_ORDER = tuple(m for m, spec in _steps.METHODS.items() if spec.order == 2)


# ----------------------------------------------------------------------------- model adaptors


def score_from_denoiser(process: Process, denoiser: Denoiser) -> Callable[[Array, Array], Array]:
    r"""The score :math:`\nabla\log p_t(x)=B^\top[(a_tB\hat D-Bx)/s_t^2]` of a denoiser."""

    def score(x, t):
        z, d = process.to_basis(x), process.to_basis(denoiser(x, t))
        a, s2 = process.scale(t).astype(x.dtype), process.variance(t).astype(x.dtype)
        return process.from_basis((a * d - z) / s2)

    return score


def denoiser_from_score(process: Process, score: Callable[[Array, Array], Array]) -> Denoiser:
    r"""Tweedie's denoiser :math:`B^\top[(Bx+s_t^2B\,\mathrm{score})/a_t]` of a score model.

    Divides by :math:`a_t`: fine for noise processes, ill-conditioned where :math:`a_t(k)`
    underflows (the high frequencies of heat dissipation) — use a denoiser model there.
    """

    def denoiser(x, t):
        z, sc = process.to_basis(x), process.to_basis(score(x, t))
        a, s2 = process.scale(t).astype(x.dtype), process.variance(t).astype(x.dtype)
        return process.from_basis((z + s2 * sc) / a)

    return denoiser


# ----------------------------------------------------------------------------- time grids


def check_grid(process: Process, ts) -> np.ndarray:
    """``ts`` as a float64 numpy array, else a clear error: 1-D, at least two points, strictly
    increasing, inside :math:`[0,T]`, and with noise at :math:`t_0` (:math:`s_{t_0}>0`)."""
    try:
        arr = np.asarray(ts, dtype=np.float64)
    except (TypeError, jax.errors.ConcretizationTypeError):
        raise TypeError("ts must be a concrete 1-D array of times (not traced)") from None
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"ts must be a 1-D array of at least 2 times, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("ts must be finite")
    if np.any(np.diff(arr) <= 0):
        i = int(np.argmax(np.diff(arr) <= 0))
        raise ValueError(
            f"ts must be strictly increasing (t_0 < ... < t_N), got ts[{i}]={arr[i]} >= "
            f"ts[{i + 1}]={arr[i + 1]}")
    if arr[0] < 0 or arr[-1] > process.T * (1 + 1e-9):
        raise ValueError(
            f"ts must lie in [0, T={process.T}], got [{arr[0]}, {arr[-1]}]")
    if float(jnp.min(process.std(arr[0]))) <= 0:
        raise ValueError(f"ts[0]={arr[0]} must be > 0: the process {process.name!r} has no noise "
                         "there (the score is undefined)")
    return arr


def _level_table(process: Process, n: int = 20001):
    t = np.linspace(process.t_min, process.T, n)
    lev = np.asarray(jax.vmap(process.level)(jnp.asarray(t)), dtype=np.float64)
    if np.any(np.diff(lev) <= 0):
        raise ValueError(f"the noise level of {process.name!r} is not increasing in t")
    return t, lev


def uniform_grid(process: Process, n_steps: int) -> np.ndarray:
    """``n_steps + 1`` times uniform on :math:`[t_{\\min},T]`."""
    n_steps = _check_steps(n_steps)
    return np.linspace(process.t_min, process.T, n_steps + 1)


def log_snr_grid(process: Process, n_steps: int) -> np.ndarray:
    """Times uniform in :math:`\\log` :meth:`Process.level` (= uniform log-SNR for noise
    processes; log-spaced blur widths for heat dissipation)."""
    n_steps = _check_steps(n_steps)
    t, lev = _level_table(process)
    if lev[0] <= 0:
        raise ValueError(f"a log-SNR grid needs noise at t_min; {process.name!r} has none at "
                         f"t_min={process.t_min} (use t_min > 0 or uniform_grid)")
    target = np.linspace(np.log(lev[0]), np.log(lev[-1]), n_steps + 1)
    out = np.interp(target, np.log(lev), t)
    out[0], out[-1] = process.t_min, process.T
    return out


def karras_grid(process: Process, n_steps: int, rho: float = 7.0) -> np.ndarray:
    """Karras et al. (2022): uniform in :math:`\\mathrm{level}^{1/\\rho}`.

    Raises:
        ValueError: if ``n_steps`` is not a positive int or ``rho`` is not finite and > 0.
        TypeError: if ``rho`` is not a real number.
    """
    n_steps = _check_steps(n_steps)
    if not _real("rho", rho) > 0:
        raise ValueError(f"rho must be positive, got {rho}")
    t, lev = _level_table(process)
    if lev[0] < 0:
        raise ValueError(f"the noise level of {process.name!r} is negative at t_min")
    target = np.linspace(lev[0] ** (1 / rho), lev[-1] ** (1 / rho), n_steps + 1) ** rho
    out = np.interp(target, lev, t)
    out[0], out[-1] = process.t_min, process.T
    return out


def _check_steps(n):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n_steps must be a positive int, got {n!r}")
    return int(n)


def nfe(method: str, n_steps: int, n_corrector: int = 1) -> int:
    """Denoiser evaluations a sampler spends on ``n_steps`` steps."""
    spec = _steps.check_method(method)
    return (spec.evals + (n_corrector if method == "pc" else 0)) * n_steps + spec.start_evals


def order(method: str) -> int:
    r"""The order :math:`p` of a sampler in its step :math:`h` (:math:`W_2\approx Ch^p` to the
    target law on a smooth grid, exact score): 2 for the two-stage ODE solvers of
    :data:`SECOND_ORDER` (Heun, DPM-Solver-2, DPM-Solver++(2M)), 3 for ``dpm_solver_3m``, 1 for
    every other sampler (Euler--Maruyama, ancestral, reverse diffusion, Euler on the ODE, DDIM =
    DPM-Solver-1, the exponential integrator, PC with a corrector step that shrinks like
    :math:`h`)."""
    return _steps.check_method(method).order


def steps_for_budgets(method: str, steps, budgets) -> tuple[int, ...]:
    """``steps`` plus the step counts at which ``method`` spends exactly each budget of
    ``budgets`` denoiser evaluations (:func:`nfe`; a budget it cannot hit is skipped), sorted."""
    start = _steps.check_method(method).start_evals
    per = nfe(method, 1) - start
    extra = {(b - start) // per for b in budgets if (b - start) % per == 0 and b - start >= per}
    return tuple(sorted(set(steps) | extra))


def best_at_budget(kl_by_method: dict, budget: int) -> tuple[float, str | None]:
    """The least finite value over samplers at exactly ``budget`` NFE, and its sampler.

    Args:
        kl_by_method: ``{method: {nfe: value}}`` (e.g. a KL per sampler and budget).
        budget: the NFE.

    Returns:
        ``(value, method)``, ties broken by the method name; ``(inf, None)`` if no sampler runs
        at that budget with a finite value.
    """
    cands = [(v[budget], meth) for meth, v in kl_by_method.items() if budget in v]
    finite = [c for c in cands if np.isfinite(c[0])]
    return min(finite) if finite else (math.inf, None)


def least_at_budget(best_by_process: dict, rtol: float = 1e-9) -> tuple[float, str]:
    """The least of the processes' best values at one budget, and a label naming the winners.

    Args:
        best_by_process: ``{process: (value, method)}`` (:func:`best_at_budget` per process).
        rtol: processes within ``rtol`` relative of the least value are tied.

    Returns:
        ``(value, "p (method)")``; tied processes read ``"a = b (m1/m2)"``; ``(inf, "-")`` for
        no process, ``(inf, "none finite")`` when no value is finite.
    """
    cands = list(best_by_process.items())
    if not cands:
        return math.inf, "-"
    v = min(cands, key=lambda c: c[1][0])[1][0]
    if not np.isfinite(v):
        return v, "none finite"
    tied = [(p, meth) for p, (x, meth) in cands if abs(x - v) <= rtol * abs(v)]
    meths = sorted({m for _, m in tied})
    return v, " = ".join(p for p, _ in tied) + f" ({'/'.join(meths)})"


def pc_corrector_eps(process: Process, ts, ratio: float) -> np.ndarray:
    r"""A Langevin step per grid time for predictor-corrector sampling that shrinks with the
    step: :math:`\epsilon_j=r\,(s_{t_j}^2-(a_{t_j}/a_{t_{j-1}})^2s_{t_{j-1}}^2)`, ``ratio``
    :math:`=r` times the variance of the forward transition from :math:`t_{j-1}` to :math:`t_j`
    (:math:`\epsilon_0=0`). For an isotropic process (one :math:`a_t, s_t` for every
    coefficient: the first is used). Pass it as ``corrector_eps`` of
    :func:`opdiff.diffusion.oracle.sampler_law`.

    Returns:
        float array ``[len(ts)]``.
    """
    tj = jnp.asarray(ts, jnp.float64)
    a = np.asarray(jax.vmap(lambda t: process.scale(t).ravel()[0])(tj))
    s2 = np.asarray(jax.vmap(lambda t: process.variance(t).ravel()[0])(tj))
    eps = np.zeros(len(ts))
    eps[1:] = ratio * (s2[1:] - (a[1:] / a[:-1]) ** 2 * s2[:-1])
    return eps


def benton_grid(T: float, delta: float, N: int) -> tuple[np.ndarray, float]:
    r"""Benton et al.'s (ICLR 2024) schedule in forward time on :math:`[\delta,T]`, ``N`` steps:
    geometric on :math:`[\delta,1]` (ratio :math:`1+\kappa`) and uniform on :math:`[1,T]`
    (step :math:`\kappa`), so every step is :math:`\le\kappa\min(1,t)`.

    :math:`\kappa` solves :math:`\log(1/\delta)/\log(1+\kappa)+(T-1)/\kappa=N` (bisection in
    :math:`\log\kappa`); the geometric part gets the rounded count of steps (at least 1, at most
    ``N - 1``), the uniform part the rest.

    Returns:
        ``(grid [N + 1], kappa)`` with :math:`\kappa=\max_i(t_i-t_{i-1})/\min(1,t_{i-1})`
        measured on the grid built.
    """
    if not (0 < delta < 1 < T) or int(N) < 2:
        raise ValueError(f"need 0 < delta < 1 < T and N >= 2, got {delta}, {T}, {N}")
    L = math.log(1 / delta)

    def count(k):
        return L / math.log1p(k) + (T - 1) / k

    lo, hi = 1e-9, 1e3
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if count(mid) < N else (mid, hi)
    k = math.sqrt(lo * hi)
    n_exp = min(max(1, round(L / math.log1p(k))), N - 1)
    grid = np.concatenate([np.geomspace(delta, 1.0, n_exp + 1),
                           np.linspace(1.0, T, N - n_exp + 1)[1:]])
    return grid, float(np.max(np.diff(grid) / np.minimum(1.0, grid[:-1])))


def _real(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def check_options(method: str, *, predictor: str = "ancestral", n_corrector: int = 1,
                  snr: float = 0.16, eta: float = 0.0) -> None:
    """Clear errors for a bad sampler name or option (shared with the oracle).

    Raises:
        ValueError: for an unknown method or predictor, a negative ``n_corrector``, ``snr``
            not finite and > 0, or ``eta`` not in [0, 1] (NaN and ±inf included).
        TypeError: if ``snr`` or ``eta`` is not a real number.
    """
    _steps.check_method(method)
    single = tuple(m for m in SAMPLERS if m != "pc")  # one-step: no history
    if not isinstance(predictor, str) or predictor not in single:
        raise ValueError(f"predictor must be a single-step method of {single}, "
                         f"got {predictor!r}")
    if isinstance(n_corrector, bool) or not isinstance(n_corrector, (int, np.integer)) \
            or n_corrector < 0:
        raise ValueError(f"n_corrector must be a non-negative int, got {n_corrector!r}")
    if not _real("snr", snr) > 0:
        raise ValueError(f"snr must be > 0, got {snr}")
    if not 0 <= _real("eta", eta) <= 1:
        raise ValueError(f"eta must be in [0, 1], got {eta}")


def log_level_between(process: Process, t0: float, t1: float, n_steps: int) -> np.ndarray:
    """``n_steps + 1`` times from ``t0`` to ``t1`` uniform in log :meth:`Process.level`
    (uniform in t where the level is 0 at ``t0``).

    Raises:
        ValueError: if ``n_steps`` is not a positive int, or ``t0`` or ``t1`` is not finite or
            lies outside ``[0, T]``.
    """
    n_steps = _check_steps(n_steps)
    process.check_time(t0, "t0")
    process.check_time(t1, "t1")
    t, lev = _level_table(process)
    l0, l1 = np.interp([t0, t1], t, lev)
    if l0 <= 0:
        return np.linspace(t0, t1, n_steps + 1)
    out = np.interp(np.linspace(np.log(l0), np.log(l1), n_steps + 1), np.log(lev), t)
    out[0], out[-1] = t0, t1
    return out


# ----------------------------------------------------------------------------- the loop


@functools.partial(jax.jit, static_argnames=("method", "process", "denoiser", "opts_key"))
def _run(method, process, denoiser, opts_key, x_T, ts, key):
    opts = dict(opts_key)

    def dcoef(z, t):
        return process.to_basis(denoiser(process.from_basis(z), t))

    z = process.to_basis(x_T)
    n = ts.shape[0] - 1
    axes = tuple(range(1, z.ndim))
    step = _steps.METHODS[method].step

    def batch_norm(v):  # the batch mean of ||v|| (the corrector's step-size rule)
        return jnp.mean(jnp.sqrt(jnp.sum(v**2, axis=axes)))

    spec = _steps.METHODS[method]
    n_hist = spec.history

    def ctx_at(z, i, past, n_real):
        k = jax.random.fold_in(key, i)
        return _steps.StepContext(
            process, ts[n - i], ts[n - i - 1], z.dtype, denoise=dcoef, norm=batch_norm,
            noise=lambda j=0: jax.random.normal(jax.random.fold_in(k, j), z.shape, z.dtype),
            opts=opts, history=past, n_history=n_real)

    def body(carry, i):
        z, past, n_real = carry
        ctx = ctx_at(z, i, past, n_real)
        if not n_hist:
            return (step(ctx, z), past, n_real), None
        z_new, d = step(ctx, z)  # a multistep method also returns its output, stored
        return (z_new, ((ctx.t, d), *past[:-1]), jnp.minimum(n_real + 1, n_hist)), None

    past = tuple((ts[n], jnp.zeros_like(z)) for _ in range(n_hist))  # placeholders
    carry, first = (z, past, jnp.asarray(0)), 0
    if spec.start is not None:
        z1, hist = spec.start(ctx_at(z, 0, past, 0), z)
        carry, first = (z1, (*hist, *past[len(hist):]), jnp.asarray(len(hist))), 1
    (z, _, _), _ = jax.lax.scan(body, carry, jnp.arange(first, n))
    if opts["denoise"]:
        z = dcoef(z, ts[0])
    return process.from_basis(z)


def sample(
    method: str,
    denoiser: Denoiser,
    process: Process,
    x_T: Float[Array, "batch *shape"],
    ts,
    *,
    key: PRNGKeyArray | None = None,
    eta: float = 0.0,
    predictor: str = "ancestral",
    n_corrector: int = 1,
    snr: float = 0.16,
    corrector_eps: Callable[[Array], Array] | None = None,
    denoise: bool = False,
) -> Float[Array, "batch *shape"]:
    """Run ``method`` from ``x_T`` at ``ts[-1]`` down to ``ts[0]``.

    Args:
        method: one of :data:`SAMPLERS` or :data:`MULTISTEP` (module docstring).
        denoiser: :math:`D(x,t)` on a batch ``[B, *shape]``, ``t`` a scalar. Must be hashable
            (a plain function or a ``functools.partial`` of hashable arguments): it is a static
            argument of the compiled sampler.
        process: the forward process.
        x_T: initial samples ``[B, *shape]`` (e.g. :meth:`Process.sample_prior`).
        ts: increasing times ``[N+1]`` (:func:`uniform_grid`, :func:`log_snr_grid`,
            :func:`karras_grid`).
        key: PRNG key (required by the stochastic samplers, ``ddim`` with ``eta > 0`` and
            ``pc``).
        eta: DDIM's stochasticity in [0, 1].
        predictor, n_corrector, snr, corrector_eps: the ``pc`` sampler's predictor (any method
            but ``pc``), Langevin steps per time, score_sde's signal-to-noise ratio, or a fixed
            step-size function of ``t``.
        denoise: return :math:`\\hat D(x_{t_0},t_0)` instead of :math:`x_{t_0}` (score_sde's
            ``noise_removal``).

    Raises:
        ValueError: for a bad method or option (:func:`check_options`: ``snr`` finite and
            > 0, ``eta`` in [0, 1]), ``x_T`` not ``[B, *shape]``, a bad time grid
            (:func:`check_grid`: 1-D, finite, increasing, in [0, T]), or a stochastic method
            without ``key``.
        TypeError: if ``x_T`` is not floating-point or ``ts`` is traced.
    """
    check_options(method, predictor=predictor, n_corrector=n_corrector, snr=snr, eta=eta)
    x_T = process.check_sample("x_T", x_T)
    grid = check_grid(process, ts)
    _steps.check_method(method, process)
    needs_key = method in STOCHASTIC or (method == "ddim" and eta > 0)
    if needs_key and key is None:
        raise ValueError(f"method {method!r} is stochastic: pass key=")
    if key is None:
        key = jax.random.key(0)  # unused by deterministic samplers
    opts = dict(eta=float(eta), predictor=predictor, n_corrector=int(n_corrector), snr=float(snr),
                corrector_eps=corrector_eps, denoise=bool(denoise))
    opts_key = tuple(sorted(opts.items()))
    return _run(method, process, denoiser, opts_key, x_T, jnp.asarray(grid, x_T.dtype), key)


def pf_ode_adaptive(
    denoiser: Denoiser,
    process: Process,
    x_T: Float[Array, "batch *shape"],
    *,
    t_start: float | None = None,
    t_end: float | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 4096,
    denoise: bool = False,
) -> tuple[Array, dict]:
    """The probability-flow ODE solved adaptively by diffrax (Dopri5, PID control).

    Returns:
        ``(x_{t_end}, stats)`` with ``stats["nfe"]`` the denoiser evaluations (6 per accepted
        or rejected Dopri5 step, FSAL counted once) and ``stats["num_steps"]``.
    """
    import diffrax

    x_T = process.check_sample("x_T", x_T)
    t0 = float(process.T if t_start is None else t_start)
    t1 = float(process.t_min if t_end is None else t_end)
    check_grid(process, [t1, t0])

    def vf(t, z, args):
        x = process.from_basis(z)
        d = process.to_basis(denoiser(x, t))
        a, s2 = process.scale(t).astype(z.dtype), process.variance(t).astype(z.dtype)
        f, g2 = process.drift(t).astype(z.dtype), process.diffusion2(t).astype(z.dtype)
        return f * z - 0.5 * g2 * (a * d - z) / s2

    @jax.jit
    def solve(z):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(vf), diffrax.Dopri5(), t0=t0, t1=t1, dt0=-(t0 - t1) / 64, y0=z,
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            max_steps=max_steps, saveat=diffrax.SaveAt(t1=True), throw=False)
        return sol.ys[0], _ode.status(sol), sol.stats["num_rejected_steps"]

    z, st, n_rej = solve(process.to_basis(x_T))  # throw=False: see opdiff.diffusion._ode
    steps = _ode.check("the adaptive probability-flow sampler", st, max_steps=max_steps,
                       rtol=rtol, atol=atol)
    if denoise:
        z = process.to_basis(denoiser(process.from_basis(z), jnp.asarray(t1, z.dtype)))
    return process.from_basis(z), {"num_steps": steps, "num_rejected": int(n_rej),
                                   "nfe": 6 * steps + 1}
