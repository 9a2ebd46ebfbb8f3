r"""The paper's operator-learning problems as datasets and models (Lu et al. 2021, with opdiff's
solvers): the nonlinear ODE, the gravity pendulum, diffusion--reaction and viscous Burgers.

Each builder returns a :class:`Problem`: a training set (triplets, or aligned for Burgers), a
test set aligned on the *full* output grid, the quadrature weights of that grid (for Bochner
errors and PCA floors, :func:`opdiff.deeponet_bounds.componentwise_floor`) and the paper's
unstacked ReLU DeepONet with Glorot-normal initialisation.

* ``nonlinear_ode``: :math:`s'=-s^2+u`, :math:`s(0)=0`. The Riccati term blows up where
  :math:`u` is strongly negative, so the input measure is the GRF **conditioned on**
  :math:`\max_x|s|\le` ``output_bound`` (:class:`BoundedOutputs`, rejection sampling).
* ``pendulum``: :math:`s_1'=s_2,\ s_2'=-k\sin s_1+u`; both components are outputs
  (``n_outputs = 2``, each in its own ``p``-space).
* ``diffusion_reaction``: :math:`s_t=Ds_{xx}+ks^2+u(x)` on :math:`[0,1]^2`, ``P`` random
  :math:`(x,t)` points per training function, the trunk reads :math:`(x,t)`; product
  trapezoid weights on the (t-major) test grid.
* ``burgers``: :math:`u_t+uu_x=\nu u_{xx}`, periodic; inputs a periodic power-law field with
  the spectrum of the FNO/CMAME Burgers measure :math:`625(-\Delta+25I)^{-2}` without its
  constant mode (:func:`burgers_input_variance`), read at the grid points
  (:func:`periodic_aligned`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from opdiff import data, functions
from opdiff.deeponet_bounds import trapezoid_weights
from opdiff.nets.deeponet import DeepONet
from opdiff.operators import catalog

__all__ = ["BURGERS_K0", "BoundedOutputs", "Problem", "burgers_input_variance",
           "burgers_problem", "diffusion_reaction_problem", "evaluate_problem", "ode_problem",
           "paper_deeponet", "periodic_aligned"]

BURGERS_K0 = 5.0 / (2.0 * np.pi)  # (-Delta + 25)^-2 = ((2 pi k)^2 + 5^2)^-2 ∝ (k^2 + k0^2)^-2


@dataclasses.dataclass
class Problem:
    """A dataset pair and its model.

    Attributes:
        name, title: identifier and a figure title.
        train: training set (unaligned triplets or aligned).
        test: aligned test set on the full output grid.
        weights: ``[P]`` quadrature weights of the test points.
        model: the untrained DeepONet.
        n_outputs: output components.
        extra: ``x`` (and ``t``) of the output grid, ``p``, and for the nonlinear ODE the
            ``acceptance`` rate of the conditioned input measure.
    """

    name: str
    title: str
    train: Any
    test: Any
    weights: np.ndarray
    model: DeepONet
    n_outputs: int = 1
    extra: dict = dataclasses.field(default_factory=dict)


def paper_deeponet(n_sensors: int, coord_dim: int, p: int, width: int, depth: int, key,
                   n_outputs: int = 1) -> DeepONet:
    """Lu et al.'s unstacked DeepONet: ReLU, Glorot normal, equal branch and trunk widths."""
    return DeepONet(n_sensors, coord_dim, p, branch_width=width, branch_depth=depth,
                    trunk_width=width, trunk_depth=depth, n_outputs=n_outputs,
                    activation="relu", kernel_init="glorot_normal", key=key)


