"""Bad input to the diffusion API: every case is refused with a named error, none is silent.

Also the isotropy of the power-law constructions on non-square grids (the same physical
frequency gets the same power), which a per-axis "cycles per side" convention would break.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from opdiff.diffusion import transforms as tr
from opdiff.diffusion import oracle as O
from opdiff.diffusion import processes as P
from opdiff.diffusion import samplers as S

SHAPE = (8, 8)


@pytest.fixture
def setup(x64):
    field = O.power_law_field(SHAPE, "dft", alpha=2.0)
    proc = P.vp(SHAPE, basis="dft")
    return field, proc, S.log_snr_grid(proc, 5)


def test_sampler_law_refuses_bad_options(setup):
    field, proc, ts = setup
    with pytest.raises(ValueError, match="eta"):
        O.sampler_law("ddim", proc, field, ts, eta=2.0)
    with pytest.raises(ValueError, match="predictor"):
        O.sampler_law("pc", proc, field, ts, predictor="bogus")
    with pytest.raises(ValueError, match="n_corrector"):
        O.sampler_law("pc", proc, field, ts, n_corrector=-1)
    with pytest.raises(ValueError, match="snr"):
        O.sampler_law("pc", proc, field, ts, snr=-1.0)
    with pytest.raises(ValueError, match=r"init mean must be a scalar or have shape \(8, 8\)"):
        O.sampler_law("ddim", proc, field, ts, init=(np.zeros(3), np.ones(3)))
    with pytest.raises(ValueError, match="init variance must be finite and >= 0"):
        O.sampler_law("ddim", proc, field, ts, init=(0.0, -np.ones(SHAPE)))
    with pytest.raises(ValueError, match="corrector_eps"):
        O.sampler_law("pc", proc, field, ts, corrector_eps=np.ones(3))


def test_model_must_match_the_data(setup):
    field, proc, ts = setup
    dct_model = O.power_law_field(SHAPE, "dct", alpha=2.0)
    with pytest.raises(ValueError, match="model must have the data's shape and basis"):
        O.sampler_law("pf_heun", proc, field, ts, model=dct_model)
    with pytest.raises(ValueError, match="model must have the data's shape and basis"):
        O.score_error(field, dct_model, proc, 0.5)
    with pytest.raises(ValueError, match="process shape"):
        field.gain(P.vp((4, 4), basis="dft"), 0.5)


def test_samplers_refuse_bad_options(setup):
    field, proc, ts = setup
    x = proc.sample_prior(jax.random.key(0), 2, dtype=jnp.float64)
    den = field.denoiser(proc)
    with pytest.raises(ValueError, match="predictor"):
        S.sample("ddim", den, proc, x, ts, predictor="bogus")
    with pytest.raises(ValueError, match="snr"):
        S.sample("pc", den, proc, x, ts, key=jax.random.key(1), snr=-1.0)
    with pytest.raises(TypeError, match="eta must be a real number"):
        S.sample("ddim", den, proc, x, ts, eta="a")
    with pytest.raises(TypeError, match="rho must be a real number"):
        S.karras_grid(proc, 5, rho="a")


def test_processes_refuse_bad_input(x64):
    with pytest.raises(ValueError, match="needs a frequency basis"):
        P.coloured(SHAPE, "pink", basis="identity")
    proc = P.vp(SHAPE, basis="dft")
    x0 = jnp.zeros((2, *SHAPE))
    with pytest.raises(ValueError, match=r"t must lie in \[0, T=1.0\]"):
        proc.sample(jax.random.key(0), x0, 1.5)
    with pytest.raises(ValueError, match=r"t must lie in \[0, T=1.0\]"):
        proc.sample(jax.random.key(0), x0, -0.1)
    with pytest.raises(ValueError, match="n must be a positive int"):
        proc.sample_prior(jax.random.key(0), -1)


def test_mixture_refuses_bad_input(x64):
    with pytest.raises(ValueError, match="symmetric positive definite"):
        O.GaussianMixture(np.array([1.0]), np.zeros((1, 2)), np.array([[[1.0, 2.0], [2.0, 1.0]]]))
    gm = O.GaussianMixture(np.array([1.0]), np.zeros((1, 2)), np.eye(2)[None])
    with pytest.raises(ValueError, match=r"x must be one point of shape \(2,\)"):
        gm.score(P.vp((2,)), jnp.zeros((3, 3)), 0.5)  # a batch [B, 2] is fine, [B, 3] not


def test_power_laws_are_isotropic_on_non_square_grids(x64):
    shape = (8, 32)
    field = O.power_law_field(shape, "dft", alpha=2.0)
    freq = tr.radial_frequency(shape, "dft")
    # (1, 0) on the short axis and (0, 4) on the long one: both 1/8 cycle per pixel
    assert freq[1, 0] == pytest.approx(freq[0, 4], rel=1e-12)
    assert field.var[1, 0] == pytest.approx(field.var[0, 4], rel=1e-12)
    noise = P.noise_power_law(shape, "dft", 1.0)
    assert noise[1, 0] == pytest.approx(noise[0, 4], rel=1e-12)
    # and a genuinely higher frequency gets less power
    assert field.var[2, 0] < field.var[1, 0]
