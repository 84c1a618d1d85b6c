"""``--async`` under ``--availability``: away nodes hold still, offers go to online ones, all are answered."""

from __future__ import annotations

import json

import numpy as np

from fedgossip.records import read_metrics
from fedgossip.settings.availability_spec import parse_availability
from fedgossip.topology.availability import AvailabilitySchedule

NODES, INTERACTIONS = 8, 12
# node 5 has no row: never online; the others come and go, some spells across the ranks' boundary
TRACE = "node,start,end\n0,0,40\n1,0,10\n1,20,40\n2,5,40\n3,0,40\n4,0,3\n4,30,40\n6,0,40\n7,10,30\n"


def test_nodes_away_in_their_window_hold_still_and_every_offer_is_answered(mpirun, script, tmp_path):
    # the real interaction code over random models on a ring, uncompressed then qsgd 5-bit
    trace = tmp_path / "trace.csv"
    trace.write_text(TRACE)
    for ranks, spec in ((2, "markov:online=3,offline=2"), (3, f"trace:path={trace}")):
        done = mpirun(ranks, *script("async_availability.py"), NODES, 40, spec, timeout=200)
        assert done.returncode == 0, done.output[-5000:]
        assert f"ok {NODES} nodes on {ranks} ranks" in done.stdout


def test_an_async_run_follows_the_schedule_through_a_cut(mpirun, fedgossip, tmp_path):
    spec, seed = "bernoulli:p=0.6", 3
    options = ("--nodes", str(NODES), "--algorithm", "swarm", "--async", "--local-steps", "geometric:mean=2",
               "--compressor", "qsgd:bits=5", "--availability", spec, "--rounds", str(INTERACTIONS),
               "--eval-every", "4", "--checkpoint-every", "6", "--seed", str(seed),
               "--name", "away")  # fmt: skip
    done = mpirun(2, *fedgossip, "train", *options, timeout=300)
    assert done.returncode == 0, done.output[-5000:]
    run = tmp_path / "results" / "away"
    metrics = read_metrics(run)
    schedule = AvailabilitySchedule(parse_availability(spec), NODES, INTERACTIONS, seed)
    expected = [schedule.online_rounds(upto).tolist() for upto in (4, 8, 12)]
    assert metrics["online_rounds"].tolist() == expected  # the windows every node had, drawn here alike
    last = {name: values[-1] for name, values in metrics.items() if values.ndim == 2}
    assert np.all(last["interactions"] <= last["online_rounds"])  # at most one offer per online window
    assert 0 < last["interactions"].sum() == last["offers_served"].sum()  # every offer was answered
    assert last["bytes_sent"].sum() == last["bytes_received"].sum()
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed"
    assert record["availability"]["mean_online_fraction"] < 1
