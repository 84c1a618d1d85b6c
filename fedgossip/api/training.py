"""Training from Python: build a config as ``fedgossip train`` does, and run it on every rank.

``fedgossip train`` parses its options and calls :func:`config` and :func:`train`;
it adds only what belongs to a command: SIGTERM handling, the progress bar, and
turning errors into one line and an exit code (aborting the job when one rank failed).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedgossip.errors import ConfigError
from fedgossip.records.reader import Run
from fedgossip.settings.config import TrainConfig, merge_config

if TYPE_CHECKING:
    from mpi4py import MPI

    from fedgossip.run.preemption import Preemption
    from fedgossip.run.progress import RoundInfo

# MPI is imported where a function needs it: importing mpi4py.MPI initializes MPI, which building a
# config (fg.config) or reading runs has no use for.

__all__ = ["algorithm_defaults", "config", "resumed_config", "train"]


def algorithm_defaults(given: dict[str, Any], toml_values: dict[str, Any]) -> dict[str, Any]:
    """Return the defaults the chosen algorithm changes (comp-ams: AMSGrad at a constant lr 0.001)."""
    from fedgossip.algorithms import ALGORITHMS
    from fedgossip.specs import parse_spec

    spec = given.get("algorithm", toml_values.get("algorithm", "dpsgd"))
    try:
        return dict(ALGORITHMS.get(parse_spec(str(spec)).name).config_defaults)
    except ConfigError:
        return {}  # an unknown algorithm is reported, with the known ones, when the run is planned


def config(toml_values: dict[str, Any] | None = None, **options: Any) -> TrainConfig:
    """Return the ``TrainConfig`` that ``fedgossip train`` builds from these options.

    Options are ``TrainConfig`` fields (``rounds=3``, ``compressor="qsgd:bits=4"``); they
    beat ``toml_values`` (a ``load_toml`` result), which beat the chosen algorithm's own
    defaults (comp-ams trains with AMSGrad at lr 0.001), which beat the field defaults.
    ``TrainConfig(...)`` directly takes the field defaults only.

    Raises
    ------
    ConfigError
        An invalid setting; the message lists every problem, as the CLI prints it.
    """
    toml_values = toml_values or {}
    return merge_config(options, toml_values, algorithm_defaults(options, toml_values))


def resumed_config(
    run_dir: str | os.PathLike, given: dict[str, Any] | None = None, comm: MPI.Intracomm | None = None
) -> TrainConfig:
    """Return the config ``run_dir`` was started with (plus the few ``given`` settings a resume may change).

    run.json is read on rank 0 only (it may live on rank 0's disk alone); every rank gets the same config.
    """
    from mpi4py import MPI

    from fedgossip.comm.collective import agree
    from fedgossip.run.resume import resume_config

    comm = MPI.COMM_WORLD if comm is None else comm
    saved = agree(
        comm, lambda: resume_config(Path(run_dir), given or {}, comm.Get_size()).to_dict(), root_only=True
    )
    return TrainConfig(**{**saved, "plugin": tuple(saved["plugin"])})


def train(
    config: TrainConfig | None = None,
    resume: str | os.PathLike | None = None,
    *,
    comm: MPI.Intracomm | None = None,
    on_round: Callable[[RoundInfo], None] | None = None,
    preemption: Preemption | None = None,
    on_resume: Callable[[int], None] | None = None,
) -> Run | None:
    """Train as configured, on every rank of ``comm``, and return the run directory opened.

    In a plain ``python`` process this is one rank hosting every node; under
    ``mpiexec -n R python script.py`` every rank makes the same call and the
    nodes are laid over the ranks, as ``fedgossip train`` does.

    Parameters
    ----------
    config
        The settings (``TrainConfig`` or :func:`config`); with ``resume``, None takes the run's own.
    resume
        A failed or preempted run directory to continue from its last complete checkpoint.
    comm
        The ranks that train together; default ``MPI.COMM_WORLD``.
    on_round
        Called on every rank after each round (interaction) with its progress.
    preemption
        Polled at every round boundary; once stopped (by a SIGTERM handler), the run
        checkpoints and ends with status ``preempted``.
    on_resume
        Called on rank 0 with the round of the checkpoint a resumed run continues after.

    Returns
    -------
    Run or None
        The run directory on rank 0 (``run.status``, ``run.metrics``, ``run.summary``);
        None on the other ranks, where the directory may not exist (rank 0 writes it).

    Raises
    ------
    FedGossipError
        A bad setting or input (``ConfigError``, ``DataError``, ...), raised alike on every
        rank; or a failure on one rank only (a diverged loss), where the other ranks may be
        left waiting in MPI: a script under ``mpiexec`` should then call ``comm.Abort(1)``, or,
        once a rank was lost (``fedgossip.comm.ulfm.ranks_were_lost()``), ``os._exit(1)``:
        Open MPI 5.0.11's ``MPI_Abort`` can hang on a communicator with a dead member.
    """
    from mpi4py import MPI

    from fedgossip.comm.fault_tolerance import require_fault_tolerance
    from fedgossip.run.engine import run_training

    comm = MPI.COMM_WORLD if comm is None else comm
    if config is None:
        if resume is None:
            raise ConfigError("train() needs a config, or resume= a run directory to continue")
        config = resumed_config(resume, comm=comm)
    if not isinstance(config, TrainConfig):
        got = type(config).__name__
        raise ConfigError(f"train() takes a TrainConfig, from TrainConfig(...) or config(...); got {got}")
    require_fault_tolerance(config)  # the same on every rank: refused before any training
    collecting = gc.isenabled()
    # Start-up allocates millions of long-lived objects (torch, numpy, the nodes); collecting
    # among them costs each rank ~0.5 s of CPU for nothing. The engine freezes them and turns
    # collection back on once the nodes are built.
    gc.disable()
    try:
        summary = run_training(
            config,
            comm,
            on_round=on_round,
            resume=None if resume is None else Path(resume),
            preemption=preemption,
            on_resume=on_resume,
        )
    finally:
        if collecting:
            gc.enable()  # a run that failed before the engine re-enabled it leaves the caller as it was
    if summary is None:
        return None
    written = {key: value for key, value in summary.items() if key != "run_dir"}  # as in summary.json
    return Run.trained(summary["run_dir"], written)
