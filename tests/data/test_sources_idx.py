"""MNIST and Fashion-MNIST: IDX files written here in the real format, read back exactly."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from fedgossip.data.sources import SOURCES
from fedgossip.data.sources.idx import FashionMnist, Mnist
from fedgossip.errors import DataError

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"


def idx(array: np.ndarray) -> bytes:
    """Encode ``array`` as an unsigned-byte IDX file, as described on LeCun's MNIST page."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write(path, data: bytes, gz: bool) -> None:
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.fixture
def arrays():
    rng = np.random.default_rng(7)
    return {
        TRAIN_IMAGES: rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8),
        TRAIN_LABELS: rng.integers(0, 10, size=12, dtype=np.uint8),
        TEST_IMAGES: rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8),
        TEST_LABELS: rng.integers(0, 10, size=5, dtype=np.uint8),
    }


def write_all(directory, arrays, gz: bool) -> None:
    for name, array in arrays.items():
        write(directory / (f"{name}.gz" if gz else name), idx(array), gz)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_mnist_round_trip(tmp_path, arrays, gz):
    write_all(tmp_path, arrays, gz)
    data = SOURCES.create(f"mnist:path={tmp_path}").load()
    assert data.x_train.dtype == np.float32 and data.x_train.shape == (12, 1, 28, 28)
    np.testing.assert_array_equal(data.x_train[:, 0] * 255, arrays[TRAIN_IMAGES].astype(np.float32))
    np.testing.assert_array_equal(data.y_train, arrays[TRAIN_LABELS])
    np.testing.assert_array_equal(data.x_test[:, 0] * 255, arrays[TEST_IMAGES].astype(np.float32))
    np.testing.assert_array_equal(data.y_test, arrays[TEST_LABELS])
    assert data.y_train.dtype == np.int64
    assert data.classes == ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")


def test_fashion_mnist_names_its_classes(tmp_path, arrays):
    write_all(tmp_path, arrays, gz=True)
    data = SOURCES.create(f"fashion-mnist:path={tmp_path}").load()
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"
    assert len(data.classes) == 10
    np.testing.assert_array_equal(data.y_test, arrays[TEST_LABELS])


def test_gzip_is_recognized_by_content_not_name(tmp_path, arrays):
    # gzipped bytes under the plain name, plain bytes under the .gz name
    for name, array in arrays.items():
        gz = name.startswith("train")
        target = tmp_path / (name if gz else f"{name}.gz")
        write(target, idx(array), gz=gz)
    data = Mnist(path=str(tmp_path)).load()
    np.testing.assert_array_equal(data.y_train, arrays[TRAIN_LABELS])
    np.testing.assert_array_equal(data.x_test[:, 0] * 255, arrays[TEST_IMAGES].astype(np.float32))


def test_missing_directory_says_how_to_download(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        Mnist(path=str(missing)).load()
    message = str(info.value)
    assert str(missing) in message
    assert "train-images-idx3-ubyte[.gz]" in message
    assert "fedgossip data download mnist --dir" in message


def test_missing_files_are_all_named(tmp_path, arrays):
    write_all(tmp_path, {TRAIN_IMAGES: arrays[TRAIN_IMAGES], TRAIN_LABELS: arrays[TRAIN_LABELS]}, gz=False)
    with pytest.raises(DataError) as info:
        FashionMnist(path=str(tmp_path)).load()
    message = str(info.value)
    assert "t10k-images-idx3-ubyte[.gz]" in message and "t10k-labels-idx1-ubyte[.gz]" in message
    assert "missing train-images" not in message
    assert "fedgossip data download fashion-mnist" in message


def test_swapped_files_are_refused_by_magic(tmp_path, arrays):
    write_all(tmp_path, arrays, gz=False)
    (tmp_path / TRAIN_LABELS).write_bytes(idx(arrays[TRAIN_IMAGES]))
    with pytest.raises(DataError) as info:
        Mnist(path=str(tmp_path)).load()
    assert TRAIN_LABELS in str(info.value)
    assert "00000801" in str(info.value) and "00000803" in str(info.value)


def test_non_idx_file_is_refused(tmp_path, arrays):
    write_all(tmp_path, arrays, gz=False)
    (tmp_path / TEST_IMAGES).write_text("<html>404 not found</html>")
    with pytest.raises(DataError, match="not an unsigned-byte IDX file"):
        Mnist(path=str(tmp_path)).load()


@pytest.mark.parametrize("change", [-1, +1], ids=["truncated", "trailing-bytes"])
def test_payload_must_match_header_exactly(tmp_path, arrays, change):
    write_all(tmp_path, arrays, gz=True)
    data = idx(arrays[TRAIN_IMAGES])
    data = data[:-1] if change < 0 else data + b"\0"
    write(tmp_path / f"{TRAIN_IMAGES}.gz", data, gz=True)
    with pytest.raises(DataError) as info:
        Mnist(path=str(tmp_path)).load()
    message = str(info.value)
    assert f"{TRAIN_IMAGES}.gz" in message
    assert str(12 * 28 * 28) in message and str(12 * 28 * 28 + change) in message


def test_header_cut_short_is_refused(tmp_path, arrays):
    write_all(tmp_path, arrays, gz=False)
    (tmp_path / TEST_LABELS).write_bytes(idx(arrays[TEST_LABELS])[:6])
    with pytest.raises(DataError, match="truncated"):
        Mnist(path=str(tmp_path)).load()


def test_image_and_label_counts_must_agree(tmp_path, arrays):
    write_all(tmp_path, arrays, gz=False)
    (tmp_path / TEST_LABELS).write_bytes(idx(arrays[TEST_LABELS][:4]))
    with pytest.raises(DataError) as info:
        Mnist(path=str(tmp_path)).load()
    assert "5 images" in str(info.value) and "4 labels" in str(info.value)


def test_damaged_gzip_is_refused(tmp_path, arrays):
    write_all(tmp_path, arrays, gz=True)
    packed = gzip.compress(idx(arrays[TRAIN_IMAGES]))
    (tmp_path / f"{TRAIN_IMAGES}.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match="damaged gzip"):
        Mnist(path=str(tmp_path)).load()


def test_labels_beyond_the_classes_are_refused(tmp_path, arrays):
    arrays[TRAIN_LABELS][3] = 12
    write_all(tmp_path, arrays, gz=False)
    with pytest.raises(DataError) as info:
        Mnist(path=str(tmp_path)).load()
    assert "label 12" in str(info.value) and "10 classes" in str(info.value)
