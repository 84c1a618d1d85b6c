"""Bytes counted by senders equal bytes received, in whole packets (argv: algorithm rounds)."""

import sys

import numpy as np
from _common import check, comm, context, rank, size

from fedgossip.compress.wire import HEADER_SIZE

algorithm, rounds = sys.argv[1], int(sys.argv[2])
count = 777
made, ctx, flat = context(algorithm, "ring", count=count)
for round_index in range(1, rounds + 1):
    made.communicate(flat, round_index)
traffic = ctx.traffic
mine = np.array([traffic.bytes_sent, traffic.bytes_received, traffic.messages_sent], dtype=np.int64)
every = np.empty((size, 3), dtype=np.int64)  # per rank: bytes sent, bytes received, messages sent
comm.Allgather(mine, every)
sent, received, messages = every.T
check(sent.sum() == received.sum(), f"senders counted {sent.tolist()}, receivers {received.tolist()}")
packet = HEADER_SIZE + 4 * count
check(np.array_equal(sent, messages * packet), f"counts {sent.tolist()} are not whole {packet}-byte packets")
check(np.all(received % packet == 0), f"received {received.tolist()} are not whole packets of {packet} bytes")
if algorithm in ("dpsgd", "swarm"):  # symmetric exchanges: every node receives what it sends
    check(np.array_equal(sent, received), f"sent {sent.tolist()} != received {received.tolist()}")
if algorithm == "dpsgd":
    expected = packet * rounds * len(ctx.topology.neighbors(rank))
    check(int(sent[rank]) == expected, f"rank sent {sent[rank]} bytes, expected {expected}")
if algorithm.startswith("fedavg"):
    # The downlink goes to every client, chosen or not, and is counted (fedavg.py says why).
    clients = size - 1
    downlink = packet * rounds * clients
    uplink = packet * sum(len(made.selected(r)) for r in range(1, rounds + 1))
    check(int(sent[0]) == downlink, f"server sent {sent[0]}, expected {downlink} (every client, every round)")
    check(int(received[0]) == uplink, f"server received {received[0]}, expected {uplink} (the chosen)")
    check(np.all(received[1:] == packet * rounds), f"clients received {received[1:].tolist()}")
if rank == 0:
    print(f"ok total={sent.sum()}")
