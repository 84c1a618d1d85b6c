"""No rank unpickles what another rank sent: mpi4py's lowercase calls are absent from the package.

The lowercase methods (``comm.bcast``, ``comm.gather`` ...) pickle their objects, and
unpickling runs the sender's code; a compromised device could take over every rank.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fedgossip

PACKAGE = Path(fedgossip.__file__).parent

# Names only mpi4py communicators carry: flagged on any receiver.
PICKLING = {
    "bcast", "gather", "allgather", "scatter", "allreduce", "alltoall", "sendrecv", "isend", "irecv",
    "issend", "ssend", "bsend", "ibsend", "exscan", "scan", "mprobe", "improbe", "neighbor_allgather",
    "neighbor_alltoall", "ibcast", "igather", "iallgather", "iscatter", "ialltoall", "ireduce",
    "iallreduce",
}  # fmt: skip
# Names generators and our own classes use too: flagged when the receiver looks like a communicator.
AMBIGUOUS = {"send", "recv", "reduce", "probe", "iprobe"}


def _receiver_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def pickling_calls(source: str) -> list[tuple[int, str]]:
    """Return (line, call) for each lowercase mpi4py communication call in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method, receiver = node.func.attr, _receiver_name(node.func.value)
        looks_like_comm = "comm" in receiver.lower()
        if method in PICKLING or (method in AMBIGUOUS and looks_like_comm):
            found.append((node.lineno, f"{receiver}.{method}"))
    return found


def test_the_scan_finds_a_pickling_call():
    source = "x = comm.bcast(1, root=0)\ny = MPI.COMM_WORLD.recv(source=1)\nz = stepping.send(None)\n"
    assert pickling_calls(source) == [(1, "comm.bcast"), (2, "COMM_WORLD.recv")]


def test_the_scan_lets_buffer_calls_through():
    assert pickling_calls("comm.Bcast(buf, root=0)\ncomm.Allgatherv(a, b)\ncomm.Iprobe()\n") == []


def test_no_module_calls_a_pickling_mpi_method():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {call}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, call in pickling_calls(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "pickling MPI calls (use buffers or fedgossip.comm.json_buffers):\n" + "\n".join(
        offenders
    )
