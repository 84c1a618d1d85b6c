"""What each algorithm builds at setup for lossless and lossy compressors, and what it refuses."""

import numpy as np
import pytest
import torch
from mpi4py import MPI

from fedgossip.algorithms import ALGORITHMS, GossipContext
from fedgossip.comm.codec import Codec
from fedgossip.comm.references import EdgeReferences, PublicCopies
from fedgossip.comm.traffic import Traffic
from fedgossip.compress.base import Compressor, Packet, output_tensor
from fedgossip.compress.none import NoCompression
from fedgossip.errors import ConfigError
from fedgossip.topology.base import make_topology


class HalfPrecision(Compressor):
    """A lossy stand-in: float16 values."""

    name = "half"

    @property
    def consensus_step(self):
        return 0.7

    def encode(self, x, key=0):
        return Packet(x.numel(), x.numpy().astype(np.float16).view(np.uint8))

    def decode(self, packet, out=None):
        result = output_tensor(packet.count, out)
        result.numpy()[:] = packet.payload.view(np.float16)
        return result

    def nbytes(self, count):
        return 2 * count


def context(compressor, *, same_start=True, size=3):
    """A gossip context of rank 0 in a ring of ``size`` (setup never communicates)."""
    topology = make_topology("ring", size, 0)
    codec = Codec(compressor, 0, 10)
    return GossipContext(
        comm=MPI.COMM_SELF,
        topology=topology,
        codec=codec,
        traffic=Traffic(),
        seed=0,
        sample_counts=np.ones(size),
        same_start=same_start,
    )


def test_allreduce_refuses_a_lossy_compressor():
    with pytest.raises(ConfigError, match="allreduce cannot use the lossy --compressor half: it averages"):
        ALGORITHMS.create("allreduce").setup(context(HalfPrecision()), torch.zeros(10))


def test_lossy_dpsgd_keeps_public_copies_starting_at_the_shared_model():
    flat = torch.arange(10, dtype=torch.float32)
    algorithm = ALGORITHMS.create("dpsgd")
    algorithm.setup(context(HalfPrecision()), flat)
    assert isinstance(algorithm.copies, PublicCopies)
    assert torch.equal(algorithm.copies.own, flat) and torch.equal(algorithm.copies.mixed, flat)
    assert algorithm.consensus_step == 0.7  # the compressor's default consensus step


def test_public_copies_start_at_zero_when_ranks_start_apart():
    algorithm = ALGORITHMS.create("dpsgd")
    algorithm.setup(context(HalfPrecision(), same_start=False), torch.ones(10))
    assert torch.count_nonzero(algorithm.copies.own) == 0


def test_lossless_dpsgd_averages_models_directly():
    algorithm = ALGORITHMS.create("dpsgd:gamma=0.5")
    algorithm.setup(context(NoCompression()), torch.ones(10))
    assert algorithm.copies is None
    assert algorithm.consensus_step is None and algorithm.consensus_step_for(NoCompression()) is None


def test_gamma_overrides_the_compressor_default():
    algorithm = ALGORITHMS.create("dpsgd:gamma=0.25")
    assert algorithm.consensus_step_for(HalfPrecision()) == 0.25
    algorithm.setup(context(HalfPrecision()), torch.ones(10))
    assert algorithm.consensus_step == 0.25


@pytest.mark.parametrize("gamma", ["-0.5", "0", "1.5"])
def test_gamma_outside_zero_one_is_refused(gamma):
    with pytest.raises(ConfigError, match=rf"gamma='{gamma}': must be > 0 and <= 1"):
        ALGORITHMS.create(f"dpsgd:gamma={gamma}")


def test_a_compressor_default_outside_zero_one_is_refused_at_setup():
    class Overshooting(HalfPrecision):
        name = "overshooting"

        @property
        def consensus_step(self):
            return 1.5

    with pytest.raises(ConfigError, match=r"overshooting's consensus step must be in \(0, 1\], got 1.5"):
        ALGORITHMS.create("dpsgd").setup(context(Overshooting()), torch.ones(10))


def test_lossy_swarm_keeps_a_reference_per_edge():
    algorithm = ALGORITHMS.create("swarm")
    algorithm.setup(context(HalfPrecision(), size=4), torch.ones(10))
    assert isinstance(algorithm.references, EdgeReferences)
    assert algorithm.references.neighbors == [1, 3]
