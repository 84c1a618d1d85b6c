"""The run directory: run.json, metrics.h5 and summary.json, written safely and read strictly."""

import json
import os
import subprocess
import sys
import threading
from datetime import datetime

import h5py
import numpy as np
import pytest

from fedgossip.errors import ConfigError, DataError
from fedgossip.records import (
    REQUIRED_KEYS,
    MetricsWriter,
    create_run_dir,
    default_run_name,
    list_runs,
    load_summary,
    read_metrics,
    read_run_json,
    summarize,
    update_run_status,
    write_run_json,
    write_summary,
)
from fedgossip.records import metrics as metrics_module

RANKS = 3


def record(name="run", **changes):
    """Return a run.json record as the training engine fills it, for a 3-rank run."""
    base = {
        "name": name,
        "status": "running",
        "error": None,
        "failed_round": None,
        "started_at": "2024-05-01T12:00:00+00:00",
        "ended_at": None,
        "config": {"algorithm": "swarm", "compressor": "qsgd:bits=5", "topology": "ring", "rounds": 10},
        "versions": {"fedgossip": "0.1.0", "python": "3.11"},
        "world_size": RANKS,
        "hosts": ["node1"],
        "topology": {"spec": "ring", "nodes": 3, "edges": 3, "spectral_gap": 0.5},
        "partition": {
            "path": "datasets/digits-3",
            "source": "digits",
            "scheme": "dirichlet:alpha=0.1",
            "nodes": 3,
            "stats": {"label_tv_distance_mean": 0.625, "label_tv_distance_max": 0.75},
        },
    }
    return {**base, **changes}


def make_run(out, name="run", evals=2, **changes):
    """Write a hand-made run of 3 ranks with ``evals`` (0 to 2) evaluations; return its directory."""
    run_dir = create_run_dir(out, name)
    write_run_json(run_dir, record(name, **changes))
    writer = MetricsWriter(run_dir, RANKS)
    per_rank = [
        {
            "test_accuracy": [0.5, 0.6, 0.7],
            "test_loss": [2.0, 1.0, 1.5],
            "bytes_sent": [100, 200, 300],
            "fp32_bytes_sent": [400, 800, 1200],
            "compute_s": [0.5, 1.0, 1.5],
            "comm_s": [0.25, 0.125, 0.375],
        },
        {
            "test_accuracy": [0.6, 0.9, 0.75],
            "test_loss": [1.0, 0.4, 0.7],
            "bytes_sent": [1000, 2000, 3000],
            "fp32_bytes_sent": [4000, 8000, 12000],
            "compute_s": [1.0, 2.0, 3.0],
            "comm_s": [0.5, 0.25, 0.75],
        },
    ]
    scalars = [
        {"avg_model_accuracy": 0.7, "avg_model_loss": 0.9, "consensus_distance": 0.5},
        {"avg_model_accuracy": 0.8, "avg_model_loss": 0.6, "consensus_distance": 0.125},
    ]
    for i in range(evals):
        arrays = {k: np.array(v) for k, v in per_rank[i].items()}
        writer.append(5 * (i + 1), 1.5 * (i + 1), arrays, scalars[i])
    return run_dir


# --- the run directory and run.json ---------------------------------------------------------


def test_default_run_name_sorts_by_start_time():
    now = datetime(2024, 5, 1, 9, 3, 7)
    assert default_run_name("swarm", "digits-64", now) == "20240501-090307-swarm-digits-64"


def test_default_run_name_keeps_paths_and_specs_out_of_the_name():
    name = default_run_name("dpsgd", "synthetic:alpha=1 beta/2", datetime(2024, 1, 2, 3, 4, 5))
    assert name == "20240102-030405-dpsgd-synthetic-alpha=1-beta-2"
    assert "/" not in name and ":" not in name


