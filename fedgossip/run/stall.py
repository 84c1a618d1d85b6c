"""End a job that stopped progressing (``--stall-timeout``): record why in run.json, then abort every rank.

The heartbeat (:mod:`fedgossip.comm.heartbeat`) notices the stall from its own
thread while the training thread waits inside MPI for a rank that will not come;
that thread cannot be interrupted, so the job ends by ``Abort`` from the heartbeat's.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from mpi4py import MPI

from fedgossip.comm.heartbeat import Heartbeat
from fedgossip.records import update_run_status

__all__ = ["watch_for_stalls"]


def watch_for_stalls(comm: MPI.Intracomm, run_dir: Path, timeout: float, unit: str) -> Heartbeat:
    """Start this rank's heartbeat (collective); a stall marks the run failed and aborts the job."""
    rank = comm.Get_rank()

    def on_stall(message: str, step: int) -> None:
        # rank 0 records; another rank only where it sees the run directory (a shared file system)
        if rank == 0 or run_dir.is_dir():
            try:
                update_run_status(run_dir, "failed", error=message, failed_round=step)
            except Exception as exc:  # the job must end whether or not the record could be written
                logging.getLogger(__name__).warning("[rank %d] could not record the stall: %s", rank, exc)
        sys.stderr.write(f"error: [rank {rank}] {message}\n")
        sys.stderr.flush()
        time.sleep(0.5)  # let the launcher forward the message before the job is torn down
        comm.Abort(1)
        os._exit(1)  # MPICH's Abort may return

    heartbeat = Heartbeat(comm, timeout, on_stall, unit)
    heartbeat.start()
    return heartbeat
