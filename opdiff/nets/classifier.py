r"""A small CNN image classifier, trained by the library: the feature extractor of the
Fréchet distance (Inception weights cannot be downloaded here) and the judge of
class-conditional samples.

Architecture, per image ``[H, W]`` or ``[H, W, C]``: 3×3 conv (``channels[0]``) → SiLU →
(2×2 average pool, per further entry of ``channels``: 3×3 conv → SiLU) → global average and
flattened features → dense (``features``) → SiLU → dense (``n_classes``). The penultimate
``features``-vector is :meth:`Classifier.features`; Fréchet distances on it are "FID with a
domain classifier" and are **not** comparable to Inception FID numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from opdiff.nets._compat import nnx
from opdiff.nets.layers import avg_pool2
from opdiff._checks import check_images, check_labels

__all__ = ["Classifier", "accuracy", "classification_loss", "features",
           "features_and_predictions", "predict", "train_classifier"]


class Classifier(nnx.Module):
    """CNN classifier with a feature layer.

    Args:
        shape: image shape ``(H, W)`` or ``(H, W, C)``.
        n_classes: number of classes.
        channels: conv features per resolution (one 2×2 pooling between entries).
        features: width of the feature (penultimate) layer.
        key: PRNG key.
    """

    def __init__(self, shape: tuple[int, ...], n_classes: int, *,
                 channels: tuple[int, ...] = (16, 32), features: int = 64, key: PRNGKeyArray):
        shape = tuple(int(s) for s in shape)
        if len(shape) not in (2, 3) or min(shape) < 1:
            raise ValueError(f"shape must be (H, W) or (H, W, C), got {shape}")
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
        down = 2 ** (len(channels) - 1)
        if not channels or shape[0] < down or shape[1] < down:
            raise ValueError(f"channels {channels} need images of side >= {down}, got {shape}")
        rngs = nnx.Rngs(key)
        self.shape, self.n_classes = shape, n_classes
        c_in = shape[2] if len(shape) == 3 else 1
        sizes = [c_in, *channels]
        self.convs = nnx.List([nnx.Conv(a, b, (3, 3), rngs=rngs)
                               for a, b in zip(sizes[:-1], sizes[1:])])
        h, w = shape[0] // down, shape[1] // down
        self.dense = nnx.Linear(h * w * channels[-1] + channels[-1], features, rngs=rngs)
        self.head = nnx.Linear(features, n_classes, rngs=rngs)

    def features(self, x: Float[Array, "H W *C"]) -> Float[Array, " features"]:
        """The penultimate activations of one image."""
        if tuple(x.shape) != self.shape:
            raise ValueError(f"x must have shape {self.shape} (one image), got {tuple(x.shape)}")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"x must be a floating-point image, got dtype {x.dtype}")
        h = x if x.ndim == 3 else x[..., None]
        for i, conv in enumerate(self.convs):
            if i > 0:
                h = avg_pool2(h)
            h = jax.nn.silu(conv(h))
        flat = jnp.concatenate([h.ravel(), h.mean(axis=(0, 1))])
        return jax.nn.silu(self.dense(flat))

    def __call__(self, x: Float[Array, "H W *C"]) -> Float[Array, " n_classes"]:
        """Logits of one image."""
        return self.head(self.features(x))

    def batched_features(self, x: Float[Array, "B H W *C"]) -> Float[Array, "B features"]:
        return jax.vmap(self.features)(check_images("x", x, self.shape))

    def batched(self, x: Float[Array, "B H W *C"]) -> Float[Array, "B n_classes"]:
        return jax.vmap(self)(check_images("x", x, self.shape))


@nnx.jit
def _predict_chunk(clf, x):
    return jnp.argmax(clf.batched(x), axis=-1)


@nnx.jit
def _features_chunk(clf, x):
    return clf.batched_features(x)


def _chunks(fn, clf, x, size: int = 1024) -> np.ndarray:
    """``fn`` over ``x`` in chunks of one fixed size (the last one padded), so each model
    compiles ``fn`` once whatever ``len(x)``."""
    n = x.shape[0]
    size = min(size, n)
    out = []
    for i in range(0, n, size):
        xb = x[i:i + size]
        k = xb.shape[0]
        if k < size:
            xb = jnp.concatenate([xb, jnp.zeros((size - k, *xb.shape[1:]), xb.dtype)])
        out.append(np.asarray(fn(clf, xb))[:k])
    return np.concatenate(out)


def predict(clf: Classifier, images) -> np.ndarray:
    """Predicted labels ``[N]`` (evaluated in chunks of 1,024)."""
    images = check_images("images", images, clf.shape)
    return _chunks(_predict_chunk, clf, images)


def features(clf: Classifier, images) -> np.ndarray:
    """Feature vectors ``[N, features]`` as float64 (evaluated in chunks of 1,024)."""
    images = check_images("images", images, clf.shape)
    return _chunks(_features_chunk, clf, images).astype(np.float64)


@nnx.jit
def _features_predict_chunk(clf, x):
    f = clf.batched_features(x)
    return f, jnp.argmax(clf.head(f), axis=-1)


def features_and_predictions(clf: Classifier, images, chunk: int = 512
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Feature vectors (float64 ``[N, features]``) and predicted labels ``[N]`` in one pass,
    the images zero-padded to a multiple of ``chunk`` (one compilation for any ``N``)."""
    x = np.asarray(check_images("images", images, clf.shape), np.float32)
    n = len(x)
    xp = np.concatenate([x, np.zeros(((-n) % chunk, *x.shape[1:]), np.float32)])
    out = [_features_predict_chunk(clf, jnp.asarray(xp[i:i + chunk]))
           for i in range(0, len(xp), chunk)]
    f = np.concatenate([np.asarray(o[0]) for o in out])[:n].astype(np.float64)
    return f, np.concatenate([np.asarray(o[1]) for o in out])[:n]


