"""Make setup failures collective: every rank stops with the same message, none is left waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from mpi4py import MPI

from fedgossip.comm.json_buffers import allgather_json, bcast_json
from fedgossip.comm.ulfm import abandon
from fedgossip.errors import FedGossipError

__all__ = ["agree", "barrier_sleeping", "is_collective"]

T = TypeVar("T")


def agree(comm: MPI.Intracomm, step: Callable[[], T], root_only: bool = False) -> T:
    """Run ``step`` on every rank (or only on rank 0) and raise the same error everywhere if any failed.

    With ``root_only`` the result of rank 0 is broadcast to all ranks. A
    ``FedGossipError`` on some rank becomes the same error, with the same
    message, on every rank, marked so the CLI prints it once and exits 1
    without aborting. Messages and rank 0's result travel as JSON in byte
    buffers (:mod:`fedgossip.comm.json_buffers`), never pickled: a ``root_only``
    step returns plain data, and a tuple comes back as a list on every rank.
    """
    result, message = None, None
    if not root_only or comm.Get_rank() == 0:
        try:
            result = step()
        except FedGossipError as exc:
            message = f"{type(exc).__name__}\0{exc}"
    if root_only:
        barrier_sleeping(comm)  # rank 0 alone works: the others wait without taking its CPU
        result, message = bcast_json(comm, [result, message], root=0)
        failures = [(0, message)] if message else []
    else:
        failures = [(rank, m) for rank, m in enumerate(allgather_json(comm, message)) if m]
    if failures:
        rank, message = failures[0]
        kind, text = message.split("\0", 1)
        everywhere_alike = len(failures) == comm.Get_size() and all(m == message for _, m in failures)
        if not (root_only or everywhere_alike):
            text = f"rank {rank}: {text}"  # a local problem (a missing file on one host): say where
        raise _collective(kind, text)
    return result


def barrier_sleeping(comm: MPI.Intracomm) -> None:
    """Wait until every rank of ``comm`` got here, sleeping rather than spinning.

    MPI's blocking calls poll at full speed: with many ranks on few cores the
    waiting ones would take the CPU from the ranks still working (64 ranks on
    2 cores made rank 0's 0.3 s step take tens of seconds).
    """
    request = comm.Ibarrier()
    pause = 1e-4
    try:
        while not request.Test():
            time.sleep(pause)
            pause = min(2 * pause, 0.01)
    except MPI.Exception:
        abandon(request)  # a rank was lost (ULFM): MPI may still hold the barrier
        raise


def _collective(kind: str, text: str) -> FedGossipError:
    import fedgossip.errors as errors

    error_class = getattr(errors, kind, FedGossipError)
    if not (isinstance(error_class, type) and issubclass(error_class, FedGossipError)):
        error_class = FedGossipError
    error = error_class(text)
    error.collective = True
    return error


def is_collective(error: BaseException) -> bool:
    """Return whether every rank raised ``error`` identically (so rank 0 alone reports it)."""
    return bool(getattr(error, "collective", False))
