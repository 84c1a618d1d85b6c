"""``fedgossip partition create|show`` as a user runs them, good input and bad."""

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from fedgossip.data.shards import Partition, file_sha256


def test_create_then_show_digits(run_cli, tmp_path):
    out = tmp_path / "digits-8"
    created = run_cli(
        "partition", "create", "digits", "--nodes", 8, "--scheme", "dirichlet:alpha=0.1", "--out", out
    )
    assert created.exit_code == 0, created.output
    manifest = Partition(out).manifest
    assert manifest.nodes == 8 and manifest.source == "digits"
    assert manifest.train_size + manifest.test.size == 1797
    shown = run_cli("partition", "show", out)
    assert shown.exit_code == 0, shown.output
    assert "label TV distance" in shown.output and "top labels" in shown.output
    assert max(len(line) for line in shown.output.splitlines()) <= 80


def test_show_json_is_the_manifest(run_cli, tmp_path):
    out = tmp_path / "p"
    run_cli("partition", "create", "digits", "-n", 4, "--out", out)
    shown = run_cli("partition", "show", out, "--json")
    data = json.loads(shown.output)
    assert data["verified"] is True
    assert [s["size"] for s in data["shards"]] == [s.size for s in Partition(out).manifest.shards]
    assert 0 <= data["stats"]["label_tv_distance_mean"] <= 1


def test_large_partition_summarizes_in_80_columns(run_cli, tmp_path):
    out = tmp_path / "p"
    run_cli(
        "partition", "create", "digits", "-n", 200, "--scheme", "dirichlet:alpha=0.3,min_size=3", "--out", out
    )
    shown = run_cli("partition", "show", out)
    assert shown.exit_code == 0
    assert "more nodes; --json lists them all" in shown.output
    assert max(len(line) for line in shown.output.splitlines()) <= 80


def test_same_seed_gives_identical_files(run_cli, tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        run_cli("partition", "create", "digits", "-n", 6, "--seed", seed, "--out", tmp_path / name)
    files = {name: Partition(tmp_path / name).manifest.files for name in "abc"}
    assert files["a"] == files["b"]
    assert files["a"] != files["c"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scheme", "dirichlet:alpha=0"], "alpha='0': must be > 0"),
        (["--scheme", "dirichlet:alpha=-0.5"], "must be > 0"),
        (["--scheme", "dirichlet:alpha=abc"], "expected a number"),
        (["--scheme", "pathological"], "unknown partitioner 'pathological'; known: dirichlet, dispatch, iid"),
        (["--nodes", 5000], "5000"),
        (["--scheme", "dirichlet:alpha=0.5,min_size=500"], "min_size"),
    ],
)
def test_bad_input_is_one_line_exit_1_and_writes_nothing(run_cli, tmp_path, args, message):
    argv = ["partition", "create", "digits", "--out", tmp_path / "p", *args]
    if "--nodes" not in args:
        argv += ["--nodes", 8]
    result = run_cli(*argv)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_unknown_source_lists_known_ones(run_cli, tmp_path):
    result = run_cli("partition", "create", "imagenet", "-n", 4, "--out", tmp_path / "p")
    assert result.exit_code == 1
    assert "unknown dataset 'imagenet'" in result.stderr and "digits" in result.stderr


def test_existing_out_is_refused_without_force(run_cli, tmp_path):
    out = tmp_path / "p"
    assert run_cli("partition", "create", "digits", "-n", 4, "--out", out).exit_code == 0
    before = Partition(out).manifest.files
    again = run_cli("partition", "create", "digits", "-n", 4, "--seed", 9, "--out", out)
    assert again.exit_code == 1 and "already exists" in again.stderr and "--force" in again.stderr
    assert Partition(out).manifest.files == before
    forced = run_cli("partition", "create", "digits", "-n", 4, "--seed", 9, "--out", out, "--force")
    assert forced.exit_code == 0 and Partition(out).manifest.files != before


@pytest.mark.parametrize(
    "args", [["--nodes", 0], ["--nodes", "many"], ["--nodes", 4, "--test-fraction", 1.5]]
)
def test_usage_errors_exit_2(run_cli, tmp_path, args):
    result = run_cli("partition", "create", "digits", "--out", tmp_path / "p", *args)
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_show_names_a_corrupted_shard(run_cli, tmp_path):
    out = tmp_path / "p"
    run_cli("partition", "create", "digits", "-n", 4, "--out", out)
    shard = out / "shard-00002.h5"
    shard.write_bytes(shard.read_bytes()[:-100])
    result = run_cli("partition", "show", out)
    assert result.exit_code == 1
    assert "shard-00002.h5 is corrupted" in result.stderr


def _forge(directory, name, edit):
    """Edit ``name`` with h5py and write its new SHA-256 into partition.json: only reading it tells."""
    with h5py.File(directory / name, "r+") as handle:
        edit(handle)
    manifest = json.loads((directory / "partition.json").read_text())
    manifest["files"][name] = file_sha256(directory / name)
    (directory / "partition.json").write_text(json.dumps(manifest))


def _relabel(handle, value):
    labels = handle["y"][...].astype(float)
    labels[0] = value
    del handle["y"]
    handle.create_dataset("y", data=labels)


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("shard-00001.h5", lambda h: h.__delitem__("index"), "dataset 'index' is missing"),
        ("shard-00003.h5", lambda h: _relabel(h, 2.5), "holds 2.5 at position 0"),
        ("test.h5", lambda h: h["x"].__setitem__((0, 0, 0, 0), np.nan), "NaN or infinite"),
    ],
)
def test_show_reads_every_shard_it_reports_ok(run_cli, tmp_path, name, edit, message):
    out = tmp_path / "p"
    run_cli("partition", "create", "digits", "-n", 4, "--out", out)
    _forge(out, name, edit)
    result = run_cli("partition", "show", out)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert name in result.stderr and message in result.stderr and "recreate the partition" in result.stderr
    assert run_cli("partition", "show", out, "--no-verify").exit_code == 0  # the manifest alone is fine


def test_debug_shows_the_traceback(run_cli, tmp_path):
    from fedgossip.errors import DataError

    with pytest.raises(DataError):
        run_cli("--debug", "partition", "show", tmp_path / "missing")


def test_sigterm_during_writing_leaves_nothing(tmp_path):
    """A killed `partition create` (Slurm preemption, timeout) must not leave a half partition."""
    script = (
        "import time, fedgossip.data.shards as s\n"
        "real = s._write_arrays\n"
        "def slow(*a, **k):\n"
        "    time.sleep(0.3)\n"
        "    return real(*a, **k)\n"
        "s._write_arrays = slow\n"
        "from fedgossip.cli import main\n"
        "main()\n"
    )
    argv = [sys.executable, "-c", script, "partition", "create", "digits", "-n", 50, "--out", tmp_path / "p"]
    proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".p.partial-") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert list(tmp_path.iterdir()) == []


def test_create_help_lists_every_partitioner_with_its_parameters(run_cli):
    from fedgossip.data.partition.base import PARTITIONERS

    result = run_cli("partition", "create", "--help")
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())  # click wraps the help, at spaces
    assert "dispatch (clusters=0, replication=1," in shown
    for name, plugin in PARTITIONERS.available().items():
        assert name in shown, name
        for param in plugin.params:
            assert f"{param.name}=" in shown, (name, param.name)
