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
    "read_idx",
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
