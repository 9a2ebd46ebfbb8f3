r"""Least-squares fit of random features: ``opdiff.approx.lstsq`` against NumPy and scikit-learn.

Run from the repository root::

    .venv/bin/python -m benchmarks.random_features           # n = 16,384, N = 4096: 10-20 min
    .venv/bin/python -m benchmarks.random_features --quick   # n = 4096, N = 1024: 1-2 min

(``--n``, ``--features`` and ``--rounds`` override the sizes and the number of rounds;
``--all`` runs every row in every round at both d, warm-ups included, in the full mode too.)

Workload, one per input dimension d = 1 and d = 8, the same for every solver. Samples
:math:`x_i\sim U[-1,1]^d` (n of them), target
:math:`f(x)=\sin(\omega\,u\cdot x+\tfrac12)\,e^{-|x|^2/(2d)}+0.3\cos(\omega_1x_1)`,
:math:`u=(1,\dots,1)/\sqrt d`, with :math:`(\omega,\omega_1)` = (4, 7) for d = 1 and (2, 1.5)
for d = 8.
Fourier features drawn with ``opdiff.approx.random_features.sample_hidden`` (N of them,
``distribution="gaussian"``: :math:`a\sim N(0,(\lambda/2)^2I)` truncated to
:math:`[-\lambda,\lambda]^d`, ``bias="phase"``, activation ``"cos"``), bandwidth
:math:`\lambda` = 16 (d = 1) and 2 (d = 8). The n x N design matrix
:math:`A_{ij}=\cos(a_j\cdot x_i-b_j)` is built once with ``design_matrix`` in float64 (jax's
x64 mode is switched on for this script) and every solve-only row works on that same ``A`` and
``y`` (a NumPy copy for the NumPy rows).

What is timed (wall-clock; jax calls block on their result):

* **Solves** on the prebuilt ``A``:

  - ``opdiff qr``: ``lstsq.solve(A, y)`` (the default, ridge 0): one LAPACK ``dgeqrf`` of the
    augmented ``[A | y]`` (``jnp.linalg.qr(..., mode="r")``), whose last column holds
    ``Q^T y`` above the diagonal, then ``dtrsm``; ``Q`` is never formed. (The first version
    formed the thin ``Q`` with ``dorgqr``, which cost as much again: 33.5 s against 17.1 s at
    d = 1 in the run recorded in notes/benchmarks.md.)
  - ``opdiff svd``: ``lstsq.solve(A, y, method="svd")`` (``dgesdd`` with the thin ``U``,
    cut-off ``rcond = max(n, N) eps`` as NumPy's); not in the default full run (below).
  - ``opdiff cholesky+ridge``: ``lstsq.solve(A, y, method="cholesky", ridge=alpha)``, the
    normal equations (``A^T A`` as an XLA matmul, ``dpotrf``) with
    :math:`\alpha=10^{-10}\,\mathrm{tr}(A^TA)/N`. It squares the condition number of ``A``;
    the ridge bounds that of :math:`A^TA+\alpha I` by :math:`(s_1^2+\alpha)/\alpha`, printed.
  - ``opdiff cholesky_lsqr``: ``lstsq.solve(A, y, method="cholesky_lsqr")`` (ridge 0): the Gram
    ``A^T A`` by BLAS ``dsyrk`` (NumPy's, through a ``jax.pure_callback``), ``dpotrf`` of the
    Gram plus a shift of ``u tr(A^T A)`` as a preconditioner ``R``, then LSQR on
    ``min |A R^-1 z - y|`` with products by ``A`` itself until the relative tolerance
    ``50 eps`` (``opdiff.approx.lstsq``'s docstring): the accuracy of a least-squares solve at
    about the normal equations' cost plus ``4nN`` flops per iteration (the iterations are
    printed). The route the issue's "3x numpy lstsq at relative residual 1e-12" goal is for.
    ``opdiff cholesky_lsqr tol=1e-13``: the same with the looser tolerance ``1e-13`` (fewer
    iterations where there are many, d = 1; its excess residual column shows what it costs).
  - ``numpy lstsq``: ``numpy.linalg.lstsq(A, y, rcond=None)``, LAPACK ``dgelsd`` (SVD based,
    divide and conquer), the peer the issue names and that the headline ratio uses. For a
    tall ``A`` ``dgelsd`` starts with the same ``dgeqrf`` (and applies ``Q^T`` to ``y``
    without forming ``Q``), then takes the SVD of the N x N ``R``; so a QR solve can only save
    that O(N^3) stage (BLAS-2 heavy bidiagonalisation): at n = 4N, 2.6x in nominal FLOPs.
  - ``numpy qr``: ``numpy.linalg.qr`` (``dgeqrf`` + ``dorgqr``: NumPy has no way to skip
    ``Q``) + ``Q.T @ y`` + ``scipy.linalg.solve_triangular``: the textbook NumPy QR solve.
  - float32 rows (secondary): ``opdiff qr`` and ``numpy lstsq`` (``sgelsd``) on
    ``A.astype(float32)``.

* **Features**: ``design_matrix(hidden, x, "cos")`` as called (eager ``vmap``, one dispatch per
  op) and under ``jax.jit``; and ``RBFSampler.fit(x).transform(x)``.
* **End to end** (features + solve, from ``x`` and ``y``): ``random_features.solve`` with
  ``method="qr"``, with ``method="cholesky_lsqr"`` (no ridge: a least-squares solution) and with
  ``method="cholesky"`` + the ridge, against scikit-learn's
  ``RBFSampler(n_components=N, gamma=lambda^2/8)`` + ``Ridge(alpha, solver="cholesky",
  fit_intercept=False)``, ``fit(x).transform(x)`` then ``Ridge.fit``. RBFSampler draws its own
  features, :math:`\sqrt{2/N}\cos(w\cdot x+b)` with :math:`w\sim N(0,2\gamma I)` — the same law
  as opdiff's here up to the truncation at :math:`2\sigma` — and Ridge solves the normal
  equations (``X.T @ X`` by NumPy, ``scipy.linalg.solve(assume_a="pos")``); its ``alpha`` is
  opdiff's :math:`\alpha\cdot2/N`, the same regularisation for features scaled by
  :math:`\sqrt{2/N}`. So the like-for-like peer of scikit-learn is opdiff's end-to-end
  Cholesky + ridge row (headline ``rf_vs_sklearn``); the default QR end to end is shown too,
  and ``opdiff fit cholesky_lsqr`` (headline ``rf_cholesky_lsqr_vs_sklearn``), which solves the
  unregularised problem to a smaller residual than scikit-learn's ridge.
  scikit-learn is an optional benchmark dependency (``pip install -e '.[bench]'``); without
  it those rows are skipped with a note.

Compilation is never timed: jax's compile time (tracing + lowering + XLA compile, read from
``jax.monitoring`` events) is printed per row. With ``--quick`` every jax variant is first
called once (a warm-up: compilation and a full run, its time printed as "first call"; the
solve rows see the same shapes at both d and are warmed once). At the full size a call takes
tens of seconds, so there is no warm-up run: the compile time of a jax row's first call is
subtracted from it. Then every variant runs once per round, for d = 1 and d = 8, in an order
rotated every round (2 rounds; 3 with ``--quick``); times are medians over rounds and ratios
medians of per-round ratios (over the rounds both rows ran). In the full mode the *heavy*
rows -- ``numpy qr``, the two float32 rows and ``opdiff fit qr`` (= ``design_matrix`` +
``opdiff qr``, both timed on their own) -- run once, in the first round, at d = 1 only (QR and
Cholesky solve times depend only on the shapes, not on d), and ``opdiff svd`` (about 3
nominal TFLOP, minutes per call on two cores) is left out. ``--all`` runs every row at both d
in every round, warm-ups included (an hour or so on two cores).
The f32 and f64 matmul peaks (jitted 2048 x 2048 ``a @ b``, in the same thread setting) are
measured every round for context.

Threads: every library gets **one thread** by default, the same budget for all: OpenBLAS
(``OPENBLAS_NUM_THREADS=1``, which covers NumPy, scikit-learn and jax's LAPACK custom calls,
which go through SciPy's OpenBLAS) and XLA (``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1``: the design matrix and the Gram matrix of the Cholesky rows),
set before the libraries load unless the variables are already set. On the shared 2-core VM
this was built on, 2-thread OpenBLAS factorisations ran 1x to 10x slower than 1-thread ones,
and erratically (threads spinning for a descheduled sibling while other jobs held the cores).
``--multithread`` leaves the libraries' default thread pools. The settings are printed.

Accuracy: the relative residual :math:`\|Ac-y\|/\|y\|` of every solver's coefficients on its
own problem (in float64, with the float64 ``A``; scikit-learn's on its own features), so that
a fast but inaccurate solve shows, and the **excess residual** over numpy ``lstsq``'s,
:math:`(\|Ac-y\|-\|Ac_{\rm lstsq}-y\|)/\|y\|` on the same ``A`` (negative: a smaller residual
than ``lstsq``'s, which truncates singular values below ``rcond``), the figure behind the goal
"relative residual <= 1e-12" (the plain relative residual cannot reach 1e-12 at d = 8, where
the features fit the target only to about 1e-2). The ridge rows are not least-squares
solutions: their residual is larger by design. With d = 1 ``A`` is numerically rank
deficient (a bandwidth-16 Fourier basis on [-1, 1] has a few dozen significant singular
values), the hard case for unpivoted QR; ``dgelsd`` truncates below ``rcond``, which can
leave a larger residual. With d = 8 random Fourier features fit this smooth target only to
about 1e-3 - 1e-2 (all exact solvers agree on that residual): the curse of dimension, not a
solver error.

FLOP counts are **nominal** (the textbook count of the algorithm, whatever the library
executes), for GFLOP/s:

* QR rows: Householder factorisation :math:`2nN^2-2N^3/3` (forming ``Q`` explicitly, which
  ``opdiff qr`` and ``numpy qr`` do, is another :math:`2nN^2-2N^3/3`, *not* counted: the
  no-``Q`` route shows the same work in less time);
* SVD-based least squares (``numpy lstsq`` = ``dgelsd``): :math:`2nN^2+11N^3` (Golub & Van
  Loan's R-SVD count for :math:`\Sigma` and :math:`V`); ``opdiff svd`` forms the thin ``U``:
  :math:`6nN^2+20N^3`;
* normal equations (``opdiff cholesky``, scikit-learn's Ridge): :math:`nN^2+N^3/3` (the
  symmetric ``A^T A`` and the Cholesky factor; XLA computes ``A^T A`` as a full GEMM,
  :math:`2nN^2`); ``opdiff cholesky_lsqr`` is counted the same (its Gram is a ``syrk``; the
  LSQR iterations, :math:`4nN` each, are not counted).

The output ends with one line per headline figure, ``name: value unit (goal: ...)``.
Benchmarks are not tests: nothing here fails on a timing.
"""

