"""Survive a lost rank with ULFM: turn a dead peer into one exception, then shrink to the survivors.

Only under Open MPI 5 launched with ``mpirun --with-ft ulfm`` (fedgossip.comm.fault_tolerance checks it).
With ``MPI.ERRORS_RETURN`` on a communicator, a call that involves a dead rank raises ``MPI.Exception``
of class ``ERR_PROC_FAILED`` (or ``ERR_PROC_FAILED_PENDING`` for a wildcard receive, ``ERR_REVOKED``
once another survivor has revoked it) instead of ending the job. Recovery is collective over the
survivors: each one revokes the communicator (so a survivor still blocked in a call with a live peer is
released too), ``Shrink`` builds the survivors' communicator (every survivor gets the same one), and the
lost ranks are read off it, so all survivors agree on them without a further message.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from mpi4py import MPI

_lost_any = False  # whether this process went on after a lost rank: MPI_Finalize would then hang


def ranks_were_lost() -> bool:
    """Return whether this process shrank a communicator to the survivors of a lost rank.

    Open MPI 5.0.11's ``MPI_Finalize`` hangs after a loss, so a process that recovered must
    end with ``os._exit`` once its output is flushed (``fedgossip train`` does).
    """
    return _lost_any


_abandoned: list[object] = []  # requests (and their buffers) given up on after a lost rank


def abandon(requests: object) -> None:
    """Keep ``requests`` (MPI requests, with their buffers) alive for the rest of the process.

    After a lost rank a pending request is given up on, not waited for. Letting Python free it
    frees the MPI request while MPI still works on it, and an error it later reports (its peer
    is dead) then goes to the fatal handler of no communicator, which ends the job.
    """
    _abandoned.append(requests)


def report_failures(comm: MPI.Comm) -> None:
    """Make calls on comm raise MPI.Exception on a dead peer instead of aborting the job."""
    comm.Set_errhandler(MPI.ERRORS_RETURN)


def is_rank_lost(exc: BaseException) -> bool:
    """Return whether exc may be MPI telling that a peer died or that a survivor revoked the communicator.

    A wait on several requests reports ``ERR_IN_STATUS`` whatever failed, and a send to a peer
    that died before the two were connected ``ERR_OTHER`` ("known error not in list", seen in
    Open MPI 5.0.11); under ULFM a lost peer is the likely cause of either, and recovery finds
    out for sure (a shrink that loses no rank means it was something else: that error is raised).
    """
    if not isinstance(exc, MPI.Exception):
        return False
    lost = {
        MPI.ERR_PROC_FAILED,
        MPI.ERR_PROC_FAILED_PENDING,
        MPI.ERR_REVOKED,
        MPI.ERR_IN_STATUS,
        MPI.ERR_OTHER,
    }
    return exc.Get_error_class() in lost


def revoke_quietly(comm: MPI.Comm) -> None:
    """Revoke comm so every survivor's pending and future calls on it fail; an error doing so is moot."""
    with contextlib.suppress(MPI.Exception):  # already revoked, or freed: nobody can wait on it
        comm.Revoke()


@dataclass(frozen=True)
class Survivors:
    comm: MPI.Comm  # the survivors' communicator, with ERRORS_RETURN set again
    lost: tuple[int, ...]  # ranks of the old communicator that died, ascending
    rank_of: dict[int, int]  # old rank -> new rank, for each survivor
    recovery_s: float  # from the call (just after detection) until the survivors' communicator exists


def shrink_to_survivors(comm: MPI.Comm) -> Survivors:
    """Revoke comm, shrink it to the live ranks and return them with the lost ranks (collective)."""
    global _lost_any
    _lost_any = True
    started = time.perf_counter()
    comm.Revoke()
    survivors = comm.Shrink()
    report_failures(survivors)
    old_ranks = MPI.Group.Translate_ranks(
        survivors.Get_group(), list(range(survivors.Get_size())), comm.Get_group()
    )
    rank_of = {old: new for new, old in enumerate(old_ranks)}
    lost = tuple(rank for rank in range(comm.Get_size()) if rank not in rank_of)
    return Survivors(survivors, lost, rank_of, time.perf_counter() - started)