def accuracy(clf: Classifier, images, labels) -> float:
    """Fraction of ``images`` whose predicted class equals ``labels``."""
    images = check_images("images", images, clf.shape)
    labels = np.asarray(check_labels("labels", labels, images.shape[0], clf.n_classes))
    return float(np.mean(predict(clf, images) == labels))


def classification_loss(noise: float = 0.0):
    r"""The engine loss (:func:`opdiff.fit`) of a :class:`Classifier`: the mean cross-entropy
    of a batch ``(x [B, H, W(, C)], y [B])``,

    .. math:: L(\theta) = -\frac1B\sum_{b}\log\operatorname{softmax}
        \big(f_\theta(x_b + \sigma\xi_b)\big)_{y_b},\qquad \xi_b\sim N(0, I),

    the noise :math:`\xi` drawn from the step's loss key (none when :math:`\sigma = 0`).

    Args:
        noise: :math:`\sigma\ge0`, the standard deviation of the Gaussian noise added to each
            training image (makes the features less brittle on generated samples).

    Returns:
        ``loss(model, batch, key) -> scalar``.

    Raises:
        ValueError: if ``noise`` is negative, NaN or infinite.
        TypeError: if ``noise`` is not a real number.
    """
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.integer, np.floating)):
        raise TypeError(f"noise must be a real number, got {type(noise).__name__} {noise!r}")
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")

    def loss(model, batch, key):
        x, y = batch
        if noise > 0:
            x = x + noise * jax.random.normal(key, x.shape, x.dtype)
        logits = jax.vmap(model)(x)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

    return loss


def train_classifier(images, labels, n_classes: int, *, key: PRNGKeyArray, steps: int = 1000,
                     batch_size: int = 128, lr: float = 2e-3, noise: float = 0.0,
                     channels: tuple[int, ...] = (16, 32), features: int = 64,
                     weight_decay: float = 1e-4) -> Classifier:
    r"""Train a :class:`Classifier` by cross-entropy (:func:`classification_loss`) through
    :func:`opdiff.fit` (AdamW with a cosine schedule).

    Args:
        images: ``[N, H, W]`` or ``[N, H, W, C]`` floating images.
        labels: ``[N]`` integer labels in ``[0, n_classes)``.
        n_classes: number of classes.
        key: PRNG key (initialisation, batches, augmentation noise).
        steps, batch_size, lr, weight_decay: the optimisation.
        noise: standard deviation of Gaussian noise added to each training image (makes the
            features less brittle on generated samples; 0: none).
        channels, features: the architecture.

    Returns:
        The trained classifier (``fit``'s ``TrainResult.params``).
    """
    from opdiff.train import fit

    images = check_images("images", images, np.shape(images)[1:] if np.ndim(images) > 1 else ())
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be [N, H, W] or [N, H, W, C], got {tuple(images.shape)}")
    labels = check_labels("labels", labels, images.shape[0], n_classes)
    loss = classification_loss(noise)
    k_init, k_fit = jax.random.split(key)
    clf = Classifier(tuple(images.shape[1:]), n_classes, channels=channels, features=features,
                     key=k_init)
    opt = optax.adamw(optax.cosine_decay_schedule(lr, steps), weight_decay=weight_decay)
    res = fit(loss, clf, opt, (images, labels), batch_size=batch_size, steps=steps, key=k_fit)
    return res.params
