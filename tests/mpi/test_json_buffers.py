"""Control data between ranks travels as JSON in byte buffers, never pickled (a real mpiexec, 3 ranks)."""

CHECKS = ["allgather", "gather", "bcast", "agree error", "agree root_only", "garbage refused"]


def test_json_collectives_carry_unicode_uneven_lengths_and_errors(mpirun, script):
    done = mpirun(3, *script("json_collectives.py"), timeout=120)
    assert done.returncode == 0, done.output
    for name in CHECKS:
        assert f"ok {name}\n" in done.stdout, done.output
