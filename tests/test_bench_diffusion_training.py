"""Pure helpers of benchmarks/diffusion_training.py (the benchmark itself is not a test)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import pytest

from benchmarks.diffusion_training import (
    flops_from_cost_analysis,
    rate_from_stamps,
    set_compute_dtype,
)
from opdiff.nets import nnx


def test_flops_from_cost_analysis_reads_dicts_lists_and_missing_values():
    assert flops_from_cost_analysis({"flops": 12.0, "bytes accessed": 3.0}) == 12.0
    assert flops_from_cost_analysis([{"flops": 5}]) == 5.0
    for missing in (None, [], {}, [{"bytes accessed": 1.0}]):
        assert math.isnan(flops_from_cost_analysis(missing))


def test_flops_from_cost_analysis_of_a_compiled_matmul():
    a = jnp.ones((32, 16))
    compiled = jax.jit(lambda x: x @ x.T).lower(a).compile()
    assert flops_from_cost_analysis(compiled.cost_analysis()) == 2 * 32 * 32 * 16


def test_rate_from_stamps_starts_at_the_end_of_the_first_call():
    assert rate_from_stamps([(1, 10.0), (3, 11.0), (11, 12.0)]) == 5.0
    assert math.isnan(rate_from_stamps([(1, 10.0)]))
    assert math.isnan(rate_from_stamps([(1, 10.0), (2, 10.0)]))


@pytest.mark.standard_promotion("flax's GroupNorm mixes its bfloat16 compute dtype with float32 "
                                "statistics: mixed precision is what this test is about")
def test_set_compute_dtype_casts_the_computation_not_the_parameters():
    class Tiny(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(1, 4, (3, 3), rngs=rngs)
            self.norm = nnx.GroupNorm(4, num_groups=2, rngs=rngs)
            self.lin = nnx.Linear(4, 2, rngs=rngs)

        def __call__(self, x):
            return self.lin(self.norm(self.conv(x)).mean(axis=(0, 1)))

    m = Tiny(nnx.Rngs(0))
    assert m(jnp.ones((4, 4, 1))).dtype == jnp.float32
    assert set_compute_dtype(m, jnp.bfloat16) == 3
    assert m(jnp.ones((4, 4, 1), jnp.bfloat16)).dtype == jnp.bfloat16
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(nnx.state(m, nnx.Param)))
