"""opdiff.deeponet_sweep: a member zero-padded into a sweep predicts and trains exactly like the
same model alone (the alone run is a plain opdiff.fit on the unpadded DeepONet with the same
batches); padded weights stay zero; POD members; per-member training sets."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import opdiff
from opdiff import deeponet_sweep as ds
from opdiff.nets import DeepONet, PODDeepONet

M, P_MAX, N, B, STEPS = 5, 4, 24, 6, 30
ARCH = dict(branch_width=8, trunk_width=8)


def _data():
    rng = np.random.default_rng(0)
    u = rng.normal(size=(N, M)).astype(np.float32)
    y = np.linspace(-1, 1, 7)[:, None]
    v = (u[:, :2] @ rng.normal(size=(2, 7)) * np.cos(y[:, 0])).astype(np.float32)
    return u, y, v


def _sweep(ps, n_train, keys):
    u, y, v = _data()
    ens, params = ds.stack_members(DeepONet(M, 1, P_MAX, key=keys[0], **ARCH),
                                   [DeepONet(M, 1, p, key=k, **ARCH) for p, k in zip(ps, keys)])
    masks = np.stack([np.arange(P_MAX) < p for p in ps]).astype(np.float32)
    return ds.Sweep(ens, params, ds.deeponet_forward(y), masks, inputs=u[None], outputs=v[None],
                    group=np.zeros(len(ps), np.int32), n_train=np.asarray(n_train, np.int32))


def test_padded_member_predicts_like_the_model_alone():
    keys = ds.member_keys(jax.random.key(1), 2)
    sweep = _sweep([2, 4], [N, N], keys)
    u, y, _ = _data()
    pred = ds.predict_sweep(sweep, sweep.params, u[None], chunk=5)  # several chunks
    for j, (p, k) in enumerate(zip([2, 4], keys)):
        alone = DeepONet(M, 1, p, key=k, **ARCH).aligned(jnp.asarray(u), jnp.asarray(y))[..., 0]
        np.testing.assert_allclose(pred[j], alone, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(jax.random.key_data(keys[1]),
                                  jax.random.key_data(jax.random.fold_in(jax.random.key(1), 1)))


def test_sweep_training_equals_training_each_member_alone():
    keys = ds.member_keys(jax.random.key(2), 2)
    ps, n_train = [2, 4], [N, 10]  # member 1 sees only its first 10 functions
    sweep = _sweep(ps, n_train, keys)
    key = jax.random.key(7)
    (trained,), losses = ds.train_sweeps([sweep], steps=STEPS, batch_size=B, lr=1e-2, key=key,
                                         steps_per_call=10)
    assert losses.shape == (STEPS,)
    u, y, v = _data()
    pred = ds.predict_sweep(sweep, trained, u[None])
    sched = optax.cosine_decay_schedule(1e-2, STEPS, alpha=0.01)
    for j, (p, n) in enumerate(zip(ps, n_train)):
        def batches(k, j=j, n=n):  # the sweep's draw for member j, written out
            idx = jax.random.randint(jax.random.split(jax.random.fold_in(k, 0), 2)[j], (B,), 0, n)
            return jnp.asarray(u)[idx], jnp.asarray(v)[idx]

        def loss(net, batch, _k):
            return jnp.mean((net.aligned(batch[0], jnp.asarray(y))[..., 0] - batch[1]) ** 2)

        alone = opdiff.fit(loss, DeepONet(M, 1, p, key=keys[j], **ARCH), optax.adam(sched),
                           batches, steps=STEPS, key=key, steps_per_call=10, progress=False)
        np.testing.assert_allclose(pred[j], alone.params.aligned(u, y)[..., 0], rtol=2e-4,
                                   atol=2e-5)
    # the padded basis functions of member 0 (p = 2 of 4) never moved from zero
    last = {jax.tree_util.keystr(path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(trained)}
    padded = [k for k in last if "[1]" in k and ("branch" in k or "trunk" in k)]
    assert len(padded) == 4  # kernel and bias of the last branch and trunk layers
    for k in padded:
        assert last[k].shape[-1] == P_MAX and np.all(last[k][0][..., 2:] == 0), k
        assert np.any(last[k][1][..., 2:] != 0), k


def test_pod_members_read_their_own_modes():
    rng = np.random.default_rng(4)
    mean, modes = rng.normal(size=7), rng.normal(size=(4, 7))
    keys = ds.member_keys(jax.random.key(3), 2)
    nets = [PODDeepONet(M, mean, modes[:p], key=k, branch_width=8) for p, k in zip([2, 4], keys)]
    ens, params = ds.stack_members(PODDeepONet(M, mean, modes, key=keys[0], branch_width=8),
                                   nets)
    u, _, v = _data()
    sweep = ds.Sweep(ens, params, ds.pod_forward, None, inputs=u[None], outputs=v[None],
                     group=np.zeros(2, np.int32), n_train=np.full(2, N, np.int32), out_scale=2.0)
    pred = ds.predict_sweep(sweep, params, u[None])
    for j, net in enumerate(nets):
        np.testing.assert_allclose(pred[j], 2.0 * net.aligned(jnp.asarray(u)), rtol=1e-5,
                                   atol=1e-6)


def test_fresh_stack_cells_learn_the_identity_down_to_their_basis_floor():
    # cells: identity maps on R^4 (sampled fresh every step); cell 0 uses 1 of 3 trunk outputs
    n = 4
    pts = np.linspace(-1, 1, n)[:, None]
    make = lambda p: lambda k: DeepONet(n, 1, p, branch_width=16, trunk_width=16,  # noqa: E731
                                        activation="tanh", key=k)

    def pairs(uk, nk, m):
        u = jax.random.normal(uk, (m, n))
        return jnp.stack([u, u]), jnp.stack([u, u])

    predict, losses, _ = ds.train_fresh_stack(make, [1, 3], pairs, pts, n=n, steps=300, lr=1e-2,
                                              batch_size=64, steps_per_call=100,
                                              key=jax.random.key(0), n_whiten=200)
    assert losses.shape == (300,) and losses[-20:].mean() < 0.7 * losses[:20].mean()
    f, v = pairs(jax.random.key(5), None, 500)
    err = np.mean((np.asarray(predict(f)) - np.asarray(v)) ** 2, axis=(1, 2))
    # a p-basis map of R^4 keeps at best p of 4 unit-variance directions: MSE >= (4 - p) / 4;
    # the 3-basis cell gets close to its floor, the 1-basis cell cannot go below its own
    assert err[0] >= 0.75 * 0.98 and 0.25 * 0.98 <= err[1] < 0.35
