"""What `--on-failure continue` refuses before training, and the placement the survivors go on with."""

from __future__ import annotations

import pytest

from fedgossip.algorithms import ALGORITHMS
from fedgossip.comm.placement import Placement
from fedgossip.comm.surviving_placement import SurvivingPlacement
from fedgossip.errors import ConfigError
from fedgossip.run.failure_plan import check_survivable
from fedgossip.settings.config import TrainConfig


@pytest.mark.parametrize("algorithm", ["dpsgd", "swarm", "allreduce", "fedavg"])
def test_supported_algorithms_pass(algorithm):
    check_survivable(TrainConfig(on_failure="continue"), ALGORITHMS.create(algorithm), ())


@pytest.mark.parametrize(
    "settings, algorithm, expected",
    [
        ({}, "comp-ams", "is not supported by comp-ams yet"),
        ({}, "gt", "is not supported by gt yet"),
        ({}, "d2", "is not supported by d2 yet"),
        ({"asynchronous": True, "checkpoint_every": 5}, "swarm", "cannot take --checkpoint-every yet"),
        ({"availability": "bernoulli:p=0.9"}, "dpsgd", "cannot be combined with --availability yet"),
        ({"attack": "sign-flip", "attackers": "1"}, "dpsgd", "--attack or --robust"),
        ({"robust": "clip:tau=1"}, "dpsgd", "--attack or --robust"),
    ],
)
def test_what_cannot_survive_a_lost_rank_is_refused(settings, algorithm, expected):
    config = TrainConfig(on_failure="continue", algorithm=algorithm, **settings)
    with pytest.raises(ConfigError, match="--on-failure continue") as caught:
        check_survivable(config, ALGORITHMS.create(algorithm), ())
    assert expected in str(caught.value)
    check_survivable(TrainConfig(algorithm=algorithm, **settings), ALGORITHMS.create(algorithm), ())  # abort


def test_plugins_are_refused():
    with pytest.raises(ConfigError, match="training-time plugins"):
        check_survivable(TrainConfig(on_failure="continue"), ALGORITHMS.create("dpsgd"), ("hide",))


def test_surviving_placement_keeps_ids_and_hosts_and_renumbers_ranks():
    base = Placement(10, 4)  # ranks host 0-2, 3-5, 6-7, 8-9
    after = SurvivingPlacement(base, [0, 2, 3])  # rank 1 lost
    assert after.ranks == 3 and after.nodes == 10
    assert [list(after.nodes_of(r)) for r in range(3)] == [[0, 1, 2], [6, 7], [8, 9]]
    assert after.rank_of(7) == 1 and after.rank_of(9) == 2 and after.index_on_rank(7) == 1
    assert after.lost_nodes() == [3, 4, 5] and after.hosted() == [0, 1, 2, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="node 4 was lost"):
        after.rank_of(4)
    again = SurvivingPlacement(after, [0, 2])  # then the rank hosting 6-7 (now rank 1) too
    assert again.lost_nodes() == [3, 4, 5, 6, 7] and again.rank_of(8) == 1
