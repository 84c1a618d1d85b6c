"""The bundled digits and the registration of every built-in source."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from fedgossip.data.sources import SOURCES, DatasetSource, load_source


def test_digits_are_1797_images_of_ten_classes():
    source, data = load_source("digits")
    assert data.x_train.shape == (1797, 1, 8, 8) and data.x_train.dtype == np.float32
    assert data.classes == tuple("0123456789")
    assert np.array_equal(np.unique(data.y_train), np.arange(10))
    assert data.x_test is None and not data.has_test_split
    assert source.spec == "digits"


def test_digits_pixels_are_scaled_from_sixteen_levels():
    reference = load_digits()
    data = SOURCES.create("digits").load()
    np.testing.assert_allclose(data.x_train[:, 0], reference.images / 16.0, rtol=1e-6)
    np.testing.assert_array_equal(data.y_train, reference.target)
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0


def test_every_builtin_source_is_registered():
    available = SOURCES.available()
    expected = {"digits", "synthetic", "mnist", "mnist5k", "fashion-mnist", "cifar10", "npz", "hdf5", "csv"}
    assert expected <= set(available)
    for name in expected:
        assert issubclass(available[name], DatasetSource)
        assert available[name].summary(), f"{name} needs a docstring summary"
