"""The Algorithm contract, checked on every installed algorithm: its invariant under mpiexec, its parameters.

A new algorithm fails here until it has a row in ``CONTRACTS``: the invariant it keeps,
the script that checks it under ``mpiexec -n 4``, and specs that give every parameter it
declares a value.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedgossip.algorithms import ALGORITHMS
from fedgossip.bench.gossip import find_mpiexec
from fedgossip.errors import ConfigError
from fedgossip.specs import Param, parse_spec

RANKS = 4
SCRIPTS = Path(__file__).parent / "mpi" / "scripts"


@dataclass(frozen=True)
class Contract:
    invariant: str  # what the script checks, in words
    script: str  # in tests/mpi/scripts, run on RANKS ranks
    argv: tuple[str, ...]
    specs: tuple[str, ...] = ()  # specs that give each declared parameter a value


MEAN = "uncompressed, with lr = 0 and different starting models, the mean of the models stays put"
CONTRACTS = {
    "dpsgd": Contract(MEAN, "mean_preserved.py", ("dpsgd:gamma=0.5", "ring", "10"), ("dpsgd:gamma=0.5",)),
    "swarm": Contract(MEAN, "mean_preserved.py", ("swarm", "ring", "10")),
    "allreduce": Contract(MEAN, "mean_preserved.py", ("allreduce", "ring", "2")),
    "fedavg": Contract(
        "every rank ends each round with the server's model, the chosen clients' weighted average",
        "fedavg_global_model.py",
        ("fedavg:client_fraction=0.5", "4"),
        ("fedavg:client_fraction=0.5", "fedavg:client_fraction=1"),
    ),
    "gt": Contract(MEAN, "mean_preserved.py", ("gt:gamma=0.5", "ring", "10"), ("gt:gamma=0.5,outer_lr=1.0",)),
    "d2": Contract(MEAN, "mean_preserved.py", ("d2", "ring", "10"), ("d2:lazy=true",)),
    "comp-ams": Contract(
        "every rank holds the same model after every step",
        "same_model_every_step.py",
        ("comp-ams", "topk:ratio=0.2", "6"),
    ),
}
NAMES = sorted(ALGORITHMS.available())


def _contract(name: str) -> Contract:
    if name not in CONTRACTS:
        pytest.fail(
            f"algorithm {name!r} has no row in CONTRACTS of {Path(__file__).name}: add the invariant it "
            "keeps, the script that checks it under mpiexec and specs giving each of its parameters a value"
        )
    return CONTRACTS[name]


@pytest.mark.parametrize("name", NAMES)
def test_every_installed_algorithm_keeps_its_invariant_under_mpiexec(tmp_path, name):
    contract = _contract(name)
    command = [
        find_mpiexec(),
        "-n",
        str(RANKS),
        sys.executable,
        str(SCRIPTS / contract.script),
        *contract.argv,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    try:
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(command)} hung; output so far:\n{exc.stdout}\n{exc.stderr}")
    assert done.returncode == 0, (
        f"{name} broke its invariant ({contract.invariant}):\n{done.stdout}{done.stderr}"
    )
    assert "ok " in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("name", NAMES)
def test_the_constructor_takes_exactly_the_declared_parameters(name):
    plugin = ALGORITHMS.get(name)
    assert sorted(inspect.signature(plugin).parameters) == sorted(p.name for p in plugin.params)


@pytest.mark.parametrize("name", NAMES)
def test_every_declared_parameter_has_a_spec_in_the_contract(name):
    given = {key for spec in _contract(name).specs for key in parse_spec(spec).args}
    missing = sorted({p.name for p in ALGORITHMS.get(name).params} - given)
    assert not missing, f"give {name}'s parameters {missing} a value in a spec of its row in CONTRACTS"


@pytest.mark.parametrize("name", NAMES)
def test_the_canonical_spec_builds_the_same_algorithm_again(name):
    for spec in (name, *_contract(name).specs):
        made = ALGORITHMS.create(spec)
        again = ALGORITHMS.create(parse_spec(made.spec))
        assert again.spec == made.spec, spec
        assert parse_spec(made.spec).name == name


def _bad_values(param: Param) -> list[str]:
    """Return texts its declaration refuses: out of each bound, outside its choices, not a number."""
    bad = []
    if param.type in (int, float):
        bad.append("abc")
    if param.type is bool:
        bad.append("maybe")
    for bound, outside in ((param.gt, 0), (param.ge, -1), (param.lt, 0), (param.le, 1)):
        if bound is not None:
            bad.append(str(bound + outside))
    if param.choices:
        bad.append("no-such-choice")
    return bad


@pytest.mark.parametrize("name", NAMES)
def test_bad_parameter_values_are_refused_naming_the_parameter(name):
    for param in ALGORITHMS.get(name).params:
        bad = _bad_values(param)
        assert bad, f"{name}'s {param.name} refuses nothing: declare its type and range"
        for text in bad:
            with pytest.raises(ConfigError, match=f"{param.name}='{text}'"):
                ALGORITHMS.create(f"{name}:{param.name}={text}")
