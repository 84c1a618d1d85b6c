"""fedgossip: federated and decentralized learning over MPI with quantized gossip.

The Python API, for scripts and notebooks (what the CLI does goes through it)::

    import fedgossip as fg

    part = fg.create_partition("digits", nodes=8, scheme="dirichlet:alpha=0.5", out="datasets/d8")
    run = fg.train(fg.TrainConfig(data=str(part.path), rounds=3, compressor="qsgd:bits=4"))
    run.metrics["test_accuracy"]      # [evaluations, nodes]
    [r.summary["final"] for r in fg.runs("results")]

Names are imported on first use, so ``import fedgossip`` stays cheap (MPI ranks pay
every import once each).
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = [
    "__version__",
    "ConfigError",
    "DataError",
    "FedGossipError",
    "Partition",
    "Run",
    "TrainConfig",
    "config",
    "create_partition",
    "register_model",
    "runs",
    "train",
]


def __getattr__(name: str):
    """Import a public name on first use (PEP 562)."""
    if name in ("ConfigError", "DataError", "FedGossipError"):
        from fedgossip import errors as module
    elif name in ("Partition", "create_partition"):
        from fedgossip.api import partition as module
    elif name in ("Run", "runs"):
        from fedgossip.records import reader as module
    elif name == "TrainConfig":
        from fedgossip.settings import config as module
    elif name in ("config", "train"):
        from fedgossip.api import training as module
    elif name == "register_model":
        from fedgossip.api import models as module
    else:
        raise AttributeError(f"module 'fedgossip' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
