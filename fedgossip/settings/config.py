"""Run settings: a frozen ``TrainConfig`` built from CLI options and an optional TOML file.

Precedence: an option given on the command line beats the TOML file, which beats
the default. The merged config is saved in ``run.json`` so a run can be repeated.
"""

from __future__ import annotations

import difflib
import math
import os
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from fedgossip.bounded_read import FileProblem, read_bounded
from fedgossip.errors import ConfigError
from fedgossip.settings.run_specs import RunSpecs, read_specs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["TrainConfig", "load_toml", "merge_config"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. Every rank builds the same one."""

    # What to train on, and how.
    data: str | None = None  # partition directory; None: the embedded digits default
    # Devices of the run, laid over the ranks in contiguous blocks; None: the partition's node
    # count (one more with a server, fedavg), else the number of ranks.
    nodes: int | None = None
    # Co-hosted nodes of one architecture train and evaluate as one vmapped computation where they
    # can (within float rounding of one by one); False: one after another, placement-invariant to the bit.
    vectorize: bool = True
    model: str = "mlp"  # model spec (fedgossip.local.models)
    algorithm: str = "dpsgd"  # algorithm spec (fedgossip.algorithms)
    topology: str = "ring"  # topology spec (fedgossip.topology)
    topology_seed: int | None = None  # seed of random graphs; None: --seed
    compressor: str = "none"  # compressor spec (fedgossip.compress)
    # Local work per round: exactly one of local_steps / local_epochs.
    rounds: int = 60
    local_steps: int | str | None = None  # H, or geometric:mean=H; None with local_epochs None: 10
    local_epochs: int | None = None
    batch_size: int = 32
    # The local optimizer.
    optimizer: str = (
        "sgd"  # sgd, adam, amsgrad or qgm, with parameters: amsgrad:beta1=0.9,beta2=0.99,eps=1e-8
    )
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"
    # Algorithm options. The first two are shorthands of parameters of its spec, moved into the
    # spec when the config is built (fedgossip.settings.algorithm_shorthands); None: not given.
    client_fraction: float | None = None  # fedavg:client_fraction=F, the share of clients per round
    gamma: float | None = None  # dpsgd:gamma=G, CHOCO-gossip's consensus step
    asynchronous: bool = False  # swarm only: no rounds, pairwise offers and replies (--async)
    # Emulation of heterogeneous hardware and networks, for every algorithm.
    slowdown: str = "none"  # per-rank compute slowdown (fedgossip.settings.slowdown_spec)
    link: str = "none"  # emulated network, e.g. bandwidth=10Mbit,latency=20ms (fedgossip.settings.link_spec)
    availability: str = "always"  # which nodes are online each round (fedgossip.settings.availability_spec)
    # Differential privacy (fedgossip.privacy).
    dp: str = "none"  # mechanism spec, e.g. dp-sgd:clip=1,noise=1.1; none: no privacy
    dp_delta: float | None = None  # δ of the reported ε(δ); None: min(1e-5, 1/samples on the node)
    dp_target_epsilon: float | None = None  # budget: stop before any node's ε would exceed it
    deterministic: bool = False  # seed DP noise from --seed (reproducible, for tests) instead of the OS
    # Faulty neighbours (fedgossip.byzantine): what attackers send, and how every node combines.
    attack: str = "none"  # attack spec, e.g. alie:z=1; none: every node honest
    attackers: str = "none"  # node ids (3,7) or fraction=F, drawn from --seed; with --attack only
    robust: str = "mean"  # aggregator spec, e.g. clip:tau=1; mean: the algorithm's plain average
    # Training-time plugins (fedgossip.plugins); each "none" or empty when off.
    filter: str = "none"  # importance filtering, e.g. hide:fraction=0.3
    share_data: str = "none"  # quantized data sharing, e.g. budget=32,bits=8 (trusted networks only)
    plugin: tuple[str, ...] = ()  # further training-time plugins by spec (third-party ones too)
    # Evaluation, records, reproducibility.
    eval_every: int = 5
    checkpoint_every: int = 0  # write a checkpoint every K rounds; 0: only when preempted (SIGTERM)
    # seconds without a completed round (interaction) on any rank before the job fails, naming the ranks
    # that did not arrive (fedgossip.comm.heartbeat); generous: a round of a large model may take minutes
    stall_timeout: float = 600.0
    # what a lost rank does to the run: abort ends every rank (MPI's default); continue needs ULFM
    # (Open MPI 5 launched with --with-ft ulfm; fedgossip.comm.fault_tolerance checks it before training)
    on_failure: str = "abort"
    seed: int = 0  # model init and shared draws agree across ranks; data order and noise add the rank
    device: str = "auto"
    out: str = "results"
    name: str | None = None

    def __post_init__(self) -> None:
        problems = _problems(self)
        specs, spec_problems = read_specs(self)
        problems += spec_problems
        if problems:
            raise ConfigError("invalid settings: " + "; ".join(problems))
        # Parsed once, here; not a field, so it stays out of to_dict(), equality and run.json.
        object.__setattr__(self, "_specs", specs)

    @property
    def specs(self) -> RunSpecs:
        """Return every spec of this config in typed form (parsed when the config was built)."""
        return self._specs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ON_FAILURE = ("abort", "continue")  # --on-failure's values
MAX_STALL_TIMEOUT = 1e7  # 115 days: longer than any job, and far inside what a thread's wait can take


def _problems(config: TrainConfig) -> list[str]:
    problems = _type_problems(config)
    positive = ("rounds", "batch_size", "eval_every")
    for name in positive:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
    nodes = config.nodes
    if nodes is not None and (not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1):
        problems.append(f"nodes must be a positive integer, got {nodes!r}")
    every = config.checkpoint_every
    if not isinstance(every, int) or isinstance(every, bool) or every < 0:
        problems.append(f"checkpoint-every must be an integer ≥ 0 (0: only when preempted), got {every!r}")
    stall = config.stall_timeout
    if not (_is_number(stall) and 0 < stall <= MAX_STALL_TIMEOUT):  # NaN fails the comparison too
        problems.append(f"stall-timeout must be a number of seconds in (0, 1e7], e.g. 600, got {stall!r}")
    if config.on_failure not in ON_FAILURE:
        problems.append(f"on-failure must be one of {', '.join(ON_FAILURE)}, got {config.on_failure!r}")
    if config.local_epochs is not None and (
        not isinstance(config.local_epochs, int)
        or isinstance(config.local_epochs, bool)
        or config.local_epochs < 1
    ):
        problems.append(f"local-epochs must be a positive integer, got {config.local_epochs!r}")
    steps = config.local_steps
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, str))):
        problems.append(f"local-steps must be a positive integer or geometric:mean=H, got {steps!r}")
    for name in ("slowdown", "link", "availability"):
        if not isinstance(getattr(config, name), str):
            problems.append(f"{name} must be a spec in quotes, got {getattr(config, name)!r}")
    for name in ("asynchronous", "deterministic", "vectorize"):
        if not isinstance(getattr(config, name), bool):
            problems.append(f"{name} must be true or false, got {getattr(config, name)!r}")
    problems += _privacy_problems(config)
    problems += _plugin_problems(config)
    problems += _attack_problems(config)
    if config.local_steps is not None and config.local_epochs is not None:
        problems.append("give either --local-steps or --local-epochs, not both")
    for name in ("lr", "momentum", "weight_decay"):
        value = getattr(config, name)
        if not _is_number(value) or not math.isfinite(value) or value < 0:
            problems.append(f"{name.replace('_', '-')} must be a finite number ≥ 0, got {value!r}")
        elif value > _FLOAT32_MAX:
            problems.append(
                f"{name.replace('_', '-')} {value!r} overflows float32, in which the models train; "
                f"give at most {_FLOAT32_MAX:.4g}"
            )
    if _is_number(config.momentum) and config.momentum >= 1:
        problems.append(f"momentum must be below 1, got {config.momentum}")
    if config.gamma is not None and not (_is_number(config.gamma) and 0 < config.gamma <= 1):
        problems.append(f"gamma must lie in (0, 1], got {config.gamma!r}")
    fraction = config.client_fraction
    if fraction is not None and not (_is_number(fraction) and 0 < fraction <= 1):
        problems.append(f"client-fraction must lie in (0, 1], got {config.client_fraction!r}")
    if not isinstance(config.optimizer, str):
        problems.append(f"optimizer must be a spec such as amsgrad:beta2=0.99, got {config.optimizer!r}")
    choices = {
        "lr_schedule": ("constant", "cosine"),
        "device": ("auto", "cpu", "cuda"),
    }
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            problems.append(
                f"{name.replace('_', '-')} must be one of {', '.join(allowed)}, got {getattr(config, name)!r}"
            )
    return problems


def _type_problems(config: TrainConfig) -> list[str]:
    """Return what a TOML file can get wrong that no later check would catch before a crash."""
    problems = [
        f"{name} must be a spec in quotes, got {getattr(config, name)!r}"
        for name in ("model", "algorithm", "topology", "compressor")  # their registries check the rest
        if not isinstance(getattr(config, name), str)
    ]
    for name, what, optional in (("data", "path", True), ("out", "path", False), ("name", "run name", True)):
        value = getattr(config, name)
        if not (isinstance(value, (str, os.PathLike)) or (optional and value is None)):
            problems.append(f"{name} must be a {what} in quotes, got {value!r}")
    if isinstance(config.name, str) and not config.name.strip():
        # not the automatic name: an empty --name is more likely a shell variable that was never set
        problems.append(
            f"name {config.name!r} is empty; give a run directory name, or leave --name out for the "
            "automatic time-algorithm-data"
        )
    for name, optional in (("seed", False), ("topology_seed", True)):
        value = getattr(config, name)
        in_range = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64
        if not (in_range or (optional and value is None)):
            # numpy and torch take seeds of 64 bits, and numpy no negative ones
            problems.append(f"{name.replace('_', '-')} must be an integer from 0 to 2**64 - 1, got {value!r}")
    return problems


def _privacy_problems(config: TrainConfig) -> list[str]:
    problems = []
    if not isinstance(config.dp, str) or not config.dp.strip():
        problems.append(f"dp must be a mechanism spec such as dp-sgd:clip=1,noise=1.1, got {config.dp!r}")
    delta, target = config.dp_delta, config.dp_target_epsilon
    if delta is not None and not (_is_number(delta) and 0 < delta < 1):
        problems.append(f"dp-delta must lie in (0, 1), e.g. 1e-5, got {delta!r}")
    if target is not None and not (_is_number(target) and math.isfinite(target) and target > 0):
        problems.append(f"dp-target-epsilon must be a finite number > 0, e.g. 8, got {target!r}")
    if config.dp == "none":
        given = [name for name in ("dp_delta", "dp_target_epsilon") if getattr(config, name) is not None]
        given += ["deterministic"] if config.deterministic is True else []
        problems += [
            f"{name.replace('_', '-')} applies to private training only; add --dp dp-sgd or --dp dp-update"
            for name in given
        ]
    return problems


def _plugin_problems(config: TrainConfig) -> list[str]:
    problems = []
    for name in ("filter", "share_data"):
        value = getattr(config, name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{name.replace('_', '-')} must be a spec in quotes or none, got {value!r}")
    plugins = config.plugin
    if not isinstance(plugins, (tuple, list)) or not all(isinstance(p, str) and p.strip() for p in plugins):
        problems.append(f'plugin must be a list of plugin specs, e.g. ["hide:fraction=0.3"], got {plugins!r}')
    return problems


def _attack_problems(config: TrainConfig) -> list[str]:
    problems = [
        f"{name} must be a spec in quotes, got {getattr(config, name)!r}"
        for name in ("attack", "attackers", "robust")
        if not isinstance(getattr(config, name), str) or not getattr(config, name).strip()
    ]
    if problems:
        return problems
    if config.attack != "none" and config.attackers == "none":
        problems.append(f"--attack {config.attack} needs --attackers: node ids (3,7) or fraction=F")
    if config.attackers != "none" and config.attack == "none":
        problems.append(
            f"--attackers {config.attackers} needs --attack: what they send, e.g. alie or sign-flip"
        )
    return problems


# The largest float32: the optimizer multiplies float32 tensors by lr and weight-decay.
_FLOAT32_MAX = 3.4028234663852886e38


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_FIELDS = {f.name for f in fields(TrainConfig)}
_MAX_CONFIG_BYTES = 1 << 20  # a run file is a few dozen lines


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML run file; keys are option names with '-' or '_'."""
    try:
        raw = tomllib.loads(read_bounded(Path(path), _MAX_CONFIG_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--config {path} does not exist") from None
    except FileProblem as exc:  # a FIFO would wait for a writer for ever, /dev/zero fill memory
        raise ConfigError(f"--config {path} {exc}; give a TOML file") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:  # read_bounded wraps every OSError
        raise ConfigError(f"--config {path} is not valid TOML: {exc}") from exc
    values = {key.replace("-", "_"): value for key, value in raw.items()}
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        known = sorted(name.replace("_", "-") for name in _FIELDS)
        guesses = [g for name in unknown for g in difflib.get_close_matches(name.replace("_", "-"), known, 1)]
        hint = f"; did you mean {', '.join(guesses)}?" if guesses else ""
        raise ConfigError(
            f"--config {path} has unknown settings {', '.join(unknown)}; known: {', '.join(known)}{hint}"
        )
    return values


def merge_config(
    command_line: dict[str, Any],
    toml_values: dict[str, Any],
    algorithm_defaults: dict[str, Any] | None = None,
) -> TrainConfig:
    """Build a ``TrainConfig``: command-line values over TOML values over the algorithm's defaults
    (comp-ams defaults to AMSGrad, see ``Algorithm.config_defaults``) over the field defaults."""
    values = {**(algorithm_defaults or {}), **toml_values, **command_line}
    if isinstance(values.get("plugin"), list):  # TOML arrays arrive as lists; the config is frozen
        values["plugin"] = tuple(values["plugin"])
    return TrainConfig(**values)
