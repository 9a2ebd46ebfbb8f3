r"""Classic anchors of approximation theory, each measured against its formula.

    python -m experiments run approx_classics            # ~30 s on a 2-core CPU
    python -m experiments run approx_classics --preset full

1. Chebyshev interpolation of Runge's :math:`1/(1+25x^2)`: sup error vs degree :math:`n` against
   the rate :math:`\rho^{-n}`, :math:`\rho=(1+\sqrt{26})/5`, and against the rigorous
   Bernstein-ellipse bound :math:`4M\rho'^{-n}/(\rho'-1)` for a :math:`\rho'<\rho`.
2. Truncated Fourier series of :math:`1/(a-\cos x)`: :math:`L^2` error against the exact tail
   :math:`2r^{2(N+1)}/((a^2-1)(1-r^2))`.
3. Yarotsky's sawtooth network for :math:`x^2`: sup error against :math:`2^{-2m-2}` (exact).
4. Shallow ReLU MLPs trained on Runge's function with the opdiff engine: grid RMS error vs width
   against the best error any continuous piecewise-linear function with ``width + 1`` pieces
   can reach on that grid (a floor no network of that width can beat).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import opdiff
from opdiff import plotting
from opdiff.approx import chebyshev, fourier, relu
from opdiff.nets import MLP

from experiments._config import AboveOne, AtLeastTwo, Count, NonNegInt, Positive, Seed
from experiments._report import Report

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


def chebyshev_part(cfg: Config) -> dict:
    x = np.linspace(-1.0, 1.0, cfg.eval_points)
    fx = chebyshev.runge(x)
    degrees = np.asarray(cfg.cheb_degrees)

    def sup_error(n: int) -> float:
        nodes = np.asarray(chebyshev.points(n))
        p = chebyshev.interpolate(chebyshev.runge(nodes), x)
        return float(np.max(np.abs(np.asarray(p) - fx)))

    errors = np.array([sup_error(int(n)) for n in degrees])
    rho = chebyshev.RUNGE_RHO
    usable = errors > 1e-13  # above float64 round-off
    slope = np.polyfit(degrees[usable], np.log(errors[usable]), 1)[0]
    M = chebyshev.ellipse_max(chebyshev.runge, cfg.cheb_rho_bound)
    bound = chebyshev.interpolation_bound(M, cfg.cheb_rho_bound, degrees)
    return dict(degrees=degrees, errors=errors, rho=rho, rho_fit=float(np.exp(-slope)),
                rate=rho ** (-degrees.astype(float)), bound=bound, M=M)


def fourier_part(cfg: Config) -> dict:
    a = cfg.fourier_a
    orders = np.asarray(cfg.fourier_orders)
    values = fourier.inverse_cosine(fourier.grid(cfg.fourier_samples), a)
    # Measure on a different, finer grid, shifted off the sample points.
    x = fourier.grid(8 * cfg.fourier_samples) + 0.5 / cfg.fourier_samples
    fx = np.asarray(fourier.inverse_cosine(x, a))

    def sq_error(n: int) -> float:
        s_n = fourier.evaluate(fourier.coefficients(values, n), x)
        return float(np.mean((fx - np.asarray(s_n)) ** 2))

    sq = np.array([sq_error(int(n)) for n in orders])
    tail = fourier.inverse_cosine_tail(a, orders)
    return dict(orders=orders, sq_errors=sq, tail=tail)


def yarotsky_part(cfg: Config) -> dict:
    depths = np.asarray(cfg.yarotsky_depths)
    errors = []
    for m in depths:
        x = np.linspace(0.0, 1.0, 2 ** (int(m) + 3) + 1)  # contains every midpoint
        errors.append(float(np.max(np.abs(x * x - np.asarray(relu.yarotsky_square(x, int(m)))))))
    return dict(depths=depths, errors=np.array(errors), exact=relu.yarotsky_error(depths),
                neurons=3 * depths)


def _train_shallow(width: int, cfg: Config, x, y, key) -> float:
    init_key, bias_key, train_key = jax.random.split(key, 3)
    net = MLP(1, 1, width=width, depth=cfg.mlp_depth, activation="relu", key=init_key,
              param_dtype=jnp.float64)
    # nnx.Linear starts with zero biases, which puts every first-layer breakpoint -b/w at 0;
    # spread them uniformly over the interval instead.
    first = net.layers[0]
    t = jax.random.uniform(bias_key, (width,), jnp.float64, -1.0, 1.0)
    first.bias[...] = -first.kernel[...][0] * t

    def loss(model, batch, key):
        xb, yb = batch
        return jnp.mean((jax.vmap(model)(xb) - yb) ** 2)

    schedule = optax.cosine_decay_schedule(cfg.mlp_lr, cfg.mlp_steps, alpha=1e-2)
    result = opdiff.fit(loss, net, optax.adam(schedule), (x, y), steps=cfg.mlp_steps,
                        key=train_key, steps_per_call=cfg.steps_per_call, progress=False)
    pred = jax.vmap(result.params)(x)
    return float(jnp.sqrt(jnp.mean((pred - y) ** 2)))


def mlp_part(cfg: Config, key) -> dict:
    x = jnp.linspace(-1.0, 1.0, cfg.mlp_points)[:, None]
    y = chebyshev.runge(x)
    widths = np.asarray(cfg.mlp_widths)
    keys = jax.random.split(key, len(widths))
    rms = np.array([_train_shallow(int(w), cfg, x, y, k) for w, k in zip(widths, keys)])
    pieces = [relu.max_pieces(int(w), cfg.mlp_depth) for w in widths]
    floor_sse = relu.best_piecewise_linear_sse(np.asarray(x[:, 0]), np.asarray(y[:, 0]), pieces)
    floor = np.sqrt(floor_sse / cfg.mlp_points)
    return dict(widths=widths, rms=rms, floor=floor, pieces=np.asarray(pieces))


def run(cfg: Config, out_dir: Path) -> Report:
    key = jax.random.key(cfg.seed)
    rep = Report()
    ch = chebyshev_part(cfg)
    fo = fourier_part(cfg)
    ya = yarotsky_part(cfg)
    ml = mlp_part(cfg, jax.random.fold_in(key, 4))

    rep.metrics.update(
        cheb_degrees=ch["degrees"], cheb_sup_error=ch["errors"], cheb_rho_fit=ch["rho_fit"],
        cheb_error_over_rate=ch["errors"] / ch["rate"],
        fourier_orders=fo["orders"], fourier_sq_error=fo["sq_errors"],
        yarotsky_depths=ya["depths"], yarotsky_sup_error=ya["errors"],
        mlp_widths=ml["widths"], mlp_rms_error=ml["rms"],
        mlp_floor_over_error=ml["floor"] / ml["rms"],
    )
    rep.bounds.update(
        cheb_rho=ch["rho"], cheb_rate=ch["rate"], cheb_bernstein_bound=ch["bound"],
        cheb_bernstein_rho=cfg.cheb_rho_bound, cheb_bernstein_M=ch["M"],
        fourier_exact_tail=fo["tail"], yarotsky_exact=ya["exact"],
        mlp_piece_floor=ml["floor"], mlp_max_pieces=ml["pieces"],
    )

    rep.check(
        "Chebyshev interpolation of Runge converges at rate rho=(1+sqrt26)/5 (fitted rho within 1%)",
        ch["rho_fit"], ch["rho"], abs(ch["rho_fit"] / ch["rho"] - 1) < 0.01,
    )
    ratio = ch["errors"] / ch["bound"]
    rep.check(
        f"Chebyshev sup error <= Bernstein bound 4M rho'^-n/(rho'-1), rho'={cfg.cheb_rho_bound} "
        "(max error/bound over n)",
        float(ratio.max()), 1.0, bool(np.all(ratio <= 1.0)),
    )
    usable = fo["tail"] > 1e-20
    rel = np.abs(fo["sq_errors"][usable] / fo["tail"][usable] - 1)
    rep.check(
        "Truncated Fourier L2 error^2 of 1/(a-cos x) equals the exact tail (max rel. deviation)",
        float(rel.max()), 1e-6, bool(rel.max() < 1e-6),
    )
    rel_y = np.abs(ya["errors"] / ya["exact"] - 1)
    rep.check(
        "Yarotsky sawtooth network: sup error = 2^(-2m-2) exactly (max rel. deviation)",
        float(rel_y.max()), 1e-12, bool(rel_y.max() < 1e-12),
    )
    gap = ml["rms"] / ml["floor"]
    rep.check(
        "Trained ReLU MLP grid RMS error >= best (W+1)^L-piece linear spline (min error/floor)",
        float(gap.min()), 1.0, bool(np.all(ml["rms"] >= ml["floor"] * (1 - 1e-9))),
    )
    if len(ml["widths"]) >= 2:
        slope = float(np.polyfit(np.log(ml["widths"]), np.log(ml["rms"]), 1)[0])
        rep.metrics["mlp_loglog_slope"] = slope
        rep.check(
            "Trained ReLU MLP error decreases with width (log-log slope < 0)",
            slope, 0.0, slope < 0,
        )

    fig, axes = plotting.new_figure(2, 2)
    plotting.error_panel(
        axes[0, 0], ch["degrees"], {"Chebyshev interpolant, sup error": ch["errors"]},
        {r"$\rho^{-n}$, $\rho=(1+\sqrt{26})/5$": ch["rate"],
         rf"$4M\rho'^{{-n}}/(\rho'-1)$, $\rho'={cfg.cheb_rho_bound}$": ch["bound"]},
        title="Runge $1/(1+25x^2)$", xlabel="degree n",
    )
    plotting.error_panel(
        axes[0, 1], fo["orders"], {r"$\|f-S_Nf\|_2^2$ (measured)": fo["sq_errors"]},
        {"exact tail": fo["tail"]},
        title=rf"Fourier, $1/({cfg.fourier_a}-\cos x)$", xlabel="truncation N",
        ylabel="squared L2 error",
    )
    plotting.error_panel(
        axes[1, 0], ya["depths"], {"sawtooth net, sup error": ya["errors"]},
        {r"$2^{-2m-2}$": ya["exact"]},
        title=r"Yarotsky, $x^2$ on [0,1]", xlabel="depth m",
    )
    plotting.error_panel(
        axes[1, 1], ml["widths"], {f"trained ReLU MLP (depth {cfg.mlp_depth})": ml["rms"]},
        {f"best {('W+1' if cfg.mlp_depth == 1 else '(W+1)^L')}-piece linear spline": ml["floor"]},
        title="Runge, trained through opdiff.fit", xlabel="width W", ylabel="grid RMS error",
        logx=True,
    )
    rep.figures += plotting.save(fig, out_dir / "approx_classics.png")
    return rep
