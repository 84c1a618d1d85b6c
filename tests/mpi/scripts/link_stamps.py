"""One packet sent to two peers over an emulated link leaves one after the other.

Rank 0 sends the same framed buffer to ranks 1 and 2 through its node's one uplink
(the network a run uses); each copy must carry its own delivery time, the second one
transmission later.
"""

import numpy as np
import torch
from _common import check, comm, rank

from fedgossip.comm.codec import Codec
from fedgossip.comm.conversation import Exchange
from fedgossip.comm.network import NodeNetwork
from fedgossip.comm.placement import Placement
from fedgossip.comm.traffic import Traffic
from fedgossip.compress import COMPRESSORS
from fedgossip.compress.wire import delivery_time
from fedgossip.settings.link_spec import Link

link = Link(bandwidth_bps=1e6, latency_s=0.01)  # 1 Mbit/s: a 4 kB packet takes about 32 ms
codec = Codec(COMPRESSORS.create("none"), rank, 1000)
network = NodeNetwork(comm, Placement(3, 3), codec.max_packet, link)
network.attach(rank, Traffic())
received = {}


def talk(outgoing, incoming):
    received.update((yield Exchange(outgoing, incoming)))


if rank == 0:
    packet = codec.pack(torch.zeros(1000))
    network.converse({0: talk({1: packet, 2: packet}, [])})
    check(delivery_time(packet[0]) == 0.0, "the caller's buffer was stamped in place")
    stamps = np.empty(2)
    comm.Recv(stamps[:1], source=1)
    comm.Recv(stamps[1:], source=2)
    gap = abs(stamps[1] - stamps[0])
    check(
        abs(gap - link.transmission(packet[0].size)) < 1e-6, f"stamps {stamps} are not one transmission apart"
    )
    print(f"ok stamps {gap * 1e3:.1f} ms apart")
else:
    network.converse({rank: talk({}, [0])})
    (buffer,) = received.values()
    comm.Send(np.array([delivery_time(buffer)]), dest=0)
