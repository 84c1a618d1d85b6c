"""Rank 1 sends node 0 a message 1000 bytes beyond what share-data's budget allows (2 ranks).

Rank 0 runs the plugin's exchange before round 1, as a run does; the network must
refuse the message from its announced size, before receiving it, and count nothing.
Rank 0 prints ``REFUSED <message>`` and ``RECEIVED <data bytes counted>``.
"""

import numpy as np
import torch
from mpi4py import MPI

from fedgossip.comm.network import NodeNetwork
from fedgossip.comm.placement import Placement
from fedgossip.comm.traffic import Traffic
from fedgossip.errors import WireError
from fedgossip.plugins import PluginHost
from fedgossip.plugins.sample_packets import message_size
from fedgossip.plugins.share_data import ShareData

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
network = NodeNetwork(comm, Placement(2, 2), max_bytes=0)
traffic = Traffic()
network.attach(rank, traffic)
limit = message_size(5, 4, 2, 3)  # budget 5, 4 features, 2 bits, 3 classes
if rank == 0:
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    y = np.arange(10) % 3
    model = torch.nn.Linear(4, 3)
    host = PluginHost(comm, 0, (1,), 3, model, None, None, None, traffic, x, y, 0, 1, torch.device("cpu"))
    plugin = ShareData(budget=5, bits=2, select="random")
    plugin.start(host)
    try:
        network.converse({0: plugin.conversation(1)})
    except WireError as exc:
        print(f"REFUSED {exc}", flush=True)
    print(f"RECEIVED {traffic.data_bytes_received}", flush=True)
else:
    network.converse({})  # the network's communicator is duplicated on its first use, on every rank
    oversized = np.zeros(limit + 1000, dtype=np.uint8)  # small enough to be sent eagerly
    network.comm.Send([oversized, MPI.BYTE], dest=0, tag=0)  # tag: node 0's position on its rank
comm.Barrier()
