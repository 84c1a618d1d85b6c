"""`--on-failure continue` under MPICH (no working ULFM): every rank stops before training, one message."""

from __future__ import annotations


def test_continue_under_mpich_is_refused_before_training(mpirun, fedgossip, tmp_path):
    done = mpirun(2, *fedgossip, "train", "--on-failure", "continue", "--rounds", "1", timeout=120)
    assert done.returncode == 1, done.output
    assert done.stderr.count("error:") == 1, done.stderr
    assert "--on-failure continue needs an MPI with ULFM fault tolerance: this MPI is MPICH" in done.stderr
    assert "launch/openmpi_env.sh" in done.stderr and "--with-ft ulfm" in done.stderr
    assert not (tmp_path / "results").exists()  # nothing written
