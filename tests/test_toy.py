"""2-D data, the MLP ε-predictor, the training objective and the 2-D distances."""
import pytest
import torch

from diffusion_course import (
    TOY_DATASETS,
    NoiseSchedule,
    ToyMLP,
    diffusion_loss,
    make_toy_data,
    mmd_rbf,
    real_data_floor,
    sliced_wasserstein,
    train_toy,
)


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_toy_data_is_seeded_standardised_and_2d(name):
    a, b, c = make_toy_data(name, 3000, seed=4), make_toy_data(name, 3000, seed=4), make_toy_data(name, 3000, seed=5)
    assert a.shape == (3000, 2) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.mean(0).abs().max() < 0.1 and (a.std(0) - 1).abs().max() < 0.1


def test_toy_datasets_differ_from_each_other():
    sets = {n: make_toy_data(n, 2000, 0) for n in TOY_DATASETS}
    for i, a in enumerate(TOY_DATASETS):
        for b in TOY_DATASETS[i + 1:]:
            assert sliced_wasserstein(sets[a], sets[b]) > 0.1, (a, b)


def test_toy_data_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        make_toy_data("spirals", 10)
    with pytest.raises(ValueError, match="positive int"):
        make_toy_data("moons", 0)


def test_toy_mlp_shapes_and_errors():
    net = ToyMLP()
    out = net(torch.randn(7, 2), torch.arange(7).float())
    assert out.shape == (7, 2)
    assert net(torch.randn(3, 2), torch.tensor(5.0)).shape == (3, 2)
    with pytest.raises(ValueError, match=r"\(batch, 2\)"):
        net(torch.randn(3, 3), torch.zeros(3))


def test_diffusion_loss_is_seeded_and_training_lowers_it():
    torch.manual_seed(0)
    sched, net = NoiseSchedule.linear(200), ToyMLP(hidden=64)
    data = make_toy_data("moons", 2000, 0)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert diffusion_loss(net, data[:64], sched, generator=g1).item() == diffusion_loss(net, data[:64], sched, generator=g2).item()
    before = diffusion_loss(net, data, sched, generator=torch.Generator().manual_seed(0)).item()
    losses = train_toy(net, data, sched, steps=300, batch_size=256, show_progress=False)
    after = diffusion_loss(net, data, sched, generator=torch.Generator().manual_seed(0)).item()
    assert len(losses) == 300 and after < 0.6 * before


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("weighting", ["none", "min_snr"])
def test_loss_targets_and_weightings_run(prediction, weighting):
    net = ToyMLP(hidden=16)
    loss = diffusion_loss(net, torch.randn(8, 2), NoiseSchedule.cosine(100), generator=torch.Generator().manual_seed(0),
                          prediction=prediction, weighting=weighting)
    assert loss.ndim == 0 and torch.isfinite(loss)
    with pytest.raises(ValueError, match="weighting"):
        diffusion_loss(net, torch.randn(8, 2), NoiseSchedule.cosine(100), weighting="snr")


def test_distances_see_the_floor_and_a_shift():
    def real(n, seed):
        return make_toy_data("gaussians", n, seed)

    n = 2000
    floor_swd = real_data_floor(sliced_wasserstein, real, n)
    shifted = real(n, 7) + torch.tensor([0.5, 0.0])
    assert 0 < floor_swd < 0.1
    assert sliced_wasserstein(real(n, 7), real(n, 7)) == 0.0
    assert sliced_wasserstein(shifted, real(n, 8)) > 4 * floor_swd
    assert mmd_rbf(shifted, real(n, 8)) > 10 * real_data_floor(mmd_rbf, real, n)
    with pytest.raises(ValueError, match="same number of points"):
        sliced_wasserstein(real(10, 0), real(11, 0))
    with pytest.raises(ValueError, match="same d"):
        mmd_rbf(torch.zeros(5, 2), torch.zeros(5, 3))


class _Fixed(torch.nn.Module):
    """Predicts zeros: the per-example loss is then |target|² exactly."""

    def forward(self, x, t, cond=None):
        return torch.zeros_like(x)


@pytest.mark.parametrize("prediction, base", [("eps", lambda snr: snr), ("v", lambda snr: snr + 1),
                                              ("x0", lambda snr: torch.ones_like(snr))])
def test_min_snr_weighting_matches_its_closed_form(prediction, base):
    """loss_i = |target_i|² · min(SNR_t, γ) / base(SNR_t), with t and noise drawn as the loss draws them."""
    sched = dc_schedule = NoiseSchedule.cosine(100)
    x0 = torch.randn(16, 2, generator=torch.Generator().manual_seed(1))
    got = diffusion_loss(_Fixed(), x0, sched, generator=torch.Generator().manual_seed(5), prediction=prediction,
                         weighting="min_snr", min_snr_gamma=5.0)
    g = torch.Generator().manual_seed(5)
    t = torch.randint(0, 100, (16,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    ab = dc_schedule.alpha_bar(t).float()[:, None]
    target = {"eps": noise, "x0": x0, "v": ab.sqrt() * noise - (1 - ab).sqrt() * x0}[prediction]
    snr = dc_schedule.snr(t).float()
    want = (target.pow(2).mean(1) * snr.clamp(max=5.0) / base(snr)).mean()
    torch.testing.assert_close(got, want)
