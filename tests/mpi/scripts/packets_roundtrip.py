"""Packets of every compressor cross MPI intact (argv: compressor specs; run with 2 ranks).

For each spec and vector size, rank 0 packs a random vector with its Codec and
sends the framed uint8 buffer, then what it decodes from that buffer itself.
Rank 1 sizes its receive from Mprobe, checks the byte count against
HEADER_SIZE + nbytes(n), unpacks with its own Codec and requires a result
bit-identical to rank 0's. Any failure aborts the job, so nothing hangs.
"""

import sys
import traceback

import numpy as np
import torch
from mpi4py import MPI

from fedgossip.comm.codec import Codec
from fedgossip.compress import COMPRESSORS
from fedgossip.compress.wire import HEADER_SIZE

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
COUNTS = [0, 7, 4099]  # empty; smaller than any block; not a multiple of 8, of a block or of 1/ratio


def fail(message: str) -> None:
    print(f"[rank {rank}] FAILED: {message}", file=sys.stderr, flush=True)
    comm.Abort(1)


def check(condition: bool, message: str) -> None:
    if not condition:
        fail(message)


def send(spec: str, count: int, tag: int) -> None:
    codec = Codec(COMPRESSORS.create(spec), rank, count, seed=11)
    x = torch.from_numpy(np.random.default_rng([tag, count]).normal(size=count).astype(np.float32))
    buffer, _ = codec.pack(x, sequence=tag)
    decoded = codec.unpack(buffer, source=rank, sequence=tag).numpy()
    comm.Send([buffer, MPI.BYTE], dest=1, tag=tag)
    comm.Send([decoded, MPI.FLOAT], dest=1, tag=tag + 1)


def receive(spec: str, count: int, tag: int) -> None:
    codec = Codec(COMPRESSORS.create(spec), rank, count)
    status = MPI.Status()
    message = comm.Mprobe(source=0, tag=tag, status=status)
    size = status.Get_count(MPI.BYTE)
    buffer = np.empty(size, dtype=np.uint8)
    message.Recv([buffer, MPI.BYTE])
    expected = np.empty(count, dtype=np.float32)
    comm.Recv([expected, MPI.FLOAT], source=0, tag=tag + 1)
    packet = HEADER_SIZE + codec.compressor.nbytes(count)
    check(size == packet, f"{spec} n={count}: {size} bytes arrived, a packet is {packet}")
    decoded = codec.unpack(buffer, source=0, sequence=tag).numpy()
    differ = np.flatnonzero(decoded.view(np.uint32) != expected.view(np.uint32))
    check(
        differ.size == 0,
        f"{spec} n={count}: {differ.size} values differ from the sender's decoding, "
        f"first at {differ[:1].tolist()}",
    )
    print(f"ok {spec} n={count} bytes={size}", flush=True)


def main(specs: list[str]) -> None:
    torch.set_num_threads(1)
    check(comm.Get_size() == 2, f"run with 2 ranks, not {comm.Get_size()}")
    for index, spec in enumerate(specs):
        for position, count in enumerate(COUNTS):
            tag = 2 * (index * len(COUNTS) + position)  # tag + 1 carries the sender's decoding
            (send if rank == 0 else receive)(spec, count, tag)
    comm.Barrier()
    if rank == 1:
        print(f"ok all {len(specs)} specs", flush=True)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except Exception:  # one rank failing must not leave the other waiting in Recv
        fail(traceback.format_exc())
