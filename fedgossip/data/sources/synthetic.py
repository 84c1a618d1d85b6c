"""Synthetic(α, β): the non-IID logistic-regression benchmark of FedProx and LEAF.

Li et al., "Federated Optimization in Heterogeneous Networks" (FedProx), §5.1,
following Shamir et al.: device k has its own model and its own input distribution,

    u_k ~ N(0, α),  B_k ~ N(0, β),
    W_k ~ N(u_k, 1) of shape [classes, dim],  b_k ~ N(u_k, 1),
    v_k with entries ~ N(B_k, 1),  Σ = diag((j + 1)^-1.2),
    x ~ N(v_k, Σ),  y = argmax(W_k x + b_k).

α controls how much the local models differ, β how much the local inputs differ.
Like the reference generator (LEAF ``synthetic``), ``N(m, s)`` here takes ``s`` as
the standard deviation, and device k holds ``int(lognormal(4, 2)) + 50`` samples.
"""

from __future__ import annotations

import numpy as np

from fedgossip.data.sources.base import Dataset, DatasetSource
from fedgossip.errors import ConfigError
from fedgossip.specs import Param

__all__ = ["Synthetic"]

_MIN_SAMPLES = 50  # LEAF adds 50 to every lognormal draw so no device is nearly empty


class Synthetic(DatasetSource):
    """Generate Synthetic(α, β), the non-IID benchmark of FedProx, with one group per device.

    ``groups`` gives each sample's device, so the ``natural`` partitioner can
    hand every node its own device(s). With ``iid=true`` every device shares one
    model and one input distribution (FedProx's Synthetic-IID); α and β are then unused.
    There is no test split of its own; ``fedgossip partition`` holds one out.
    """

    params = (
        Param("alpha", float, 1.0, "spread of the local models across devices", ge=0),
        Param("beta", float, 1.0, "spread of the local input distributions across devices", ge=0),
        Param("devices", int, 30, "number of devices (natural groups)", ge=1),
        Param("dim", int, 60, "number of input features", ge=1),
        Param("classes", int, 10, "number of classes", ge=2),
        Param("max_samples", int, 0, "cap on the samples of one device (0: no cap)", ge=0),
        Param("iid", bool, False, "same model and inputs on every device"),
        Param("seed", int, 0, "seed of the generator", ge=0),
    )

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 1.0,
        devices: int = 30,
        dim: int = 60,
        classes: int = 10,
        max_samples: int = 0,
        iid: bool = False,
        seed: int = 0,
    ):
        if 0 < max_samples < _MIN_SAMPLES:
            raise ConfigError(
                f"synthetic: max_samples={max_samples} is below the {_MIN_SAMPLES} samples every "
                f"device gets; use 0 (no cap) or at least {_MIN_SAMPLES}"
            )
        self.alpha = alpha
        self.beta = beta
        self.devices = devices
        self.dim = dim
        self.classes = classes
        self.max_samples = max_samples
        self.iid = iid
        self.seed = seed

    def load(self) -> Dataset:
        """Draw every device's model, inputs and labels from a generator seeded by ``seed``."""
        rng = np.random.default_rng(self.seed)
        k, c, d = self.devices, self.classes, self.dim
        sizes = rng.lognormal(4.0, 2.0, size=k).astype(np.int64) + _MIN_SAMPLES
        if self.max_samples:
            sizes = np.minimum(sizes, self.max_samples)
        # Σ_jj = (j + 1)^-1.2: later features carry less and less variance.
        scale = np.arange(1, d + 1, dtype=np.float64) ** -0.6
        if self.iid:
            weights = np.broadcast_to(rng.normal(0.0, 1.0, size=(c, d)), (k, c, d))
            biases = np.broadcast_to(rng.normal(0.0, 1.0, size=c), (k, c))
            means = np.zeros((k, d))
        else:
            u = rng.normal(0.0, self.alpha, size=k)
            b = rng.normal(0.0, self.beta, size=k)
            weights = rng.normal(u[:, None, None], 1.0, size=(k, c, d))
            biases = rng.normal(u[:, None], 1.0, size=(k, c))
            means = rng.normal(b[:, None], 1.0, size=(k, d))
        groups = np.repeat(np.arange(k, dtype=np.int64), sizes)
        x = means[groups] + rng.standard_normal((len(groups), d)) * scale
        y = np.empty(len(groups), dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        # One matrix product per device rather than a [n, classes, dim] gather of every sample's model.
        for device in range(k):
            rows = slice(starts[device], starts[device + 1])
            y[rows] = np.argmax(x[rows] @ weights[device].T + biases[device], axis=1)
        return Dataset(
            x_train=x.astype(np.float32),
            y_train=y,
            classes=tuple(str(label) for label in range(c)),
            groups=groups,
        )
