import torch
from torch import nn

from srgan.train.module import ExponentialMovingAverage


def test_ema_decay_warms_up_then_holds_the_configured_value():
    ema = ExponentialMovingAverage(nn.Linear(2, 2), decay=0.999)
    assert ema.decay_at(0) == 0.1
    assert ema.decay_at(90) == 0.91
    assert ema.decay_at(100_000) == 0.999


def test_ema_follows_the_trained_weights_early_in_a_run():
    model = nn.Linear(2, 2)
    ema = ExponentialMovingAverage(model, decay=0.999)
    initial = ema.module.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    for iteration in range(1, 51):
        ema.update(model, iteration)
    # With a fixed 0.999 the average would still be 95% the initial weights; warmed up it has moved most of the way.
    moved = (ema.module.weight - initial).mean().item()
    assert 0.9 < moved <= 1.0
