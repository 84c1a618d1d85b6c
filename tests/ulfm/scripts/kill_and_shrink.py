"""Run under Open MPI with ULFM: rank KILL_RANK SIGKILLs itself at step KILL_STEP of a ring exchange;
the survivors detect it, shrink to themselves and prove the new communicator works with an allreduce.

Each survivor prints one JSON line: what it saw lost, the size and sum on the survivors' communicator,
and the detection-to-continue time (from the exception to the survivors' first working collective).
"""

import json
import os
import signal
import sys
import time

from mpi4py import MPI

from fedgossip.comm.ulfm import is_rank_lost, report_failures, shrink_to_survivors

kill_rank, kill_step = int(sys.argv[1]), int(sys.argv[2])
comm = MPI.COMM_WORLD
report_failures(comm)
rank, size = comm.Get_rank(), comm.Get_size()
step = 0
try:
    while step < 1000:
        if rank == kill_rank and step == kill_step:
            os.kill(os.getpid(), signal.SIGKILL)
        # a ring: everyone waits on its left neighbour, so a dead rank is seen by its right one first,
        # whose Revoke then releases the others. Point to point only: in this Open MPI (5.0.11) a
        # collective with a dead member hangs on the survivors instead of failing (measured here)
        comm.sendrecv(step, dest=(rank + 1) % size, source=(rank - 1) % size)
        step += 1
    print(json.dumps({"rank": rank, "error": "no failure seen"}), flush=True)
    sys.exit(1)
except MPI.Exception as exc:
    if not is_rank_lost(exc):
        raise
    detected = time.perf_counter()
survivors = shrink_to_survivors(comm)
total = survivors.comm.allreduce(rank)
continued = time.perf_counter()
record = {
    "rank": rank,
    "step": step,
    "lost": list(survivors.lost),
    "size": survivors.comm.Get_size(),
    "sum": total,
    "new_rank": survivors.rank_of[rank],
    "continue_s": continued - detected,
}
print(json.dumps(record), flush=True)
# MPI_Finalize after a lost rank hangs in this Open MPI (5.0.11: the survivors all printed, mpirun never
# returned), so the survivors end without it; finishing a training run cleanly is left to the engine's part.
os._exit(0)
