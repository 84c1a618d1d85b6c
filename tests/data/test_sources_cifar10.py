"""CIFAR-10 in both published layouts, and the refusal of pickles that would run code."""

from __future__ import annotations

import io
import os
import pickle
import struct

import numpy as np
import pytest

from fedgossip.data.sources import SOURCES
from fedgossip.data.sources.cifar10 import Cifar10
from fedgossip.data.sources.safe_pickle import load_arrays
from fedgossip.errors import DataError

NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


@pytest.fixture
def batches():
    """Six small batches: pixels uint8 [n, 3072] (R, G, B planes) and labels, as in the real files."""
    rng = np.random.default_rng(3)
    sizes = [4, 3, 5, 2, 4, 6]
    return [
        (rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), rng.integers(0, 10, size=n).tolist())
        for n in sizes
    ]


def write_binary(folder, batches) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (pixels, labels) in zip([*BATCHES, "test_batch"], batches, strict=True):
        records = np.concatenate([np.asarray(labels, dtype=np.uint8)[:, None], pixels], axis=1)
        (folder / f"{name}.bin").write_bytes(records.tobytes())


def write_pickled(folder, batches, dump=pickle.dump) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (pixels, labels) in zip([*BATCHES, "test_batch"], batches, strict=True):
        with open(folder / name, "wb") as stream:
            dump({b"batch_label": name.encode(), b"labels": labels, b"data": pixels}, stream)


def expected(batches, split):
    chosen = batches[:5] if split == "train" else batches[5:]
    x = np.concatenate([pixels for pixels, _ in chosen]).reshape(-1, 3, 32, 32).astype(np.float32) / 255
    y = np.concatenate([labels for _, labels in chosen])
    return x, y


def check(data, batches):
    x_train, y_train = expected(batches, "train")
    x_test, y_test = expected(batches, "test")
    assert data.x_train.dtype == np.float32 and data.x_train.shape == (18, 3, 32, 32)
    np.testing.assert_allclose(data.x_train, x_train, rtol=1e-6)
    np.testing.assert_array_equal(data.y_train, y_train)
    np.testing.assert_allclose(data.x_test, x_test, rtol=1e-6)
    np.testing.assert_array_equal(data.y_test, y_test)


def test_binary_batches_round_trip(tmp_path, batches):
    write_binary(tmp_path, batches)
    data = SOURCES.create(f"cifar10:path={tmp_path}").load()
    check(data, batches)
    assert data.classes == NAMES


def test_red_plane_comes_first(tmp_path, batches):
    pixels = np.zeros((1, 3072), dtype=np.uint8)
    pixels[0, :1024] = 255  # a pure red image in the published byte order
    write_binary(tmp_path, [*batches[:5], (pixels, [0])])
    data = Cifar10(path=str(tmp_path)).load()
    assert data.x_test[0, 0].min() == 1.0 and data.x_test[0, 1:].max() == 0.0


def test_binary_batches_found_in_extracted_folder_with_meta(tmp_path, batches):
    folder = tmp_path / "cifar-10-batches-bin"
    write_binary(folder, batches)
    names = [f"class{i}" for i in range(10)]
    (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    data = Cifar10(path=str(tmp_path)).load()
    check(data, batches)
    assert data.classes == tuple(names)


def test_pickled_batches_round_trip(tmp_path, batches):
    folder = tmp_path / "cifar-10-batches-py"
    write_pickled(folder, batches)
    with open(folder / "batches.meta", "wb") as stream:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)], b"num_vis": 3072}, stream)
    data = Cifar10(path=str(tmp_path)).load()
    check(data, batches)
    assert data.classes == tuple(f"c{i}" for i in range(10))