def test_create_run_dir_leaves_checkpoints_to_the_first_checkpoint(tmp_path):
    run_dir = create_run_dir(tmp_path / "results", "a")
    assert run_dir == tmp_path / "results" / "a"
    assert list(run_dir.iterdir()) == []  # no empty checkpoints/ in a run that never writes one


def test_a_run_directory_is_never_overwritten(tmp_path):
    run_dir = create_run_dir(tmp_path, "a")
    (run_dir / "run.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"already exists.*never overwritten.*choose another"):
        create_run_dir(tmp_path, "a")
    assert (run_dir / "run.json").read_text() == "{}"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"])
def test_run_name_must_be_one_directory_name(tmp_path, name):
    with pytest.raises(ConfigError, match="one directory name"):
        create_run_dir(tmp_path, name)


def test_run_json_round_trips_with_format_version(tmp_path):
    write_run_json(tmp_path, record(hosts=("a", "b"), output=tmp_path / "x"))
    read = read_run_json(tmp_path)
    assert read["format_version"] == 1
    assert read["hosts"] == ["a", "b"] and read["output"] == str(tmp_path / "x")
    assert read["partition"]["stats"]["label_tv_distance_mean"] == 0.625


def test_run_json_write_is_atomic_when_the_rename_fails(tmp_path, monkeypatch):
    write_run_json(tmp_path, record(status="running"))
    before = (tmp_path / "run.json").read_text()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_run_json(tmp_path, record(status="completed"))
    assert (tmp_path / "run.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_run_json_with_an_unrecordable_value_leaves_the_old_file(tmp_path):
    write_run_json(tmp_path, record())
    with pytest.raises(TypeError, match="cannot record"):
        write_run_json(tmp_path, record(config={"model": object()}))
    assert read_run_json(tmp_path)["config"]["algorithm"] == "swarm"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_update_run_status_ends_a_failed_run_with_its_error(tmp_path):
    write_run_json(tmp_path, record(status="running"))
    assert update_run_status(tmp_path, "running", rounds_done=3)["ended_at"] is None
    update_run_status(tmp_path, "failed", error="rank 2: NaN loss", failed_round=7)
    read = read_run_json(tmp_path)
    assert (read["status"], read["error"], read["failed_round"]) == ("failed", "rank 2: NaN loss", 7)
    assert read["rounds_done"] == 3 and read["config"]["algorithm"] == "swarm"
    ended = datetime.fromisoformat(read["ended_at"])
    assert ended.tzinfo is not None and abs((datetime.now().astimezone() - ended).total_seconds()) < 60


@pytest.mark.parametrize("status", ["completed", "failed", "budget-exhausted", "preempted"])
def test_terminal_statuses_set_ended_at(tmp_path, status):
    write_run_json(tmp_path, record())
    assert update_run_status(tmp_path, status)["ended_at"] is not None


def test_unknown_status_is_refused(tmp_path):
    write_run_json(tmp_path, record())
    with pytest.raises(ValueError, match="unknown run status 'done'"):
        update_run_status(tmp_path, "done")
    assert read_run_json(tmp_path)["status"] == "running"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "run.json is missing.*fedgossip runs"),
        ("{not json", "not readable JSON.*rerun"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"format_version": 2, "name": "a", "status": "running"}', "version 2.*reads version 1"),
        ('{"name": "a", "status": "running"}', "version None"),
        ('{"format_version": 1, "status": "odd", "config": 3}', "missing key 'name'.*'odd'.*'config'"),
    ],
)
def test_bad_run_json_is_a_data_error_naming_the_file(tmp_path, content, message):
    if content is not None:
        (tmp_path / "run.json").write_text(content)
    with pytest.raises(DataError, match=message) as caught:
        read_run_json(tmp_path)
    assert str(tmp_path / "run.json") in str(caught.value)


def test_missing_run_directory_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_run_json(tmp_path / "nope")


# --- metrics.h5 -----------------------------------------------------------------------------


