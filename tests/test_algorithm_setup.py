"""Algorithms that exchange whole models refuse a lossy compressor with a message naming what is missing."""

import numpy as np
import pytest
import torch
from mpi4py import MPI

from fedgossip.algorithms import ALGORITHMS, GossipContext
from fedgossip.comm.codec import Codec
from fedgossip.comm.traffic import Traffic
from fedgossip.compress.base import Compressor, Packet
from fedgossip.errors import ConfigError
from fedgossip.topology.base import make_topology


class HalfPrecision(Compressor):
    """A lossy stand-in: float16 values."""

    name = "half"

    def encode(self, x):
        return Packet(x.numel(), x.numpy().astype(np.float16).view(np.uint8))

    def decode(self, packet):
        return torch.from_numpy(packet.payload.view(np.float16).astype(np.float32))

    def nbytes(self, count):
        return 2 * count


@pytest.mark.parametrize(
    ("algorithm", "missing"), [("dpsgd", "CHOCO public copies"), ("swarm", "per-edge references")]
)
def test_lossy_compressor_is_refused(algorithm, missing):
    flat = torch.zeros(10)
    comm = MPI.COMM_SELF
    ctx = GossipContext(
        comm, make_topology("ring", 1, 0), Codec(HalfPrecision(), 0, 10), Traffic(1), 0, np.ones(1)
    )
    with pytest.raises(ConfigError, match=f"{algorithm} with the lossy --compressor half needs {missing}"):
        ALGORITHMS.create(algorithm).setup(ctx, flat)
