"""The training engine against closed forms and against itself."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import opdiff
from opdiff import checkpoint as ckpt
from opdiff.nets import MLP, nnx


def quadratic_loss(params, batch, key):
    return 0.5 * jnp.sum((params["w"] - batch) ** 2)


def test_sgd_on_quadratic_follows_closed_form_and_ema():
    # L(w) = |w - c|^2 / 2, SGD with rate eta: w_s = c + (1 - eta)^s (w_0 - c).
    c = jnp.array([1.0, -2.0, 3.0])
    w0 = jnp.zeros(3)
    eta, beta, steps = 0.1, 0.9, 40
    res = opdiff.fit(quadratic_loss, {"w": w0}, optax.sgd(eta), lambda k: c, steps=steps,
                     key=jax.random.key(0), steps_per_call=8, ema_decay=beta)
    s = np.arange(steps)
    w_s = np.asarray(c)[None] + (1 - eta) ** s[:, None] * np.asarray(w0 - c)[None]
    np.testing.assert_allclose(res.losses, 0.5 * np.sum((w_s - np.asarray(c)) ** 2, 1), rtol=1e-5)
    w_end = np.asarray(c) + (1 - eta) ** steps * np.asarray(w0 - c)
    np.testing.assert_allclose(res.params["w"], w_end, rtol=1e-5, atol=1e-6)
    # EMA oracle: e_0 = w_0, e_{s+1} = beta e_s + (1 - beta) w_{s+1}.
    e = np.asarray(w0, np.float64)
    for k in range(1, steps + 1):
        e = beta * e + (1 - beta) * (np.asarray(c) + (1 - eta) ** k * np.asarray(w0 - c))
    np.testing.assert_allclose(res.ema_params["w"], e, rtol=1e-5, atol=1e-6)
    assert res.step == steps and res.start_step == 0
    # fit evaluates nothing; its summary is the loss curve and the throughput
    assert res.evaluations is None
    assert set(res.summary()) == {"losses", "steps_per_s"}
    np.testing.assert_array_equal(res.summary()["losses"], res.losses)


def test_keys_are_fold_in_of_step():
    # Each step's batch must be N(0, I) drawn from split(fold_in(key, s))[0]; rebuild the SGD
    # trajectory of L(w) = |w - b_s|^2 / 2 from those keys independently.
    key = jax.random.key(7)
    eta, steps = 0.3, 12

    def data(k):
        return jax.random.normal(k, (4,))

    res = opdiff.fit(quadratic_loss, {"w": jnp.zeros(4)}, optax.sgd(eta), data, steps=steps,
                     key=key, steps_per_call=5)
    w = np.zeros(4)
    for s in range(steps):
        data_key, _ = jax.random.split(jax.random.fold_in(key, s))
        b = np.asarray(data(data_key))
        w = w - eta * (w - b)
    np.testing.assert_allclose(res.params["w"], w, rtol=1e-5, atol=1e-6)


def _regression_data(n=256):
    x = jnp.linspace(-1, 1, n)[:, None]
    return x, jnp.sin(3 * x)


def _mlp_loss(model, batch, key):
    x, y = batch
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


def _params(model):
    return [np.asarray(v) for v in jax.tree.leaves(nnx.state(model, nnx.Param))]


def _train(steps_per_call, seed=0, steps=60, **kw):
    key = jax.random.key(seed)
    net = MLP(1, 1, width=16, depth=2, key=jax.random.fold_in(key, 1))
    return opdiff.fit(_mlp_loss, net, optax.adam(1e-2), _regression_data(), steps=steps,
                      key=key, batch_size=32, steps_per_call=steps_per_call, **kw)


def test_scanned_equals_unscanned():
    a = _train(1)
    b = _train(7)  # 7 does not divide 60: the last call runs a shorter scan
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-5, atol=1e-7)
    for p, q in zip(_params(a.params), _params(b.params)):
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6)
    assert a.losses[-1] < 0.5 * a.losses[0]  # it trained


def test_same_seed_same_numbers_other_seed_differs():
    a, b, c = _train(10, seed=3), _train(10, seed=3), _train(10, seed=4)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert not np.array_equal(a.losses, c.losses)


def test_pytree_params_and_full_batch():
    x, y = _regression_data(64)
    params = {"a": jnp.zeros(()), "b": jnp.zeros(())}

    def loss(p, batch, key):
        xb, yb = batch
        return jnp.mean((p["a"] * xb[:, 0] + p["b"] - (2 * xb[:, 0] + 1)) ** 2)

    res = opdiff.fit(loss, params, optax.adam(0.05), (x, y), steps=600, key=jax.random.key(0),
                     steps_per_call=100)
    assert abs(float(res.params["a"]) - 2) < 1e-3 and abs(float(res.params["b"]) - 1) < 1e-3


def test_nan_stops_with_step_and_keeps_last_checkpoint(tmp_path):
    # The learning rate turns NaN at optimizer count 25: the update of step 25 makes the
    # parameters NaN (its loss is still finite); the engine names that step and the leaf.
    def schedule(count):
        return jnp.where(count < 25, 1e-2, jnp.nan)

    key = jax.random.key(0)
    net = MLP(1, 1, width=8, depth=1, key=key)
    with pytest.raises(opdiff.NonFiniteStateError, match="step 25") as info:
        opdiff.fit(_mlp_loss, net, optax.sgd(schedule), _regression_data(), steps=50, key=key,
                   batch_size=16, steps_per_call=4, workdir=tmp_path, checkpoint_every=10)
    assert info.value.step == 25 and info.value.last_checkpoint == 20
    assert info.value.leaf.startswith("params")
    assert ckpt.all_steps(tmp_path / "checkpoints")[-1] == 20
    # The surviving checkpoint equals a clean 20-step run.
    clean = opdiff.fit(_mlp_loss, MLP(1, 1, width=8, depth=1, key=key), optax.sgd(1e-2),
                       _regression_data(), steps=20, key=key, batch_size=16, steps_per_call=4)
    restored = ckpt.restore(tmp_path / "checkpoints", _template_like(net, optax.sgd(schedule)), 20)
    assert int(restored["step"]) == 20
    for p, q in zip(jax.tree.leaves(restored["params"]), _params(clean.params)):
        np.testing.assert_allclose(p, q, rtol=1e-6)


def _template_like(net, opt):
    theta = nnx.state(net, nnx.Param)
    return {"step": np.asarray(0, np.int64), "params": theta, "opt_state": opt.init(theta),
            "ema": None}


def test_resume_continues_exactly_and_truncates_metrics(tmp_path):
    full = _train(5, steps=40)
    first = _train(5, steps=20, workdir=tmp_path, checkpoint_every=10)
    assert first.step == 20
    with pytest.raises(ValueError, match="resume=True"):
        _train(5, steps=40, workdir=tmp_path, checkpoint_every=10)
    second = _train(5, steps=40, workdir=tmp_path, checkpoint_every=10, resume=True)
    assert second.start_step == 20 and len(second.losses) == 20
    np.testing.assert_allclose(np.concatenate([first.losses, second.losses]), full.losses,
                               rtol=1e-6)
    for p, q in zip(_params(second.params), _params(full.params)):
        np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-7)
    steps = [json.loads(line)["step"] for line in open(tmp_path / "metrics.jsonl")]
    assert steps == sorted(steps) and steps[-1] == 40 and len(set(steps)) == len(steps)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=0), "steps must be a positive int"),
        (dict(steps_per_call=0), "steps_per_call must be a positive int"),
        (dict(ema_decay=1.5), r"ema_decay must be a float in \[0, 1\)"),
        (dict(checkpoint_every=5), "checkpoint_every needs a workdir"),
        (dict(resume=True), "resume=True needs the workdir"),
        (dict(batch_size=0), "batch_size must be a positive int"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    args = dict(steps=10, key=jax.random.key(0), batch_size=8)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        opdiff.fit(quadratic_loss, {"w": jnp.zeros(2)}, optax.sgd(0.1),
                   (jnp.zeros((16, 2)),), **args)


def test_bad_data_and_types():
    with pytest.raises(ValueError, match="leading dimension"):
        opdiff.array_batches((jnp.zeros((4, 1)), jnp.zeros((5, 1))), 2)
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        opdiff.fit(None, {"w": jnp.zeros(2)}, optax.sgd(0.1), lambda k: 0.0, steps=1,
                   key=jax.random.key(0))
    with pytest.raises(TypeError, match="optimizer must be an optax"):
        opdiff.fit(quadratic_loss, {"w": jnp.zeros(2)}, "adam", lambda k: 0.0, steps=1,
                   key=jax.random.key(0))
    mesh = opdiff.parallel.data_mesh()
    if mesh.size > 1:
        with pytest.raises(ValueError, match="divisible"):
            opdiff.fit(quadratic_loss, {"w": jnp.zeros(2)}, optax.sgd(0.1),
                       (jnp.zeros((16, 2)),), steps=1, key=jax.random.key(0),
                       batch_size=mesh.size + 1, mesh=mesh)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ema_decay="0.5"), "ema_decay must be a float in .* got str '0.5'"),
        (dict(ema_decay=True), "ema_decay must be a float"),
        (dict(batch_size=True), "batch_size must be an int or None, got bool"),
        (dict(batch_size=8.0), "batch_size must be an int or None, got float"),
        (dict(steps=3.0), "steps must be an int, got float"),
        (dict(steps="3"), "steps must be an int, got str"),
        (dict(steps_per_call=np.float32(2)), "steps_per_call must be an int"),
        (dict(log_every=False), "log_every must be an int or None, got bool"),
        (dict(resume="yes"), "resume must be a bool, got str"),
        (dict(progress=1), "progress must be a bool or None"),
        (dict(callback=3), "callback must be callable"),
        (dict(key=0), "key must be a PRNG key"),
        (dict(key=np.zeros(3, np.uint32)), "key must be a PRNG key"),
        (dict(workdir=3), "workdir must be a path"),
    ],
)
def test_argument_types_raise_type_error_naming_the_argument(kwargs, match):
    args = dict(steps=10, key=jax.random.key(0), batch_size=8)
    args.update(kwargs)
    with pytest.raises(TypeError, match=match):
        opdiff.fit(quadratic_loss, {"w": jnp.zeros(2)}, optax.sgd(0.1),
                   (jnp.zeros((16, 2)),), **args)


def test_numpy_integers_and_floats_are_accepted():
    data = jax.random.normal(jax.random.key(1), (16, 2))
    a = opdiff.fit(quadratic_loss, {"w": jnp.zeros(2)}, optax.sgd(0.1), data,
                   steps=np.int64(6), steps_per_call=np.int32(3), batch_size=np.int16(8),
                   ema_decay=np.float32(0.5), key=jax.random.key(0))
    b = opdiff.fit(quadratic_loss, {"w": jnp.zeros(2)}, optax.sgd(0.1), data,
                   steps=6, steps_per_call=3, batch_size=8, ema_decay=0.5, key=jax.random.key(0))
    assert a.step == 6 and type(a.step) is int
    np.testing.assert_array_equal(a.losses, b.losses)
    with pytest.raises(ValueError, match="workdir must be a non-empty path"):
        opdiff.fit(quadratic_loss, {"w": jnp.zeros(2)}, optax.sgd(0.1), (jnp.zeros((16, 2)),),
                   steps=1, key=jax.random.key(0), workdir="")
    with pytest.raises(TypeError, match="batch_size must be an int or None, got bool"):
        opdiff.array_batches((jnp.zeros((4, 1)),), True)


def test_callback_and_metrics_file(tmp_path):
    seen = []
    _train(10, steps=30, workdir=tmp_path, callback=lambda s, loss: seen.append((s, loss)),
           log_every=10)
    assert [s for s, _ in seen] == [10, 20, 30]
    records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["step"] for r in records] == [10, 20, 30]
    assert all(np.isfinite(r["loss"]) for r in records)
    assert np.isclose(records[-1]["loss"], seen[-1][1])


def test_ctrl_c_saves_the_last_completed_step(tmp_path):
    def interrupt(step, loss):
        if step == 30:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train(5, steps=60, workdir=tmp_path, checkpoint_every=20, callback=interrupt)
    assert ckpt.all_steps(tmp_path / "checkpoints") == [20, 30]
    resumed = _train(5, steps=60, workdir=tmp_path, checkpoint_every=20, resume=True)
    full = _train(5, steps=60)
    assert resumed.start_step == 30
    np.testing.assert_allclose(resumed.losses, full.losses[30:], rtol=1e-6)
