"""diffrax solves that jax can cache: the solver's status read on the host.

diffrax's default ``throw=True`` checks the result inside the program with a host callback,
and jax never stores a program with a host callback in its persistent compilation cache, so
every run recompiled the solve. The solves here pass ``throw=False``, return
:func:`status` from the jitted function and call :func:`check` on the host.
"""

from __future__ import annotations


def status(sol):
    """``(num_steps, succeeded, ran out of steps)`` of a diffrax solution, as arrays (inside
    ``jit``)."""
    import diffrax

    return (sol.stats["num_steps"], diffrax.is_successful(sol.result),
            sol.result == diffrax.RESULTS.max_steps_reached)


def check(what: str, st, *, max_steps: int, rtol: float, atol: float) -> int:
    """The number of steps of a solve whose :func:`status` is ``st``; ``RuntimeError`` naming
    ``max_steps`` (or the failure) if it did not reach its end time."""
    steps, ok, out_of_steps = st
    if not bool(ok):
        why = (f"max_steps={max_steps} reached" if bool(out_of_steps) else
               "the solver failed (a non-finite state or a step size underflow)")
        raise RuntimeError(f"{what} did not reach its end time: {why} after {int(steps)} steps "
                           f"(rtol={rtol}, atol={atol})")
    return int(steps)
