"""A SIGKILLed rank under Open MPI ULFM: the survivors detect it, shrink, agree on who was lost, go on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parent / "scripts"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kill_rank, kill_step", [(2, 3), (0, 5)])
def test_survivors_shrink_to_a_working_communicator(ulfm, kill_rank, kill_step):
    done = ulfm(4, [str(SCRIPTS / "kill_and_shrink.py"), str(kill_rank), str(kill_step)], timeout=45)
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert sorted(r["rank"] for r in records) == sorted(set(range(4)) - {kill_rank}), (
        done.stdout + done.stderr
    )
    survivors = [rank for rank in range(4) if rank != kill_rank]
    for record in records:
        assert record["lost"] == [kill_rank]
        assert record["size"] == 3
        assert record["sum"] == sum(survivors)  # the allreduce on the survivors' communicator
        assert record["new_rank"] == survivors.index(record["rank"])  # Shrink keeps the order
        assert record["continue_s"] < 10
