"""`--on-failure continue` under Open MPI: refused without --with-ft ulfm; with it the ULFM check passes
(and, until training past a lost rank is built, the run is refused for that reason instead)."""

from __future__ import annotations

import pytest


@pytest.mark.timeout(120)
def test_continue_needs_the_fault_tolerance_switch(ulfm, tmp_path):
    train = ["-m", "fedgossip", "train", "--on-failure", "continue", "--rounds", "1", "--out", str(tmp_path)]
    without = ulfm(1, train, timeout=50, fault_tolerance=False)
    assert "this Open MPI job was launched without fault tolerance (mpirun --with-ft ulfm)" in without.stderr
    with_switch = ulfm(1, train, timeout=50)
    assert "recovering from a lost rank is not built yet" in with_switch.stderr, with_switch.stderr
    assert without.returncode != 0 and with_switch.returncode != 0
    assert not any(tmp_path.iterdir())  # nothing written
