"""Expert denoisers: training on the low noise levels only (`t_max`), and the switch that hands each step to its expert."""
import pytest
import torch
from torch import nn

from diffusion_course import NoiseSchedule, SwitchAtTimestep, diffusion_loss
from diffusion_course.training.loop import (
    TrainConfig,
    batches_from_tensors,
    train_diffusion,
)


class Recorder(nn.Module):
    """Predicts zero and remembers every timestep it was asked about."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.seen: list[torch.Tensor] = []

    def forward(self, x, t, cond=None):
        self.seen.append(t.detach().clone())
        return x * self.w


def test_diffusion_loss_draws_timesteps_below_t_max_only():
    schedule, x0 = NoiseSchedule.cosine(1000), torch.randn(4000, 2)
    net = Recorder()
    diffusion_loss(net, x0, schedule, generator=torch.Generator().manual_seed(0), t_max=300)
    t = net.seen[-1]
    assert int(t.max()) == 299 and int(t.min()) == 0  # 4,000 draws from 300 values reach both ends
    diffusion_loss(net, x0, schedule, generator=torch.Generator().manual_seed(0))
    assert int(net.seen[-1].max()) > 900  # the default still covers every timestep


@pytest.mark.parametrize("t_max", [0, -5, 1001])
def test_diffusion_loss_refuses_a_t_max_outside_the_schedule(t_max):
    with pytest.raises(ValueError, match="t_max"):
        diffusion_loss(Recorder(), torch.randn(2, 2), NoiseSchedule.cosine(1000), t_max=t_max)


def test_train_config_t_max_reaches_every_step_of_training():
    net = Recorder()
    cfg = TrainConfig(steps=5, batch_size=64, warmup=1, t_max=10)
    train_diffusion(net, NoiseSchedule.cosine(100), batches_from_tensors(torch.randn(64, 2), None, 64), cfg,
                    show_progress=False)
    assert len(net.seen) == 5 and all(int(t.max()) < 10 for t in net.seen)
    assert TrainConfig().t_max is None and TrainConfig(t_max=10).to_dict()["t_max"] == 10


class Constant(nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.value, self.calls = value, 0
        self.p = nn.Parameter(torch.zeros(()))

    def forward(self, x, t, cond=None):
        self.calls += 1
        return torch.full_like(x, self.value)


def test_switch_runs_one_expert_per_batch_on_one_side():
    high, low = Constant(1.0), Constant(-1.0)
    net = SwitchAtTimestep(high, low, t_switch=300)
    x = torch.zeros(3, 4, 8, 8)
    assert torch.equal(net(x, torch.full((3,), 299.5)), torch.full_like(x, -1.0))
    assert torch.equal(net(x, torch.full((3,), 300.0)), torch.full_like(x, 1.0))  # the switch belongs to `high`
    assert (high.calls, low.calls) == (1, 1)


def test_switch_picks_per_item_in_a_mixed_batch():
    net = SwitchAtTimestep(Constant(1.0), Constant(-1.0), t_switch=300)
    out = net(torch.zeros(4, 2, 3, 3), torch.tensor([0.0, 500.0, 299.0, 999.0]))
    assert out[:, 0, 0, 0].tolist() == [-1.0, 1.0, -1.0, 1.0]


def test_switch_refuses_bad_input():
    with pytest.raises(ValueError, match="t_switch"):
        SwitchAtTimestep(Constant(1.0), Constant(-1.0), t_switch=0)
    net = SwitchAtTimestep(Constant(1.0), Constant(-1.0), t_switch=10)
    with pytest.raises(ValueError, match="one timestep per item"):
        net(torch.zeros(3, 2), torch.tensor(5.0))


def test_switch_holds_both_experts_weights():
    """Saving or moving the pair moves both networks: they are registered submodules."""
    net = SwitchAtTimestep(Constant(1.0), Constant(-1.0), t_switch=10)
    assert set(net.state_dict()) == {"high.p", "low.p"}
