import math

import pytest
import torch
from torch import nn

from architectures.losses import LOSSES, gradient_penalty

Z = torch.zeros(4)


@pytest.mark.parametrize(
    "name, d_loss, g_loss",
    [
        # all at logits 0: sigmoid = 1/2, so each BCE term is log 2
        ("bce", 2 * math.log(2), math.log(2)),
        ("bce-minimax", 2 * math.log(2), -math.log(2)),
        ("hinge", 2.0, 0.0),  # relu(1 - 0) + relu(1 + 0); -mean(0)
        ("least-squares", 0.5, 0.5),  # 0.5 (0-1)^2 + 0.5 * 0^2; 0.5 (0-1)^2
        ("wasserstein", 0.0, 0.0),
    ],
)
def test_losses_at_zero_logits(name, d_loss, g_loss):
    d, g, extras = LOSSES.get(name).fn(Z, Z)
    torch.testing.assert_close(d, torch.tensor(d_loss))
    torch.testing.assert_close(g, torch.tensor(g_loss))
    assert isinstance(extras, dict)


def test_wasserstein_estimate():
    d, g, extras = LOSSES.get("wasserstein").fn(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0]))
    torch.testing.assert_close(extras["wasserstein"], torch.tensor(1.0))  # mean 2 - mean 1
    torch.testing.assert_close(d, torch.tensor(-1.0))
    torch.testing.assert_close(g, torch.tensor(-1.0))


@pytest.mark.parametrize("name", LOSSES.names())
def test_losses_reject_wrong_shape(name):
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        LOSSES.get(name).fn(torch.zeros(4, 1), Z)


@pytest.mark.parametrize("name", LOSSES.names())
def test_losses_push_the_right_way(name):
    """Raising real scores lowers D's loss; raising fake scores lowers G's loss."""
    fn = LOSSES.get(name).fn
    lo, hi = torch.full((4,), -0.5), torch.full((4,), 0.5)
    assert fn(hi, Z)[0] < fn(lo, Z)[0]
    assert fn(Z, hi)[1] < fn(Z, lo)[1]


def test_gradient_penalty_of_linear_critic():
    """D(x) = <w, x> has gradient w everywhere, so the penalty is (||w|| - 1)^2 exactly."""
    torch.manual_seed(0)
    lin = nn.Linear(12, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.full((1, 12), 3.0 / math.sqrt(12)))  # ||w|| = 3
    critic = nn.Sequential(nn.Flatten(), lin, nn.Flatten(0))
    gp = gradient_penalty(critic, torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2))
    torch.testing.assert_close(gp, torch.tensor(4.0))
    gp.backward()  # keeps the graph so the critic can be trained on it
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


def test_gradient_penalty_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(nn.Identity(), torch.zeros(2, 3), torch.zeros(3, 3))
