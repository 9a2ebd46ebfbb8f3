r"""The exact diffusion oracle: evaluation speed, and the NFE each sampler needs.

Run from the repository root::

    .venv/bin/python -m benchmarks.diffusion_oracle           # 256x256 oracle + 64x64 NFE
    .venv/bin/python -m benchmarks.diffusion_oracle --quick   # 128x128 oracle, coarser NFE search
    .venv/bin/python -m benchmarks.diffusion_oracle --quick --nfe-only --side 16  # smoke

float64 throughout (jax x64 is switched on for this script).

1. **Oracle evaluation.** :func:`opdiff.diffusion.oracle.sampler_law` — the exact output law
   :math:`N(m,w)` of a sampler, per DFT coefficient — for a 256 x 256 power-law field
   (:math:`\alpha=2.5`, ``power_law_field``) under VP (score_sde's schedule, DFT basis),
   1,000 log-SNR steps, for every sampler. Timed: the first call (trace + compile) and the
   median of warm calls; the KL and W2 from the law are included (``divergences``). The peer
   is what the oracle replaces: the same sampler run on samples with the exact denoiser
   (``samplers.sample``, a batch of 16 fields, same grid), which still leaves a Monte-Carlo
   estimate of the law (16 samples: no usable KL at d = 65,536).
2. **NFE to accuracy.** On a 64 x 64 field (d = 4096), exact denoiser, prior :math:`N(0,I)`,
   the smallest number of steps n for which KL(output ‖ :math:`p_{t_0}`)/d :math:`\le10^{-3}`
   (:math:`t_0` = ``t_min`` = 1e-3, the sampler's own target as in Benton et al.'s
   :math:`q_\delta`; the early-stopping gap KL(:math:`p_{t_0}`‖data) is printed beside it), for
   each sampler (one-step and multistep) and time grid (uniform, log-SNR, Karras
   :math:`\rho=7`): doubling, then bisection on n (KL is monotone in n on these grids; checked
   at the bracket ends). NFE = :func:`~opdiff.diffusion.samplers.nfe`.
3. **Optimised grids.** For the deterministic samplers, the grid of n steps optimised against
   the exact KL (:func:`opdiff.diffusion.grids.optimise_grid`, Adam from the log-SNR grid, a
   fixed number of iterations): the smallest n whose optimised grid reaches the target
   (bisection below the log-SNR grid's n, assuming monotonicity in n). **Transfer**: the grids
   optimised at :math:`\alpha=2.5` evaluated on fields with other :math:`\alpha` and on the
   digits' moment-matched Gaussian (8 x 8, DCT basis, its exact denoiser: not a learned
   model), against the log-SNR grid of the same n.

Headlines: the best NFE over samplers and grids (goal <= 10), the best per grid, the transfer
ratios, the oracle's warm time (goal < 1 s), the ratio of the sampler-on-samples time to the
oracle, and the f32 matmul peak for context. ``--nfe-only`` skips the timing part (1).
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks._common import (  # noqa: E402
    fmt_value,
    headline,
    matmul_peak_gflops,
    median,
    print_footer,
    print_header,
    print_table,
    time_call,
)
from opdiff import images  # noqa: E402
from opdiff.diffusion import grids as Gr  # noqa: E402
from opdiff.diffusion import oracle as O  # noqa: E402
from opdiff.diffusion import processes as P  # noqa: E402
from opdiff.diffusion import samplers as S  # noqa: E402

TARGET = 1e-3  # KL / d
GRIDS = {"uniform": S.uniform_grid, "log-snr": S.log_snr_grid, "karras": S.karras_grid}
METHODS = S.SAMPLERS + S.MULTISTEP
DETERMINISTIC = tuple(m for m in METHODS if m not in S.STOCHASTIC)
QUICK_OPT = ("dpm_solver_2m",)  # --quick optimises this one only (one compile per n tried)
TRANSFER_ALPHAS = (2.0, 3.0)
PC_EPS = 0.0  # the pc row uses score_sde's snr rule (oracle: root-mean-square norms)


def oracle_timing(side: int, n_steps: int, repeats: int):
    shape = (side, side)
    field = O.power_law_field(shape, "dft", alpha=2.5)
    proc = P.vp(shape, basis="dft")
    ts = S.log_snr_grid(proc, n_steps)
    rows, warm = [], {}
    for method in METHODS:
        def run():
            m, w = O.sampler_law(method, proc, field, ts)
            jax.block_until_ready(w)
            return m, w

        t0 = time.perf_counter()
        m, w = run()
        first = time.perf_counter() - t0
        times = time_call(run, repeats)
        t1 = time.perf_counter()
        div = O.divergences(m, w, field)
        t_div = time.perf_counter() - t1
        warm[method] = median(times)
        rows.append([method, fmt_value(first), f"{warm[method] * 1e3:.1f}", f"{t_div * 1e3:.1f}",
                     f"{div['kl'] / field.size:.3g}", f"{div['w2_sq']:.3g}"])
    print(f"-- oracle: {side}x{side} field (d = {side * side}), VP, {n_steps} log-SNR steps --")
    print_table(["sampler", "first call s", "warm ms", "KL+W2+TV ms", "KL/d vs data", "W2^2"],
                rows)
    return field, proc, ts, warm


def mc_timing(field, proc, ts, batch: int):
    den = field.denoiser(proc)
    x_T = proc.sample_prior(jax.random.key(0), batch, dtype=jnp.float64)

    def run():
        return jax.block_until_ready(S.sample("ancestral", den, proc, x_T, ts,
                                              key=jax.random.key(1)))

    run()
    return median(time_call(run, 3))


def kl_per_dim(method, proc, field, ts):
    m, w = O.sampler_law(method, proc, field, ts)
    m0, v0 = field.marginal(proc, jnp.asarray(ts[0]))
    return O.divergences(m, w, m0, v0)["kl"] / field.size


def min_steps(method, proc, field, grid_fn, n_max):
    """Smallest n with KL/d <= TARGET (doubling, then bisection); None if n_max is not enough."""
    def ok(n):
        return kl_per_dim(method, proc, field, grid_fn(proc, n)) <= TARGET

    hi = 1
    while not ok(hi):
        hi *= 2
        if hi > n_max:
            return None
    lo = hi // 2  # ok(lo) is False (or lo == 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def min_steps_optimised(method, proc, field, n_hi, iters):
    """Smallest n <= n_hi whose optimised grid reaches TARGET (bisection on [1, n_hi], n_hi
    known to reach it on the log-SNR grid), and the optimised grid of each n tried."""
    tried = {}

    def ok(n):
        if n < 2:
            return False
        tried[n] = Gr.optimise_grid(method, proc, field, n, iters=iters)
        return tried[n].kl_per_dim <= TARGET

    lo, hi = 1, n_hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi, tried


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--nfe-only", action="store_true", help="skip the oracle timing")
    parser.add_argument("--side", type=int, default=64, help="field side for the NFE search")
    parser.add_argument("--iters", type=int, default=None, help="grid optimisation iterations")
    args = parser.parse_args(argv)
    load = print_header("diffusion oracle")
    side, n_steps = (128, 1000) if args.quick else (256, 1000)
    if not args.nfe_only:
        field, proc, ts, warm = oracle_timing(side, n_steps, repeats=3 if args.quick else 5)
        batch = 16
        t_mc = mc_timing(field, proc, ts, batch)
        print(f"ancestral sampler on {batch} samples, same grid: {t_mc:.2f} s "
              f"({t_mc / warm['ancestral']:.0f}x the oracle's exact law)\n")

    shape = (args.side, args.side)
    f64 = O.power_law_field(shape, "dft", alpha=2.5)
    p64 = P.vp(shape, basis="dft")
    m0, v0 = f64.marginal(p64, jnp.asarray(p64.t_min))
    gap = O.divergences(m0, v0, f64)["kl"] / f64.size
    rows, best = [], {}
    n_max = 512 if args.quick else 4096
    iters = args.iters or (60 if args.quick else 300)
    opt_methods = QUICK_OPT if args.quick else DETERMINISTIC
    opt_grids = {}
    for method in METHODS:
        row, steps = [method], {}
        for gname, gfn in GRIDS.items():
            n = min_steps(method, p64, f64, gfn, n_max)
            steps[gname] = n
            cost = S.nfe(method, n) if n is not None else None
            row.append("-" if cost is None else str(cost))
            if cost is not None and cost < best.get(gname, (None, np.inf))[1]:
                best[gname] = (method, cost)
        if method in opt_methods and steps["log-snr"] is not None:
            n, tried = min_steps_optimised(method, p64, f64, steps["log-snr"], iters)
            cost = S.nfe(method, n)
            opt_grids[method] = tried.get(n) or Gr.optimise_grid(method, p64, f64, n,
                                                                 iters=iters)
            row.append(str(cost))
            if cost < best.get("optimised", (None, np.inf))[1]:
                best["optimised"] = (method, cost)
        else:
            row.append("n/a" if method not in DETERMINISTIC else "skipped")
        rows.append(row)
    print(f"-- NFE to KL(out || p_t0)/d <= {TARGET:g}: {args.side}x{args.side} power-law field "
          f"(alpha 2.5), VP, prior N(0, I), exact denoiser --")
    print(f"(early-stopping gap KL(p_t0 || data)/d = {gap:.3g} at t0 = {p64.t_min:g}; "
          f"'-' = not reached by {n_max} steps; 'n/a' = stochastic (no grid optimisation); "
          f"'skipped' = not optimised in this mode; "
          f"optimised: Adam, {iters} iterations per n)")
    print_table(["sampler", *GRIDS, "optimised"], rows)

    # transfer: the grids optimised at alpha = 2.5 on fields with other alphas
    targets = {f"alpha{a:g}": (O.power_law_field(shape, "dft", alpha=a), p64)
               for a in TRANSFER_ALPHAS}
    digits = 2.0 * images.load_digits(np.float64)[0] - 1.0  # [-1, 1]
    targets["digits"] = (O.field_from_samples(digits, "dct"), P.vp((8, 8), basis="dct"))
    trows, ratios = [], {}
    for method, r in opt_grids.items():
        n = len(r.ts) - 1
        for tname, (fa, pa) in targets.items():
            kl_opt = Gr.grid_kl(method, pa, fa, r.ts)
            kl_ls = Gr.grid_kl(method, pa, fa, S.log_snr_grid(pa, n))
            ratios.setdefault(tname, []).append(kl_opt / kl_ls)
            trows.append([method, str(n), tname, f"{kl_opt:.3g}", f"{kl_ls:.3g}",
                          f"{kl_opt / kl_ls:.3g}"])
    print("-- transfer: grids optimised at alpha 2.5 evaluated on other fields (KL/d): power "
          "laws with other alphas, and the digits' moment-matched Gaussian (8x8, DCT, exact "
          "denoiser; not a learned model) --")
    print_table(["sampler", "steps", "field", "optimised grid", "log-snr grid", "ratio"], trows)

    overall = min(best.items(), key=lambda kv: kv[1][1])
    print(headline(f"diffusion_best_nfe_kl1e-3_{args.side}x{args.side}", overall[1][1], "NFE",
                   f"<= 10 ({overall[1][0]}, {overall[0]} grid)", load))
    for gname, (meth, cost) in best.items():
        print(headline(f"diffusion_best_nfe_kl1e-3_{args.side}x{args.side}_{gname}", cost, "NFE",
                       f"<= 10 ({meth})", load))
    for tname, rs in ratios.items():
        print(headline(f"diffusion_optgrid_transfer_{tname}_max_kl_ratio", max(rs), "x",
                       "< 1 (optimised at alpha 2.5 vs log-SNR grid, same n; worst sampler)",
                       load))
    if not args.nfe_only:
        print(headline(f"diffusion_oracle_{side}x{side}_{n_steps}steps_ancestral",
                       warm["ancestral"], "s", "< 1 s (warm)", load))
        print(headline(f"diffusion_oracle_{side}x{side}_{n_steps}steps_slowest",
                       max(warm.values()), "s", "< 1 s (warm, slowest sampler)", load))
        print(headline("diffusion_mc_over_oracle", t_mc / warm["ancestral"], "x",
                       f"context ({batch}-sample ancestral run / exact law)", load))
        peak = matmul_peak_gflops()
        print(headline("matmul_peak_f32", peak, "GFLOP/s", "context", load))
    print_footer(load)


if __name__ == "__main__":
    main()
