"""Mark a run failed when its job disappears without saying so (SIGKILL, out-of-memory killer).

A process killed with SIGKILL runs no handler, and when one rank dies MPI's
launcher kills the others at once, so no rank can record the failure. Rank 0
therefore starts this small guardian in a session of its own, out of reach of
the launcher's cleanup. It blocks on pidfds (no polling) of rank 0 and of the
ranks on rank 0's host, and once rank 0 is gone turns a run.json still saying
``running`` into ``failed``, naming the rank that ended first and the round
under way. The ranks come on its command line; it says ``watching`` on its stdout
once it holds their pidfds, and rank 0 waits for that before the first round (a
rank killed earlier could not be told from the ranks the launcher ended next).
The steps come over its stdin, one JSON object a line, ``{"step": 7, "unit": "round"}``.

Run as ``python -m fedgossip.records.guardian RUN_DIR PID [RANK=PID ...]``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
from pathlib import Path

from fedgossip.records.run import read_run_json, update_run_status

__all__ = ["Guardian", "start_guardian", "watch"]


class Guardian:
    """Rank 0's end of its guardian: what it tells it never blocks and never fails the run."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        os.set_blocking(process.stdin.fileno(), False)  # a guardian slow to read must not stall training
        self._step: int | None = None
        self._watching: bool | None = None  # None: not asked yet

    def wait_until_watching(self, timeout: float = 30.0) -> bool:
        """Wait until the guardian holds the ranks' pidfds; return whether it said so in time.

        Asked once: a guardian that did not answer is not waited for again.
        """
        if self._watching is None:
            readable, _, _ = select.select([self.process.stdout], [], [], timeout)
            self._watching = bool(readable) and self.process.stdout.readline() == b"watching\n"
        return self._watching

    def tell_step(self, step: int, unit: str = "round") -> None:
        """Say that round (or interaction) ``step`` has begun (the first time, once it is watching)."""
        self.wait_until_watching()
        if step != self._step:
            self._step = step
            self._tell({"step": int(step), "unit": unit})

    def wait(self, timeout: float | None = None) -> int:
        return self.process.wait(timeout)

    def _tell(self, fact: dict) -> None:
        # the guardian may be gone, or its pipe full: the run goes on without this fact
        with contextlib.suppress(OSError):
            os.write(self.process.stdin.fileno(), (json.dumps(fact) + "\n").encode())


def start_guardian(
    run_dir: Path, pid: int | None = None, ranks: dict[int, int] | None = None
) -> Guardian | None:
    """Start the guardian of ``run_dir`` for process ``pid`` (default: this one); None where unsupported.

    ``ranks`` are the process ids of the other ranks it can watch (on this host), by rank.
    """
    if not hasattr(os, "pidfd_open"):
        return None  # not Linux ≥ 5.3: a killed run then stays "running" in run.json
    command = [sys.executable, "-m", "fedgossip.records.guardian", str(run_dir), str(pid or os.getpid())]
    command += [f"{rank}={other}" for rank, other in (ranks or {}).items() if rank != 0]
    process = subprocess.Popen(
        command,
        start_new_session=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        close_fds=True,
    )
    return Guardian(process)


class _Watch:
    """What the guardian knows: the ranks it watches, those that ended first, the step under way."""

    def __init__(self, pids: dict[int, int]):
        self.pidfds: dict[int, int] = {}  # rank → pidfd, of the ranks still alive
        self.first_ended: list[int] = []  # the ranks seen ended at the first wake-up
        self.step: int | None = None
        self.unit = "round"
        self._buffered = b""
        gone = []
        for rank, pid in pids.items():
            try:
                self.pidfds[rank] = os.pidfd_open(pid)
            except (ProcessLookupError, PermissionError):
                gone.append(rank)  # already gone (or not ours to watch)
        # all together: ranks already ended when the watch began are not in the order they ended
        readable, _, _ = select.select(list(self.pidfds.values()), [], [], 0)
        self.ended(gone + [rank for rank, fd in self.pidfds.items() if fd in readable])

    def ended(self, ranks: list[int]) -> None:
        for rank in ranks:
            if rank in self.pidfds:
                os.close(self.pidfds.pop(rank))
        if ranks and not self.first_ended:
            self.first_ended = sorted(ranks)

    def hear(self, data: bytes) -> None:
        """Take in what rank 0 said; what is not a well-formed fact is ignored."""
        self._buffered += data
        *lines, self._buffered = self._buffered.split(b"\n")
        for line in lines:
            try:
                fact = json.loads(line)
                if "step" in fact:
                    self.step, self.unit = int(fact["step"]), str(fact.get("unit", "round"))
            except (ValueError, TypeError, AttributeError):
                continue

    def message(self) -> str:
        during = "" if self.step is None else f" in {self.unit} {self.step}"
        ranks = self.first_ended or [0]
        if 0 in ranks:
            # rank 0 first, or with others at once: which one started it is unknown
            return f"rank 0 ended abruptly{during} (killed, or a rank died and MPI ended the job)"
        named = f"rank {ranks[0]}" if len(ranks) == 1 else "ranks " + ", ".join(map(str, ranks))
        return f"{named} ended abruptly{during} (killed, or out of memory), and MPI ended the job"


def watch(run_dir: Path, pid: int, ranks: dict[int, int] | None = None) -> None:
    """Wait for ``pid`` (rank 0) to end, then mark the run failed if it was still running.

    ``ranks``: the other ranks to watch, by rank, so a failure names the one that ended first.
    """
    known = _Watch({0: pid, **(ranks or {})})
    print("watching", flush=True)
    listening = sys.stdin.fileno()
    while 0 in known.pidfds:
        sources = list(known.pidfds.values()) + ([listening] if listening is not None else [])
        readable, _, _ = select.select(sources, [], [])
        if listening in readable:
            data = os.read(listening, 65536)
            if data:
                known.hear(data)
            else:
                listening = None  # rank 0 closed its end: it is ending
        known.ended([rank for rank, fd in known.pidfds.items() if fd in readable])
    if listening is not None:  # the last step rank 0 told, if not read yet
        os.set_blocking(listening, False)
        with contextlib.suppress(OSError):
            while data := os.read(listening, 65536):
                known.hear(data)
    if read_run_json(run_dir).get("status") == "running":
        update_run_status(run_dir, "failed", error=known.message(), failed_round=known.step)


if __name__ == "__main__":
    others = dict(tuple(map(int, item.split("=", 1))) for item in sys.argv[3:])
    watch(Path(sys.argv[1]), int(sys.argv[2]), others)
