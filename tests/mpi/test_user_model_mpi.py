"""``--model FILE.py:Class`` under mpiexec: each rank imports the file itself; a failing rank stops all."""

from __future__ import annotations

import json
import os

from fedgossip.records import read_run_json

# Logs the importing rank and pid to imports.log beside itself; fails on the rank FAIL_ON_RANK names.
NET = """\
import math
import os
from pathlib import Path

from torch import nn

rank = os.environ.get("PMI_RANK", "?")
with open(Path(__file__).with_name("imports.log"), "a") as log:
    log.write(f"{rank} {os.getpid()}\\n")
if rank == os.environ.get("FAIL_ON_RANK"):
    raise RuntimeError(f"no GPU on rank {rank}")


class Net(nn.Module):
    def __init__(self, input_shape, num_classes, width: int = 16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.ReLU(), nn.Linear(width, num_classes)
        )

    def forward(self, x):
        return self.body(x)
"""
TRAIN = ["train", "--nodes", "4", "--rounds", "3", "--local-steps", "10", "--eval-every", "3"]


def test_two_ranks_each_import_the_model_file_and_train(mpirun, fedgossip, tmp_path):
    (tmp_path / "mine.py").write_text(NET)
    done = mpirun(2, *fedgossip, *TRAIN, "--model", "mine.py:Net:width=32", "--name", "mine", timeout=240)
    assert done.returncode == 0, done.output
    imports = sorted(line.split() for line in (tmp_path / "imports.log").read_text().splitlines())
    assert [rank for rank, _ in imports] == ["0", "1"]  # once per rank, nothing sent between them
    assert len({pid for _, pid in imports}) == 2
    run = tmp_path / "results" / "mine"
    record = read_run_json(run)
    assert record["status"] == "completed" and record["world_size"] == 2
    assert record["config"]["model"] == f"{tmp_path}/mine.py:Net:width=32"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final"]["avg_model_accuracy"] > 0.3  # ten classes: chance is 0.1


def test_a_model_file_failing_on_one_rank_stops_both_with_one_line(mpirun, fedgossip, tmp_path, monkeypatch):
    (tmp_path / "mine.py").write_text(NET)
    monkeypatch.setitem(os.environ, "FAIL_ON_RANK", "1")
    done = mpirun(2, *fedgossip, *TRAIN, "--model", "mine.py:Net", "--name", "broken", timeout=120)
    assert done.returncode == 1, done.output
    assert done.stderr.count("error:") == 1, done.stderr
    says = f"rank 1: --model: importing {tmp_path}/mine.py raised RuntimeError: no GPU on rank 1"
    assert says in done.stderr
    assert not (tmp_path / "results" / "broken").exists()


def test_ranks_whose_hosts_hold_different_files_are_refused(mpirun, fedgossip, tmp_path):
    # Two working directories stand for two hosts: the same relative path, two versions of the file.
    for host, width in (("host-a", 16), ("host-b", 17)):
        (tmp_path / host).mkdir()
        (tmp_path / host / "mine.py").write_text(NET.replace("width: int = 16", f"width: int = {width}"))
    rank = [*fedgossip, *TRAIN, "--model", "mine.py:Net", "--out", str(tmp_path / "results")]
    # mpiexec -n 1 -wdir host-a RANK : -n 1 -wdir host-b RANK
    two_hosts = ["-wdir", tmp_path / "host-a", *rank, ":", "-n", "1", "-wdir", tmp_path / "host-b", *rank]
    done = mpirun(1, *two_hosts, timeout=120)
    assert done.returncode == 1, done.output
    assert done.stderr.count("error:") == 1, done.stderr
    assert f"rank 1: --model {tmp_path}/host-b/mine.py:Net: this rank's file (SHA-256 " in done.stderr
    assert "differs from rank 0's" in done.stderr
    assert not (tmp_path / "results").exists()
