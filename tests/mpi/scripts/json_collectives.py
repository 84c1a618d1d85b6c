"""Control data crosses MPI as JSON in byte buffers (run with 3 ranks; prints one ``ok`` line per check).

Every rank sends a value of a different length (rank 1 an empty string, the others
non-ASCII text), so the lengths-then-bytes protocol is exercised with uneven and
zero counts. ``agree`` reports rank 2's error, in Unicode, on every rank; a rank that
sends bytes that are not UTF-8 JSON is named in the receivers' WireError. A failed
check aborts the job, so nothing hangs.
"""

import sys

import numpy as np
from mpi4py import MPI

from fedgossip.comm.collective import agree, is_collective
from fedgossip.comm.json_buffers import allgather_json, bcast_json, gather_json
from fedgossip.errors import DataError, WireError

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()


def value_of(r: int) -> object:
    return "" if r == 1 else {"rank": r, "text": "naïve 日本語 🚀" * (r + 1), "ids": [r, -r, 2.5]}


def check(condition: bool, message: str) -> None:
    if not condition:
        print(f"[rank {rank}] FAILED: {message}", file=sys.stderr, flush=True)
        comm.Abort(1)


def ok(name: str) -> None:
    comm.Barrier()
    if rank == 0:
        print(f"ok {name}", flush=True)


everyone = [value_of(r) for r in range(size)]
got = allgather_json(comm, value_of(rank))
check(got == everyone, f"allgather_json gave {got!r}")
ok("allgather")

got = gather_json(comm, value_of(rank), root=2)
check(got == (everyone if rank == 2 else None), f"gather_json gave {got!r}")
ok("gather")

got = bcast_json(comm, ("tuple", "ß", None) if rank == 1 else "ignored", root=1)
check(got == ["tuple", "ß", None], f"bcast_json gave {got!r}")  # a tuple arrives as a list, on rank 1 too
ok("bcast")


def fails_on_rank_2() -> int:
    if rank == 2:
        raise DataError("shard «2» is missing — ünïcödé")
    return rank


try:
    agree(comm, fails_on_rank_2)
    check(False, "agree did not raise")
except DataError as exc:
    check(str(exc) == "rank 2: shard «2» is missing — ünïcödé", f"agree raised {exc}")
    check(is_collective(exc), "the error is not marked collective")
ok("agree error")

got = agree(comm, lambda: ("path", {"round": 3}), root_only=True)
check(got == ["path", {"round": 3}], f"agree root_only gave {got!r}")
ok("agree root_only")

# Rank 1 speaks the protocol with bytes that are not UTF-8: the others must refuse them, naming it.
if rank == 1:
    garbage = np.frombuffer(b"\xff\xfe{", dtype=np.uint8).copy()
    comm.Bcast(np.array([garbage.size], dtype=np.int64), root=1)
    comm.Bcast(garbage, root=1)
else:
    try:
        bcast_json(comm, root=1)
        check(False, "bytes that are not UTF-8 were accepted")
    except WireError as exc:
        check("rank 1 sent control data that is not UTF-8 JSON" in str(exc), f"WireError said {exc}")
ok("garbage refused")
