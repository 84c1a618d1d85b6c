"""COMP-AMS on one rank: the settings it refuses, its defaults, and one step's arithmetic."""

import numpy as np
import pytest
import torch
from mpi4py import MPI

from fedgossip.algorithms import ALGORITHMS, GossipContext
from fedgossip.api.training import algorithm_defaults as _algorithm_defaults
from fedgossip.comm.codec import Codec
from fedgossip.comm.traffic import Traffic
from fedgossip.compress import COMPRESSORS
from fedgossip.errors import ConfigError
from fedgossip.settings.config import TrainConfig
from fedgossip.topology.base import make_topology


def comp_ams(compressor: str, count: int = 500):
    comm = MPI.COMM_SELF
    codec = Codec(COMPRESSORS.create(compressor), 0, count, seed=1)
    ctx = GossipContext(comm, make_topology("complete", 1, 0), codec, Traffic(), 1, np.array([10]))
    algorithm = ALGORITHMS.create("comp-ams")
    algorithm.setup(ctx, torch.zeros(count))
    return algorithm, ctx


def test_comp_ams_defaults_to_amsgrad_and_other_algorithms_keep_sgd():
    amsgrad = {"optimizer": "amsgrad", "lr": 0.001, "lr_schedule": "constant"}
    assert _algorithm_defaults({"algorithm": "comp-ams"}, {}) == amsgrad
    assert _algorithm_defaults({}, {"algorithm": "comp-ams"}) == amsgrad
    assert _algorithm_defaults({"algorithm": "dpsgd"}, {"algorithm": "comp-ams"}) == {}
    assert _algorithm_defaults({"algorithm": "no-such"}, {}) == {}  # reported later, with the known ones


def test_comp_ams_refuses_other_optimizers_and_epochs_at_once():
    algorithm = ALGORITHMS.create("comp-ams")
    algorithm.check_config(TrainConfig(algorithm="comp-ams", optimizer="amsgrad:beta2=0.99"))
    with pytest.raises(ConfigError) as info:
        algorithm.check_config(TrainConfig(algorithm="comp-ams", optimizer="adam", local_epochs=1))
    assert "not adam" in str(info.value) and "a fixed --local-steps, not --local-epochs" in str(info.value)


def test_uncompressed_gradient_passes_through_unchanged():
    algorithm, ctx = comp_ams("none")
    grad = torch.from_numpy(np.random.default_rng(0).normal(size=500).astype(np.float32))
    expected = grad.clone()
    algorithm.reduce_gradient(grad)
    assert torch.equal(grad, expected)
    assert not algorithm.feedback.enabled
    assert ctx.traffic.bytes_sent == 0  # one node sends to nobody


@pytest.mark.parametrize("compressor", ["topk:ratio=0.02", "sign:block=64", "qsgd:bits=3"])
def test_one_step_applies_the_compressed_corrected_gradient(compressor):
    algorithm, _ = comp_ams(compressor)
    rng = np.random.default_rng(1)
    for step in range(1, 6):
        grad = torch.from_numpy(rng.normal(size=500).astype(np.float32))
        g, e_old = grad.clone(), algorithm.feedback.residual.clone()
        algorithm.reduce_gradient(grad)
        # alone, the mean is this rank's own decoded message
        if algorithm.feedback.enabled:
            assert torch.allclose(algorithm.feedback.residual + grad, g + e_old, atol=1e-6)
            assert float(algorithm.feedback.residual.abs().max()) > 0
        else:  # unbiased qsgd: no residual, the message is an unbiased estimate of g itself
            assert float((grad - g).abs().max()) > 0
        assert algorithm.steps == step
    assert algorithm.feedback.enabled == (compressor != "qsgd:bits=3")