def test_metrics_append_across_writers_and_read_back(tmp_path):
    MetricsWriter(tmp_path, 2).append(1, 0.5, {"acc": np.array([0.1, 0.2])}, {"gap": 3.0})
    writer = MetricsWriter(tmp_path, 2)  # a second writer continues the file
    assert writer.evals == 1
    writer.append(2, 1.5, {"acc": [0.3, 0.4]}, {"gap": None})
    read = read_metrics(tmp_path)
    assert read["round"].tolist() == [1, 2] and read["round"].dtype == np.int64
    assert read["wall_time"].tolist() == [0.5, 1.5]
    assert read["acc"].tolist() == [[0.1, 0.2], [0.3, 0.4]] and read["acc"].dtype == np.float64
    assert read["gap"][0] == 3.0 and np.isnan(read["gap"][1])


def test_metrics_take_any_name_and_fill_gaps_with_nan(tmp_path):
    writer = MetricsWriter(tmp_path, 2)
    writer.append(1, 1.0, {"a": [1, 2]}, {})
    writer.append(2, 2.0, {"plugin_hidden": [5, 6]}, {"plugin_ratio": 0.5})
    read = read_metrics(tmp_path)
    assert read["a"][0].tolist() == [1, 2] and np.isnan(read["a"][1]).all()
    assert np.isnan(read["plugin_hidden"][0]).all() and read["plugin_hidden"][1].tolist() == [5, 6]
    assert np.isnan(read["plugin_ratio"][0]) and read["plugin_ratio"][1] == 0.5


def test_wrong_length_per_rank_metric_is_refused_and_nothing_is_written(tmp_path):
    writer = MetricsWriter(tmp_path, 3)
    writer.append(1, 1.0, {"acc": [1, 2, 3]}, {})
    with pytest.raises(ValueError, match=r"'acc' has shape \(2,\), expecting \(3,\)"):
        writer.append(2, 2.0, {"acc": [1, 2]}, {})
    assert read_metrics(tmp_path)["round"].tolist() == [1]
    assert writer.evals == 1


@pytest.mark.parametrize(
    ("per_rank", "scalars", "message"),
    [
        ({"round": [1, 2]}, {}, "'round' must be"),
        ({"a/b": [1, 2]}, {}, "without '/'"),
        ({"x": [1, 2]}, {"x": 1.0}, "both per rank and as a scalar"),
        ({"x": [[1, 2]]}, {}, r"shape \(1, 2\)"),
    ],
)
def test_bad_metric_names_and_shapes_are_refused(tmp_path, per_rank, scalars, message):
    with pytest.raises(ValueError, match=message):
        MetricsWriter(tmp_path, 2).append(1, 1.0, per_rank, scalars)
    assert read_metrics(tmp_path) == {}


def test_a_metric_keeps_its_shape(tmp_path):
    writer = MetricsWriter(tmp_path, 2)
    writer.append(1, 1.0, {"x": [1, 2]}, {})
    with pytest.raises(ValueError, match="'x' was recorded per rank before"):
        writer.append(2, 2.0, {}, {"x": 1.0})
    assert read_metrics(tmp_path)["round"].tolist() == [1]


def test_resuming_with_another_world_size_is_refused(tmp_path):
    MetricsWriter(tmp_path, 2).append(1, 1.0, {"x": [1, 2]}, {})
    with pytest.raises(ValueError, match="2 ranks, not 4"):
        MetricsWriter(tmp_path, 4)


