r"""Training recipes for DeepONets: the paper's Adam run, and Adam followed by L-BFGS.

A *recipe* is the optimiser schedule of :func:`opdiff.operator_learning.train_deeponet`:

* ``"paper"`` (Lu et al. 2021): Adam with a (constant) learning rate for ``steps`` steps.
* ``"adam_lbfgs"``: Adam for ``steps`` steps, then ``lbfgs_steps`` iterations of L-BFGS
  (:mod:`opdiff.lbfgs`: ``lbfgs_memory`` curvature pairs in the compact representation, an
  Armijo backtracking line search) on the *full* training set.

Why the second phase works. Full batch, the loss :math:`L(\theta)` is a deterministic
function, smooth except on the ReLU kinks (measure zero, and crossed rarely once the
activation pattern settles). Near a minimum Adam with a fixed rate :math:`\eta` is a
(diagonally preconditioned) gradient descent: it converges only along curvature directions
with :math:`\eta\lambda` large enough, and the DeepONet's Hessian is badly conditioned
(the trunk's and branch's last layers multiply), so the slow directions take tens of thousands
of steps and the fast ones make it oscillate at a larger rate. L-BFGS builds from the last
:math:`m` steps :math:`s_k=\theta_{k+1}-\theta_k`, :math:`y_k=\nabla L_{k+1}-\nabla L_k` an
inverse-Hessian estimate :math:`H_k` (applied in its compact form) and steps
:math:`\theta_{k+1}=\theta_k-\alpha_kH_k\nabla L_k`, :math:`\alpha_k` from the line search:
no learning rate to tune, and superlinear convergence on a strongly convex quadratic region.
On the ReLU DeepONet it is linear and slows as the loss falls (the kinks of the trunk's
piecewise-linear functions keep moving), but far faster per iteration than Adam.
It needs a deterministic objective (minibatch noise breaks the secant pairs), and a good
start: far from a minimum the activation pattern still changes and the curvature model is
stale, which is what the Adam phase is for. Each iteration costs one value-and-gradient when
the line search accepts its first trial step (most of them), more when it does not.

Everything is deterministic: no randomness enters the L-BFGS phase, so a fixed key and data
give bit-identical parameters (on one device and XLA build).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from opdiff import lbfgs
from opdiff import train as _train
from opdiff.nets._compat import nnx

__all__ = ["RECIPES", "recipe", "lbfgs_phase"]

# Keyword arguments of train_deeponet. "paper": Lu et al. 2021 (lululxvi/deeponet defaults).
# "adam_lbfgs": chosen by runs on the antiderivative problem of benchmarks.deeponet (branch
# [100, 40, 40] x trunk [1, 40, 40], 10 000 triplets, its seeds), test MSE after Adam (3e-3
# after a 200-step warm-up, cosine decay to 3e-4) then opdiff.lbfgs, iterations to the first
# evaluation (every 1000) at or below 1e-6:
#   Adam 4000 + L-BFGS with 50 / 100 / 200 / 300 / 400 pairs: 16 000 / 14 000 / 10 000 /
#   9 000 / 8 000 L-BFGS iterations (an iteration costs more with more pairs: 4.0 to 6.1 ms);
#   Adam 2000 + 300 pairs: 7 000 (the fastest: 46 s in all); Adam 1000 + 300 pairs: not
#   reached in 16 000 (1.25e-6). Adam alone (1e-3, the paper's) needs 58 000 steps.
# The choice is tuned on this one problem and seed; ``lbfgs_steps`` is a cap with margin.
# (The first version, 4000 Adam steps then optax.lbfgs with 200 pairs, took 16 000.)
RECIPES: dict[str, dict] = {
    "paper": dict(steps=50_000, lr=1e-3, schedule="constant", warmup_steps=0, lbfgs_steps=0),
    "adam_lbfgs": dict(steps=2_000, lr=3e-3, schedule="cosine", final_lr_fraction=0.1,
                       warmup_steps=200, lbfgs_steps=26_000, lbfgs_memory=300),
}


def recipe(name: str, **overrides) -> dict:
    """The keyword arguments of :func:`~opdiff.operator_learning.train_deeponet` for a recipe.

    Args:
        name: one of :data:`RECIPES` (``"paper"``, ``"adam_lbfgs"``).
        **overrides: keywords replacing the recipe's (e.g. ``lbfgs_steps`` for a shorter run).

    Returns:
        A new dict, e.g. ``train_deeponet(model, dataset, key=key, **recipe("adam_lbfgs"))``.

    Raises:
        ValueError: for an unknown name.
    """
    if name not in RECIPES:
        raise ValueError(f"recipe name must be one of {tuple(RECIPES)}, got {name!r}")
    return {**RECIPES[name], **overrides}


def _lbfgs_chunk(loss: Callable, n: int):
    """A jitted ``(theta, state) -> (theta, state, losses [n])`` running ``n`` iterations."""
    value_and_grad = jax.value_and_grad(loss)
    return jax.jit(lambda theta, state: lbfgs.run(value_and_grad, theta, state, n))


def lbfgs_phase(loss_fn: Callable, model, batch, *, steps: int, memory: int = 10,
                segment: int | None = None,
                on_segment: Callable[[int, object], None] | None = None):
    """Minimise ``loss_fn(model, batch, None)`` over ``model``'s parameters by L-BFGS.

    Args:
        loss_fn: the engine loss ``loss(model, batch, key)`` (the key is passed as ``None``:
            the objective must be deterministic).
        model: an nnx module; its ``nnx.Param`` leaves are optimised, the rest held fixed.
        batch: the whole training set (a pytree of arrays), the same at every iteration.
        steps: L-BFGS iterations (>= 1).
        memory: the number of curvature pairs kept (>= 1).
        segment: iterations per compiled call (``steps`` by default); ``on_segment`` is called
            after each, so a trainer can evaluate.
        on_segment: ``on_segment(iterations_done, model)`` after every segment.

    Returns:
        ``(model, opt_state, losses, iterations_per_s)``: the module after the last iteration,
        the L-BFGS state, the float64 ``[steps]`` loss before each iteration, and the rate
        over segments after the first (compilation excluded; ``nan`` with one segment).

    Raises:
        ValueError: for non-positive ``steps``, ``memory`` or ``segment``.
        FloatingPointError (:class:`opdiff.train.NonFiniteLossError`): on a non-finite loss.
    """
    for name, value in (("steps", steps), ("memory", memory),
                        ("segment", steps if segment is None else segment)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    segment = steps if segment is None else min(segment, steps)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    # One flat vector: the stored pairs are two [memory, n] matrices (opdiff.lbfgs).
    theta, unravel = ravel_pytree(params)

    def loss(p):
        return loss_fn(nnx.merge(graphdef, unravel(p), rest), batch, None)

    state = jax.jit(lambda x: lbfgs.init(jax.value_and_grad(loss), x, memory))(theta)
    runs: dict[int, Callable] = {}
    losses, done, timed, timed_s = [], 0, 0, 0.0
    while done < steps:
        n = min(segment, steps - done)
        if n not in runs:
            runs[n] = _lbfgs_chunk(loss, n)
        t0 = time.perf_counter()
        theta, state, values = runs[n](theta, state)
        values = np.asarray(values, np.float64)
        if done:  # the first call compiles
            timed, timed_s = timed + n, timed_s + time.perf_counter() - t0
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise _train.NonFiniteLossError(done + int(bad[0]) + 1, float(values[bad[0]]),
                                            None, None)
        losses.append(values)
        done += n
        if on_segment is not None:
            on_segment(done, nnx.merge(graphdef, unravel(theta), rest))
    rate = timed / timed_s if timed_s > 0 else math.nan
    return nnx.merge(graphdef, unravel(theta), rest), state, np.concatenate(losses), rate
