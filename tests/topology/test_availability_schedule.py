"""The run's availability schedule: per-round online sets and the counts reported from them."""

from __future__ import annotations

import numpy as np
import pytest

from fedgossip.settings.availability_spec import AlwaysAvailable, TraceAvailability
from fedgossip.topology.availability import AvailabilitySchedule


@pytest.fixture
def schedule(tmp_path) -> AvailabilitySchedule:
    trace = tmp_path / "trace.csv"
    trace.write_text("0,0,2\n1,1,4\n2,0,4\n")
    return AvailabilitySchedule(TraceAvailability(path=str(trace)), num_nodes=3, rounds=4, seed=0)


def test_online_sets_and_counts(schedule):
    assert schedule.online_nodes(0) == (0, 2)
    assert schedule.online_nodes(3) == (1, 2)
    assert schedule.is_online(1, 1) and not schedule.is_online(0, 2)
    assert schedule.online_rounds().tolist() == [2, 3, 4]
    assert schedule.online_rounds(upto=2).tolist() == [2, 1, 2]
    assert schedule.mean_online_fraction() == pytest.approx(9 / 12)


def test_mask_cannot_be_changed_and_rounds_are_bounded(schedule):
    with pytest.raises(ValueError):
        schedule.online(0)[1] = True
    with pytest.raises(IndexError, match="range\\(4\\)"):
        schedule.online(4)


def test_always_is_full_attendance():
    schedule = AvailabilitySchedule(AlwaysAvailable(), num_nodes=4, rounds=3, seed=1)
    assert schedule.mean_online_fraction() == 1.0
    assert np.array_equal(schedule.online_rounds(), [3, 3, 3, 3])
