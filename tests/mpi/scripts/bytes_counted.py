"""Bytes counted by senders equal bytes MPI delivered, in whole packets (argv: algorithm rounds)."""

import sys

import numpy as np
from _common import check, comm, context, rank, size

from fedgossip.compress.wire import HEADER_SIZE

algorithm, rounds = sys.argv[1], int(sys.argv[2])
count = 777
made, ctx, flat = context(algorithm, "ring", count=count)
for round_index in range(1, rounds + 1):
    made.communicate(flat, round_index)
sent = np.empty((size, size), dtype=np.int64)  # sent[i, j]: counted by sender i for receiver j
received = np.empty((size, size), dtype=np.int64)  # received[j, i]: MPI's count at receiver j from i
comm.Allgather(ctx.traffic.bytes_sent, sent)
comm.Allgather(ctx.traffic.bytes_received, received)
check(
    np.array_equal(sent, received.T),
    f"sender counts {sent.tolist()} != receiver counts {received.T.tolist()}",
)
packet = HEADER_SIZE + 4 * count
check(np.all(sent % packet == 0), f"counts {sent.tolist()} are not whole packets of {packet} bytes")
if algorithm == "dpsgd":
    expected = packet * rounds * len(ctx.topology.neighbors(rank))
    check(int(sent[rank].sum()) == expected, f"rank sent {sent[rank].sum()} bytes, expected {expected}")
if rank == 0:
    print(f"ok total={sent.sum()}")
