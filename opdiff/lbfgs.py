r"""Full-batch L-BFGS in the compact representation, with an Armijo backtracking line search.

L-BFGS approximates the inverse Hessian by the ``m`` newest curvature pairs
:math:`s_i = x_{i+1}-x_i`, :math:`y_i = \nabla f(x_{i+1})-\nabla f(x_i)`. The textbook
two-loop recursion applies it to a gradient with ``2m`` dependent dot products and vector
updates — ``4m`` tiny sequential kernels, which on a CPU cost more than the matrix products of a
small network's gradient. This module uses the **compact representation** of Byrd, Nocedal and
Schnabel (1994, Thm 2.2), the same matrix written with a few products against the stored pairs:
with :math:`S=[s_1\dots s_m]`, :math:`Y=[y_1\dots y_m]` (oldest first),
:math:`R=\operatorname{triu}(S^\top Y)`, :math:`D=\operatorname{diag}(S^\top Y)` and
:math:`\gamma = s_m^\top y_m / y_m^\top y_m`,

.. math::
    H g = \gamma g + S\,R^{-\top}\bigl((D+\gamma Y^\top Y)\,q - \gamma\,Y^\top g\bigr)
          - \gamma\,Y q, \qquad q = R^{-1} S^\top g .

The state keeps :math:`S^\top Y` and :math:`Y^\top Y` up to date (one row and column per
iteration), so an iteration costs two passes over the stored pairs (``S g``/``Y g`` and the
combination) plus ``m x m`` triangular solves — the same direction as the two-loop recursion
(tested to 1e-15 in float64), in a handful of large kernels.

The step length comes from backtracking: the trial ``t = 1`` (the first iteration:
:math:`\min(1, 1/\|g\|)`) is halved until the Armijo condition
:math:`f(x+td)\le f(x)+c_1 t\,g^\top d` holds. A pair with :math:`s^\top y \le
10^{-10} y^\top y` is not stored (it would make ``H`` indefinite); a direction that is not a
descent direction is replaced by :math:`-g`; when no trial passes within ``max_backtracks``
halvings, the iterate stays where it is and the memory is cleared (the next step is a scaled
steepest-descent step). The loss therefore never increases.

Used by :func:`opdiff.operator_learning.recipes.lbfgs_phase` (Adam, then L-BFGS on the whole
training set). On the DeepONet paper's network (7,401 parameters, 10,000 triplets, this 2-core
CPU, where one value-and-gradient takes about 3 ms) an iteration with 200 pairs took 4.6 ms,
against 9.1 ms for ``optax.lbfgs`` (zoom line search, two-loop recursion) with the same memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from opdiff._checks import check_positive_int

__all__ = ["LBFGSState", "init", "direction", "step", "run"]

ValueAndGrad = Callable[[Array], tuple[Array, Array]]


class LBFGSState(NamedTuple):
    """The curvature memory (a ring buffer of ``m`` slots) and the current value/gradient.

    Attributes:
        s, y: ``[m, n]`` stored steps and gradient differences (rows; unused rows are 0).
        sy: ``[m, m]`` with ``sy[i, j] = s_i . y_j`` in slot order.
        yy: ``[m, m]`` with ``yy[i, j] = y_i . y_j``.
        age: ``[m]`` the index of the pair in each slot (0, 1, 2, ... in the order stored;
            ``-1``: empty).
        count: the number of pairs stored since the last reset (the next slot is
            ``count % m``).
        value, grad: :math:`f(x)` and :math:`\\nabla f(x)` at the current iterate.
    """

    s: Float[Array, "m n"]
    y: Float[Array, "m n"]
    sy: Float[Array, "m m"]
    yy: Float[Array, "m m"]
    age: Int[Array, " m"]
    count: Int[Array, ""]
    value: Float[Array, ""]
    grad: Float[Array, " n"]


def init(value_and_grad: ValueAndGrad, x: Float[Array, " n"], memory: int) -> LBFGSState:
    """An empty memory of ``memory`` pairs, with ``value_and_grad(x)`` evaluated once.

    Raises:
        ValueError: if ``memory`` is not a positive int, or ``x`` is not a 1-D float array.
    """
    memory = check_positive_int("memory", memory)
    if jnp.ndim(x) != 1 or not jnp.issubdtype(jnp.result_type(x), jnp.floating):
        raise ValueError(f"x must be a 1-D float array (ravel a pytree with "
                         f"jax.flatten_util.ravel_pytree), got shape {jnp.shape(x)} and "
                         f"dtype {jnp.result_type(x)}")
    value, grad = value_and_grad(x)
    zeros = jnp.zeros((memory, x.size), x.dtype)
    square = jnp.zeros((memory, memory), x.dtype)
    return LBFGSState(zeros, zeros, square, square, -jnp.ones(memory, jnp.int32),
                      jnp.zeros((), jnp.int32), value, grad)


def direction(state: LBFGSState, g: Float[Array, " n"]) -> Float[Array, " n"]:
    """:math:`H g`, the inverse-Hessian approximation of the stored pairs applied to ``g``
    (``g`` itself when the memory is empty)."""
    m = state.age.shape[0]
    valid = state.age >= 0
    # chronological order, oldest first; empty slots last
    order = jnp.argsort(jnp.where(valid, state.age, jnp.iinfo(jnp.int32).max))
    v = valid[order]
    vv = v[:, None] & v[None, :]
    sy = jnp.where(vv, state.sy[order][:, order], 0.0)
    yy = jnp.where(vv, state.yy[order][:, order], 0.0)
    a = jnp.where(v, (state.s @ g)[order], 0.0)
    b = jnp.where(v, (state.y @ g)[order], 0.0)
    newest = jnp.argmax(state.age)
    gamma = jnp.where(state.count > 0,
                      state.sy[newest, newest] / state.yy[newest, newest], 1.0)
    # R = triu(S^T Y) on the stored pairs, the identity on empty slots (whose a, b are 0)
    r = jnp.triu(sy) + jnp.diag(jnp.where(v, 0.0, 1.0).astype(g.dtype))
    q = jax.scipy.linalg.solve_triangular(r, a, lower=False)
    t = jnp.diag(sy) * q + gamma * (yy @ q) - gamma * b
    w = jax.scipy.linalg.solve_triangular(r, t, lower=False, trans=1)
    # back to slot order for the products with the stored rows
    w_slots = jnp.zeros(m, g.dtype).at[order].set(w)
    q_slots = jnp.zeros(m, g.dtype).at[order].set(q)
    return gamma * g + w_slots @ state.s - gamma * (q_slots @ state.y)


def step(value_and_grad: ValueAndGrad, x: Float[Array, " n"], state: LBFGSState, *,
         c1: float = 1e-4, max_backtracks: int = 20
         ) -> tuple[Float[Array, " n"], LBFGSState, Int[Array, ""]]:
    """One L-BFGS iteration from ``x`` (whose value and gradient ``state`` holds).

    Returns:
        ``(x_new, state_new, evaluations)``: the next iterate, the updated memory, and the
        number of ``value_and_grad`` calls this iteration made (1 when the unit step passes).
    """
    g = state.grad
    d = -direction(state, g)
    slope = jnp.vdot(g, d)
    descent = slope < 0
    d = jnp.where(descent, d, -g)
    slope = jnp.where(descent, slope, -jnp.vdot(g, g))
    t0 = jnp.where(state.count > 0, 1.0,
                   jnp.minimum(1.0, 1.0 / jnp.sqrt(jnp.vdot(g, g)))).astype(x.dtype)

    def armijo(t, value):
        return value <= state.value + c1 * t * slope

    def keep_going(c):
        t, value, _, n = c
        return ~armijo(t, value) & (n <= max_backtracks)

    def backtrack(c):
        t, _, _, n = c
        t = 0.5 * t
        value, grad = value_and_grad(x + t * d)
        return t, value, grad, n + 1

    value, grad = value_and_grad(x + t0 * d)
    t, value, grad, evals = jax.lax.while_loop(keep_going, backtrack,
                                               (t0, value, grad, jnp.ones((), jnp.int32)))
    accepted = armijo(t, value)
    s = t * d
    y = grad - g
    sy_new = jnp.vdot(s, y)
    store = accepted & (sy_new > 1e-10 * jnp.vdot(y, y))

    m = state.age.shape[0]
    slot = state.count % m
    # one row written in place (a rejected pair rewrites the row it found there)
    s_rows = state.s.at[slot].set(jnp.where(store, s, state.s[slot]))
    y_rows = state.y.at[slot].set(jnp.where(store, y, state.y[slot]))
    ys = y_rows @ s  # row `slot` of S^T Y: s . y_j
    sy_col = s_rows @ y  # column `slot`: s_i . y
    yy_col = y_rows @ y
    sy = state.sy.at[slot, :].set(ys).at[:, slot].set(sy_col).at[slot, slot].set(sy_new)
    yy = state.yy.at[slot, :].set(yy_col).at[:, slot].set(yy_col)
    # no acceptable step: stay where we are and restart from an empty memory (the next step is
    # a scaled steepest-descent step)
    new_state = LBFGSState(
        s_rows, y_rows, jnp.where(store, sy, state.sy), jnp.where(store, yy, state.yy),
        jnp.where(store, state.age.at[slot].set(state.count),
                  jnp.where(accepted, state.age, -1)),
        jnp.where(accepted, state.count + store.astype(jnp.int32), 0),
        jnp.where(accepted, value, state.value), jnp.where(accepted, grad, g))
    return jnp.where(accepted, x + s, x), new_state, evals


def run(value_and_grad: ValueAndGrad, x: Float[Array, " n"], state: LBFGSState, n: int, *,
        c1: float = 1e-4, max_backtracks: int = 20
        ) -> tuple[Float[Array, " n"], LBFGSState, Float[Array, " n"]]:
    """``n`` iterations in one ``lax.scan``; returns ``(x, state, values)`` with ``values[i]``
    the objective before iteration ``i``. Jit it (the objective is traced once)."""
    n = check_positive_int("n", n)

    def body(carry, _):
        x, st = carry
        value = st.value
        x, st, _ = step(value_and_grad, x, st, c1=c1, max_backtracks=max_backtracks)
        return (x, st), value

    (x, state), values = jax.lax.scan(body, (x, state), None, length=n)
    return x, state, values