class Python2Pickler(pickle._Pickler):
    """Write pickles the way Python 2's cPickle did, like the published CIFAR-10 python batches:
    strings as byte strings, the numpy array builder under its numpy 1.x name ``numpy.core``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_string(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)

    dispatch[bytes] = save_string
    dispatch[str] = save_string
    dispatch[type] = save_global
    dispatch[type(len)] = save_global


def test_python2_era_pickles_load(tmp_path, batches):
    def dump(obj, stream):
        Python2Pickler(stream, protocol=2).dump(obj)

    write_pickled(tmp_path, batches, dump=dump)
    assert b"numpy.core.multiarray\n_reconstruct" in (tmp_path / "test_batch").read_bytes()
    check(Cifar10(path=str(tmp_path)).load(), batches)


class RunsCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_pickle_that_runs_a_command_is_refused_and_not_run(tmp_path, batches):
    write_pickled(tmp_path, batches)
    sentinel = tmp_path / "pwned"
    payload = {b"data": batches[0][0], b"labels": RunsCommand(f"touch {sentinel}")}
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps(payload))
    with pytest.raises(DataError) as info:
        Cifar10(path=str(tmp_path)).load()
    assert not sentinel.exists()
    message = str(info.value)
    assert "data_batch_3" in message and "malicious" in message and "system" in message


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps(io.BytesIO(b"x")),  # any other class
        b"cbuiltins\neval\n(V1+1\ntR.",  # a builtin called with REDUCE
        pickle.dumps(np.float64(1.5)),  # numpy scalars use a global that is not allowed
    ],
    ids=["class", "builtin-eval", "numpy-scalar"],
)
def test_only_array_globals_are_allowed(tmp_path, payload):
    path = tmp_path / "batch"
    path.write_bytes(payload)
    with pytest.raises(DataError, match="may be corrupt or malicious"):
        load_arrays(path)


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": np.array([1, "two"], dtype=object)}))
    with pytest.raises(DataError, match="dtype=object"):
        load_arrays(path)


@pytest.mark.parametrize("content", [b"", b"\x80\x04garbage", os.urandom(64)], ids=["empty", "cut", "noise"])
def test_garbled_pickles_are_data_errors(tmp_path, content):
    path = tmp_path / "batch"
    path.write_bytes(content)
    with pytest.raises(DataError, match=str(path)):
        load_arrays(path)


def test_pickled_batch_must_be_a_dict_of_pixels(tmp_path, batches):
    write_pickled(tmp_path, batches)
    with open(tmp_path / "data_batch_2", "wb") as stream:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, stream)
    with pytest.raises(DataError) as info:
        Cifar10(path=str(tmp_path)).load()
    assert "data_batch_2" in str(info.value) and "(2, 100)" in str(info.value)


def test_pickled_labels_must_match_the_images(tmp_path, batches):
    write_pickled(tmp_path, batches)
    with open(tmp_path / "test_batch", "wb") as stream:
        pickle.dump({b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1]}, stream)
    with pytest.raises(DataError, match="2 values of type int64 for 3 images"):
        Cifar10(path=str(tmp_path)).load()


def test_truncated_binary_batch_is_refused(tmp_path, batches):
    write_binary(tmp_path, batches)
    path = tmp_path / "data_batch_4.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError) as info:
        Cifar10(path=str(tmp_path)).load()
    assert "data_batch_4.bin" in str(info.value) and "3073-byte records" in str(info.value)


def test_missing_batches_are_named(tmp_path, batches):
    write_binary(tmp_path, batches)
    (tmp_path / "data_batch_5.bin").unlink()
    (tmp_path / "test_batch.bin").unlink()
    with pytest.raises(DataError) as info:
        Cifar10(path=str(tmp_path)).load()
    assert "data_batch_5.bin, test_batch.bin" in str(info.value)
    assert "fedgossip data download cifar10" in str(info.value)


def test_empty_folder_says_what_was_expected(tmp_path):
    with pytest.raises(DataError) as info:
        Cifar10(path=str(tmp_path)).load()
    message = str(info.value)
    assert "data_batch_1.bin" in message and "cifar-10-batches-bin" in message
    assert f"--dir {tmp_path}" in message


def test_labels_beyond_ten_classes_are_refused(tmp_path, batches):
    pixels, labels = batches[1]
    batches[1] = (pixels, [99] * len(labels))
    write_binary(tmp_path, batches)
    with pytest.raises(DataError, match="label 99"):
        Cifar10(path=str(tmp_path)).load()


def test_meta_file_with_wrong_class_count_is_refused(tmp_path, batches):
    write_binary(tmp_path, batches)
    (tmp_path / "batches.meta.txt").write_text("a\nb\nc\n")
    with pytest.raises(DataError, match="names 3 classes"):
        Cifar10(path=str(tmp_path)).load()
