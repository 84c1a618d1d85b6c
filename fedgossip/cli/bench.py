"""``fedgossip bench``: measured figures saved as JSON under results/bench/."""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["bench"]

_DEFAULT_DIR = Path("results") / "bench"


@click.group()
def bench() -> None:
    """Run benchmarks; each compares against a reference measured in the same run.

    \b
    Example:
      fedgossip bench partition --nodes 1000 --samples 60000
    """


@bench.command("partition")
@click.option("--scheme", default="dirichlet:alpha=0.01,min_size=10", show_default=True)
@click.option("--nodes", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--samples", type=click.IntRange(min=1), default=60_000, show_default=True)
@click.option("--classes", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--out", type=click.Path(path_type=Path, file_okay=False), default=_DEFAULT_DIR, show_default=True
)
def partition_bench(scheme: str, nodes: int, samples: int, classes: int, repeats: int, out: Path) -> None:
    """Time a partitioner on many labels, beside the iid split of the same labels.

    \b
    Example:
      fedgossip bench partition --scheme dirichlet:alpha=0.01 --nodes 1000 --samples 60000
    """
    from fedgossip.bench.partition import bench_partition
    from fedgossip.report.console import stdout

    result = bench_partition(scheme, nodes, samples, classes, repeats)
    path = save_result(out, "partition", result)
    seconds, reference = result["seconds"], result["reference_seconds"]
    stdout.print(
        f"{result['scheme']}: {seconds * 1e3:.1f} ms for {samples:,} labels × {nodes:,} nodes "
        f"(iid reference {reference * 1e3:.1f} ms, ratio {result['ratio_to_reference']:.1f}×)"
    )
    stdout.print(f"saved {path}")


@bench.command("ddp")
@click.option(
    "--data",
    type=click.Path(path_type=Path, file_okay=False),
    help="Partition with one shard per rank [default: the embedded digits partition].",
)
@click.option("--model", default="mlp", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=300, show_default=True)
@click.option(
    "--out", type=click.Path(path_type=Path, file_okay=False), default=_DEFAULT_DIR, show_default=True
)
def ddp_bench(data: Path | None, model: str, batch_size: int, steps: int, out: Path) -> None:
    """Time allreduce with one local step per round beside torch DDP (gloo), in one MPI job.

    \b
    Example:
      mpiexec -n 4 fedgossip bench ddp --steps 300
    """
    from mpi4py import MPI

    from fedgossip.bench.ddp import bench_ddp
    from fedgossip.comm.collective import agree
    from fedgossip.report.console import stdout
    from fedgossip.run.default_data import default_partition

    comm = MPI.COMM_WORLD
    if data is None:
        data = Path(agree(comm, lambda: str(default_partition(comm.Get_size())), root_only=True))
    result = bench_ddp(comm, data, model, batch_size, steps)
    if result is None:
        return
    path = save_result(out, "ddp", result)
    ours, theirs = result["seconds_per_round"], result["reference_seconds_per_round"]
    stdout.print(
        f"{comm.Get_size()} ranks, {model}, batch {batch_size}: allreduce H=1 {ours * 1e3:.2f} ms/round, "
        f"torch DDP (gloo) {theirs * 1e3:.2f} ms/round, ratio {result['ratio_to_reference']:.2f}×"
    )
    stdout.print(f"saved {path}")


class _IntList(click.ParamType):
    """Comma-separated integers of at least ``minimum``, such as ``1000000,10000000``."""

    name = "N[,N...]"

    def __init__(self, minimum: int = 1, example: str = "1000000,10000000"):
        self.minimum = minimum
        self.example = example

    def convert(self, value, param, ctx) -> tuple[int, ...]:
        if isinstance(value, tuple):  # the default, already parsed
            return value
        pieces = [piece.strip().replace("_", "") for piece in str(value).split(",")]
        bad = [piece for piece in pieces if not (piece.isdigit() and int(piece) >= self.minimum)]
        if bad:
            kind = "positive integers" if self.minimum == 1 else f"integers of at least {self.minimum}"
            self.fail(
                f"{', '.join(map(repr, bad))} in {value!r}: give comma-separated {kind}, "
                f"such as {self.example}",
                param,
                ctx,
            )
        return tuple(int(piece) for piece in pieces)


@bench.command("codecs")
@click.option(
    "--sizes",
    type=_IntList(),
    default="1000000,10000000",
    show_default=True,
    help="Vector lengths in float32 values, comma-separated.",
)
@click.option(
    "--compressor",
    "compressors",
    multiple=True,
    metavar="SPEC",
    help="Compressor spec to time; repeat for several [default: none, fp16, bf16, qsgd and "
    "uniform at 8 and 4 bits, sign, topk and randk at ratio 0.01].",
)
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--out", type=click.Path(path_type=Path, file_okay=False), default=_DEFAULT_DIR, show_default=True
)
def codecs_bench(sizes: tuple[int, ...], compressors: tuple[str, ...], repeats: int, out: Path) -> None:
    """Time encode+decode of compressors on one thread, beside a memory copy of the same vector.

    Throughput is in GB/s of float32 input; "× copy" divides it by np.copyto's
    GB/s measured in the same run, the figure to compare across machines.

    \b
    Example:
      fedgossip bench codecs --sizes 10000000 --compressor uniform:bits=8 --compressor sign
    """
    from fedgossip.bench.codecs import DEFAULT_COMPRESSORS, bench_codecs
    from fedgossip.report.bench import codec_progress, render_codecs
    from fedgossip.report.console import stdout

    specs = compressors or DEFAULT_COMPRESSORS
    steps = len(sizes) * (len(specs) + 2)  # the copy, each compressor, the naive torch row
    with codec_progress(steps) as progress:
        result = bench_codecs(specs, sizes, repeats, progress=progress)
    path = save_result(out, "codecs", result)
    render_codecs(result, stdout)
    stdout.print(f"saved {path}")


