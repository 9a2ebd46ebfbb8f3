"""Operator specs: values at their output points, through datasets."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from opdiff import data, functions
from opdiff.operators import catalog, heat, ode, reaction_diffusion


def test_diffusion_reaction_points_index_the_solution(x64):
    nx, nt = 12, 8
    spec = catalog.diffusion_reaction(nx, nt)
    space = functions.GaussianRandomField(n_grid=nx)
    u = space.sample(2, key=jax.random.key(0), dtype=jnp.float64)
    s = np.asarray(reaction_diffusion.diffusion_reaction(u, nt=nt))
    flat = np.asarray(spec.apply(u))
    pts = spec.output_points
    assert pts.shape == ((nt + 1) * nx, 2) and flat.shape == (2, (nt + 1) * nx)
    j = np.rint(pts[:, 0] * (nx - 1)).astype(int)
    n = np.rint(pts[:, 1] * nt).astype(int)
    np.testing.assert_array_equal(flat, s[:, n, j])
    np.testing.assert_array_equal(pts[:, 0], np.linspace(0, 1, nx)[j])  # exact float64 nodes


@pytest.mark.parametrize("make", [
    lambda g: catalog.antiderivative(g),
    lambda g: catalog.nonlinear_ode(g, substeps=2),
    lambda g: catalog.pendulum(g, substeps=2),
])
def test_grid_operators_return_values_on_their_grid(x64, make):
    space = functions.GaussianRandomField(n_grid=64)
    spec = make(space.grid)
    ds = data.make_aligned(space, spec, n_funcs=5, sensors=functions.equispaced_sensors(10),
                           key=jax.random.key(1), dtype=jnp.float64)
    assert ds.points.shape == (64, 1) and ds.outputs.shape[:2] == (5, 64)
    if spec.name == "nonlinear_ode":
        u = space.sample(5, key=jax.random.fold_in(jax.random.key(1), 0), dtype=jnp.float64)
        np.testing.assert_allclose(ds.outputs, ode.nonlinear_ode(u, space.grid, substeps=2))


def test_heat_spec_is_the_semigroup(x64):
    field = functions.PeriodicPowerLawField(n=32)
    spec = catalog.heat_periodic(32, t=0.1, nu=0.01)
    u = field.sample(3, key=jax.random.key(2), dtype=jnp.float64)
    np.testing.assert_array_equal(spec.apply(u), heat.periodic(u, 0.1, 0.01))
    np.testing.assert_allclose(spec.output_points[:, 0], np.arange(32) / 32)


def test_bad_grid():
    with pytest.raises(ValueError, match="grid must be a strictly increasing"):
        catalog.antiderivative(np.array([0.0, 0.5, 0.4]))
