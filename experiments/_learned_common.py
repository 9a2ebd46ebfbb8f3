"""Data loading for the learned-score experiments on images: the digits and Fashion-MNIST
scaled to [-1, 1], with a seeded train/test split."""

from __future__ import annotations

import dataclasses

import numpy as np

from opdiff import images


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