from __future__ import annotations

import os
import sys

# One thread per library unless asked otherwise (--multithread), set before NumPy, SciPy and
# jax load OpenBLAS and XLA: on the shared 2-core VM, 2-thread OpenBLAS factorisations ran 1x to
# 10x slower than 1-thread ones, erratically (threads spinning for a descheduled sibling), and
# 1-thread XLA matmuls were no slower. An explicit OPENBLAS_NUM_THREADS / XLA_FLAGS wins.
SINGLE_THREAD = "--multithread" not in sys.argv[1:]
if SINGLE_THREAD:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("XLA_FLAGS",
                          "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from benchmarks._common import (
    fmt_value,
    headline,
    matmul_peak_gflops,
    median,
    print_footer,
    print_header,
    print_table,
)
from opdiff.approx import lstsq
from opdiff.approx import random_features as rf

try:
    from sklearn.kernel_approximation import RBFSampler
    from sklearn.linear_model import Ridge
except ImportError:  # optional benchmark dependency: pip install -e '.[bench]'
    RBFSampler = Ridge = None

DIMS = (1, 8)
BANDWIDTH = {1: 16.0, 8: 2.0}  # lambda of sample_hidden (Fourier frequencies)
TARGET_FREQS = {1: (4.0, 7.0), 8: (2.0, 1.5)}  # (omega, omega_1) of target()
RIDGE_REL = 1e-10  # alpha = RIDGE_REL * trace(A^T A) / N
SEED = 0