@dataclasses.dataclass(frozen=True)
class BoundedOutputs:
    """The input measure of ``space`` conditioned on :math:`\\max|G(u)|\\le` ``bound``.

    Rejection sampling in blocks of ``block`` draws (one shape, one compilation of sampler and
    solver); a function space for :func:`opdiff.data.make_unaligned` and friends. Draw ``i``
    of :meth:`sample` is block ``fold_in(key, i)`` of ``space``; NaN and inf outputs fail.
    """

    space: Any
    operator: Any  # an OperatorSpec on space.grid
    bound: float
    block: int = 128

    @property
    def grid(self):
        return self.space.grid

    def _draw(self, key, dtype):
        u = np.asarray(self.space.sample(self.block, key=key, dtype=dtype))
        s = np.asarray(self.operator.apply(jnp.asarray(u))).reshape(self.block, -1)
        return u, np.all(np.abs(s) <= self.bound, axis=1)  # NaN and inf fail too

    def sample(self, n: int, *, key: PRNGKeyArray, dtype=jnp.float32):
        """``n`` accepted draws, in order.

        Raises:
            RuntimeError: if ``100 + 2 n / block`` blocks do not give ``n`` of them.
        """
        kept, have, i = [], 0, 0
        while have < n:
            u, ok = self._draw(jax.random.fold_in(key, i), dtype)
            kept.append(u[ok])
            have += int(ok.sum())
            i += 1
            if i > 100 + 2 * n // self.block:
                raise RuntimeError(f"fewer than {n} of {i * self.block} draws have "
                                   f"|G(u)| <= {self.bound}")
        return jnp.asarray(np.concatenate(kept)[:n])

    def acceptance(self, n_blocks: int, *, key: PRNGKeyArray) -> float:
        """The fraction of ``n_blocks * block`` draws of ``space`` that satisfy the bound."""
        oks = [self._draw(jax.random.fold_in(key, i), jnp.float32)[1] for i in range(n_blocks)]
        return float(np.mean(np.concatenate(oks)))


def burgers_input_variance(n: int) -> float:
    r"""Pointwise variance of :math:`625(-\Delta+25I)^{-2}` without its constant mode on an
    ``n``-point periodic grid: :math:`\sum_{k\ne0}625/((2\pi k)^2+25)^2` over the FFT
    frequencies of the grid."""
    k = np.fft.fftfreq(n, 1.0 / n)
    k = k[k != 0]
    return float(np.sum(625.0 / ((2 * np.pi * k) ** 2 + 25.0) ** 2))


def periodic_aligned(field, op, n_funcs: int, key: PRNGKeyArray) -> data.AlignedDataset:
    """An aligned dataset whose sensors are the periodic grid points themselves (the grid lacks
    ``x = 1``, so the inputs are read, not interpolated): ``field.sample(n_funcs, key=key)`` and
    ``op.apply`` of it."""
    u = field.sample(n_funcs, key=key)
    s = np.asarray(op.apply(u))
    x = np.arange(field.n) / field.n
    return data.AlignedDataset(np.asarray(u), x, np.asarray(op.output_points), s,
                               {"operator": op.name, "operator_params": op.params,
                                "layout": "aligned", "space": "PeriodicPowerLawField"})


def ode_problem(name: str, keys, *, length_scale: float, n_sensors: int, grid: int,
                substeps: int, n_train: int, n_test: int, p: int, width: int, depth: int,
                output_bound: float, pendulum_k: float, chunk: int) -> Problem:
    """The nonlinear ODE or the pendulum on ``grid`` points of [0, 1] (see the module).

    ``keys``: training set, test set, model, acceptance estimate (32 blocks).
    """
    grf = functions.GaussianRandomField(length_scale=length_scale, n_grid=grid)
    extra = {}
    if name == "nonlinear_ode":
        op = catalog.nonlinear_ode(grf.grid, substeps=substeps)
        title, k_out = "nonlinear ODE  s' = -s² + u", 1
        space = BoundedOutputs(grf, op, output_bound, block=chunk)
        extra["acceptance"] = space.acceptance(32, key=keys[3])
    elif name == "pendulum":
        op = catalog.pendulum(grf.grid, k=pendulum_k, substeps=substeps)
        title, k_out, space = f"pendulum  s₁'' = −k sin s₁ + u, k = {pendulum_k:g}", 2, grf
    else:
        raise ValueError(f"name must be 'nonlinear_ode' or 'pendulum', got {name!r}")
    kw = dict(sensors=functions.equispaced_sensors(n_sensors), interp="cubic", chunk=chunk)
    train = data.make_unaligned(space, op, n_funcs=n_train, key=keys[0], **kw)
    test = data.make_aligned(space, op, n_funcs=n_test, key=keys[1], **kw)
    model = paper_deeponet(n_sensors, 1, p, width, depth, keys[2], k_out)
    return Problem(name, title, train, test, trapezoid_weights(grf.grid), model, k_out,
                   {"x": grf.grid, "p": p, **extra})


