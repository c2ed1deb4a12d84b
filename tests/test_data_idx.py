"""IDX sources (fashion-mnist, mnist): fake IDX files in tmp_path, plus the real Fashion-MNIST."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest

from synthgen.config import DataConfig
from synthgen.data import load_images
from synthgen.data.idx import FASHION_MNIST_CLASSES
from synthgen.errors import DataError


def write_idx(path: str, array: np.ndarray, type_code: int = 0x08, magic: bytes | None = None) -> str:
    """Write ``array`` (uint8) as an IDX file, gzipped when ``path`` ends in .gz."""
    header = magic if magic is not None else bytes([0, 0, type_code, array.ndim])
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    with (gzip.open if path.endswith(".gz") else open)(path, "wb") as fh:
        fh.write(payload)
    return path


def fake_split(n: int, seed: int, side: int = 28) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)  # [N, S, S]
    labels = (np.arange(n) % 10).astype(np.uint8)  # [N], every class present
    return images, labels


def write_split(root: str, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool) -> None:
    ext = ".gz" if gz else ""
    write_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte{ext}"), images)
    write_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte{ext}"), labels)


@pytest.fixture
def fake_root(tmp_path) -> tuple[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """A folder with gzipped train (50 images) and test (20 images) splits."""
    splits = {"train": fake_split(50, seed=1), "test": fake_split(20, seed=2)}
    write_split(str(tmp_path), "train", *splits["train"], gz=True)
    write_split(str(tmp_path), "t10k", *splits["test"], gz=True)
    return str(tmp_path), splits


def test_reads_gzipped_train_and_test(fake_root):
    root, splits = fake_root
    for split in ("train", "test"):
        data = load_images(DataConfig(source="fashion-mnist", root=root), split)
        images, labels = splits[split]
        assert data.images.dtype == np.uint8 and data.images.shape == (len(images), 1, 28, 28)
        np.testing.assert_array_equal(data.images[:, 0], images)
        assert data.labels.dtype == np.int64
        np.testing.assert_array_equal(data.labels, labels)
        assert data.class_names == FASHION_MNIST_CLASSES and data.name == "fashion-mnist"


def test_reads_raw_files(tmp_path):
    images, labels = fake_split(30, seed=3)
    write_split(str(tmp_path), "train", images, labels, gz=False)
    data = load_images(DataConfig(source="fashion-mnist", root=str(tmp_path)))
    np.testing.assert_array_equal(data.images[:, 0], images)
    np.testing.assert_array_equal(data.labels, labels)


def test_mnist_source_uses_digit_class_names(fake_root):
    data = load_images(DataConfig(source="mnist", root=fake_root[0]), "test")
    assert data.class_names == tuple(str(d) for d in range(10)) and data.name == "mnist"


def test_finds_torchvision_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    images, labels = fake_split(20, seed=4)
    write_split(str(raw), "train", images, labels, gz=False)
    data = load_images(DataConfig(source="fashion-mnist", root=str(tmp_path)))
    np.testing.assert_array_equal(data.images[:, 0], images)


def test_bad_magic_number(tmp_path):
    images, labels = fake_split(10, seed=5)
    path = write_idx(str(tmp_path / "train-images-idx3-ubyte.gz"), images, magic=b"\x12\x34\x08\x03")
    write_idx(str(tmp_path / "train-labels-idx1-ubyte.gz"), labels)
    with pytest.raises(DataError, match="magic") as err:
        load_images(DataConfig(root=str(tmp_path)))
    assert path in str(err.value)


def test_wrong_type_code_or_dims(tmp_path):
    images, labels = fake_split(10, seed=6)
    write_idx(str(tmp_path / "train-images-idx3-ubyte"), images, type_code=0x0C)  # int32 type code
    write_idx(str(tmp_path / "train-labels-idx1-ubyte"), labels)
    with pytest.raises(DataError, match="unsigned bytes"):
        load_images(DataConfig(root=str(tmp_path)))
    write_idx(str(tmp_path / "train-images-idx3-ubyte"), images.reshape(10, -1))  # 2 dims, not 3
    with pytest.raises(DataError, match="3 dims"):
        load_images(DataConfig(root=str(tmp_path)))


def test_truncated_file(tmp_path):
    images, labels = fake_split(10, seed=7)
    path = write_idx(str(tmp_path / "train-images-idx3-ubyte"), images)
    write_idx(str(tmp_path / "train-labels-idx1-ubyte"), labels)
    with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) - 100)
    with pytest.raises(DataError, match="truncated") as err:
        load_images(DataConfig(root=str(tmp_path)))
    assert path in str(err.value)


def test_corrupt_gzip(tmp_path):
    images, labels = fake_split(10, seed=8)
    path = write_idx(str(tmp_path / "train-images-idx3-ubyte.gz"), images)
    write_idx(str(tmp_path / "train-labels-idx1-ubyte.gz"), labels)
    with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) // 2)
    with pytest.raises(DataError, match="cannot read IDX file"):
        load_images(DataConfig(root=str(tmp_path)))


def test_image_label_count_mismatch(tmp_path):
    images, labels = fake_split(10, seed=9)
    write_split(str(tmp_path), "train", images, labels[:7], gz=True)
    with pytest.raises(DataError, match="10 images .* 7 labels"):
        load_images(DataConfig(root=str(tmp_path)))


def test_label_out_of_range(tmp_path):
    images, labels = fake_split(10, seed=10)
    labels[4] = 10
    write_split(str(tmp_path), "train", images, labels, gz=True)
    with pytest.raises(DataError, match=r"label 10 at index 4 is outside \[0, 10\)"):
        load_images(DataConfig(root=str(tmp_path)))


def test_missing_files_names_folder_files_and_fixes(tmp_path):
    empty = str(tmp_path / "nothing")
    with pytest.raises(DataError) as err:
        load_images(DataConfig(root=empty), "test")
    msg = str(err.value)
    for needle in (
        empty,
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "apt-get install dataset-fashion-mnist",
        "data.root",
        "data.download=true",
    ):
        assert needle in msg
    assert not os.path.exists(empty)  # a failed load writes nothing


def test_resolution_32_pads_two_black_pixels(fake_root):
    root, splits = fake_root
    data = load_images(DataConfig(root=root, resolution=32), "test")
    assert data.images.shape == (20, 1, 32, 32)
    np.testing.assert_array_equal(data.images[:, 0, 2:30, 2:30], splits["test"][0])
    border = data.images[:, 0].copy()
    border[:, 2:30, 2:30] = 0
    assert not border.any()


def test_channels_3_repeats_gray(fake_root):
    root, splits = fake_root
    data = load_images(DataConfig(root=root, channels=3), "test")
    assert data.images.shape == (20, 3, 28, 28)
    for c in range(3):
        np.testing.assert_array_equal(data.images[:, c], splits["test"][0])


@pytest.mark.parametrize("resolution", [16, 56])
def test_other_resolutions_resize_bilinear(tmp_path, resolution):
    images = np.full((10, 28, 28), 100, dtype=np.uint8)
    images[5:] = 200
    write_split(str(tmp_path), "train", images, np.arange(10, dtype=np.uint8), gz=False)
    data = load_images(DataConfig(root=str(tmp_path), resolution=resolution))
    assert data.images.shape == (10, 1, resolution, resolution)
    assert (data.images[:5] == 100).all() and (data.images[5:] == 200).all()  # flat images stay flat


def test_cache_sees_rewritten_files_and_hands_out_copies(tmp_path):
    images, labels = fake_split(10, seed=11)
    write_split(str(tmp_path), "train", images, labels, gz=False)
    first = load_images(DataConfig(root=str(tmp_path)))
    first.images[:] = 0  # callers may scribble on their copy ...
    again = load_images(DataConfig(root=str(tmp_path)))
    np.testing.assert_array_equal(again.images[:, 0], images)  # ... without touching the cache
    newer, _ = fake_split(10, seed=12)
    path = write_idx(str(tmp_path / "train-images-idx3-ubyte"), newer)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # mtime surely differs
    np.testing.assert_array_equal(load_images(DataConfig(root=str(tmp_path))).images[:, 0], newer)


def test_in_memory_torch_dataset(fake_root):
    torch = pytest.importorskip("torch")
    from synthgen.data.torch_dataset import InMemoryImageDataset
    from synthgen.pixels import to_float, to_uint8

    data = load_images(DataConfig(root=fake_root[0]), "test")
    ds = InMemoryImageDataset(data)
    x, y = ds[3]
    assert len(ds) == 20 and x.shape == (1, 28, 28) and x.dtype == torch.float32 and y == int(data.labels[3])
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    np.testing.assert_array_equal(to_uint8(x).numpy(), data.images[3])  # exact round trip
    edges = to_float(np.array([0, 255], dtype=np.uint8))
    assert edges.tolist() == [-1.0, 1.0]


def test_real_fashion_mnist_train(fashion_mnist_root):
    data = load_images(DataConfig(source="fashion-mnist", root=fashion_mnist_root), "train")
    assert len(data) == 60000 and data.image_shape == (1, 28, 28) and data.num_classes == 10
    assert np.bincount(data.labels, minlength=10).tolist() == [6000] * 10
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
    assert 0 < data.images.mean() < 255 and data.images.max() == 255


def test_real_fashion_mnist_test_default_root_32px_rgb(fashion_mnist_root):
    base = load_images(DataConfig(), "test")  # root "" -> the Debian default folder
    data = load_images(DataConfig(resolution=32, channels=3), "test")
    assert len(base) == 10000 and np.bincount(base.labels).tolist() == [1000] * 10
    assert data.images.shape == (10000, 3, 32, 32)
    np.testing.assert_array_equal(data.images[:, 1, 2:30, 2:30], base.images[:, 0])
    np.testing.assert_array_equal(data.labels, base.labels)