# (full, quick) settings
SIZES = {"full": (16_384, 4096), "quick": (4096, 1024)}  # (n samples, N features)
ROUNDS = {"full": 2, "quick": 3}
PEAK_REPEATS = {"full": 5, "quick": 5}
PEAK_SIZE = 2048

COMPILE_EVENT = "/jax/core/compile/"  # jax.monitoring durations: trace, lowering, XLA compile
REFERENCE = "numpy lstsq"  # the peer: the headline ratios are t(REFERENCE) / t(row)


# --- workload -------------------------------------------------------------------------------


def target(x: jax.Array) -> jax.Array:
    """The target on ``x[n, d]`` (module docstring; frequencies :data:`TARGET_FREQS`)."""
    d = x.shape[1]
    omega, omega1 = TARGET_FREQS[d]
    s = jnp.sum(x, axis=1) / np.sqrt(d)
    return (jnp.sin(omega * s + 0.5) * jnp.exp(-jnp.sum(x * x, axis=1) / (2 * d))
            + 0.3 * jnp.cos(omega1 * x[:, 0]))


@dataclass
class Problem:
    """One random-feature least-squares problem, in the forms the solvers take."""

    d: int
    x: jax.Array  # (n, d) float64
    y: jax.Array  # (n,) float64
    hidden: rf.Hidden
    A: jax.Array  # (n, N) float64
    alpha: float  # ridge for the Cholesky rows (sklearn: alpha * 2 / N)
    A32: jax.Array = field(init=False)
    y32: jax.Array = field(init=False)
    xn: np.ndarray = field(init=False)
    yn: np.ndarray = field(init=False)
    An: np.ndarray = field(init=False)
    An32: np.ndarray = field(init=False)

    def __post_init__(self):
        self.A32, self.y32 = self.A.astype(jnp.float32), self.y.astype(jnp.float32)
        self.xn, self.yn = np.asarray(self.x), np.asarray(self.y)
        self.An = np.array(self.A)  # a writable NumPy copy
        self.An32 = self.An.astype(np.float32)


