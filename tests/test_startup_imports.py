"""A rank imports only what its run needs: a default run loads no numba, scikit-learn or rich.

Sixty-four ranks on a few cores pay every import sixty-four times over, in time and in
memory. Each case runs ``fedgossip train`` on one rank in a fresh interpreter and lists
``sys.modules`` at the model's first forward pass: by then the rank has planned the run,
checked the default partition, read its shard, built its compressor, model and optimizer
and written run.json, and has drawn nothing yet. A single rank is rank 0, which does
everything another rank does and more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The first forward pass (a global torch hook: no fedgossip internals) writes sys.modules to argv[1];
# the rest of argv is the command line of `fedgossip`.
PROBE = """\
import json, sys
import torch

output, sys.argv = sys.argv[1], ["fedgossip", *sys.argv[2:]]
written = []

def snapshot(module, args):
    if not written:
        written.append(True)
        with open(output, "w") as handle:
            json.dump(sorted(sys.modules), handle)

torch.nn.modules.module.register_module_forward_pre_hook(snapshot)
from fedgossip.cli import main

main()
"""

HEAVY = ("numba", "llvmlite", "sklearn", "rich", "opacus")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder holding the embedded default partition for one rank, made in a process of its own."""
    folder = tmp_path_factory.mktemp("run")
    command = [sys.executable, "-m", "fedgossip", "partition", "create", "digits", "--nodes", "1"]
    subprocess.run([*command, "--out", "datasets/digits-1"], cwd=folder, check=True, capture_output=True)
    return folder


def modules_at_first_step(workdir: Path, out: Path, *options: str) -> set[str]:
    """Return the top-level packages one rank of ``fedgossip train OPTIONS`` has loaded at its first step."""
    listing = out / "modules.json"
    command = [sys.executable, "-c", PROBE, str(listing), "train", "--rounds", "1", "--eval-every", "1"]
    command += ["--out", str(out / "results"), "--name", "probe", *options]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FEDGOSSIP_CACHE": str(workdir / "datasets")}
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return {name.partition(".")[0] for name in json.loads(listing.read_text())}


def test_a_default_run_on_an_existing_partition_loads_no_heavy_optional_package(workdir, tmp_path):
    made = (workdir / "datasets" / "digits-1" / "partition.json").stat().st_mtime_ns
    loaded = modules_at_first_step(workdir, tmp_path)
    assert (workdir / "datasets" / "digits-1" / "partition.json").stat().st_mtime_ns == made  # reused
    assert {"torch", "mpi4py", "h5py"} <= loaded  # the probe saw a rank that is really training
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))


def test_a_quantizing_run_loads_numba_for_its_kernels(workdir, tmp_path):
    loaded = modules_at_first_step(workdir, tmp_path, "--compressor", "qsgd:bits=5")
    assert {"numba", "llvmlite"} <= loaded
    assert loaded.isdisjoint({"sklearn", "rich"})
