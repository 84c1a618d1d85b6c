"""Error feedback keeps what compression dropped: decoded + new_residual == input + old_residual."""

import pytest
import torch

from fedgossip.compress import COMPRESSORS
from fedgossip.compress.feedback import ErrorFeedback


@pytest.mark.parametrize("spec", ["topk:ratio=0.1", "sign:block=64", "randk:ratio=0.2", "qsgd:bits=3"])
def test_error_feedback_invariant_holds_every_step(spec):
    compressor = COMPRESSORS.create(spec)
    generator = torch.Generator().manual_seed(0)
    feedback = ErrorFeedback(1000)
    for step in range(20):
        x = torch.randn(1000, generator=generator)
        old_residual = feedback.residual.clone()
        sent = feedback.corrected(x)
        decoded = compressor.decode(compressor.encode(sent, key=step))
        feedback.absorb(sent, decoded)
        # float32: ((x + e) − d) + d differs from x + e by a rounding of each operation, each at
        # most half an ulp of the largest magnitude involved.
        error = (decoded + feedback.residual - (x + old_residual)).abs()
        bound = 2 * torch.finfo(torch.float32).eps * (decoded.abs() + sent.abs() + feedback.residual.abs())
        assert torch.all(error <= bound), f"step {step}: invariant broken by {float((error - bound).max())}"


def test_error_feedback_delivers_every_coordinate_of_a_constant_signal():
    # top-1 of a constant vector sends one coordinate per step; with feedback the residual of the
    # others grows until each is sent, so the sum of what arrives tracks the sum of what went in.
    compressor = COMPRESSORS.create("topk:ratio=0.01")
    feedback = ErrorFeedback(100)
    x = torch.ones(100)
    delivered = torch.zeros(100)
    for step in range(200):
        sent = feedback.corrected(x)
        decoded = compressor.decode(compressor.encode(sent, key=step))
        feedback.absorb(sent, decoded)
        delivered += decoded
    assert torch.all(delivered > 0), "some coordinate was never sent"
    torch.testing.assert_close(delivered + feedback.residual, x * 200)


def test_disabled_feedback_passes_vectors_through():
    feedback = ErrorFeedback(10, enabled=False)
    x = torch.randn(10)
    assert feedback.corrected(x) is x
    feedback.absorb(x, torch.zeros(10))
    assert feedback.residual.numel() == 0


def test_state_round_trip_and_mismatch():
    feedback = ErrorFeedback(5)
    feedback.absorb(torch.ones(5), torch.zeros(5))
    restored = ErrorFeedback(5)
    restored.load_state_dict(feedback.state_dict())
    assert torch.equal(restored.residual, torch.ones(5))
    with pytest.raises(ValueError, match="state is for"):
        ErrorFeedback(6).load_state_dict(feedback.state_dict())
    with pytest.raises(KeyError, match="lacks"):
        ErrorFeedback(5).load_state_dict({"residual": torch.zeros(5)})
