"""Properties of the synchronous algorithms under a real mpiexec with several ranks."""

import pytest


@pytest.mark.parametrize("ranks", [2, 4, 8])
@pytest.mark.parametrize("algorithm", ["dpsgd", "swarm"])
def test_uncompressed_gossip_preserves_the_mean(mpirun, script, ranks, algorithm):
    done = mpirun(ranks, *script("mean_preserved.py"), algorithm, "ring", 15)
    assert done.returncode == 0, done.output
    assert "ok drift=" in done.stdout


@pytest.mark.parametrize("topology", ["torus", "complete", "exponential"])
def test_dpsgd_preserves_the_mean_on_other_graphs(mpirun, script, topology):
    done = mpirun(4, *script("mean_preserved.py"), "dpsgd", topology, 10)
    assert done.returncode == 0, done.output


@pytest.mark.parametrize("ranks", [4, 8])
def test_dpsgd_consensus_decays_as_the_spectral_gap_predicts(mpirun, script, ranks):
    done = mpirun(ranks, *script("consensus_rate.py"), "ring", 25)
    assert done.returncode == 0, done.output


@pytest.mark.parametrize("algorithm", ["dpsgd", "swarm", "fedavg", "fedavg:client_fraction=0.5"])
def test_bytes_counted_equal_bytes_delivered(mpirun, script, algorithm):
    done = mpirun(4, *script("bytes_counted.py"), algorithm, 6)
    assert done.returncode == 0, done.output


def test_allreduce_one_step_equals_large_batch_sgd(mpirun, script):
    done = mpirun(4, *script("allreduce_matches_sgd.py"))
    assert done.returncode == 0, done.output
    assert "ok max difference" in done.stdout