def diffusion_reaction_problem(keys, *, length_scale: float, n_sensors: int, nx: int, nt: int,
                               D: float, k: float, n_train: int, points_per_func: int,
                               n_test: int, p: int, width: int, depth: int,
                               chunk: int) -> Problem:
    """Diffusion--reaction on ``nx`` x ``nt + 1`` (x, t) points (see the module)."""
    grf = functions.GaussianRandomField(length_scale=length_scale, n_grid=nx)
    op = catalog.diffusion_reaction(nx, nt, D=D, k=k)
    kw = dict(sensors=functions.equispaced_sensors(n_sensors), interp="cubic", chunk=chunk)
    train = data.make_unaligned(grf, op, n_funcs=n_train, key=keys[0],
                                points_per_func=points_per_func, **kw)
    test = data.make_aligned(grf, op, n_funcs=n_test, key=keys[1], **kw)
    x, t = np.linspace(0.0, 1.0, nx), np.linspace(0.0, 1.0, nt + 1)
    weights = np.outer(trapezoid_weights(t), trapezoid_weights(x)).ravel()  # t-major
    model = paper_deeponet(n_sensors, 2, p, width, depth, keys[2])
    return Problem("diffusion_reaction", f"diffusion–reaction  D = k = {D:g}", train, test,
                   weights, model, 1, {"x": x, "t": t, "p": p})


def burgers_problem(keys, *, n: int, nu: float, t_final: float, nt: int, n_train: int,
                    n_test: int, p: int, width: int, depth: int) -> Problem:
    """Viscous Burgers on ``n`` periodic points, ETDRK4 with ``nt`` steps (see the module)."""
    field = functions.PeriodicPowerLawField(n=n, alpha=4.0, k0=BURGERS_K0,
                                            variance=burgers_input_variance(n))
    op = catalog.burgers(n, nu=nu, t_final=t_final, nt=nt)
    train = periodic_aligned(field, op, n_train, keys[0])
    test = periodic_aligned(field, op, n_test, keys[1])
    model = paper_deeponet(n, 1, p, width, depth, keys[2])
    return Problem("burgers", f"Burgers ν = {nu:g}, T = {t_final:g}", train, test,
                   np.full(n, 1.0 / n), model, 1, {"x": np.arange(n) / n, "p": p})


def evaluate_problem(model, prob: Problem, *, n_examples: int = 3) -> dict:
    r"""A trained model on a problem's test set: the metrics, the floor, examples.

    Returns :func:`opdiff.operator_learning.evaluate`'s ``metrics``; the Bochner error
    ``bochner_l2_error`` beside the componentwise PCA floor
    (:func:`opdiff.deeponet_bounds.componentwise_floor` for ``p = 1..max(2p, 10)``:
    ``floor_ps``, ``pca_floor_curve``, ``pca_floor_p``, ``rms_norm``, their ratios
    ``relative_*``, ``smallest_p_with_floor_below_error``); ``rel_l2_per_function``; and
    examples: the functions at the 10 %..90 % quantiles of the relative error (``n_examples``
    of them; diffusion--reaction: the median one), ``example_truth``, ``example_pred``,
    ``example_rel``.
    """
    from opdiff import operator_learning as ol
    from opdiff.deeponet_bounds import componentwise_floor

    pred = ol.predict(model, prob.test)
    p = prob.extra["p"]
    fe = componentwise_floor(prob.test.outputs, pred, prob.weights, max(2 * p, 10), p)
    below = np.flatnonzero(fe["floor"] <= fe["bochner"])
    v = np.asarray(prob.test.outputs)
    rel = ol.per_function_rel_l2(pred.reshape(len(v), -1), v.reshape(len(v), -1))
    order = np.argsort(rel)
    picks = ([int(order[len(rel) // 2])] if prob.name == "diffusion_reaction" else
             [int(order[int(q * (len(rel) - 1))]) for q in np.linspace(0.1, 0.9, n_examples)])
    return dict(metrics=ol.evaluate(model, prob.test, pred=pred), bochner_l2_error=fe["bochner"],
                relative_bochner_l2_error=fe["bochner"] / fe["rms_norm"],
                smallest_p_with_floor_below_error=int(fe["ps"][below[0]]) if below.size
                else None, floor_ps=fe["ps"], pca_floor_curve=fe["floor"],
                pca_floor_p=fe["floor_p"], rms_norm=fe["rms_norm"],
                relative_pca_floor_p=fe["floor_p"] / fe["rms_norm"], rel_l2_per_function=rel,
                example_truth=v[picks], example_pred=pred[picks], example_rel=rel[picks])
