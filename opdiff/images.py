r"""Offline image sets: nothing is downloaded.

- :func:`load_digits`: scikit-learn's 1,797 handwritten digits, 8×8 pixels, 17 grey levels
  (``sklearn.datasets.load_digits``; the data ship inside the scikit-learn wheel).
- :func:`load_fashion_mnist`: Fashion-MNIST (Xiao, Rasul & Vollgraf 2017; 60,000 training and
  10,000 test images, 28×28, 256 grey levels, MIT licence) read from the gzipped IDX files that
  the Debian package ``dataset-fashion-mnist`` installs under
  ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).
  :func:`fashion_mnist_available` says whether they are there.

Both return ``(images, labels)``: images float in :math:`[0,1]` with shape ``[n, H, W]``,
labels ``int64`` ``[n]``.

For showing sample sets: :func:`mosaic` tiles images into one array, :func:`show_mosaic`
draws it on a matplotlib axis (:func:`show_by_class`: one row per class), :func:`show_grid`
draws one image per axis of a grid.

**The IDX format** (LeCun's MNIST files): a big-endian header — the magic number
``0x00 0x00 <dtype> <ndim>`` (``0x08`` = unsigned byte, so ``0x00000803`` for a stack of
images and ``0x00000801`` for a label vector), then ``ndim`` big-endian ``uint32`` sizes — and
the raw row-major data.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_ROOT",
    "fashion_mnist_available",
    "load_digits",
    "load_fashion_mnist",
    "mosaic",
    "read_idx",
    "show_by_class",
    "show_grid",
    "show_mosaic",
]

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
_FASHION_PREFIX = {"train": "train", "test": "t10k"}
_IMAGES_MAGIC, _LABELS_MAGIC = 0x803, 0x801
_MISSING = ("Fashion-MNIST not found under {root}: install the Debian package "
            "dataset-fashion-mnist (apt-get install dataset-fashion-mnist)")


def load_digits(dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8×8 digits: ``(images [1797, 8, 8] in [0, 1], labels int64 [1797])``.

    The raw grey levels are the integers 0..16, so ``images = raw / 16`` exactly.

    Raises:
        ImportError: scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as err:
        raise ImportError("opdiff.images.load_digits needs scikit-learn: "
                          "pip install scikit-learn") from err
    data = _sk_load_digits()
    images = (np.asarray(data.images, dtype=np.float64) / 16.0).astype(dtype)
    return images, np.asarray(data.target, dtype=np.int64)


def read_idx(path, magic: int) -> np.ndarray:
    """The array in one (optionally gzipped) IDX file whose magic number must be ``magic``.

    Raises:
        ValueError: a wrong magic number, a truncated header or data, or trailing bytes.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path}: not a readable (gzipped) IDX file: {err}") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: corrupt IDX file (only {len(raw)} bytes)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise ValueError(f"{path}: corrupt IDX file: magic number 0x{found:08x}, "
                         f"expected 0x{magic:08x}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: corrupt IDX file: truncated header")
    shape = tuple(int(v) for v in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    size = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != size:
        raise ValueError(f"{path}: corrupt IDX file: header says {size} bytes of data for "
                         f"shape {shape}, found {len(raw) - header}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _fashion_paths(split: str, root) -> tuple[Path, Path]:
    if split not in _FASHION_PREFIX:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root, p = Path(root), _FASHION_PREFIX[split]
    return root / f"{p}-images-idx3-ubyte.gz", root / f"{p}-labels-idx1-ubyte.gz"


def fashion_mnist_available(root=FASHION_MNIST_ROOT) -> bool:
    """True when both splits' image and label files exist under ``root``."""
    return all(path.is_file() for split in _FASHION_PREFIX for path in _fashion_paths(split, root))


def load_fashion_mnist(split: str = "train", root=FASHION_MNIST_ROOT,
                       dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST: ``(images [n, 28, 28] in [0, 1] (raw / 255), labels int64 [n])``.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        root: the folder holding ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``.
        dtype: the image dtype.

    Raises:
        ValueError: a bad ``split``, a corrupt file, or image and label counts that differ.
        FileNotFoundError: the files are absent (install ``dataset-fashion-mnist``).
    """
    images_path, labels_path = _fashion_paths(split, root)
    for path in (images_path, labels_path):
        if not path.is_file():
            raise FileNotFoundError(_MISSING.format(root=root))
    raw = read_idx(images_path, _IMAGES_MAGIC)
    labels = read_idx(labels_path, _LABELS_MAGIC).astype(np.int64)
    if raw.shape[0] != labels.shape[0]:
        raise ValueError(f"{root}: {raw.shape[0]} images but {labels.shape[0]} labels "
                         f"in the {split!r} split")
    return (raw.astype(np.float64) / 255.0).astype(dtype), labels


def mosaic(x, rows: int, cols: int, pad: int = 1, fill: float = np.nan) -> np.ndarray:
    """Tile the first ``rows * cols`` images ``[n, H, W]`` row by row into one float32 array
    ``[rows (H + pad) - pad, cols (W + pad) - pad]``; gaps and missing images are ``fill``.

    Raises:
        ValueError: ``x`` is not a stack of images ``[n, H, W]``.
    """
    x = np.asarray(x, np.float32)
    if x.ndim != 3:
        raise ValueError(f"x must be images [n, H, W], got shape {x.shape}")
    h, w = x.shape[1:]
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), fill, np.float32)
    for i, im in enumerate(x[:rows * cols]):
        r, c = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = im
    return out


def show_mosaic(ax, x, rows: int, cols: int, title: str | None = None) -> None:
    """Draw :func:`mosaic` ``(x, rows, cols)`` on the matplotlib axis ``ax``: grey levels in
    [-1, 1] (dark on white for images up to 8 pixels wide), the gaps in mid grey, no ticks."""
    ax.imshow(np.clip(mosaic(x, rows, cols), -1, 1), vmin=-1, vmax=1,
              cmap="gray_r" if np.shape(x)[-1] <= 8 else "gray", interpolation="nearest")
    ax.set_facecolor("0.7")  # the gaps between images (NaN) in grey
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=8, loc="left")


def show_grid(axes, samples, title: str | None = None) -> None:
    """One image per axis of ``axes`` (any array of matplotlib axes, filled in order; grey,
    [-1, 1], dark on white for images up to 8 rows); axes left over are switched off."""
    axs = np.atleast_1d(axes).ravel()
    for ax, im in zip(axs, samples):
        ax.imshow(np.clip(im, -1, 1), cmap="gray_r" if im.shape[0] <= 8 else "gray",
                  vmin=-1, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axs[len(samples):]:
        ax.axis("off")
    if title is not None:
        axs[0].set_title(title, fontsize=8, loc="left")


def show_by_class(ax, x, y, per_class: int, n_classes: int = 10, title: str | None = None
                  ) -> None:
    """:func:`show_mosaic` with row ``c`` holding the first ``per_class`` images of label
    ``c`` (``y == c``), ``c = 0..n_classes-1``, the labels as y tick labels."""
    x, y = np.asarray(x), np.asarray(y)
    show_mosaic(ax, np.concatenate([x[y == c][:per_class] for c in range(n_classes)]),
                n_classes, per_class, title)
    h = x.shape[1] + 1
    ax.set_yticks(np.arange(n_classes) * h + (h - 1) / 2 - 0.5,
                  [str(c) for c in range(n_classes)], fontsize=7)
