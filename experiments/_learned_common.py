"""Shared pieces of the learned-score experiments on images: data, model construction,
sampling and the offline image metrics (Fréchet distance on the library's classifier,
sliced Wasserstein, spectrum distance)."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from opdiff import images, metrics
from opdiff.diffusion import processes, samplers
from opdiff.diffusion.guidance import guided_denoiser
from opdiff.nets import OperatorDenoiser, Preconditioned, UNet
from opdiff.nets import classifier as clf_mod


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """Images scaled to [-1, 1] (``x = 2 u - 1`` for pixel values ``u`` in [0, 1])."""

    name: str
    x_train: np.ndarray  # [N, H, W] float32 in [-1, 1]
    y_train: np.ndarray  # [N] int32
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    bin_width: float  # quantisation bin in the [-1, 1] scale (digits: 2/16, 8-bit: 2/256)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def load_image_set(name: str, *, n_test: int = 297, seed: int = 0,
                   max_train: int | None = None) -> ImageSet:
    """``"digits"`` (scikit-learn, 17 grey levels 0..16; a seeded split with ``n_test``
    held out) or ``"fashion"`` (Debian ``dataset-fashion-mnist``: its own train/test split,
    ``n_test`` test images kept; ``FileNotFoundError`` with the install hint when absent)."""
    rng = np.random.default_rng(seed)
    if name == "digits":
        x, y = images.load_digits()
        perm = rng.permutation(len(x))
        te, tr = perm[:n_test], perm[n_test:]
        xs = 2 * x.astype(np.float32) - 1
        return ImageSet("digits", xs[tr], y[tr].astype(np.int32), xs[te],
                        y[te].astype(np.int32), 10, 2 / 16)
    if name == "fashion":
        x, y = images.load_fashion_mnist("train")
        xt, yt = images.load_fashion_mnist("test")
        if max_train is not None:
            x, y = x[:max_train], y[:max_train]
        sel = rng.permutation(len(xt))[:n_test]
        return ImageSet("fashion", 2 * x.astype(np.float32) - 1, y.astype(np.int32),
                        2 * xt[sel].astype(np.float32) - 1, yt[sel].astype(np.int32), 10,
                        2 / 256)
    raise ValueError(f"image set must be 'digits' or 'fashion', got {name!r}")


def make_process(kind: str, shape, *, heat_sigma: float = 0.01):
    """``white`` (VP, identity basis), ``pink`` (VP coloured 1/f in the DCT basis), ``heat``
    (heat dissipation, DCT) or ``ve``/``blurring`` — the forward processes of the oracle."""
    if kind == "white":
        return processes.vp(shape)
    if kind == "pink":
        return processes.coloured(shape, "pink", basis="dct")
    if kind == "heat":
        return processes.heat_dissipation(shape, sigma=heat_sigma)
    if kind == "blurring":
        return processes.blurring(shape)
    if kind == "ve":
        return processes.ve(shape, sigma_max=20.0)
    raise ValueError(f"unknown process kind {kind!r}")


def data_scale(process, x: np.ndarray, *, spectral: bool = False):
    """``(sigma_data, mean)`` for :class:`opdiff.nets.Preconditioned`: the pixel mean image, and
    the scalar pixel standard deviation (default) or the per-coefficient standard deviation in
    the process basis (``spectral=True``)."""
    mean = x.mean(axis=0)
    if not spectral:
        return float((x - mean).std()), mean
    z = np.asarray(process.to_basis(jnp.asarray(x - mean)), np.float64)
    sd = np.sqrt(np.maximum(z.var(axis=0), 1e-6 * z.var(axis=0).mean()))
    return sd, mean


def make_unet_denoiser(process, x_train: np.ndarray, *, channels=(16, 32), emb_dim: int = 32,
                       n_classes: int | None = None, key, spectral_scale: bool = False):
    """A :class:`Preconditioned` U-Net (zero output at init: starts as the Wiener filter of the
    data's mean and scale)."""
    sd, mean = data_scale(process, x_train, spectral=spectral_scale)
    net = UNet(process.shape, channels=tuple(channels), emb_dim=emb_dim, n_classes=n_classes,
               residual=False, key=key)
    return Preconditioned(net, process, sigma_data=sd, mean=mean, n_classes=n_classes)


def make_operator_denoiser(process, x_train: np.ndarray, *, p: int = 64, width: int = 256,
                           depth: int = 2, skip: bool = True, n_classes: int | None = None,
                           key, spectral_scale: bool = False):
    """A :class:`Preconditioned` DeepONet denoiser (:class:`OperatorDenoiser`)."""
    sd, mean = data_scale(process, x_train, spectral=spectral_scale)
    net = OperatorDenoiser(process.shape, p=p, branch_width=width, branch_depth=depth,
                           n_classes=n_classes, key=key)
    return Preconditioned(net, process, sigma_data=sd, mean=mean, skip=skip,
                          n_classes=n_classes)


def prior_draws(process, key, n: int, x_train: np.ndarray):
    """Prior samples; heat dissipation's prior carries the data's moments (in its basis)."""
    if process.informative_prior:
        z = np.asarray(process.to_basis(jnp.asarray(x_train)), np.float64)
        return process.sample_prior(key, n, z.mean(0), z.var(0))
    return process.sample_prior(key, n)


def generate(model, process, key, n: int, *, x_train: np.ndarray, steps: int = 20,
             method: str = "ancestral", y=None, gamma: float | None = None, batch: int = 4096):
    """``n`` samples from ``model`` (``model.batched`` as the denoiser, or the guided denoiser
    when ``gamma`` is given, with labels ``y``), ``steps`` steps on the log-SNR grid, in
    batches; float32 numpy ``[n, *shape]``."""
    ts = samplers.log_snr_grid(process, steps)
    if gamma is not None:
        y = np.asarray(y)
    out = []
    for i, lo in enumerate(range(0, n, batch)):
        hi = min(n, lo + batch)
        k = jax.random.fold_in(key, i)
        x_T = prior_draws(process, jax.random.fold_in(k, 0), hi - lo, x_train)
        if gamma is not None:
            den = guided_denoiser(model, y[lo:hi], gamma)
        elif y is not None:
            yb = jnp.asarray(np.asarray(y)[lo:hi], jnp.int32)

            def den(x, t, yb=yb):
                return model.batched(x, t, yb)
        else:
            den = model.batched
        out.append(np.asarray(samplers.sample(method, den, process, x_T, ts,
                                              key=jax.random.fold_in(k, 1))))
    return np.concatenate(out).astype(np.float32)


def train_feature_classifier(data: ImageSet, *, key, steps: int = 1000):
    """The library's CNN classifier on the training images (features for FD; class judge)."""
    return clf_mod.train_classifier(data.x_train, data.y_train, data.n_classes, key=key,
                                     steps=steps, noise=0.05)


def image_metrics(samples: np.ndarray, data: ImageSet, clf, *, key) -> dict:
    """FD on the classifier's features (samples vs training images), sliced W2 and the
    log-spectral distance (samples vs test images), and the data-vs-data references (test
    vs training images: the floor at this sample size)."""
    samples = np.clip(np.asarray(samples, np.float32), -1.5, 1.5)
    f_train = clf_mod.features(clf, data.x_train)
    f_test = clf_mod.features(clf, data.x_test)
    f_gen = clf_mod.features(clf, samples)
    n = min(len(samples), len(data.x_test))
    k1 = key
    return {
        "fd": metrics.frechet_distance(f_gen, f_train),
        "fd_data": metrics.frechet_distance(f_test, f_train),
        "fd_same_n": metrics.frechet_distance(f_gen[:n], f_train),
        "sliced_w2": metrics.sliced_wasserstein(samples[:n], data.x_test[:n], key=k1),
        "sliced_w2_data": metrics.sliced_wasserstein(data.x_train[:n], data.x_test[:n], key=k1),
        "spectrum_distance": metrics.spectrum_distance(samples, data.x_test),
        "spectrum_distance_data": metrics.spectrum_distance(data.x_train, data.x_test),
        "n_samples": int(len(samples)),
    }


def sample_grid(ax_grid, samples: np.ndarray, title: str | None = None):
    """Draw up to ``rows × cols`` samples in a grid of axes (grey, [-1, 1])."""
    axs = np.atleast_1d(ax_grid).ravel()
    for ax, im in zip(axs, samples):
        ax.imshow(np.clip(im, -1, 1), cmap="gray_r" if im.shape[0] <= 8 else "gray",
                  vmin=-1, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axs[len(samples):]:
        ax.axis("off")
    if title is not None:
        axs[0].set_title(title, fontsize=8, loc="left")


def finite_or_inf(v) -> float:
    v = float(v)
    return v if math.isfinite(v) else math.inf
