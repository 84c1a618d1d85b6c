"""Users' own files: .npz, HDF5 and CSV, with labels checked and remapped."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from fedgossip.data.sources import SOURCES
from fedgossip.data.sources.files import Csv, Hdf5, Npz
from fedgossip.errors import ConfigError, DataError


@pytest.fixture
def arrays():
    rng = np.random.default_rng(11)
    return {
        "x": rng.normal(size=(20, 4)),
        "y": rng.integers(0, 3, size=20),
        "x_test": rng.normal(size=(6, 4)),
        "y_test": rng.integers(0, 3, size=6),
    }


def save_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def save_hdf5(path, **arrays):
    with h5py.File(path, "w") as file:
        for name, array in arrays.items():
            file.create_dataset(name, data=array)
    return path


SAVERS = {"npz": (save_npz, "data.npz"), "hdf5": (save_hdf5, "data.h5")}


@pytest.mark.parametrize("kind", SAVERS)
def test_arrays_round_trip(tmp_path, arrays, kind):
    save, name = SAVERS[kind]
    path = save(tmp_path / name, **arrays)
    arrays["y"][:3] = [0, 1, 2]  # every class present, so labels keep their values
    save(path, **arrays)
    data = SOURCES.create(f"{kind}:path={path}").load()
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    np.testing.assert_array_equal(data.x_train, arrays["x"].astype(np.float32))
    np.testing.assert_array_equal(data.y_train, arrays["y"])
    np.testing.assert_array_equal(data.x_test, arrays["x_test"].astype(np.float32))
    np.testing.assert_array_equal(data.y_test, arrays["y_test"])
    assert data.classes == ("0", "1", "2")


@pytest.mark.parametrize("kind", SAVERS)
def test_test_split_is_optional(tmp_path, arrays, kind):
    save, name = SAVERS[kind]
    path = save(tmp_path / name, x=arrays["x"], y=arrays["y"])
    data = SOURCES.create(f"{kind}:path={path}").load()
    assert data.x_test is None and data.y_test is None and len(data.y_train) == 20


def test_labels_numbered_from_one_are_remapped_and_named(tmp_path):
    y = np.array([1, 10, 3, 10, 2, 4, 5, 6, 7, 8, 9])
    path = save_npz(tmp_path / "d.npz", x=np.ones((11, 2)), y=y)
    data = Npz(path=str(path)).load()
    np.testing.assert_array_equal(data.y_train, y - 1)
    assert data.classes == ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10")


def test_sparse_labels_are_remapped_over_both_splits(tmp_path):
    path = save_npz(
        tmp_path / "d.npz",
        x=np.ones((3, 2)),
        y=np.array([40, -2, 7]),
        x_test=np.ones((2, 2)),
        y_test=np.array([99, 7]),  # 99 is seen only in the test split
    )
    data = Npz(path=str(path)).load()
    assert data.classes == ("-2", "7", "40", "99")
    np.testing.assert_array_equal(data.y_train, [2, 0, 1])
    np.testing.assert_array_equal(data.y_test, [3, 1])


def test_integer_valued_float_labels_are_accepted(tmp_path):
    path = save_hdf5(tmp_path / "d.h5", x=np.ones((3, 2)), y=np.array([[2.0], [0.0], [1.0]]))
    data = Hdf5(path=str(path)).load()
    np.testing.assert_array_equal(data.y_train, [2, 0, 1])


@pytest.mark.parametrize(
    "bad", [np.array([0.0, 1.5, 2.0]), np.array([0.0, np.nan, 1.0])], ids=["half", "nan"]
)
def test_non_integer_labels_are_refused(tmp_path, bad):
    path = save_npz(tmp_path / "d.npz", x=np.ones((3, 2)), y=bad)
    with pytest.raises(DataError) as info:
        Npz(path=str(path)).load()
    assert "labels must be integers" in str(info.value) and "label 1" in str(info.value)


def test_string_labels_are_refused(tmp_path):
    path = save_hdf5(tmp_path / "d.h5", x=np.ones((2, 2)), y=np.array([b"cat", b"dog"]))
    with pytest.raises(DataError, match="map class names to integers"):
        Hdf5(path=str(path)).load()


def test_mismatched_lengths_are_refused(tmp_path):
    path = save_npz(tmp_path / "d.npz", x=np.ones((5, 2)), y=np.arange(4))
    with pytest.raises(DataError) as info:
        Npz(path=str(path)).load()
    assert "x has 5 samples but y has 4 labels" in str(info.value)


def test_test_split_needs_both_arrays(tmp_path):
    path = save_hdf5(tmp_path / "d.h5", x=np.ones((2, 2)), y=np.arange(2), x_test=np.ones((1, 2)))
    with pytest.raises(DataError, match="has x_test but no y_test"):
        Hdf5(path=str(path)).load()


def test_missing_array_names_what_the_file_has(tmp_path):
    path = save_npz(tmp_path / "d.npz", features=np.ones((2, 2)), y=np.arange(2))
    with pytest.raises(DataError) as info:
        Npz(path=str(path)).load()
    assert "no array x" in str(info.value) and "features" in str(info.value)


def test_object_arrays_in_npz_are_refused(tmp_path):
    path = save_npz(tmp_path / "d.npz", x=np.array([[1], ["a"]], dtype=object), y=np.arange(2))
    with pytest.raises(DataError, match="Python objects"):
        Npz(path=str(path)).load()


@pytest.mark.parametrize("kind", SAVERS)
def test_files_of_another_format_are_refused(tmp_path, kind):
    path = tmp_path / SAVERS[kind][1]
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=str(path)):
        SOURCES.create(f"{kind}:path={path}").load()


@pytest.mark.parametrize("kind", SAVERS)
def test_missing_file_is_named(tmp_path, kind):
    path = tmp_path / "absent"
    with pytest.raises(DataError, match=f"{path} does not exist"):
        SOURCES.create(f"{kind}:path={path}").load()


def test_non_numeric_features_are_refused(tmp_path):
    path = save_hdf5(tmp_path / "d.h5", x=np.array([[b"a"], [b"b"]]), y=np.arange(2))
    with pytest.raises(DataError, match="x must hold numbers"):
        Hdf5(path=str(path)).load()


def test_non_finite_features_are_refused(tmp_path):
    x = np.ones((3, 2))
    x[2, 1] = np.inf
    path = save_npz(tmp_path / "d.npz", x=x, y=np.arange(3))
    with pytest.raises(DataError, match="sample 2 of x holds NaN or infinity"):
        Npz(path=str(path)).load()


def write_csv(path, text):
    path.write_text(text)
    return path


def test_csv_round_trip_with_test_table(tmp_path):
    train = write_csv(tmp_path / "train.csv", "a,label,b\n0.5,1,2\n-1,2,3e2\n4,1,0\n")
    test = write_csv(tmp_path / "test.csv", "a,label,b\n7,2,8\n")
    data = SOURCES.create(f"csv:path={train},label=label,test={test}").load()
    np.testing.assert_array_equal(data.x_train, np.array([[0.5, 2], [-1, 300], [4, 0]], dtype=np.float32))
    np.testing.assert_array_equal(data.y_train, [0, 1, 0])
    np.testing.assert_array_equal(data.x_test, np.array([[7, 8]], dtype=np.float32))
    np.testing.assert_array_equal(data.y_test, [1])
    assert data.classes == ("1", "2")


def test_csv_without_test_has_no_test_split(tmp_path):
    train = write_csv(tmp_path / "train.csv", "y,f\n0,1.5\n1,2.5\n")
    data = SOURCES.create(f"csv:path={train},label=y").load()
    assert data.x_test is None
    np.testing.assert_array_equal(data.x_train, np.array([[1.5], [2.5]], dtype=np.float32))


def test_csv_label_parameter_is_required(tmp_path):
    with pytest.raises(ConfigError, match="label"):
        SOURCES.create(f"csv:path={tmp_path / 'x.csv'}")


def test_csv_non_numeric_cell_is_located(tmp_path):
    path = write_csv(tmp_path / "t.csv", "a,label,b\n1,0,2\n3,1,four\n")
    with pytest.raises(DataError) as info:
        Csv(path=str(path), label="label").load()
    message = str(info.value)
    assert "row 2" in message and "column 'b'" in message and "'four'" in message


def test_csv_non_integer_labels_are_refused(tmp_path):
    path = write_csv(tmp_path / "t.csv", "a,label\n1,cat\n2,dog\n")
    with pytest.raises(DataError, match=r"labels must be integers.*'cat'"):
        Csv(path=str(path), label="label").load()


def test_csv_unknown_label_column_lists_columns(tmp_path):
    path = write_csv(tmp_path / "t.csv", "a,b\n1,0\n")
    with pytest.raises(DataError) as info:
        Csv(path=str(path), label="target").load()
    assert "no column 'target'" in str(info.value) and "a, b" in str(info.value)


def test_csv_without_header_is_refused(tmp_path):
    path = write_csv(tmp_path / "t.csv", "1,0\n2,1\n")
    with pytest.raises(DataError, match="no header row"):
        Csv(path=str(path), label="0").load()


def test_csv_ragged_rows_are_refused(tmp_path):
    path = write_csv(tmp_path / "t.csv", "a,b,label\n1,2,0\n3,1\n")
    with pytest.raises(DataError, match="one cell per column"):
        Csv(path=str(path), label="label").load()


def test_csv_test_table_needs_the_same_header(tmp_path):
    train = write_csv(tmp_path / "train.csv", "a,b,label\n1,2,0\n")
    test = write_csv(tmp_path / "test.csv", "b,a,label\n1,2,0\n")
    with pytest.raises(DataError, match="same header"):
        Csv(path=str(train), label="label", test=str(test)).load()


def test_csv_with_only_a_header_is_refused(tmp_path):
    path = write_csv(tmp_path / "t.csv", "a,label\n")
    with pytest.raises(DataError, match="no rows"):
        Csv(path=str(path), label="label").load()
