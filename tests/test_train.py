"""The image training loop: learning-rate schedule, EMA, condition dropout, resuming."""
import pytest
import torch

from diffusion_course import NoiseSchedule, UNet, UNetConfig
from diffusion_course.train import EMA, TrainConfig, batches_from_tensors, lr_at, train_diffusion


def test_lr_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(steps=1000, lr=1e-3, warmup=100, min_lr_frac=0.1)
    assert lr_at(0, cfg) == pytest.approx(1e-5)
    assert lr_at(99, cfg) == pytest.approx(1e-3)
    assert lr_at(550, cfg) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    assert lr_at(1000, cfg) == pytest.approx(1e-4)
    lrs = [lr_at(s, cfg) for s in range(100, 1000)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_ema_follows_the_formula():
    net = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(net.weight)
    ema = EMA(net, decay=0.9)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update(net)  # decay min(0.9, 2/11)
    assert float(ema.model.weight) == pytest.approx(1 - 2 / 11)
    for _ in range(200):
        ema.update(net)
    assert float(ema.model.weight) == pytest.approx(1.0, abs=1e-6)


def _tiny():
    torch.manual_seed(0)
    return UNet(UNetConfig(channels=(16, 32), image_size=16, time_dim=32, num_classes=3))


def test_training_lowers_the_loss_and_drops_conditions():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(32, 3, 16, 16, generator=g) * 2 - 1
    labels = torch.randint(0, 3, (32,), generator=g)
    seen = []

    def drop(cond, mask):
        seen.append(int(mask.sum()))
        return torch.where(mask, torch.full_like(cond, 3), cond)

    cfg = TrainConfig(steps=60, batch_size=16, lr=3e-3, warmup=5, cond_drop=0.5)
    res = train_diffusion(_tiny(), NoiseSchedule.cosine(100), batches_from_tensors(images, labels, 16), cfg,
                          drop_condition=drop, show_progress=False)
    assert len(res.losses) == 60 and sum(res.losses[-10:]) < sum(res.losses[:10])
    assert 0 < sum(seen) < 60 * 16 and res.images_per_second > 0


def test_resume_restores_weights_ema_and_optimiser(tmp_path):
    images = torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    cfg = TrainConfig(steps=3, batch_size=4, warmup=2, checkpoint_every=3)
    net = _tiny()
    first = train_diffusion(net, NoiseSchedule.cosine(50), batches_from_tensors(images, None, 4), cfg, run_dir=tmp_path,
                            show_progress=False)
    # resuming a finished run restores everything and trains no further
    resumed = _tiny()
    again = train_diffusion(resumed, NoiseSchedule.cosine(50), batches_from_tensors(images, None, 4), cfg,
                            run_dir=tmp_path, resume=True, show_progress=False)
    assert again.losses == first.losses
    for a, b in zip(resumed.state_dict().values(), net.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(again.ema.state_dict().values(), first.ema.state_dict().values()):
        assert torch.equal(a, b)
    # resuming with more steps continues (Adam's moments restored: the next update equals an uninterrupted run's)
    longer = TrainConfig(**{**cfg.to_dict(), "steps": 5})
    cont = train_diffusion(_tiny(), NoiseSchedule.cosine(50), batches_from_tensors(images, None, 4), longer,
                           run_dir=tmp_path, resume=True, show_progress=False)
    assert len(cont.losses) == 5 and cont.losses[:3] == first.losses
    with pytest.raises(ValueError, match="different settings: lr"):
        train_diffusion(_tiny(), NoiseSchedule.cosine(50), batches_from_tensors(images, None, 4),
                        TrainConfig(**{**cfg.to_dict(), "lr": 0.5}), run_dir=tmp_path, resume=True, show_progress=False)
