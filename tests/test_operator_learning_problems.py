"""opdiff.operator_learning.problems: the conditioned input measure against a brute-force
rejection, the Burgers input variance against its series, the periodic dataset, and the
evaluation of a model on a problem against the library's metrics and floors computed apart."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from opdiff import deeponet_bounds as db
from opdiff import functions
from opdiff import operator_learning as ol
from opdiff.operator_learning import problems as op
from opdiff.operators import catalog


def test_bounded_outputs_keeps_exactly_the_accepted_draws_in_order():
    grf = functions.GaussianRandomField(length_scale=0.2, n_grid=50)
    G = catalog.antiderivative(grf.grid)
    space = op.BoundedOutputs(grf, G, bound=0.5, block=16)
    key = jax.random.key(0)
    got = np.asarray(space.sample(20, key=key))
    want, i = [], 0
    while len(want) < 20:  # the same rejection, written out
        u = np.asarray(grf.sample(16, key=jax.random.fold_in(key, i)))
        s = np.asarray(G.apply(u)).reshape(16, -1)
        want += [row for row, ok in zip(u, np.all(np.abs(s) <= 0.5, axis=1)) if ok]
        i += 1
    np.testing.assert_array_equal(got, np.stack(want[:20]))
    assert np.all(np.abs(np.asarray(G.apply(got))) <= 0.5)
    rate = space.acceptance(4, key=key)
    assert 0 < rate < 1
    with pytest.raises(RuntimeError, match="fewer than"):
        op.BoundedOutputs(grf, G, bound=1e-9, block=4).sample(1, key=key)


def test_burgers_input_variance_is_the_series_without_the_mean():
    n = 16
    want = sum(625.0 / ((2 * np.pi * k) ** 2 + 25.0) ** 2 for k in range(-n // 2, n // 2) if k)
    assert op.burgers_input_variance(n) == pytest.approx(want, rel=1e-14)
    field = functions.PeriodicPowerLawField(n=n, alpha=4.0, k0=op.BURGERS_K0,
                                            variance=op.burgers_input_variance(n))
    u = np.asarray(field.sample(4000, key=jax.random.key(1)), np.float64)
    assert u.var() == pytest.approx(want, rel=0.05)


def test_periodic_aligned_reads_the_grid_points():
    field = functions.PeriodicPowerLawField(n=16, alpha=4.0, k0=op.BURGERS_K0)
    G = catalog.burgers(16, nu=0.1, t_final=0.1, nt=10)
    ds = op.periodic_aligned(field, G, 3, jax.random.key(2))
    np.testing.assert_array_equal(ds.inputs, np.asarray(field.sample(3, key=jax.random.key(2))))
    np.testing.assert_allclose(ds.outputs, np.asarray(G.apply(ds.inputs)), rtol=1e-6)
    np.testing.assert_array_equal(ds.sensors, np.arange(16) / 16)


def test_componentwise_floor_adds_the_components_in_squares():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(30, 8, 2)) * np.array([1.0, 0.1])
    pred = v + 0.01 * rng.normal(size=v.shape)
    w = db.trapezoid_weights(np.linspace(0, 1, 8))
    out = db.componentwise_floor(v, pred, w, 6, 3)
    per = [db.pca_floor(db.pca(v[:, :, c], w).eigenvalues, np.arange(1, 7)) for c in (0, 1)]
    np.testing.assert_allclose(out["floor"], np.sqrt(per[0] ** 2 + per[1] ** 2), rtol=1e-12)
    assert out["floor_p"] == pytest.approx(out["floor"][2])
    assert out["bochner"] == pytest.approx(
        np.sqrt(np.mean(np.sum(w[None, :, None] * (pred - v) ** 2, axis=(1, 2)))))
    one = db.componentwise_floor(v[..., 0], pred[..., 0], w, 6, 3)
    np.testing.assert_allclose(one["floor"], per[0], rtol=1e-12)


def test_evaluate_problem_on_a_small_pendulum():
    keys = [jax.random.fold_in(jax.random.key(3), i) for i in range(4)]
    prob = op.ode_problem("pendulum", keys, length_scale=0.2, n_sensors=10, grid=40, substeps=1,
                          n_train=20, n_test=12, p=4, width=8, depth=1, output_bound=5.0,
                          pendulum_k=1.0, chunk=20)
    assert prob.n_outputs == 2 and prob.test.outputs.shape == (12, 40, 2)
    ev = op.evaluate_problem(prob.model, prob, n_examples=3)
    pred = ol.predict(prob.model, prob.test)
    fe = db.componentwise_floor(prob.test.outputs, pred, prob.weights, 10, 4)
    assert ev["pca_floor_p"] == fe["floor_p"] and ev["bochner_l2_error"] == fe["bochner"]
    assert ev["metrics"] == ol.evaluate(prob.model, prob.test)
    rel = ev["rel_l2_per_function"]
    assert rel.shape == (12,) and np.all(np.diff(ev["example_rel"]) >= 0)  # 10 %, 50 %, 90 %
    assert ev["example_truth"].shape == (3, 40, 2)
    with pytest.raises(ValueError, match="nonlinear_ode"):
        op.ode_problem("nope", keys, length_scale=0.2, n_sensors=10, grid=40, substeps=1,
                       n_train=20, n_test=12, p=4, width=8, depth=1, output_bound=5.0,
                       pendulum_k=1.0, chunk=20)
