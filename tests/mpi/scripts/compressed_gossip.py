"""Compressed gossip with lr = 0 (argv: algorithm compressor rounds [gamma]).

Checks the invariants that make delta exchange correct:
- dpsgd (CHOCO-gossip): the mean of the models is preserved, since Σ_i Σ_j W_ij (x̂_j − x̂_i) = 0;
  s_i equals Σ_j W_ij x̂_j over the neighbours' own public copies; the models reach consensus.
- swarm: the references at the two ends of every edge are bit-identical; the models mix.
- fedavg: every rank's model is bit-identical after every round.
"""

import sys

import numpy as np
import torch
from _common import check, comm, consensus_distance, context, mean_of, rank, size
from mpi4py import MPI

algorithm, compressor, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
spec = f"{algorithm}:gamma={sys.argv[4]}" if len(sys.argv) > 4 else algorithm
# fedavg's copies of the global model start as every rank's model, which training makes equal.
made, ctx, flat = context(spec, compressor=compressor, same_start=algorithm == "fedavg")
if algorithm == "fedavg":  # without training the model would never move: give each client a change
    flat.add_(torch.from_numpy(np.random.default_rng([9, rank]).normal(size=flat.numel()).astype(np.float32)))
before_mean, before_spread = mean_of(flat), consensus_distance(flat)


def swap(peer: int, mine: torch.Tensor) -> torch.Tensor:
    theirs = np.empty(mine.numel(), dtype=np.float32)
    comm.Sendrecv([mine.numpy(), MPI.FLOAT], dest=peer, recvbuf=[theirs, MPI.FLOAT], source=peer)
    return torch.from_numpy(theirs)


for round_index in range(1, rounds + 1):
    made.communicate(flat, round_index)
    if algorithm == "fedavg":
        models = np.empty((size, flat.numel()), dtype=np.float32)
        comm.Allgather([flat.numpy(), MPI.FLOAT], [models, MPI.FLOAT])
        check(bool((models == models[0]).all()), f"fedavg models differ after round {round_index}")

after_spread = consensus_distance(flat)
if algorithm == "dpsgd":
    drift = float(np.abs(mean_of(flat) - before_mean).max())
    # float32 rounding of the public copies accumulates over the rounds (~1e-7 per operation).
    check(drift < 1e-6 * rounds, f"CHOCO with {compressor} moved the mean by {drift:.3g}")
    copies = made.copies
    expected = copies.own * copies.self_weight
    for peer, weight in copies.weights.items():
        expected += swap(peer, copies.own) * weight
    gap = float((expected - copies.mixed).abs().max())
    check(gap < 1e-5, f"s_i differs from Σ_j W_ij x̂_j by {gap:.3g}")
if algorithm == "swarm":
    references = made.references
    for peer in references.neighbors:
        theirs = swap(peer, references.sent[peer])
        check(torch.equal(theirs, references.received[peer]), f"edge {rank}-{peer}: references differ")
        sequence = comm.sendrecv(references.sent_sequence[peer], dest=peer, source=peer)
        check(sequence == references.received_sequence[peer], f"edge {rank}-{peer}: sequence numbers differ")
if algorithm != "fedavg":
    check(
        after_spread < 0.05 * before_spread,
        f"{algorithm} with {compressor} did not mix: consensus distance {before_spread:.3g} -> "
        f"{after_spread:.3g}",
    )
if rank == 0:
    print(f"ok {algorithm} {compressor}: consensus distance {before_spread:.3g} -> {after_spread:.3g}")
