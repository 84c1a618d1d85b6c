"""The 8x8 handwritten digits that ship with scikit-learn: small, offline, the default dataset."""

from __future__ import annotations

import numpy as np

from fedgossip.data.sources.base import Dataset, DatasetSource

__all__ = ["Digits"]

_LEVELS = 16.0  # the UCI digits count 4x4 blocks of a 32x32 bitmap, so a pixel is 0..16


class Digits(DatasetSource):
    """Load scikit-learn's 1797 handwritten digits as 1x8x8 images in [0, 1].

    The data is bundled with scikit-learn, so nothing is downloaded. There is
    no test split of its own; ``fedgossip partition`` holds one out.
    """

    params = ()

    def load(self) -> Dataset:
        """Return the digits as float32 ``[1797, 1, 8, 8]`` images and labels 0..9."""
        # Imported here, not with the module: listing the dataset sources should not cost scikit-learn.
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = np.asarray(bunch.images, dtype=np.float32)
        x = (images / np.float32(_LEVELS))[:, np.newaxis]
        y = np.asarray(bunch.target, dtype=np.int64)
        return Dataset(x_train=x, y_train=y, classes=tuple(str(digit) for digit in range(10)))
