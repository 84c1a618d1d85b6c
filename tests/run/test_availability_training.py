"""Local training under --availability: an offline node takes no steps; co-hosted nodes stay one batch.

One process hosts 8 nodes (in-process, one MPI rank). Vectorized training must batch the
same nodes every round (an offline one with 0 steps), not build a batch per online set,
and give what training them one by one gives.
"""

from __future__ import annotations

import h5py
import numpy as np
from mpi4py import MPI

import fedgossip.local.batched as batched
from fedgossip.run.engine import run_training
from fedgossip.settings.config import TrainConfig

SETTINGS = {
    "nodes": 8, "rounds": 4, "eval_every": 1, "local_steps": 2, "model": "mlp:hidden=8",
    "availability": "bernoulli:p=0.5", "seed": 2,
}  # fmt: skip


def train(tmp_path, vectorize: bool) -> dict[str, np.ndarray]:
    name = "vectorized" if vectorize else "one-by-one"
    run_training(TrainConfig(**SETTINGS, vectorize=vectorize, out=str(tmp_path), name=name), MPI.COMM_WORLD)
    with h5py.File(tmp_path / name / "metrics.h5", "r") as f:
        return {key: f[key][()] for key in ("samples_processed", "online_rounds", "test_loss")}


def test_offline_nodes_take_no_steps_and_one_batch_serves_every_round(tmp_path, monkeypatch):
    built = []
    original = batched.BatchedTraining.__init__

    def counting(self, trainers):
        built.append(len(trainers))
        original(self, trainers)

    monkeypatch.setattr(batched.BatchedTraining, "__init__", counting)
    vectorized = train(tmp_path, vectorize=True)
    assert built == [8]  # one batch of all 8 nodes, whatever the round's online set
    one_by_one = train(tmp_path, vectorize=False)
    samples, online = vectorized["samples_processed"], vectorized["online_rounds"]
    steps_taken = np.diff(samples, axis=0, prepend=0) > 0
    went_online = np.diff(online, axis=0, prepend=0) > 0
    assert np.array_equal(steps_taken, went_online)  # trained in exactly the rounds it was online
    assert went_online.any() and not went_online.all()
    np.testing.assert_array_equal(samples, one_by_one["samples_processed"])
    np.testing.assert_allclose(vectorized["test_loss"], one_by_one["test_loss"], rtol=0, atol=1e-5)