def test_a_crash_in_the_middle_of_an_append_keeps_the_earlier_evaluations(tmp_path, monkeypatch):
    # The child appends twice, then dies inside the third append, with the row half written.
    child = f"""
import os, numpy as np
from fedgossip.records import MetricsWriter, metrics
writer = MetricsWriter({str(tmp_path)!r}, 2)
writer.append(1, 1.0, {{"acc": np.array([0.1, 0.2])}}, {{"gap": 1.0}})
writer.append(2, 2.0, {{"acc": np.array([0.3, 0.4])}}, {{"gap": 0.5}})
real_put = metrics._put
def dying_put(handle, name, row, value):
    real_put(handle, name, row, value)
    if name == "acc":
        handle.flush()
        os._exit(1)
metrics._put = dying_put
writer.append(3, 3.0, {{"acc": np.array([0.5, 0.6])}}, {{"gap": 0.25}})
"""
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    monkeypatch.setattr(metrics_module, "_READ_PAUSE_S", 0.001)
    read = read_metrics(tmp_path)
    assert read["round"].tolist() == [1, 2]
    assert read["acc"].tolist() == [[0.1, 0.2], [0.3, 0.4]] and read["gap"].tolist() == [1.0, 0.5]
    # Training resumes: the next append takes the place of the half-written row.
    MetricsWriter(tmp_path, 2).append(3, 3.0, {"acc": [0.7, 0.8]}, {"gap": 0.125})
    read = read_metrics(tmp_path)
    assert read["round"].tolist() == [1, 2, 3] and read["gap"].tolist() == [1.0, 0.5, 0.125]
    assert read["acc"][2].tolist() == [0.7, 0.8]


def test_reading_while_the_run_appends_never_sees_a_half_row(tmp_path):
    child = f"""
import time, numpy as np
from fedgossip.records import MetricsWriter
writer = MetricsWriter({str(tmp_path)!r}, 16)
for i in range(150):
    time.sleep(0.005)
    writer.append(i, float(i), {{f"m{{k}}": np.full(16, float(i)) for k in range(8)}}, {{"s": float(i)}})
"""
    writer = subprocess.Popen([sys.executable, "-c", child])
    reads = 0
    try:
        while writer.poll() is None:
            read = read_metrics(tmp_path)
            if read:
                reads += 1
                evals = len(read["round"])
                assert read["round"].tolist() == list(range(evals))
                for name in ("s", *(f"m{k}" for k in range(8))):
                    values = read[name] if read[name].ndim == 1 else read[name][:, -1]
                    assert values.tolist() == list(range(evals)), name
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0 and reads > 0
    assert len(read_metrics(tmp_path)["round"]) == 150


def test_an_error_inside_an_append_leaves_no_half_row(tmp_path, monkeypatch):
    writer = MetricsWriter(tmp_path, 2)
    writer.append(1, 1.0, {"a": [1, 2], "b": [3, 4]}, {})
    real_put = metrics_module._put

    def failing_put(handle, name, row, value):
        if name == "b":
            raise OSError("disk full")
        real_put(handle, name, row, value)

    monkeypatch.setattr(metrics_module, "_put", failing_put)
    with pytest.raises(OSError, match="disk full"):
        writer.append(2, 2.0, {"a": [5, 6], "b": [7, 8]}, {})
    read = read_metrics(tmp_path)
    assert read["round"].tolist() == [1] and read["a"].tolist() == [[1, 2]]


