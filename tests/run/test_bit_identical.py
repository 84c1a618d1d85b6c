"""Seeded synchronous runs on 4 ranks write the metrics of the reference code, to the bit.

The cases and the references are described in ``reference_runs.py`` beside this file:
every dataset of a case's ``metrics.h5`` but the wall-clock ones must have the name,
dtype, shape and values of the one in ``reference_metrics/CASE.h5``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from reference_runs import CASES, REFERENCES, make_partitions, read_metrics, run_case


@pytest.fixture(scope="module")
def partitions(tmp_path_factory) -> dict[int, Path]:
    """The digits partitions every case trains on, made once."""
    return make_partitions(tmp_path_factory.mktemp("partitions"))


# Where the code changed the arithmetic on purpose since the references, how close it must stay, and why.
# The consensus distance is summed over nodes in node order (placement-invariant), not in the order
# of MPI's reduction: the last bits of a float64 differ. Allreduce sums the float32 models in float64
# and rounds once (the same sum however nodes share ranks), where MPI summed in float32.
# torch picks its float32 kernels by the CPU's instruction set, and their sums round differently in
# the last bits: the code that matched these references in one CI run moved its losses and distances
# by up to 1.5e-7 relative on an AVX2 host without AVX-512 (a few float32 ulps).
# Accuracies, byte counts and every integer dataset stay exact.
ULPS = 1e-6
TOLERANCES = {
    ("*", "consensus_distance"): ULPS,
    ("*", "train_loss"): ULPS,
    ("*", "test_loss"): ULPS,
    ("*", "avg_model_loss"): ULPS,
    ("*", "epsilon"): 1e-12,
    ("allreduce", "*"): 1e-5,
}


def tolerance(case: str, name: str) -> float:
    """Return the relative tolerance of dataset ``name`` of ``case`` (0: to the bit)."""
    keys = ((case, name), ("*", name), (case, "*"))
    return max((TOLERANCES[key] for key in keys if key in TOLERANCES), default=0.0)


def differences(expected: dict[str, np.ndarray], got: dict[str, np.ndarray], case: str = "") -> list[str]:
    """Return one line per dataset that is missing, extra, or differs in dtype, shape or a value."""
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    problems = [f"{name}: in the reference, not written by this run" for name in missing]
    problems += [f"{name}: written by this run, not in the reference" for name in extra]
    for name in sorted(set(expected) & set(got)):
        want, have = np.asarray(expected[name]), np.asarray(got[name])
        if want.dtype != have.dtype:
            problems.append(f"{name}: dtype {have.dtype}, the reference has {want.dtype}")
        elif want.shape != have.shape:
            problems.append(f"{name}: shape {have.shape}, the reference has {want.shape}")
        elif not np.array_equal(want, have, equal_nan=True):
            rtol = tolerance(case, name) if want.dtype.kind == "f" else 0.0
            if rtol and np.allclose(want, have, rtol=rtol, atol=0.0, equal_nan=True):
                continue
            same = want == have
            if want.dtype.kind in "fc":
                same |= np.isnan(want) & np.isnan(have)
            at = tuple(int(i) for i in np.argwhere(~same)[0])
            problems.append(
                f"{name}: first differs at index {at}: reference {want[at].item()!r}, "
                f"this run {have[at].item()!r} ({int((~same).sum())} of {want.size} values differ)"
            )
    return problems


# Columns added since the references were written, with the value they must have in these runs:
# one node per rank, so no byte stays inside a process.
NEWER_COLUMNS = {"bytes_within": 0.0}


def without_newer_columns(got: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return ``got`` without :data:`NEWER_COLUMNS`, after checking each holds its one value."""
    for name, value in NEWER_COLUMNS.items():
        assert name in got, f"{name} is not written any more: drop it from NEWER_COLUMNS"
        assert np.all(got[name] == value), f"{name} holds {np.unique(got[name])}, expected only {value}"
    # The traffic matrix (edges/…) is newer than the references too; test_edge_traffic.py checks
    # it against bytes_sent, and test_placement_invariance.py across placements.
    assert "edges/edge_bytes" in got, "the traffic matrix is not written any more: drop this"
    return {
        name: data
        for name, data in got.items()
        if name not in NEWER_COLUMNS and not name.startswith("edges/")
    }


def test_every_case_has_a_reference_and_every_reference_a_case():
    assert sorted(path.stem for path in REFERENCES.glob("*.h5")) == sorted(CASES)


@pytest.mark.parametrize("case", list(CASES))
def test_seeded_run_writes_the_reference_metrics(case, partitions, tmp_path):
    expected = read_metrics(REFERENCES / f"{case}.h5")
    assert "test_accuracy" in expected and "bytes_sent" in expected  # a reference worth comparing with
    got = without_newer_columns(read_metrics(run_case(case, tmp_path, partitions)))
    problems = differences(expected, got, case)
    if problems:
        pytest.fail(f"{case}: {len(problems)} datasets differ from the reference:\n" + "\n".join(problems))


def test_differences_name_the_dataset_the_index_and_both_values():
    expected = {
        "round": np.array([2, 4]),
        "test_accuracy": np.array([[0.5, np.nan], [0.75, 0.25]]),
        "bytes_sent": np.zeros((2, 3)),
        "epsilon": np.full(2, np.nan),
        "gone": np.zeros(1),
    }
    same = {name: value.copy() for name, value in expected.items() if name != "gone"}
    assert differences(expected, {**same, "gone": np.zeros(1)}) == []  # NaN where the reference has NaN
    got = {
        **same,
        "round": np.array([2.0, 4.0]),
        "test_accuracy": np.array([[0.5, np.nan], [0.75, 0.25 + 2**-54]]),
        "bytes_sent": np.zeros((3, 2)),
        "epsilon": np.array([np.nan, 1.0]),
        "new": np.zeros(1),
    }
    assert differences(expected, got) == [
        "gone: in the reference, not written by this run",
        "new: written by this run, not in the reference",
        "bytes_sent: shape (3, 2), the reference has (2, 3)",
        "epsilon: first differs at index (1,): reference nan, this run 1.0 (1 of 2 values differ)",
        "round: dtype float64, the reference has int64",
        "test_accuracy: first differs at index (1, 1): reference 0.25, this run 0.25000000000000006 "
        "(1 of 4 values differ)",
    ]