def _training_job_options(alpha: float, runs: str):
    """Add the options every training-job benchmark takes: --alpha, --seed, --work and --out."""
    options = [
        click.option(
            "--alpha",
            type=click.FloatRange(min=0, min_open=True),
            default=alpha,
            show_default=True,
            help="Dirichlet α of the digits partition.",
        ),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option(
            "--work",
            type=click.Path(path_type=Path, file_okay=False),
            default=_DEFAULT_DIR / runs,
            show_default=True,
            help="Where the partitions and the runs go (inspect them with fedgossip summary).",
        ),
        click.option(
            "--out", type=click.Path(path_type=Path, file_okay=False), default=_DEFAULT_DIR, show_default=True
        ),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@bench.command("gossip")
@click.option("--ranks", type=click.IntRange(min=2), default=16, show_default=True, help="MPI ranks per job.")
@click.option("--rounds", type=click.IntRange(min=1), default=60, show_default=True)
@_training_job_options(alpha=0.1, runs="gossip-runs")
def gossip_bench(ranks: int, rounds: int, alpha: float, seed: int, work: Path, out: Path) -> None:
    """Train with fp32, 8-bit, 4-bit and top-1% gossip on one partition: accuracy against bytes.

    Each scenario is a real mpiexec job of --ranks ranks on digits split by
    Dirichlet(α) over a ring, with the same rounds and seed; every row is
    compared with the fp32 D-PSGD row of the same run.

    \b
    Example:
      fedgossip bench gossip --ranks 16 --rounds 60 --alpha 0.1
    """
    from fedgossip.bench.gossip import bench_gossip
    from fedgossip.report.bench import render_gossip, scenario_line
    from fedgossip.report.console import stdout

    result = bench_gossip(work, ranks, rounds, alpha, seed, on_scenario=scenario_line)
    path = save_result(out, "gossip", result)
    render_gossip(result, stdout)
    stdout.print(f"saved {path}")


@bench.command("comp-ams")
@click.option(
    "--ranks",
    type=_IntList(minimum=2, example="8,16"),
    default="8,16",
    show_default=True,
    help="MPI ranks per job, comma-separated; every scenario runs at each.",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=3000,  # fedgossip.bench.comp_ams.DEFAULT_STEPS; a test keeps the two equal
    show_default=True,
    help="Training steps of every job, one per round.",
)
@_training_job_options(alpha=0.5, runs="comp-ams-runs")
def comp_ams_bench(
    ranks: tuple[int, ...], steps: int, alpha: float, seed: int, work: Path, out: Path
) -> None:
    """Train COMP-AMS (top-k 1%, block-sign), AMSGrad fp32 and allreduce SGD: accuracy against bytes.

    Each scenario is a real mpiexec job on digits split by Dirichlet(α), one
    local step per round and the same steps for all; at each rank count every
    row is compared with the uncompressed AMSGrad row (comp-ams --compressor
    none) in final accuracy and bytes sent per worker.

    \b
    Example:
      fedgossip bench comp-ams --ranks 8,16 --steps 3000 --alpha 0.5
    """
    from fedgossip.bench.comp_ams import bench_comp_ams
    from fedgossip.report.bench import render_comp_ams, scenario_line
    from fedgossip.report.console import stdout

    result = bench_comp_ams(work, ranks, steps, alpha, seed, on_scenario=scenario_line)
    path = save_result(out, "comp-ams", result)
    render_comp_ams(result, stdout)
    stdout.print(f"saved {path}")


@bench.command("async")
@click.option("--ranks", type=click.IntRange(min=2), default=16, show_default=True, help="MPI ranks per job.")
@click.option(
    "--rounds", type=click.IntRange(min=1), default=60, show_default=True, help="Rounds or interactions."
)
@click.option("--local-steps", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--slowdown", default="ranks=0,1:factor=5", show_default=True, help="The stragglers.")
@_training_job_options(alpha=0.1, runs="async-runs")
def async_bench(
    ranks: int, rounds: int, local_steps: int, slowdown: str, alpha: float, seed: int, work: Path, out: Path
) -> None:
    """Time to accuracy with stragglers: async swarm vs sync swarm vs allreduce.

    Each scenario is a real mpiexec job on digits split by Dirichlet(α), the
    same ranks slowed down, the same local steps and rounds; every row says
    when its average model first reached the accuracy sync swarm ended with.

    \b
    Example:
      fedgossip bench async --ranks 16 --slowdown ranks=0,1:factor=5
    """
    from fedgossip.bench.async_swarm import bench_async
    from fedgossip.report.bench import render_async, scenario_line
    from fedgossip.report.console import stdout

    result = bench_async(work, ranks, rounds, local_steps, slowdown, alpha, seed, on_scenario=scenario_line)
    path = save_result(out, "async", result)
    render_async(result, stdout)
    stdout.print(f"saved {path}")


@bench.command("scale")
@click.option(
    "--nodes", type=click.IntRange(min=1), default=64, show_default=True, help="Nodes of the default job."
)
@click.option(
    "--rounds", type=click.IntRange(min=1), default=60, show_default=True, help="Rounds of the default job."
)
@click.option(
    "--devices",
    type=_IntList(minimum=2, example="1000,10000"),
    default="1000,10000",
    show_default=True,
    help="Synthetic device counts, one node each.",
)
@click.option("--models", default="logreg,mlp", show_default=True, help="Models of the synthetic jobs.")
@click.option(
    "--device-ranks",
    type=_IntList(example="1,2"),
    default="1,2",
    show_default=True,
    help="Ranks of the synthetic jobs; the most ranks also run one node per process, the reference.",
)
@click.option(
    "--device-rounds",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Rounds of the synthetic jobs.",
)
@click.option("--max-samples", type=click.IntRange(min=50), default=500, show_default=True,
              help="Cap on one synthetic device's samples.")  # fmt: skip
@click.option(
    "--work",
    type=click.Path(path_type=Path, file_okay=False),
    default=_DEFAULT_DIR / "scale-runs",
    show_default=True,
    help="Where the partitions and runs go.",
)
@click.option(
    "--out", type=click.Path(path_type=Path, file_okay=False), default=_DEFAULT_DIR, show_default=True
)
def scale_bench(
    nodes: int,
    rounds: int,
    devices: tuple[int, ...],
    models: str,
    device_ranks: tuple[int, ...],
    device_rounds: int,
    max_samples: int,
    work: Path,
    out: Path,
) -> None:
    """Many nodes per rank: the default job on N ranks, N/8 and one process; 1,000s of devices on 1-2 ranks.

    Wall time, training time and total peak memory of the default digits job with
    --nodes N, then seconds per round and per device-step of synthetic(1, 1) at each
    device count (logreg and mlp), against one node per process.

    \b
    Examples:
      fedgossip bench scale
      fedgossip bench scale --nodes 16 --devices 1000 --models logreg
    """
    from fedgossip.bench.scale import bench_scale
    from fedgossip.report.bench_scale import job_line, render_scale
    from fedgossip.report.console import stdout

    chosen = tuple(name.strip() for name in models.split(",") if name.strip())
    result = bench_scale(
        work,
        nodes,
        rounds,
        devices,
        chosen,
        device_ranks,
        device_rounds,
        max_samples=max_samples,
        on_job=job_line,
    )
    path = save_result(out, "scale", result)
    render_scale(result, stdout)
    stdout.print(f"saved {path}")


@bench.command("dispatch")
@click.option("--ranks", type=click.IntRange(min=2), default=16, show_default=True, help="Nodes (MPI ranks).")
@click.option("--rounds", type=click.IntRange(min=1), default=40, show_default=True, help="D-PSGD rounds.")
@click.option("--model", default="mlp", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--work",
    type=click.Path(path_type=Path, file_okay=False),
    default=_DEFAULT_DIR / "dispatch-runs",
    show_default=True,
    help="Where the partitions and the runs go.",
)
@click.option(
    "--out", type=click.Path(path_type=Path, file_okay=False), default=_DEFAULT_DIR, show_default=True
)
def dispatch_bench(ranks: int, rounds: int, model: str, seed: int, work: Path, out: Path) -> None:
    """Data-dependent dispatching vs iid vs Dirichlet: local models on routed points, and the average model.

    \b
    Example:
      fedgossip bench dispatch --ranks 16 --rounds 40
    """
    from fedgossip.bench.dispatch import bench_dispatch
    from fedgossip.report.bench_data import render_dispatch, scheme_line
    from fedgossip.report.console import stdout

    result = bench_dispatch(work, ranks, rounds, seed, model, on_scheme=scheme_line)
    path = save_result(out, "dispatch", result)
    render_dispatch(result, stdout)
    stdout.print(f"saved {path}")


@bench.command("filter")
@click.option("--ranks", type=click.IntRange(min=2), default=16, show_default=True, help="MPI ranks per job.")
@click.option(
    "--rounds", type=click.IntRange(min=1), default=60, show_default=True, help="Rounds of one local epoch."
)
@_training_job_options(alpha=0.5, runs="filter-runs")
def filter_bench(ranks: int, rounds: int, alpha: float, seed: int, work: Path, out: Path) -> None:
    """Importance filtering: samples processed and wall time to the unfiltered run's accuracy.

    \b
    Example:
      fedgossip bench filter --ranks 16 --rounds 60
    """
    from fedgossip.bench.filtering import bench_filter
    from fedgossip.report.bench import scenario_line
    from fedgossip.report.bench_data import render_filter
    from fedgossip.report.console import stdout

    result = bench_filter(work, ranks, rounds, alpha, seed, on_scenario=scenario_line)
    path = save_result(out, "filter", result)
    render_filter(result, stdout)
    stdout.print(f"saved {path}")


@bench.command("share-data")
@click.option("--ranks", type=click.IntRange(min=2), default=16, show_default=True, help="MPI ranks per job.")
@click.option("--rounds", type=click.IntRange(min=1), default=40, show_default=True)
@click.option(
    "--share", default="budget=32,bits=4,select=loss", show_default=True, help="The --share-data spec."
)
@_training_job_options(alpha=0.05, runs="share-data-runs")
def share_data_bench(
    ranks: int, rounds: int, share: str, alpha: float, seed: int, work: Path, out: Path
) -> None:
    """Quantized data sharing: accuracy gained per MB, against the same MB spent on more gossip rounds.

    \b
    Example:
      fedgossip bench share-data --ranks 16 --alpha 0.05 --share budget=32,bits=4
    """
    from fedgossip.bench.share_data import bench_share_data
    from fedgossip.report.bench import scenario_line
    from fedgossip.report.bench_data import render_share_data
    from fedgossip.report.console import stdout

    result = bench_share_data(work, ranks, rounds, alpha, seed, share, on_scenario=scenario_line)
    path = save_result(out, "share-data", result)
    render_share_data(result, stdout)
    stdout.print(f"saved {path}")


@bench.command("checkpoint")
@click.option("--ranks", type=click.IntRange(min=2), default=16, show_default=True, help="MPI ranks per job.")
@click.option("--rounds", type=click.IntRange(min=2), default=100, show_default=True)
@click.option(
    "--every", type=click.IntRange(min=1), default=10, show_default=True, help="--checkpoint-every K."
)
@click.option(
    "--repeats", type=click.IntRange(min=1), default=2, show_default=True, help="Jobs per scenario."
)
@_training_job_options(alpha=0.5, runs="checkpoint-runs")
def checkpoint_bench(
    ranks: int, rounds: int, every: int, repeats: int, alpha: float, seed: int, work: Path, out: Path
) -> None:
    """What checkpoints cost: wall time with --checkpoint-every K against the same job without.

    \b
    Example:
      fedgossip bench checkpoint --ranks 16 --rounds 100 --every 10
    """
    from fedgossip.bench.checkpoint import bench_checkpoint
    from fedgossip.report.bench import scenario_line
    from fedgossip.report.bench_data import render_checkpoint
    from fedgossip.report.console import stdout

    result = bench_checkpoint(work, ranks, rounds, every, alpha, seed, repeats, on_scenario=scenario_line)
    path = save_result(out, "checkpoint", result)
    render_checkpoint(result, stdout)
    stdout.print(f"saved {path}")


@bench.command("heterogeneity")
@click.option(
    "--nodes",
    type=_IntList(minimum=2, example="8,16"),
    default="8,16",
    show_default=True,
    help="Node counts, comma-separated; every job co-hosts its nodes in one process.",
)
@click.option(
    "--rounds", type=click.IntRange(min=1), default=30, show_default=True, help="Rounds of one local epoch."
)
@click.option(
    "--seeds",
    type=_IntList(minimum=0, example="0,1"),
    default="0,1",
    show_default=True,
    help="Seeds of the partitions and the training; the table shows the mean over them.",
)
@click.option(
    "--work",
    type=click.Path(path_type=Path, file_okay=False),
    default=_DEFAULT_DIR / "heterogeneity-runs",
    show_default=True,
    help="Where the partitions and the runs go.",
)
@click.option(
    "--out", type=click.Path(path_type=Path, file_okay=False), default=_DEFAULT_DIR, show_default=True
)
def heterogeneity_bench(
    nodes: tuple[int, ...], rounds: int, seeds: tuple[int, ...], work: Path, out: Path
) -> None:
    """Decentralized methods under non-IID data against fedavg: accuracy and bytes per node.

    Every method (dpsgd, CHOCO 4-bit, swarm, async swarm 4-bit, gt, gt 4-bit,
    d2, the qgm optimizer, fedavg, allreduce) trains digits with the same
    model, learning rate and epochs on each split (iid, Dirichlet 0.1, 2
    classes per node) over a ring and an exponential graph; the goals are
    checked on 2 classes per node over a ring.

    \b
    Example:
      fedgossip bench heterogeneity --nodes 8,16 --rounds 30 --seeds 0,1
    """
    from fedgossip.bench.heterogeneity import bench_heterogeneity
    from fedgossip.report.bench_heterogeneity import method_line, render_heterogeneity
    from fedgossip.report.console import stdout

    result = bench_heterogeneity(work, nodes, rounds, seeds, on_scenario=method_line)
    path = save_result(out, "heterogeneity", result)
    render_heterogeneity(result, stdout)
    stdout.print(f"saved {path}")


@bench.command("byzantine")
@click.option(
    "--nodes", type=click.IntRange(min=5), default=16, show_default=True, help="Honest and attacking nodes."
)
@click.option(
    "--rounds", type=click.IntRange(min=1), default=20, show_default=True, help="Rounds of one local epoch."
)
@click.option(
    "--attackers",
    type=_IntList(minimum=0, example="3,11"),
    default="3,11",
    show_default=True,
    help="The attacking nodes of dpsgd (fedavg: the same clients).",
)
@_training_job_options(alpha=0.5, runs="byzantine-runs")
def byzantine_bench(
    nodes: int, rounds: int, attackers: tuple[int, ...], alpha: float, seed: int, work: Path, out: Path
) -> None:
    """Attacks against robust aggregation: every attack × mean, clip, trimmed-mean, median (+ krum).

    dpsgd over a ring and an exponential graph, and fedavg with the same two
    clients malicious; each row is the honest nodes' average model against the
    attack-free run of the same shards.

    \b
    Example:
      fedgossip bench byzantine --nodes 16 --attackers 3,11
    """
    from fedgossip.bench.byzantine import bench_byzantine
    from fedgossip.report.bench_byzantine import render_byzantine
    from fedgossip.report.bench_heterogeneity import method_line
    from fedgossip.report.console import stdout

    result = bench_byzantine(work, nodes, rounds, attackers, alpha, seed, on_scenario=method_line)
    path = save_result(out, "byzantine", result)
    render_byzantine(result, stdout)
    stdout.print(f"saved {path}")


class _Probabilities(click.ParamType):
    """Comma-separated probabilities in (0, 1], such as ``1,0.9,0.7,0.5``."""

    name = "P[,P...]"

    def convert(self, value, param, ctx) -> tuple[float, ...]:
        if isinstance(value, tuple):  # the default, already parsed
            return value
        pieces = [piece.strip() for piece in str(value).split(",")]
        values, bad = [], []
        for piece in pieces:
            try:
                number = float(piece)
            except ValueError:
                number = float("nan")  # fails the range check below, as it should
            if 0 < number <= 1:
                values.append(number)
            else:
                bad.append(piece)
        if bad:
            self.fail(
                f"{', '.join(map(repr, bad))} in {value!r}: give comma-separated probabilities in (0, 1], "
                "such as 1,0.9,0.7,0.5",
                param,
                ctx,
            )
        return tuple(values)


@bench.command("churn")
@click.option(
    "--nodes", type=click.IntRange(min=2), default=16, show_default=True, help="Nodes, in one process."
)
@click.option(
    "--rounds", type=click.IntRange(min=1), default=20, show_default=True, help="Rounds of one local epoch."
)
@click.option(
    "--availabilities",
    type=_Probabilities(),
    default="1,0.9,0.7,0.5",
    show_default=True,
    help="Online probabilities per node and round (--availability bernoulli:p=P; 1: always).",
)
@_training_job_options(alpha=0.5, runs="churn-runs")
def churn_bench(
    nodes: int, rounds: int, availabilities: tuple[float, ...], alpha: float, seed: int, work: Path, out: Path
) -> None:
    """Devices that come and go: dpsgd, swarm, async swarm and fedavg as fewer nodes are online.

    Each method trains digits under --availability bernoulli:p=P for every P; the
    table shows the average model's accuracy, its points against P = 1, and the
    wall time.

    \b
    Example:
      fedgossip bench churn --nodes 16 --availabilities 1,0.9,0.7,0.5
    """
    from fedgossip.bench.churn import bench_churn
    from fedgossip.report.bench_churn import render_churn
    from fedgossip.report.bench_heterogeneity import method_line
    from fedgossip.report.console import stdout

    result = bench_churn(work, nodes, rounds, availabilities, alpha, seed, on_scenario=method_line)
    path = save_result(out, "churn", result)
    render_churn(result, stdout)
    stdout.print(f"saved {path}")


def save_result(directory: Path, name: str, result: dict) -> Path:
    """Write ``result`` as ``directory/name.json`` (replacing the previous figure atomically)."""
    from fedgossip import __version__

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    staging = path.with_suffix(".json.partial")
    staging.write_text(json.dumps({**result, "fedgossip": __version__}, indent=2) + "\n")
    staging.replace(path)
    return path