def make_problem(d: int, n: int, n_features: int) -> Problem:
    kx, kh = jax.random.split(jax.random.fold_in(jax.random.key(SEED), d))
    x = jax.random.uniform(kx, (n, d), jnp.float64, -1.0, 1.0)
    y = target(x)
    hidden = rf.sample_hidden(kh, n_features, d, bandwidth=BANDWIDTH[d], distribution="gaussian",
                              bias="phase", dtype=jnp.float64)
    A = jax.jit(rf.design_matrix, static_argnames="activation")(hidden, x, "cos")
    A.block_until_ready()
    alpha = RIDGE_REL * float(jnp.sum(A * A)) / n_features
    return Problem(d, x, y, hidden, A, alpha)


def top_singular_value(A: np.ndarray, iters: int = 30) -> float:
    """:math:`s_1(A)` by power iteration on :math:`A^TA` (a few matvecs)."""
    v = np.random.default_rng(0).standard_normal(A.shape[1])
    s = 0.0
    for _ in range(iters):
        w = A.T @ (A @ v)
        s = float(np.linalg.norm(w))
        v = w / s
    return float(np.sqrt(s))


# --- the solvers ----------------------------------------------------------------------------


def numpy_qr(A: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``numpy.linalg.qr`` (reduced: ``dgeqrf`` + ``dorgqr``), ``Q.T @ y``, a triangular solve."""
    q, r = np.linalg.qr(A)
    return scipy.linalg.solve_triangular(r, q.T @ y, lower=False, check_finite=False)


def sklearn_fit(p: Problem, n_features: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """RBFSampler features + Ridge (Cholesky on the normal equations); returns ``(Z, coef)``."""
    sampler = RBFSampler(n_components=n_features, gamma=BANDWIDTH[p.d] ** 2 / 8,
                         random_state=seed)
    z = sampler.fit(p.xn).transform(p.xn)
    model = Ridge(alpha=p.alpha * 2.0 / n_features, solver="cholesky", fit_intercept=False)
    model.fit(z, p.yn)
    return z, model.coef_


def qr_flops(n: int, m: int) -> float:
    return 2.0 * n * m * m - 2.0 * m**3 / 3.0


def gelsd_flops(n: int, m: int) -> float:
    return 2.0 * n * m * m + 11.0 * m**3


def svd_u_flops(n: int, m: int) -> float:
    return 6.0 * n * m * m + 20.0 * m**3


def normal_flops(n: int, m: int) -> float:
    return 1.0 * n * m * m + m**3 / 3.0


@dataclass
class Variant:
    """A timed call: ``run(p)`` blocks and returns what ``residual(p, out)`` reads.

    In the full mode ``heavy`` rows (the slow extras) run at d = 1 only, once, and
    ``skip_full`` rows not at all (unless ``--all``).
    """

    name: str
    group: str  # "solve", "features" or "end to end"
    run: Callable[[Problem], Any]
    is_jax: bool
    flops: Callable[[int, int], float] | None = None
    residual: Callable[[Problem, Any], float] | None = None
    heavy: bool = False
    skip_full: bool = False


def rel_residual(A: np.ndarray, c, y: np.ndarray) -> float:
    c = np.asarray(c, np.float64)
    return float(np.linalg.norm(A @ c - y) / np.linalg.norm(y))


def on_A(p: Problem, c) -> float:
    return rel_residual(p.An, c, p.yn)


def lsqr_iterations(p: Problem, tol: float | None = None) -> int:
    """LSQR iterations that ``cholesky_lsqr`` takes on ``p`` (an untimed call that counts)."""
    tol = 50.0 * float(jnp.finfo(p.A.dtype).eps) if tol is None else tol
    return int(lstsq._cholesky_lsqr(p.A, p.y, jnp.zeros((), p.A.dtype), augment=False, tol=tol,
                                    maxiter=200)[1])


def variants(n_features: int) -> list[Variant]:
    jit_dm = jax.jit(rf.design_matrix, static_argnames="activation")

    def rbf(p: Problem) -> RBFSampler:
        return RBFSampler(n_components=n_features, gamma=BANDWIDTH[p.d] ** 2 / 8,
                          random_state=SEED)

    out = [
        Variant("opdiff qr", "solve",
                lambda p: lstsq.solve(p.A, p.y).block_until_ready(), True, qr_flops, on_A),
        Variant("opdiff cholesky_lsqr", "solve",
                lambda p: lstsq.solve(p.A, p.y, method="cholesky_lsqr").block_until_ready(), True,
                normal_flops, on_A),
        Variant("opdiff cholesky_lsqr tol=1e-13", "solve",
                lambda p: lstsq.solve(p.A, p.y, method="cholesky_lsqr", tol=1e-13)
                .block_until_ready(), True, normal_flops, on_A),
        Variant("opdiff cholesky+ridge", "solve",
                lambda p: lstsq.solve(p.A, p.y, method="cholesky", ridge=p.alpha)
                .block_until_ready(), True, normal_flops, on_A),
        Variant("numpy lstsq", "solve",
                lambda p: np.linalg.lstsq(p.An, p.yn, rcond=None)[0], False, gelsd_flops, on_A),
        Variant("numpy qr", "solve", lambda p: numpy_qr(p.An, p.yn), False, qr_flops, on_A,
                heavy=True),
        Variant("opdiff svd", "solve",
                lambda p: lstsq.solve(p.A, p.y, method="svd").block_until_ready(), True,
                svd_u_flops, on_A, skip_full=True),
        Variant("opdiff qr f32", "solve",
                lambda p: lstsq.solve(p.A32, p.y32).block_until_ready(), True, qr_flops, on_A,
                heavy=True),
        Variant("numpy lstsq f32", "solve",
                lambda p: np.linalg.lstsq(p.An32, p.yn.astype(np.float32), rcond=None)[0],
                False, gelsd_flops, on_A, heavy=True),
        Variant("opdiff design_matrix", "features",
                lambda p: rf.design_matrix(p.hidden, p.x, "cos").block_until_ready(), True),
        Variant("opdiff design_matrix jit", "features",
                lambda p: jit_dm(p.hidden, p.x, "cos").block_until_ready(), True),
        Variant("opdiff fit cholesky+ridge", "end to end",
                lambda p: rf.solve(p.hidden, p.x, p.y, "cos", ridge=p.alpha, method="cholesky")
                .block_until_ready(), True, None, on_A),
        Variant("opdiff fit cholesky_lsqr", "end to end",
                lambda p: rf.solve(p.hidden, p.x, p.y, "cos", method="cholesky_lsqr")
                .block_until_ready(), True, None, on_A),
        Variant("opdiff fit qr", "end to end",
                lambda p: rf.solve(p.hidden, p.x, p.y, "cos").block_until_ready(), True, None,
                on_A, heavy=True),
    ]
    if RBFSampler is not None:
        out += [
            Variant("sklearn RBFSampler", "features",
                    lambda p: rbf(p).fit(p.xn).transform(p.xn), False),
            Variant("sklearn RBFSampler+Ridge", "end to end",
                    lambda p: sklearn_fit(p, n_features), False, None,
                    lambda p, out: rel_residual(out[0], out[1], p.yn)),
        ]
    return out


# --- driver ---------------------------------------------------------------------------------


def thread_settings() -> str:
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")
    env = ", ".join(f"{k}={os.environ[k]!r}" for k in names if k in os.environ)
    return (("one per library" if SINGLE_THREAD else "library defaults (--multithread)")
            + f" [{env or 'no thread variables set'}]")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="n = 4096, N = 1024, 3 rounds, every row at both d (~1-2 min)")
    parser.add_argument("--n", type=int, help="samples (overrides the mode's)")
    parser.add_argument("--features", type=int, help="features N (overrides the mode's)")
    parser.add_argument("--rounds", type=int, help="rounds (overrides the mode's)")
    parser.add_argument("--multithread", action="store_true",
                        help="keep the libraries' default threads (read at import; see above)")
    parser.add_argument("--all", action="store_true",
                        help="run the heavy rows like the others (full mode: much longer)")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    n, n_features = SIZES[mode]
    n, n_features = args.n or n, args.features or n_features
    rounds = args.rounds or ROUNDS[mode]
    restrict = mode == "full" and not args.all  # no warm-up; heavy rows: d = 1, one call

    jax.config.update("jax_enable_x64", True)
    load = print_header("random-feature least squares: opdiff vs numpy.linalg.lstsq vs scikit-learn"
                 + (" (--quick)" if args.quick else ""))
    print(f"problem: n = {n} samples, N = {n_features} Fourier features (cos, gaussian law "
          f"truncated at lambda, phase bias), d in {DIMS}, lambda = "
          f"{', '.join(f'{BANDWIDTH[d]:g} (d={d})' for d in DIMS)}; float64 unless marked f32")
    print(f"rounds: {rounds}; threads: {thread_settings()}; numpy {np.__version__}, scipy "
          f"{scipy.__version__}", end="")
    if RBFSampler is None:
        print("\nnote: scikit-learn not installed (pip install -e '.[bench]'): its rows and "
              "the rf_vs_sklearn headlines are skipped")
    else:
        import sklearn
        print(f", scikit-learn {sklearn.__version__}")
    t_start = time.perf_counter()

    problems = {d: make_problem(d, n, n_features) for d in DIMS}
    vs = variants(n_features)

    def active(v: Variant, d: int, r: int) -> bool:
        if restrict and v.skip_full:
            return False
        return not (restrict and v.heavy) or (d == DIMS[0] and r == 0)

    compile_events: list[float] = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, secs, **kw: compile_events.append(secs)
        if name.startswith(COMPILE_EVENT) else None)

    def call(v: Variant, p: Problem) -> tuple[float, float, Any]:
        """(wall seconds, of which jax compilation, result) of one call of ``v``."""
        k = len(compile_events)
        t0 = time.perf_counter()
        out = v.run(p)
        return time.perf_counter() - t0, sum(compile_events[k:]), out

    first: dict[tuple[str, int], float] = {}  # warm-up call (quick / --all)
    compile_s: dict[tuple[str, int], float] = {}
    if not restrict:
        print(f"data built ({time.perf_counter() - t_start:.0f} s); warm-up (compile + one run "
              "of every jax variant)", flush=True)
        # One call of every jax variant per input signature (the solve-only rows see the same
        # shapes for both d, so they compile and run once, at d = 1).
        seen: set[tuple] = set()
        for d in DIMS:
            for v in vs:
                sig = (v.name, v.group == "solve" or d)
                if v.is_jax and sig not in seen:
                    seen.add(sig)
                    first[(v.name, d)], compile_s[(v.name, d)], _ = call(v, problems[d])
        print(f"warm-up done ({time.perf_counter() - t_start:.0f} s)", flush=True)
    else:
        print(f"data built ({time.perf_counter() - t_start:.0f} s); no warm-up runs: the compile "
              "time of a jax row's first call is subtracted from it", flush=True)

    times: dict[tuple[str, int], list[float]] = {(v.name, d): [] for v in vs for d in DIMS}
    last: dict[tuple[str, int], Any] = {}
    peaks32: list[float] = []
    peaks64: list[float] = []
    for r in range(rounds):
        for d in DIMS:
            k = r % len(vs)
            for v in vs[k:] + vs[:k]:  # rotated every round
                if not active(v, d, r):
                    continue
                secs, comp, out = call(v, problems[d])
                if comp > 0.0:
                    compile_s[(v.name, d)] = compile_s.get((v.name, d), 0.0) + comp
                times[(v.name, d)].append(secs - comp)
                last[(v.name, d)] = out
                if restrict:
                    print(f"  d={d} {v.name}: {secs - comp:.2f} s"
                          + (f" (+ {comp:.2f} s compile)" if comp > 0.0 else ""), flush=True)
        peaks32.append(matmul_peak_gflops(PEAK_SIZE, jnp.float32, PEAK_REPEATS[mode]))
        peaks64.append(matmul_peak_gflops(PEAK_SIZE, jnp.float64, PEAK_REPEATS[mode]))
        print(f"round {r + 1}/{rounds} done ({time.perf_counter() - t_start:.0f} s)", flush=True)
    print()

    def t(name: str, d: int) -> float:
        return median(times[(name, d)])

    def ratio(num: str, den: str, d: int) -> float:
        """Median over rounds of t(num) / t(den) (> 1: ``den`` is faster); rounds both ran."""
        return median([a / b for a, b in zip(times[(num, d)], times[(den, d)])])

    excess: dict[tuple[str, int], float] = {}
    for d in DIMS:
        p = problems[d]
        s1 = top_singular_value(p.An)
        print(f"d = {d}: lambda = {BANDWIDTH[d]:g}, alpha (ridge) = {p.alpha:.3g} "
              f"(sklearn: {p.alpha * 2 / n_features:.3g}); s_1(A) = {s1:.4g}, so "
              f"cond(A^T A + alpha I) <= {(s1 * s1 + p.alpha) / p.alpha:.2g}")
        print(f"  cholesky_lsqr: {lsqr_iterations(p)} LSQR iterations ({lsqr_iterations(p, 1e-13)}"
              " with tol=1e-13; untimed count)")
        res_ref = on_A(p, last[(REFERENCE, d)]) if times[(REFERENCE, d)] else None
        rows = []
        for v in vs:
            key = (v.name, d)
            if not times[key]:
                continue
            med = t(v.name, d)
            gf = v.flops(n, n_features) / med / 1e9 if v.flops else None
            res = v.residual(p, last[key]) if v.residual else None
            if v.residual is on_A and res_ref is not None:
                excess[key] = res - res_ref
            first_s, comp = first.get(key), compile_s.get(key)
            rows.append([
                v.name,
                v.group,
                f"{med:.3f}",
                " ".join(f"{x:.2f}" for x in times[key]),
                f"{first_s:.2f}" if first_s is not None else "-",
                f"{comp:.2f}" if comp is not None else "-",
                fmt_value(gf) if gf is not None else "-",
                fmt_value(ratio(REFERENCE, v.name, d)),
                f"{res:.1e}" if res is not None else "-",
                f"{excess[key]:.1e}" if key in excess else "-",
            ])
        print_table(["variant", "group", "time s", "per round", "first call", "compile",
                     "GFLOP/s", "lstsq/this", "rel. resid.", "excess"], rows)

    print("time s: median over rounds (compilation excluded). first call: the warm-up call "
          "(a run + compilation), if any. compile: jax's\ntracing + lowering + XLA compile time "
          "in the row's first call (jax.monitoring), at d = 1 for the solve rows (same shapes "
          "at both d).\nGFLOP/s: nominal FLOPs (docstring) / median time. lstsq/this: median "
          "per-round ratio of numpy lstsq's time to this row's\n(> 1: faster than numpy lstsq). "
          "rel. resid.: |A c - y| / |y| on the row's own problem (ridge rows are not "
          "least-squares solutions;\nsklearn: its own features). excess: rel. resid. minus numpy "
          "lstsq's, on the same A (< 0: a smaller residual than lstsq's).")
    if restrict:
        print("full mode: no warm-up runs (a call takes tens of seconds); the heavy rows (numpy "
              "qr, f32, fit qr) ran once, at d = 1 only;\nopdiff svd (3 nominal TFLOP) is left "
              "out: run --quick, or --all for everything at both d, warm-ups included.")
    print(f"nominal GFLOP: qr {qr_flops(n, n_features) / 1e9:.0f}, lstsq (gelsd) "
          f"{gelsd_flops(n, n_features) / 1e9:.0f}, svd with U "
          f"{svd_u_flops(n, n_features) / 1e9:.0f}, normal equations "
          f"{normal_flops(n, n_features) / 1e9:.0f}")
    print(f"matmul peak per round (jitted {PEAK_SIZE}x{PEAK_SIZE}): f32 "
          f"{' '.join(fmt_value(x) for x in peaks32)}, f64 "
          f"{' '.join(fmt_value(x) for x in peaks64)} GFLOP/s")
    print(f"total time: {time.perf_counter() - t_start:.0f} s")
    print()

    peak64 = median(peaks64)
    for d in DIMS:
        print(headline(f"rf_cholesky_lsqr_speedup_vs_numpy_d{d}",
                       ratio(REFERENCE, "opdiff cholesky_lsqr", d), "x",
                       ">= 3x numpy.linalg.lstsq at excess residual <= 1e-12", load))
    for d in DIMS:
        print(headline(f"rf_cholesky_lsqr_excess_residual_d{d}",
                       excess[("opdiff cholesky_lsqr", d)] / 1e-12, "x 1e-12",
                       "<= 1 x 1e-12: |A c - y| / |y| minus numpy lstsq's", load))
    for d in DIMS:
        print(headline(f"rf_cholesky_lsqr_tol13_speedup_vs_numpy_d{d}",
                       ratio(REFERENCE, "opdiff cholesky_lsqr tol=1e-13", d), "x",
                       "context (tol=1e-13; excess residual "
                       f"{excess[('opdiff cholesky_lsqr tol=1e-13', d)]:.1e})", load))
    for d in DIMS:
        print(headline(f"rf_lstsq_speedup_vs_numpy_d{d}", ratio(REFERENCE, "opdiff qr", d), "x",
                       "context (opdiff qr, Householder, vs numpy.linalg.lstsq)", load))
    for d in DIMS:
        print(headline(f"rf_cholesky_speedup_vs_numpy_d{d}",
                       ratio(REFERENCE, "opdiff cholesky+ridge", d), "x",
                       "context (normal equations + ridge: squares the condition number)",
                       load))
    for d in DIMS:
        if times[("numpy qr", d)]:
            print(headline(f"rf_lstsq_speedup_vs_numpy_qr_d{d}", ratio("numpy qr", "opdiff qr", d),
                           "x", "context (vs np.linalg.qr + solve_triangular)", load))
    for d in DIMS:
        gflops = qr_flops(n, n_features) / t("opdiff qr", d) / 1e9
        print(headline(f"rf_lstsq_gflops_d{d}", gflops, "GFLOP/s",
                       f"context: nominal QR count; f64 matmul peak {fmt_value(peak64)}",
                       load))
    if RBFSampler is not None:
        for d in DIMS:
            print(headline(f"rf_cholesky_lsqr_vs_sklearn_d{d}",
                           ratio("sklearn RBFSampler+Ridge", "opdiff fit cholesky_lsqr", d), "x",
                           ">= 1.5x (end to end; opdiff: least squares by cholesky_lsqr, "
                           "sklearn: normal equations + ridge)", load))
        for d in DIMS:
            print(headline(f"rf_vs_sklearn_d{d}",
                           ratio("sklearn RBFSampler+Ridge", "opdiff fit cholesky+ridge", d), "x",
                           "context (end to end, both normal equations + the same ridge)",
                           load))
        for d in DIMS:
            if times[("opdiff fit qr", d)]:
                print(headline(f"rf_qr_vs_sklearn_d{d}",
                               ratio("sklearn RBFSampler+Ridge", "opdiff fit qr", d), "x",
                               "context (opdiff's default QR end to end)", load))
    print(headline("matmul_peak_f32", median(peaks32), "GFLOP/s", "context", load))
    print(headline("matmul_peak_f64", peak64, "GFLOP/s", "context", load))
    print_footer(load)


if __name__ == "__main__":
    main()