def test_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    run_dir = make_run(tmp_path, evals=1)
    for name in ("run.json", "metrics.h5"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_a_reader_waits_for_an_append_under_way(tmp_path):
    writer = MetricsWriter(tmp_path, 2)
    writer.append(1, 1.0, {"acc": [0.1, 0.2]}, {})
    writer.append(2, 2.0, {"acc": [0.3, 0.4]}, {})
    with h5py.File(tmp_path / "metrics.h5", "a") as handle:
        handle.attrs["seq"] = 5  # odd: the third append has begun
    finish = threading.Timer(0.2, writer.append, (3, 3.0, {"acc": [0.5, 0.6]}, {}))
    finish.start()
    try:
        assert read_metrics(tmp_path)["round"].tolist() == [1, 2, 3]
    finally:
        finish.join()


def test_a_failed_first_append_leaves_no_file(tmp_path, monkeypatch):
    def failing_put(handle, name, row, value):
        raise OSError("disk full")

    monkeypatch.setattr(metrics_module, "_put", failing_put)
    with pytest.raises(OSError, match="disk full"):
        MetricsWriter(tmp_path, 2).append(1, 1.0, {"a": [1, 2]}, {})
    assert list(tmp_path.iterdir()) == []
    assert read_metrics(tmp_path) == {}


def test_no_metrics_file_reads_as_no_metrics(tmp_path):
    assert read_metrics(tmp_path) == {}


def test_damaged_metrics_file_is_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics_module, "_READ_PAUSE_S", 0.0)
    (tmp_path / "metrics.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(DataError, match=r"cannot read .*metrics\.h5"):
        read_metrics(tmp_path)


# --- summary.json ---------------------------------------------------------------------------


def test_summary_of_a_hand_made_run(tmp_path):
    run_dir = make_run(tmp_path)
    update_run_status(run_dir, "completed")
    summary = summarize(run_dir)
    assert summary["status"] == "completed" and summary["name"] == "run"
    assert (summary["algorithm"], summary["compressor"], summary["ranks"]) == ("swarm", "qsgd:bits=5", 3)
    assert summary["topology"]["spec"] == "ring" and summary["topology"]["spectral_gap"] == 0.5
    assert summary["partition"]["path"] == "datasets/digits-3"
    assert summary["partition"]["scheme"] == "dirichlet:alpha=0.1"
    assert summary["partition"]["label_tv_distance_mean"] == 0.625
    final = summary["final"]
    assert final["round"] == 10
    # Last evaluation, per rank: accuracy 0.6, 0.9, 0.75; loss 1.0, 0.4, 0.7.
    assert final["test_accuracy"] == pytest.approx({"mean": 0.75, "min": 0.6, "max": 0.9})
    assert final["test_loss"]["mean"] == pytest.approx(0.7)
    assert final["avg_model_accuracy"] == 0.8 and final["consensus_distance"] == 0.125
    # Cumulative bytes at the last evaluation: 1000 + 2000 + 3000 sent, 24000 as float32.
    assert summary["communication"] == {
        "bytes_sent_total": 6000,
        "bytes_sent_per_rank_mean": 2000.0,
        "bytes_sent_per_rank_max": 3000,
        "bytes_received_total": None,
        "fp32_equivalent_bytes": 24000,
        "compression_ratio": 4.0,
        # a run made before --share-data and samples_processed existed: not recorded, so None
        "data_bytes_sent_total": None,
        "data_bytes_received_total": None,
        "samples_processed_total": None,
        # ... and before many nodes per rank: no bytes_within column, so None
        "bytes_within_total": None,
        "bytes_within_share": None,
    }
    # Compute and comm are means over ranks of the cumulative totals: (1+2+3)/3, (0.5+0.25+0.75)/3.
    time = summary["time"]
    assert time["link_s"] is None  # a run without --link recorded no link time
    assert {k: time[k] for k in ("wall_s", "compute_s", "comm_s")} == pytest.approx(
        {"wall_s": 3.0, "compute_s": 2.0, "comm_s": 0.5}
    )
    assert summary["gossip"] is None and summary["mode"]["asynchronous"] is False
    curve = summary["curve"]
    assert curve["round"] == [5, 10]
    assert curve["avg_model_accuracy"] == [0.7, 0.8]
    assert curve["test_accuracy_mean"] == pytest.approx([0.6, 0.75])
    assert curve["mb_sent_total"] == pytest.approx([0.0006, 0.006])


# What every summary.json promises its readers (fedgossip summary, the benchmarks, a user's scripts),
# written out here rather than taken from the code under test: values may be null, the keys are there.
SUMMARY_KEYS = (
    "format_version",
    "status",
    "name",
    "algorithm",
    "compressor",
    "ranks",
    "topology.spec",
    "topology.spectral_gap",
    "partition.path",
    "partition.scheme",
    "partition.label_tv_distance_mean",
    "optimizer.spec",
    "final.round",
    "final.test_accuracy.mean",
    "final.test_accuracy.min",
    "final.test_accuracy.max",
    "final.test_loss.mean",
    "final.avg_model_accuracy",
    "final.consensus_distance",
    "communication.bytes_sent_total",
    "communication.bytes_sent_per_rank_mean",
    "communication.bytes_sent_per_rank_max",
    "communication.fp32_equivalent_bytes",
    "communication.compression_ratio",
    "time.wall_s",
    "time.compute_s",
    "time.comm_s",
    "curve.round",
    "curve.avg_model_accuracy",
    "curve.test_accuracy_mean",
    "curve.mb_sent_total",
)


def _refuse_constant(name: str):
    raise ValueError(f"summary.json holds {name}, which is not JSON")


def _missing_keys(summary: dict, keys: tuple[str, ...]) -> list[str]:
    missing = []
    for key in keys:
        node = summary
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append(key)
                break
            node = node[part]
    return missing


def _run_without_figures(out):
    """A 3-rank run whose evaluations are all NaN, as from ranks that hold no shard."""
    run_dir = create_run_dir(out, "run")
    write_run_json(run_dir, record())
    nan = np.full(RANKS, np.nan)
    writer = MetricsWriter(run_dir, RANKS)
    for round_index in (5, 10):
        per_rank = {"test_accuracy": nan, "test_loss": nan, "bytes_sent": nan, "fp32_bytes_sent": nan}
        scalars = {"avg_model_accuracy": np.nan, "avg_model_loss": np.inf, "consensus_distance": np.nan}
        writer.append(round_index, 1.0, per_rank, scalars)
    return run_dir


@pytest.mark.parametrize("run", ["hand-made", "sparse run.json", "NaN figures"])
def test_summary_has_every_required_key_and_is_strict_json(tmp_path, run):
    run_dir = _run_without_figures(tmp_path) if run == "NaN figures" else make_run(tmp_path)
    if run == "sparse run.json":  # only the keys read_run_json insists on
        write_run_json(run_dir, {"name": "run", "status": "failed"})
    summary = summarize(run_dir)
    assert _missing_keys(summary, SUMMARY_KEYS) == []
    # a summary.json without one of them is recomputed rather than shown with gaps
    assert set(SUMMARY_KEYS) <= set(REQUIRED_KEYS)
    text = write_summary(run_dir, summary).read_text()
    assert json.loads(text, parse_constant=_refuse_constant) == summary
    if run == "NaN figures":  # NaN and infinity become null, never a bare NaN token
        assert summary["final"]["avg_model_accuracy"] is None and summary["final"]["avg_model_loss"] is None
        assert summary["final"]["test_accuracy"] == {"mean": None, "min": None, "max": None}
        assert summary["curve"]["avg_model_accuracy"] == [None, None]


def test_a_required_key_missing_is_found(tmp_path):
    summary = summarize(make_run(tmp_path))
    del summary["final"]["test_accuracy"]["min"]
    summary["time"] = None
    missing = ["final.test_accuracy.min", "time.wall_s", "time.compute_s", "time.comm_s"]
    assert _missing_keys(summary, SUMMARY_KEYS) == missing
    with pytest.raises(ValueError, match="holds NaN"):
        json.loads('{"a": NaN}', parse_constant=_refuse_constant)


def test_summary_of_a_run_that_failed_before_evaluating_has_nulls(tmp_path):
    run_dir = make_run(tmp_path, evals=0)
    assert not (run_dir / "metrics.h5").exists()
    update_run_status(run_dir, "failed", error="out of memory", failed_round=0)
    write_run_json(run_dir, {**read_run_json(run_dir), "ended_at": "2024-05-01T14:01:30+02:00"})
    summary = summarize(run_dir)
    assert summary["status"] == "failed" and summary["error"] == "out of memory"
    assert summary["failed_round"] == 0 and summary["evals"] == 0
    assert summary["final"]["round"] is None
    assert summary["final"]["test_accuracy"] == {"mean": None, "min": None, "max": None}
    assert summary["communication"]["bytes_sent_total"] is None
    assert summary["communication"]["compression_ratio"] is None
    assert set(summary["curve"]) == {"round", "avg_model_accuracy", "test_accuracy_mean", "mb_sent_total"}
    assert set(summary["curve"].values()) == {None}
    # Without an evaluation, wall time comes from the timestamps of run.json (12:00:00 UTC on).
    assert summary["time"] == {"wall_s": 90.0, "compute_s": None, "comm_s": None, "link_s": None}


def test_compression_ratio_is_null_when_nothing_was_sent(tmp_path):
    run_dir = create_run_dir(tmp_path, "r")
    write_run_json(run_dir, record("r"))
    MetricsWriter(run_dir, 3).append(1, 1.0, {"bytes_sent": [0, 0, 0], "fp32_bytes_sent": [0, 0, 0]}, {})
    communication = summarize(run_dir)["communication"]
    assert communication["bytes_sent_total"] == 0 and communication["compression_ratio"] is None


def test_ranks_without_a_figure_are_left_out_of_means(tmp_path):
    # A FedAvg server holds no shard and reports NaN accuracy.
    run_dir = create_run_dir(tmp_path, "r")
    write_run_json(run_dir, record("r"))
    MetricsWriter(run_dir, 3).append(1, 1.0, {"test_accuracy": [np.nan, 0.4, 0.6]}, {})
    accuracy = summarize(run_dir)["final"]["test_accuracy"]
    assert accuracy == pytest.approx({"mean": 0.5, "min": 0.4, "max": 0.6})


def test_saved_summary_is_used_while_current_and_recomputed_when_stale(tmp_path):
    run_dir = make_run(tmp_path)
    update_run_status(run_dir, "completed")
    saved = summarize(run_dir)
    write_summary(run_dir, {**saved, "final": {**saved["final"], "avg_model_accuracy": 0.123}})
    assert load_summary(run_dir)["final"]["avg_model_accuracy"] == 0.123
    update_run_status(run_dir, "running")  # a resumed run: the saved summary is stale
    assert load_summary(run_dir)["final"]["avg_model_accuracy"] == 0.8


def test_incomplete_saved_summary_is_recomputed(tmp_path):
    run_dir = make_run(tmp_path)
    (run_dir / "summary.json").write_text('{"format_version": 1, "status": "running", "name": "run"}')
    assert load_summary(run_dir)["final"]["avg_model_accuracy"] == 0.8
    (run_dir / "summary.json").write_text("{truncated")
    assert load_summary(run_dir)["final"]["round"] == 10


def test_list_runs_gives_a_row_per_run_and_notes_damaged_ones(tmp_path):
    make_run(tmp_path, "20240501-120000-swarm-digits-3")
    make_run(tmp_path, "20240501-130000-dpsgd-digits-3", evals=1, config={"algorithm": "dpsgd"})
    (tmp_path / "20240501-140000-broken").mkdir()
    (tmp_path / "20240501-140000-broken" / "run.json").write_text("{oops")
    (tmp_path / "bench").mkdir()  # not a run: no run.json
    rows = list_runs(tmp_path)
    assert [r["name"] for r in rows] == [
        "20240501-120000-swarm-digits-3",
        "20240501-130000-dpsgd-digits-3",
        "20240501-140000-broken",
    ]
    swarm, dpsgd, broken = rows
    assert (swarm["algorithm"], swarm["ranks"], swarm["status"]) == ("swarm", 3, "running")
    assert swarm["avg_model_accuracy"] == 0.8 and swarm["test_accuracy_mean"] == pytest.approx(0.75)
    assert swarm["mb_sent"] == pytest.approx(0.006) and swarm["note"] is None
    assert dpsgd["algorithm"] == "dpsgd" and dpsgd["mb_sent"] == pytest.approx(0.0006)
    assert broken["status"] is None and "not readable JSON" in broken["note"]


def test_list_runs_of_a_missing_directory_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not a directory"):
        list_runs(tmp_path / "results")
