"""Offline image sets: scikit-learn digits, and the Fashion-MNIST IDX parser on tiny files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from opdiff import images as I


def test_digits_shape_range_and_labels():
    x, y = I.load_digits()
    assert x.shape == (1797, 8, 8) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(np.unique(x * 16), np.arange(17))  # 17 grey levels, /16 exactly
    np.testing.assert_array_equal(np.unique(y), np.arange(10))
    assert np.bincount(y).min() >= 170  # ~180 per class
    x64, _ = I.load_digits(dtype=np.float64)
    assert x64.dtype == np.float64
    np.testing.assert_array_equal(x64, x.astype(np.float64))


def _write_idx(path, array: np.ndarray, magic: int, *, compress=True):
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        data = gzip.compress(data)
    path.write_bytes(data)


def _fake_fashion(root, n=5, *, split="t10k", image_magic=0x803, label_magic=0x801):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    imgs[0, 0, 0], imgs[0, 0, 1] = 0, 255
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    _write_idx(root / f"{split}-images-idx3-ubyte.gz", imgs, image_magic)
    _write_idx(root / f"{split}-labels-idx1-ubyte.gz", labels, label_magic)
    return imgs, labels


def test_fashion_parser_on_a_tiny_idx_file(tmp_path):
    imgs, labels = _fake_fashion(tmp_path)
    assert not I.fashion_mnist_available(tmp_path)  # the train split is missing
    x, y = I.load_fashion_mnist("test", root=tmp_path)
    assert x.shape == (5, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x, imgs / 255.0, rtol=1e-7)
    assert x[0, 0, 0] == 0.0 and x[0, 0, 1] == 1.0
    np.testing.assert_array_equal(y, labels)
    assert y.dtype == np.int64
    _fake_fashion(tmp_path, n=3, split="train")
    assert I.fashion_mnist_available(tmp_path)
    assert I.load_fashion_mnist("train", root=str(tmp_path))[0].shape == (3, 28, 28)


def test_fashion_corrupt_magic_and_truncation(tmp_path):
    _fake_fashion(tmp_path, image_magic=0x801)  # labels' magic on the image file
    with pytest.raises(ValueError, match="magic number 0x00000801, expected 0x00000803"):
        I.load_fashion_mnist("test", root=tmp_path)
    _fake_fashion(tmp_path, label_magic=0x803)
    with pytest.raises(ValueError, match="corrupt IDX"):
        I.load_fashion_mnist("test", root=tmp_path)
    _fake_fashion(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-7]))  # truncated data
    with pytest.raises(ValueError, match="header says"):
        I.load_fashion_mnist("test", root=tmp_path)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="not a readable"):
        I.load_fashion_mnist("test", root=tmp_path)


def test_fashion_label_count_mismatch(tmp_path):
    _fake_fashion(tmp_path, n=4)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(3), 0x801)
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        I.load_fashion_mnist("test", root=tmp_path)


def test_fashion_missing_root_names_the_debian_package(tmp_path):
    missing = tmp_path / "nowhere"
    assert not I.fashion_mnist_available(missing)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as err:
        I.load_fashion_mnist(root=missing)
    assert str(err.value).count("\n") == 0


def test_fashion_bad_split(tmp_path):
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        I.load_fashion_mnist("validation", root=tmp_path)


def test_read_idx_uncompressed(tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    _write_idx(tmp_path / "a.idx", a, 0x802, compress=False)
    np.testing.assert_array_equal(I.read_idx(tmp_path / "a.idx", 0x802), a)


def test_mosaic_places_images_row_by_row():
    x = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    m = I.mosaic(x, 2, 3, pad=1, fill=-9)
    assert m.shape == (2 * 3 - 1, 3 * 4 - 1)
    np.testing.assert_array_equal(m[0:2, 4:7], x[1])
    np.testing.assert_array_equal(m[3:5, 4:7], x[4])
    assert np.all(m[3:5, 8:11] == -9) and np.all(m[2] == -9)
    with pytest.raises(ValueError, match="images"):
        I.mosaic(x[0], 1, 1)


def test_show_by_class_and_show_grid_draw_what_they_say():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (30, 8, 8))
    y = np.tile(np.arange(10), 3)
    fig, ax = plt.subplots()
    I.show_by_class(ax, x, y, 3, title="t")
    shown = ax.images[0].get_array()
    # row 4 (label 4), column 2: the third image with label 4, i.e. x[24]
    np.testing.assert_allclose(shown[4 * 9:4 * 9 + 8, 2 * 9:2 * 9 + 8], x[24])
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(c) for c in range(10)]
    fig, axes = plt.subplots(2, 3)
    I.show_grid(axes, x[:4], title="g")
    assert sum(a.axison for a in axes.ravel()) == 4 and axes[0, 0].get_title(loc="left") == "g"
    plt.close("all")
