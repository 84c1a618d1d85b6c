"""Which device a rank computes on, and its rank within its host."""

from __future__ import annotations

from typing import Any

import torch

from fedgossip.errors import ConfigError

__all__ = ["DEVICE_CHOICES", "select_device", "node_local_rank"]

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def select_device(choice: str, local_rank: int = 0) -> torch.device:
    """Return the device for ``--device choice`` on the rank with host-local rank ``local_rank``.

    ``auto`` takes GPU ``local_rank % device_count`` when CUDA is available (so ranks on a
    host share its GPUs round-robin) and the CPU otherwise; ``cuda`` insists on a GPU.
    """
    if choice not in DEVICE_CHOICES:
        raise ConfigError(f"unknown device {choice!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if local_rank < 0:
        raise ValueError(f"the host-local rank must be >= 0, got {local_rank}")
    if choice == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if choice == "cuda":
            raise ConfigError(
                "--device cuda was requested but CUDA is not available on this host "
                "(no GPU, or a CPU-only PyTorch build); use --device cpu or --device auto"
            )
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def node_local_rank(comm: Any) -> int:
    """Return this rank's index among the ranks of ``comm`` that share its host.

    Collective over ``comm``: every rank must call it. ``Split_type(COMM_TYPE_SHARED)``
    groups the ranks that can share memory, i.e. those on the same host, so passing the
    result to :func:`select_device` maps the ranks of each host onto that host's GPUs,
    whatever order the launcher placed ranks in.
    """
    from mpi4py import MPI  # lazily: single-process use and the tests need no MPI

    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return int(local.Get_rank())
    finally:
        local.Free()
