"""opdiff.operator_learning: metric definitions on hand-made arrays, aligned = unaligned
evaluation on the same points, schedules, a tiny training run, segments = one call, bad input."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

import opdiff
from opdiff import data, functions
from opdiff import operator_learning as ol
from opdiff.nets import DeepONet, PODDeepONet
from opdiff.operators import catalog
from opdiff import deeponet_bounds as th

# --- metrics on hand-made arrays ---------------------------------------------------------------


def test_error_metrics_by_hand():
    target = np.array([[3.0, 4.0], [1.0, 0.0]])  # row norms 5 and 1
    pred = np.array([[3.0, 5.0], [1.0, 1.0]])  # errors (0, 1) and (0, 1)
    m = ol.error_metrics(pred, target)
    assert m["mse"] == pytest.approx(2 / 4)
    assert m["rmse"] == pytest.approx(np.sqrt(0.5))
    assert m["max_abs_error"] == pytest.approx(1.0)
    assert m["rel_l2"] == pytest.approx(np.sqrt(2 / 26))  # ||e|| / ||v|| over everything
    assert m["rel_l2_mean"] == pytest.approx((1 / 5 + 1 / 1) / 2)  # DeepXDE's mean l2 relative
    assert m["rel_l2_std"] == pytest.approx(np.std([0.2, 1.0]))
    assert m["rel_l2_median"] == pytest.approx(0.6)
    assert m["mse_wo_outliers"] == m["mse"]  # 4 values: 0.1 % of them is no value
    assert (m["n_functions"], m["n_values"]) == (2, 4)
    no_groups = ol.error_metrics(pred, target, per_function=False)
    assert no_groups["rel_l2_mean"] is None and no_groups["mse"] == m["mse"]


def test_mse_without_outliers_drops_the_largest_tenth_of_a_percent():
    target = np.zeros((1, 4000))
    pred = np.zeros((1, 4000))
    pred[0, :4] = [100.0, 50.0, 10.0, 3.0]  # 0.1 % of 4000 = 4 values dropped
    pred[0, 4:] = 0.5
    m = ol.error_metrics(pred, target, per_function=False)
    assert m["rel_l2"] is None  # zero target: no relative error
    assert m["mse_wo_outliers"] == pytest.approx(0.25)
    assert m["mse"] == pytest.approx((100**2 + 50**2 + 10**2 + 9 + 3996 * 0.25) / 4000)


def test_error_metrics_rejects_bad_shapes_and_nan():
    with pytest.raises(ValueError, match="equal non-empty 2-D"):
        ol.error_metrics(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="finite"):
        ol.error_metrics(np.array([[np.nan]]), np.array([[1.0]]))


# --- evaluation: aligned and unaligned on the same points ------------------------------------


def _grf_sets(n_funcs=40, n_points=12, key=0):
    grf = functions.GaussianRandomField(length_scale=0.2, n_grid=101)
    sensors = functions.equispaced_sensors(20)
    ds = data.make_aligned(grf, catalog.antiderivative(grf.grid), n_funcs=n_funcs,
                           sensors=sensors, key=jax.random.key(key), n_points=n_points)
    return grf, sensors, ds


def test_aligned_and_unaligned_evaluation_agree_on_the_same_points():
    _, _, aligned = _grf_sets()
    net = DeepONet(20, 1, 8, branch_width=16, trunk_width=16, key=jax.random.key(1))
    triplets = aligned.to_unaligned()
    pa = ol.predict(net, aligned)
    pu = ol.predict(net, triplets, chunk=7)  # several padded chunks
    assert pa.shape == aligned.outputs.shape and pu.shape == triplets.outputs.shape
    np.testing.assert_allclose(pu.reshape(pa.shape), pa, rtol=1e-5, atol=1e-6)
    ma = ol.evaluate(net, aligned)
    mu = ol.evaluate(net, triplets, group_size=aligned.points.shape[0])
    for k in ("mse", "rel_l2", "rel_l2_mean", "rel_l2_std", "max_abs_error"):
        assert mu[k] == pytest.approx(ma[k], rel=1e-5), k
    # one point per function: no per-function relative error
    assert ol.evaluate(net, triplets, group_size=1)["rel_l2_mean"] is None
    with pytest.raises(ValueError, match="group_size"):
        ol.evaluate(net, triplets, group_size=7)  # 40 * 12 rows are not blocks of 7


def test_make_unaligned_metadata_sets_the_groups():
    grf = functions.GaussianRandomField(length_scale=0.2, n_grid=101)
    ds = data.make_unaligned(grf, catalog.antiderivative(grf.grid), n_funcs=10,
                             sensors=functions.equispaced_sensors(20), key=jax.random.key(0),
                             points_per_func=6)
    net = DeepONet(20, 1, 4, branch_width=8, trunk_width=8, key=jax.random.key(1))
    m = ol.evaluate(net, ds)
    assert m["rel_l2_mean"] is not None and m["n_functions"] == 10


def test_multi_output_metrics_and_shapes():
    grf = functions.GaussianRandomField(length_scale=0.2, n_grid=101)
    ds = data.make_aligned(grf, catalog.pendulum(grf.grid), n_funcs=6,
                           sensors=functions.equispaced_sensors(20), key=jax.random.key(0),
                           n_points=9)
    net = DeepONet(20, 1, 4, branch_width=8, trunk_width=8, n_outputs=2, key=jax.random.key(1))
    pred = ol.predict(net, ds)
    assert pred.shape == ds.outputs.shape == (6, 9, 2)
    m = ol.evaluate(net, ds, pred=pred)
    assert len(m["mse_per_output"]) == 2
    assert np.mean(m["mse_per_output"]) == pytest.approx(m["mse"], rel=1e-6)
    with pytest.raises(ValueError, match="n_outputs"):
        ol.train_deeponet(DeepONet(20, 1, 4, key=jax.random.key(2)), ds, steps=1,
                          key=jax.random.key(0))


def test_pod_deeponet_predicts_aligned_data_and_refuses_triplets():
    _, _, aligned = _grf_sets()
    pca = th.pca(aligned.outputs, np.ones(aligned.points.shape[0]))
    net = PODDeepONet(20, pca.mean, pca.modes[:3], branch_width=8, key=jax.random.key(0))
    assert ol.predict(net, aligned).shape == aligned.outputs.shape
    with pytest.raises(ValueError, match="PODDeepONet"):
        ol.predict(net, aligned.to_unaligned())


# --- schedules -------------------------------------------------------------------------------


def test_schedules():
    assert ol.make_schedule(1e-3, 100, "constant") == 1e-3
    cos = ol.make_schedule(1e-2, 100, "cosine", final_fraction=1e-2)
    assert float(cos(0)) == pytest.approx(1e-2) and float(cos(100)) == pytest.approx(1e-4)
    exp = ol.make_schedule(1e-2, 100, "exponential", final_fraction=1e-2)
    assert float(exp(50)) == pytest.approx(1e-3, rel=1e-5)
    custom = optax.constant_schedule(5.0)
    assert ol.make_schedule(1.0, 10, custom) is custom
    with pytest.raises(ValueError, match="schedule"):
        ol.make_schedule(1e-3, 10, "linear")
    with pytest.raises(ValueError, match="lr"):
        ol.make_schedule(0.0, 10)


# --- training --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def antiderivative_sets():
    grf = functions.GaussianRandomField(length_scale=0.2, n_grid=101)
    op = catalog.antiderivative(grf.grid)
    sensors = functions.equispaced_sensors(20)
    train = data.make_unaligned(grf, op, n_funcs=500, sensors=sensors, key=jax.random.key(1),
                                points_per_func=4)
    test = data.make_aligned(grf, op, n_funcs=200, sensors=sensors, key=jax.random.key(2))
    return train, test


def _tiny_net(seed=3):
    return DeepONet(20, 1, 16, branch_width=32, trunk_width=32, key=jax.random.key(seed))


def test_tiny_training_run_reduces_the_error_below_a_stated_level(antiderivative_sets):
    # E||G(u)||^2 is about 0.18 (reference §4.4) on [0, 1], so the zero predictor has an MSE of
    # about 0.18; 1500 Adam steps on 2000 triplets bring a 16-basis DeepONet below 2e-3.
    train, test = antiderivative_sets
    net = _tiny_net()
    before = ol.evaluate(net, test)["mse"]
    res = ol.train_deeponet(net, train, steps=1500, key=jax.random.key(0), lr=3e-3,
                            schedule="cosine", batch_size=256, test_dataset=test)
    assert isinstance(res, opdiff.TrainResult)  # the engine's record, evaluations attached
    ev = res.evaluations
    after = ev.final_test
    assert after["mse"] < 2e-3 < before
    assert after["rel_l2_mean"] < 0.15
    assert res.losses.shape == (1500,) and list(ev.eval_steps) == [1500]
    assert res.step == 1500 and res.start_step == 0
    assert ev.best_model is res.params and ev.best_test == after


def test_segments_follow_the_one_call_trajectory_and_pick_the_lowest_training_mse(
        antiderivative_sets, tmp_path):
    train, test = antiderivative_sets
    kw = dict(steps=300, key=jax.random.key(0), lr=3e-3, batch_size=64, steps_per_call=50)
    one = ol.train_deeponet(_tiny_net(), train, **kw)
    seg = ol.train_deeponet(_tiny_net(), train, eval_every=100, test_dataset=test,
                            workdir=tmp_path / "w", **kw)
    np.testing.assert_array_equal(one.losses, seg.losses)
    np.testing.assert_allclose(ol.predict(one.params, test), ol.predict(seg.params, test),
                               rtol=1e-6, atol=1e-7)
    assert seg.step == 300 and seg.start_step == 0  # the whole run, not its last segment
    ev = seg.evaluations
    assert list(ev.eval_steps) == [100, 200, 300] and len(ev.test) == 3
    assert ev.best_index == int(np.argmin(ev.train_mse))
    assert ev.best_test == ev.test[ev.best_index]
    assert (tmp_path / "w" / "checkpoints").is_dir()
    # the summary: plain numbers that select by the training MSE and report the test minimum
    sm = seg.summary()
    assert sm["best_step"] == ev.eval_steps[int(np.argmin(ev.train_mse))]
    assert sm["train_mse_best"] == float(np.min(ev.train_mse))
    assert sm["test_best"] == ev.best_test and sm["test_last"] == ev.test[-1]
    assert sm["test_mse_min"] == min(t["mse"] for t in ev.test)
    assert sm["test_mse_min_step"] == ev.eval_steps[int(np.argmin([t["mse"] for t in ev.test]))]
    np.testing.assert_array_equal(sm["losses"], seg.losses)
    assert sm["steps_per_s"] == seg.steps_per_s and sm["train_s"] <= sm["wall_s"]
    assert set(sm) == {"losses", "eval_steps", "train_mse", "best_step", "train_mse_best",
                       "wall_s", "train_s", "steps_per_s", "test_mse", "test_best", "test_last",
                       "test_mse_min", "test_mse_min_step"}  # the keys experiments save
    assert "test_best" not in one.summary() and one.summary()["best_step"] == 300


def test_train_rejects_bad_arguments(antiderivative_sets):
    train, _ = antiderivative_sets
    with pytest.raises(ValueError, match="steps"):
        ol.train_deeponet(_tiny_net(), train, steps=0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="eval_every"):
        ol.train_deeponet(_tiny_net(), train, steps=5, eval_every=0, key=jax.random.key(0))
    with pytest.raises(TypeError, match="dataset"):
        ol.train_deeponet(_tiny_net(), {"inputs": 1}, steps=5, key=jax.random.key(0))


def test_zca_whitening_makes_the_second_moment_the_identity():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 500, 6)) @ rng.normal(size=(6, 6))  # two correlated groups
    w = ol.zca_whitening(x)
    assert w.shape == (2, 6, 6)
    for c in range(2):
        np.testing.assert_allclose(w[c], w[c].T, atol=1e-12)
        z = x[c] @ w[c]
        np.testing.assert_allclose(z.T @ z / 500, np.eye(6), atol=1e-10)
    # a direction without variance is floored at 1e-6 of the largest eigenvalue, not inverted
    x0 = np.concatenate([x[:1, :, :5], np.zeros((1, 500, 1))], axis=2)
    assert np.all(np.isfinite(ol.zca_whitening(x0)))
