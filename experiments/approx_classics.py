r"""Classic anchors of approximation theory, each measured against its formula.

    python -m experiments run approx_classics            # ~30 s on a 2-core CPU
    python -m experiments run approx_classics --preset full

1. Chebyshev interpolation of Runge's :math:`1/(1+25x^2)`: sup error vs degree against the rate
   :math:`\rho^{-n}`, :math:`\rho=(1+\sqrt{26})/5`, and the Bernstein-ellipse bound
   :math:`4M\rho'^{-n}/(\rho'-1)`, :math:`\rho'<\rho` (:mod:`opdiff.approx.chebyshev`).
2. Truncated Fourier series of :math:`1/(a-\cos x)`: squared :math:`L^2` error against the exact
   tail (:mod:`opdiff.approx.fourier`).
3. Yarotsky's sawtooth network for :math:`x^2`: sup error against :math:`2^{-2m-2}`.
4. Shallow ReLU MLPs trained on Runge's function with :func:`opdiff.fit`: grid RMS error vs width
   against the best error any continuous piecewise-linear function with ``(W+1)^L`` pieces
   reaches on that grid (:mod:`opdiff.approx.relu`). Numbers: ``notes/approx_classics.md``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from opdiff import claims as cl
from opdiff import plotting
from opdiff.approx import chebyshev, fourier, relu

from ._config import AboveOne, AtLeastTwo, Count, NonNegInt, Positive, Seed

NAME = "approx_classics"
DESCRIPTION = "Chebyshev/Runge, Fourier tail, Yarotsky x^2, trained ReLU MLP vs piece-count floor"
DTYPE = "float64"


@dataclasses.dataclass(frozen=True)
class Config:
    seed: Seed = 0
    cheb_degrees: tuple[Count, ...] = tuple(range(4, 124, 4))
    cheb_rho_bound: AboveOne = 1.2  # rho' < (1+sqrt 26)/5 for the rigorous Bernstein bound
    eval_points: Count = 4001
    fourier_a: AboveOne = 1.5
    fourier_orders: tuple[NonNegInt, ...] = tuple(range(0, 26))
    fourier_samples: Count = 256
    yarotsky_depths: tuple[Count, ...] = tuple(range(1, 13))
    mlp_widths: tuple[Count, ...] = (2, 4, 8, 16, 32, 64)
    mlp_depth: Count = 1
    mlp_points: AtLeastTwo = 512
    mlp_steps: Count = 4000
    mlp_lr: Positive = 1e-2
    steps_per_call: Count = 200

    def __post_init__(self):
        if min(self.cheb_degrees, default=0) < 1:
            raise ValueError("cheb_degrees must be positive")
        if not 1.0 < self.cheb_rho_bound < chebyshev.RUNGE_RHO:
            raise ValueError(f"cheb_rho_bound must be in (1, {chebyshev.RUNGE_RHO:.4f})")
        if self.fourier_a <= 1.0:
            raise ValueError("fourier_a must be > 1")
        if 2 * max(self.fourier_orders, default=0) + 1 > self.fourier_samples:
            raise ValueError(f"fourier_samples must be >= 2 max(fourier_orders) + 1 = "
                             f"{2 * max(self.fourier_orders, default=0) + 1} (no aliasing), "
                             f"got {self.fourier_samples}")
        if min(self.mlp_widths, default=0) < 1 or self.mlp_depth < 1 or self.mlp_steps < 1:
            raise ValueError("mlp_widths, mlp_depth and mlp_steps must be positive")

    def array_sizes(self) -> dict[str, float]:
        """Element counts of the largest arrays, by expression (the size guard of
        ``experiments/_config.py``)."""
        return {
            "eval_points * max(cheb_degrees)": self.eval_points * (max(self.cheb_degrees) + 1),
            "16 * fourier_samples * (2 * max(fourier_orders) + 1)":
                16 * self.fourier_samples * (2 * max(self.fourier_orders) + 1),
            "2 ** (max(yarotsky_depths) + 3)": 2 ** min(max(self.yarotsky_depths) + 3, 10_000),
            "mlp_points * max(mlp_widths)": self.mlp_points * max(self.mlp_widths),
        }


PRESETS = {
    "smoke": Config(
        cheb_degrees=tuple(range(4, 44, 4)),
        eval_points=1001,
        fourier_orders=tuple(range(0, 11)),
        yarotsky_depths=(1, 2, 3, 4),
        mlp_widths=(4, 8),
        mlp_points=128,
        mlp_steps=200,
        steps_per_call=100,
    ),
    "quick": Config(),
    "full": Config(
        cheb_degrees=tuple(range(4, 164, 4)),
        eval_points=20001,
        yarotsky_depths=tuple(range(1, 19)),
        mlp_widths=(2, 4, 8, 16, 32, 64, 128, 256),
        mlp_points=2048,
        mlp_steps=40000,
    ),
}


def run(cfg: Config, key) -> dict:
    degrees = np.asarray(cfg.cheb_degrees)
    cheb = chebyshev.sup_errors(chebyshev.runge, degrees, np.linspace(-1.0, 1.0, cfg.eval_points))
    M = chebyshev.ellipse_max(chebyshev.runge, cfg.cheb_rho_bound)
    orders = np.asarray(cfg.fourier_orders)
    depths = np.asarray(cfg.yarotsky_depths)
    x = jnp.linspace(-1.0, 1.0, cfg.mlp_points)[:, None]
    y = chebyshev.runge(x)
    widths = np.asarray(cfg.mlp_widths)
    keys = jax.random.split(jax.random.fold_in(key, 4), len(widths))
    rms = np.array([relu.fit_relu_mlp(x, y, int(w), cfg.mlp_depth, steps=cfg.mlp_steps,
                                      lr=cfg.mlp_lr, steps_per_call=cfg.steps_per_call, key=k)
                    for w, k in zip(widths, keys)])
    return dict(
        cheb_degrees=degrees, cheb_sup_error=cheb, cheb_rho=chebyshev.RUNGE_RHO,
        cheb_rho_fit=chebyshev.geometric_rate(degrees, cheb),
        cheb_rate=chebyshev.RUNGE_RHO ** (-degrees.astype(float)),
        cheb_bernstein_rho=cfg.cheb_rho_bound, cheb_bernstein_M=M,
        cheb_bernstein_bound=chebyshev.interpolation_bound(M, cfg.cheb_rho_bound, degrees),
        fourier_a=cfg.fourier_a, fourier_orders=orders,
        fourier_sq_error=fourier.truncation_sq_errors(
            lambda t: fourier.inverse_cosine(t, cfg.fourier_a), orders, cfg.fourier_samples),
        fourier_exact_tail=fourier.inverse_cosine_tail(cfg.fourier_a, orders),
        yarotsky_depths=depths, yarotsky_sup_error=relu.yarotsky_sup_errors(depths),
        yarotsky_exact=relu.yarotsky_error(depths),
        mlp_depth=cfg.mlp_depth, mlp_widths=widths, mlp_rms_error=rms,
        mlp_max_pieces=np.asarray([relu.max_pieces(int(w), cfg.mlp_depth) for w in widths]),
        mlp_piece_floor=relu.piece_floor_rms(np.asarray(x[:, 0]), np.asarray(y[:, 0]), widths,
                                             cfg.mlp_depth),
    )


def claims(cfg: Config, r: dict) -> list[cl.Claim]:
    usable = r["fourier_exact_tail"] > 1e-20
    out = [
        cl.within("Chebyshev interpolation of Runge converges at rate rho=(1+sqrt26)/5 (fitted "
                  "rho within 1%)", r["cheb_rho_fit"], r["cheb_rho"], rtol=0.01),
        cl.upper_bound(f"Chebyshev sup error <= Bernstein bound 4M rho'^-n/(rho'-1), "
                       f"rho'={cfg.cheb_rho_bound} (every n)", r["cheb_sup_error"],
                       r["cheb_bernstein_bound"]),
        cl.within("Truncated Fourier L2 error^2 of 1/(a-cos x) equals the exact tail (rel. 1e-6)",
                  r["fourier_sq_error"][usable], r["fourier_exact_tail"][usable], rtol=1e-6),
        cl.within("Yarotsky sawtooth network: sup error = 2^(-2m-2) exactly (rel. 1e-12)",
                  r["yarotsky_sup_error"], r["yarotsky_exact"], rtol=1e-12),
        cl.lower_bound("Trained ReLU MLP grid RMS error >= best (W+1)^L-piece linear spline",
                       r["mlp_rms_error"], r["mlp_piece_floor"], rtol=1e-9),
    ]
    if len(r["mlp_widths"]) >= 3:  # a slope with a standard error needs three widths
        slope, se = cl.loglog_slope(r["mlp_widths"], r["mlp_rms_error"])
        out.append(cl.finding("Trained ReLU MLP: log-log slope of the grid RMS error vs width "
                              "(a measured trend: theory bounds the best net, not a trained one)",
                              slope, se))
    return out


def plot(r: dict, out_dir: Path) -> list[str]:
    fig, axes = plotting.new_figure(2, 2)
    rho = r["cheb_bernstein_rho"]
    plotting.error_panel(
        axes[0, 0], r["cheb_degrees"], {"Chebyshev interpolant, sup error": r["cheb_sup_error"]},
        {r"$\rho^{-n}$, $\rho=(1+\sqrt{26})/5$": r["cheb_rate"],
         rf"$4M\rho'^{{-n}}/(\rho'-1)$, $\rho'={rho}$": r["cheb_bernstein_bound"]},
        title="Runge $1/(1+25x^2)$", xlabel="degree n",
    )
    plotting.error_panel(
        axes[0, 1], r["fourier_orders"], {r"$\|f-S_Nf\|_2^2$ (measured)": r["fourier_sq_error"]},
        {"exact tail": r["fourier_exact_tail"]},
        title=rf"Fourier, $1/({r['fourier_a']}-\cos x)$", xlabel="truncation N",
        ylabel="squared L2 error",
    )
    plotting.error_panel(
        axes[1, 0], r["yarotsky_depths"], {"sawtooth net, sup error": r["yarotsky_sup_error"]},
        {r"$2^{-2m-2}$": r["yarotsky_exact"]}, title=r"Yarotsky, $x^2$ on [0,1]",
        xlabel="depth m",
    )
    depth = r["mlp_depth"]
    plotting.error_panel(
        axes[1, 1], r["mlp_widths"], {f"trained ReLU MLP (depth {depth})": r["mlp_rms_error"]},
        {f"best {('W+1' if depth == 1 else '(W+1)^L')}-piece linear spline":
         r["mlp_piece_floor"]},
        title="Runge, trained through opdiff.fit", xlabel="width W", ylabel="grid RMS error",
        logx=True,
    )
    return plotting.save(fig, Path(out_dir) / "approx_classics.png")
