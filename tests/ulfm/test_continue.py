"""--on-failure continue on a real Open MPI with ULFM: ranks SIGKILLed mid-run, the survivors finish.

Each run has 8 ranks of one node each on digits (Dirichlet α=0.5, 8 shards). One rank dies
in round 3 and two more in round 6 (1, then 3 of 8 lost; interactions with --async), each
killing itself as it is about to train, so its neighbours learn of it in the middle of an
exchange. The run must end ``completed``, list exactly the lost nodes with their rounds, keep
every survivor's model finite, and reach an average-model accuracy (over the survivors) within
2 points of a run that had the survivors only: the same ranks killed before round 1's steps.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
from pathlib import Path

import numpy as np
import pytest

import fedgossip as fg
from fedgossip.comm.placement import Placement

SCRIPT = Path(__file__).parent / "scripts" / "train_and_kill.py"
MID_RUN = "2@3,5@6,6@6"  # rank 2 in round 3, ranks 5 and 6 in round 6
SURVIVORS_ONLY = "2@1,5@1,6@1"
ALGORITHMS = {
    "dpsgd": {"algorithm": "dpsgd"},
    "choco-4bit": {"algorithm": "dpsgd", "compressor": "qsgd:bits=4"},
    "swarm": {"algorithm": "swarm"},
    "allreduce": {"algorithm": "allreduce"},
    # node 0 the server, with node 1 on rank 0: the 8 shards' clients are nodes 1-8
    "fedavg": {"algorithm": "fedavg", "nodes": 9},
    # cut every 4 interactions (--eval-every): a loss sends the survivors back to its window's start
    "async-swarm": {"algorithm": "swarm", "asynchronous": True},
}


@pytest.fixture(scope="module")
def digits8():
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "digits-8"
        fg.create_partition("digits", 8, scheme="dirichlet:alpha=0.5", out=out, seed=0)
        yield out


def train(ulfm, data: Path, out: Path, kills: str, ranks: int = 8, rounds: int = 12, **options) -> fg.Run:
    """Train under mpirun --with-ft ulfm while the ranks in ``kills`` die; return the run (rank 0's)."""
    config = {
        "data": str(data),
        "out": str(out),
        "rounds": rounds,
        "local_steps": 5,
        "eval_every": 4,
        "seed": 1,
        "on_failure": "continue",
        **options,
    }
    done = ulfm(ranks, [str(SCRIPT), json.dumps(config), kills], timeout=120)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"run_dir"')]
    assert done.returncode == 0 and len(lines) == 1, done.stdout[-3000:] + done.stderr[-3000:]
    return fg.Run(lines[0]["run_dir"])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_survivors_finish_and_learn_as_survivors_alone_would(ulfm, digits8, tmp_path, name):
    run = train(ulfm, digits8, tmp_path, MID_RUN, **ALGORITHMS[name])
    assert run.status == "completed", run.summary
    placement = Placement(ALGORITHMS[name].get("nodes", 8), 8)
    lost_nodes = {rank: list(placement.nodes_of(rank)) for rank in (2, 5, 6)}
    lost = sorted((entry["rank"], entry["node"], entry["round"]) for entry in run.summary["lost"])
    assert [(r, n) for r, n, _ in lost] == [(r, n) for r, nodes in lost_nodes.items() for n in nodes]
    rounds = {r: t for r, _, t in lost}
    if ALGORITHMS[name].get("asynchronous"):  # the first interaction of the window under way
        assert rounds[2] == 1 and rounds[5] in (1, 5) and rounds[6] == rounds[5]
    else:  # ranks 5 and 6 may be seen lost in round 5 where a survivor had not yet passed round 5's end
        assert rounds[2] == 3 and rounds[5] in (5, 6) and rounds[6] == rounds[5]
    metrics = run.metrics
    gone = [node for nodes in lost_nodes.values() for node in nodes]
    survivors = [node for node in range(placement.nodes) if node not in gone]
    final_loss = metrics["test_loss"][-1]
    assert np.isfinite(final_loss[survivors]).all()  # every survivor's model is finite
    assert np.isnan(final_loss[gone]).all()  # the lost nodes have no values after their loss
    assert metrics["round"][-1] == 12
    if name == "fedavg":
        return  # not in the issue's list: its clients' loss is checked, its accuracy not compared
    alone = train(ulfm, digits8, tmp_path, SURVIVORS_ONLY, **ALGORITHMS[name])
    accuracy, reference = metrics["avg_model_accuracy"][-1], alone.metrics["avg_model_accuracy"][-1]
    assert accuracy >= reference - 0.02, (accuracy, reference)


@pytest.mark.timeout(600)
def test_twenty_runs_losing_a_rank_never_hang(ulfm, digits8, tmp_path):
    """20 runs of 2 ranks, rank 1 killed at round 2: each completes within its timeout (a hang fails)."""
    recovery = []
    for repeat in range(20):
        run = train(ulfm, digits8, tmp_path / str(repeat), "1@2", ranks=2, rounds=2, eval_every=2)
        assert run.status == "completed", (repeat, run.summary)
        assert {entry["rank"] for entry in run.summary["lost"]} == {1}
        recovery += [entry["recovery_s"] for entry in run.summary["lost"]]
    assert all(math.isfinite(s) and s >= 0 for s in recovery)
    print(f"detection to continue: median {statistics.median(recovery):.4f} s, max {max(recovery):.4f} s")
