"""Asynchronous swarm under a real mpiexec: never hangs, keeps its invariants, ignores stragglers."""

import json

import pytest


@pytest.mark.parametrize(("ranks", "repeats"), [(2, 8), (16, 6)])
def test_async_gossip_terminates_and_keeps_its_invariants(mpirun, script, ranks, repeats):
    # Every repeat is a whole protocol run: uncompressed (mean preserved), compressed (references
    # identical at both ends), a 10× straggler, an early finisher with offers still in flight to it.
    # With 2 ranks the two often offer to each other at the same time.
    done = mpirun(ranks, *script("async_swarm.py"), repeats, 20, timeout=600)
    assert done.returncode == 0, done.output[-5000:]
    assert f"ok {repeats} repeats on {ranks} ranks" in done.stdout


def test_async_training_with_stragglers_and_a_slow_link(mpirun, fedgossip, tmp_path, summary_screen):
    options = [
        "--algorithm", "swarm", "--async", "--compressor", "qsgd:bits=5",
        "--slowdown", "ranks=0,1:factor=5", "--link", "bandwidth=100Mbit,latency=2ms",
        "--local-steps", "geometric:mean=10", "--rounds", "40", "--eval-every", "10", "--name", "async",
    ]  # fmt: skip
    done = mpirun(8, *fedgossip, "train", *options)
    assert done.returncode == 0, done.output
    run = tmp_path / "results" / "async"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final"]["round"] == 40 and summary["evals"] == 4
    assert summary["final"]["avg_model_accuracy"] > 0.85  # 10 classes: chance is 0.1
    gossip = summary["gossip"]
    assert gossip["interactions_per_rank_mean"] == 40  # the last checkpoint follows every reply
    assert gossip["offers_served_per_rank_mean"] == 40  # every offer is served by someone
    assert gossip["staleness_steps_mean"] > 0
    assert summary["time"]["link_s"] > 0
    assert summary["mode"] == {
        "asynchronous": True,
        "slowdown": "ranks=0,1:factor=5.0",  # run.json records the canonical spec
        "link": "bandwidth=100Mbit,latency=2ms",
    }
    shown = summary_screen(run)
    assert "asynchronous · slowdown ranks=0,1:factor=5.0 · link bandwidth=100Mbit,latency=2ms" in shown
    assert "offers served" in shown and "emulated link" in shown


def test_async_is_refused_where_it_means_nothing(mpirun, fedgossip):
    done = mpirun(2, *fedgossip, "train", "--algorithm", "dpsgd", "--async")
    assert done.returncode == 1
    assert done.stderr.count("--async applies to swarm only; dpsgd runs in synchronous rounds") == 1


@pytest.mark.parametrize("algorithm", ["dpsgd", "allreduce"])
def test_link_latency_shows_in_wall_time_of_synchronous_runs(mpirun, fedgossip, tmp_path, algorithm):
    rounds, latency = 6, 0.05
    options = ["--rounds", str(rounds), "--local-steps", "1", "--eval-every", str(rounds), "--name", "slow"]
    done = mpirun(4, *fedgossip, "train", "--algorithm", algorithm, "--link", "latency=50ms", *options)
    assert done.returncode == 0, done.output
    time = json.loads((tmp_path / "results" / "slow" / "summary.json").read_text())["time"]
    # a round cannot end before its packets have crossed the link, one latency after the neighbours
    # sent them (a ring allreduce: 2(n−1) latencies); part of it may pass while a rank still computes
    hops = 1 if algorithm == "dpsgd" else 2 * (4 - 1)
    assert time["wall_s"] >= 0.9 * rounds * hops * latency
    assert 0 < time["link_s"] <= time["wall_s"]


def test_one_packet_to_two_peers_gets_one_delivery_time_each(mpirun, script):
    done = mpirun(3, *script("link_stamps.py"))
    assert done.returncode == 0, done.output
    assert "ok stamps" in done.stdout


def test_async_run_prints_a_progress_line_per_evaluation(mpirun, fedgossip):
    options = ["--algorithm", "swarm", "--async", "--rounds", "20", "--eval-every", "5", "--name", "shown"]
    done = mpirun(2, *fedgossip, "train", *options, timeout=240)
    assert done.returncode == 0, done.output
    lines = [line for line in done.stdout.splitlines() if line.startswith("interaction ")]
    assert [line.split(":")[0] for line in lines] == [f"interaction {i}/20" for i in (5, 10, 15, 20)]
    assert all(" acc " in line and "avg model" in line and "MB sent" in line for line in lines), lines
