"""Mark a run failed when rank 0 disappears without saying so (SIGKILL, out-of-memory killer).

A process killed with SIGKILL runs no handler, and when one rank dies MPI's
launcher kills the others at once, so no rank can record the failure. Rank 0
therefore starts this small guardian in a session of its own, out of reach of
the launcher's cleanup. It blocks on a pidfd of rank 0 (no polling) and, once
rank 0 is gone, turns a run.json still saying ``running`` into ``failed``.

Run as ``python -m fedgossip.records.guardian RUN_DIR PID``.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path

from fedgossip.records.run import read_run_json, update_run_status

__all__ = ["start_guardian", "watch"]


def start_guardian(run_dir: Path, pid: int | None = None) -> subprocess.Popen | None:
    """Start the guardian of ``run_dir`` for process ``pid`` (default: this one); None where unsupported."""
    if not hasattr(os, "pidfd_open"):
        return None  # not Linux ≥ 5.3: a killed run then stays "running" in run.json
    command = [sys.executable, "-m", "fedgossip.records.guardian", str(run_dir), str(pid or os.getpid())]
    return subprocess.Popen(
        command,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
    )


def watch(run_dir: Path, pid: int) -> None:
    """Wait for ``pid`` to end, then mark the run failed if it was still running."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        pass  # already gone
    else:
        select.select([descriptor], [], [])
        os.close(descriptor)
    if read_run_json(run_dir).get("status") == "running":
        update_run_status(
            run_dir, "failed", error="rank 0 ended abruptly (killed, or a rank died and MPI ended the job)"
        )


if __name__ == "__main__":
    watch(Path(sys.argv[1]), int(sys.argv[2]))
