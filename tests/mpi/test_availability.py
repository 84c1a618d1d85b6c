"""--availability under a real mpiexec: the schedule does not depend on which rank hosts a node.

Every rank draws the whole schedule from the run seed, so 8 nodes on 1 rank and 4 on each of
2 ranks must train, skip and mix alike: trained one by one, every metric but the wall-clock
ones and ``bytes_within`` agrees to the bit, ``online_rounds`` included.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from fedgossip.settings.availability_spec import BernoulliAvailability
from fedgossip.topology.availability import AvailabilitySchedule

NODES = 8
WALL_CLOCK = {"wall_time", "compute_s", "comm_s", "codec_s", "link_s", "idle_s", "filter_saved_s"}
COMMON = (
    *("--nodes", str(NODES), "--rounds", "4", "--eval-every", "2", "--local-steps", "2"),
    *("--model", "mlp:hidden=8", "--seed", "4", "--one-by-one", "--availability", "bernoulli:p=0.6"),
)
CASES = {
    "dpsgd": ("--algorithm", "dpsgd", "--topology", "ring"),
    "swarm": ("--algorithm", "swarm", "--topology", "complete"),
    "allreduce": ("--algorithm", "allreduce"),  # offline nodes add zeros to a collective across ranks
}


@pytest.fixture(scope="module")
def partition(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("partitions") / "digits-8"
    subprocess.run(
        [sys.executable, "-m", "fedgossip", "partition", "create", "digits", "--nodes", str(NODES),
         "--scheme", "dirichlet:alpha=0.5", "--seed", "1", "--out", str(out)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return out


def read(run_dir: Path) -> dict[str, np.ndarray]:
    with h5py.File(run_dir / "metrics.h5", "r") as f:
        # datasets only: the per-edge traffic is a group of its own (edges/)
        return {
            key: item[()]
            for key, item in f.items()
            if isinstance(item, h5py.Dataset) and key not in WALL_CLOCK
        }


@pytest.mark.parametrize("case", list(CASES))
def test_one_rank_of_eight_nodes_equals_two_ranks_of_four(case, partition, mpirun, fedgossip, tmp_path):
    runs = {}
    for ranks in (1, 2):
        name = f"{case}-{ranks}"
        train = ("train", "--data", partition, *COMMON, *CASES[case], "--out", tmp_path, "--name", name)
        done = mpirun(ranks, *fedgossip, *train, timeout=300)
        assert done.returncode == 0, done.output
        runs[ranks] = read(tmp_path / name)
    one, two = runs[1], runs[2]
    assert sorted(one) == sorted(two)
    differ = [
        key for key in one if key != "bytes_within" and not np.array_equal(one[key], two[key], equal_nan=True)
    ]
    assert not differ, f"1 rank x 8 nodes and 2 ranks x 4 nodes differ in {differ}"
    # the counts are the schedule's, drawn independently here from the same seed
    schedule = AvailabilitySchedule(BernoulliAvailability(p=0.6), NODES, 4, seed=4)
    expected = [schedule.online_rounds(2).tolist(), schedule.online_rounds(4).tolist()]
    assert one["online_rounds"].tolist() == expected
    assert one["online_rounds"][-1].min() < 4  # some node missed a round: the schedule was not "always"
    record = json.loads((tmp_path / f"{case}-2" / "run.json").read_text())
    assert record["availability"]["spec"] == "bernoulli:p=0.6"
    assert record["availability"]["mean_online_fraction"] == pytest.approx(schedule.mean_online_fraction())
    assert record["config"]["availability"] == "bernoulli:p=0.6"
