"""Public copies and per-edge references: the bookkeeping of delta exchange, and their saved state."""

import pytest
import torch

from fedgossip.comm.references import EdgeReferences, PublicCopies


def test_public_copies_keep_the_weighted_sum_of_all_copies():
    start = torch.zeros(4)
    copies = PublicCopies(start, self_weight=0.5, weights={1: 0.25, 2: 0.25})
    own, first, second = torch.randn(4), torch.randn(4), torch.randn(4)
    copies.add_own(own)
    copies.add_neighbor(1, first)
    copies.add_neighbor(2, second)
    torch.testing.assert_close(copies.own, own)
    torch.testing.assert_close(copies.mixed, 0.5 * own + 0.25 * first + 0.25 * second)


def test_edge_references_track_both_directions_and_count_deltas():
    references = EdgeReferences(torch.ones(3), neighbors=[4, 2])
    assert references.neighbors == [2, 4]
    x = torch.tensor([3.0, 1.0, -1.0])
    torch.testing.assert_close(references.delta_to(2, x), torch.tensor([2.0, 0.0, -2.0]))
    references.commit_sent(2, torch.tensor([2.0, 0.0, -2.0]))
    references.commit_received(4, torch.full((3,), 0.5))
    assert torch.equal(references.sent[2], x)
    assert references.sent_sequence == {2: 1, 4: 0} and references.received_sequence == {2: 0, 4: 1}


def test_reference_state_round_trips_and_refuses_other_neighbors():
    references = EdgeReferences(torch.zeros(3), neighbors=[1, 2])
    references.commit_sent(1, torch.ones(3))
    restored = EdgeReferences(torch.zeros(3), neighbors=[1, 2])
    restored.load_state_dict(references.state_dict())
    assert torch.equal(restored.sent[1], torch.ones(3)) and restored.sent_sequence[1] == 1
    with pytest.raises(ValueError, match="neighbours"):
        EdgeReferences(torch.zeros(3), neighbors=[1, 3]).load_state_dict(references.state_dict())
    copies = PublicCopies(torch.zeros(3), 1.0, {})
    with pytest.raises(KeyError, match="expected"):
        copies.load_state_dict({"own": torch.zeros(3)})
