"""The image defects the robust evaluator is trained and judged on: each does what its docstring says, measured."""
import pytest
import torch

from diffusion_course.evaluation import perturbations as P


def _images(n=16, seed=0):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 1.6 - 0.8


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_noise_has_the_standard_deviation_asked_for_and_a_seed_fixes_it():
    grey = torch.zeros(64, 3, 32, 32)
    noisy = P.gaussian_noise(grey, 0.03, _gen())
    assert noisy.std().item() == pytest.approx(0.03, rel=0.02)
    assert torch.equal(noisy, P.gaussian_noise(grey, 0.03, _gen()))
    per_image = P.gaussian_noise(grey[:2], torch.tensor([0.0, 0.1]), _gen())
    assert per_image[0].abs().max() == 0 and per_image[1].std().item() == pytest.approx(0.1, rel=0.05)


def test_blur_is_a_normalised_3x3_gaussian():
    flat = torch.full((2, 3, 32, 32), 0.3)
    torch.testing.assert_close(P.blur(flat), flat)  # weights sum to 1: a flat image is unchanged
    dot = torch.zeros(1, 3, 9, 9)
    dot[..., 4, 4] = 1.0
    kernel = P.blur(dot)[0, 0, 3:6, 3:6]
    torch.testing.assert_close(kernel.sum(), torch.tensor(1.0))
    one_d = kernel.sum(0)  # sigma 0.85: about 1-2-1 / 4 along each axis
    torch.testing.assert_close(one_d / one_d[1], torch.tensor([0.5, 1.0, 0.5]), atol=0.01, rtol=0)


def test_jpeg_like_is_nearly_lossless_at_quality_100_and_lossy_at_10():
    x = P.blur(_images())  # smooth content, like the shapes' backgrounds
    err = {q: (P.jpeg_like(x, q) - x).abs().mean().item() for q in (100, 50, 10)}
    assert err[100] < 0.01 < err[10] and err[100] < err[50] < err[10], err
    d = P._dct_matrix()
    torch.testing.assert_close(d @ d.T, torch.eye(8))  # an orthonormal DCT: round-off only where it is rounded


def test_colour_shift_and_resample_keep_flat_images_flat():
    flat = torch.full((4, 3, 32, 32), 0.2)
    shifted = P.colour_shift(flat, 0.05, _gen())
    assert (shifted - flat).abs().max() <= 0.05 * 1.2 + 0.05 + 1e-6
    per_channel = shifted.flatten(2).std(-1)
    assert per_channel.max() < 1e-6  # one gain and offset per image and channel
    torch.testing.assert_close(P.resample(flat), flat)


def test_augment_leaves_some_images_clean_changes_the_rest_and_is_seeded():
    x = _images(400)
    out = P.augment(x, _gen())
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    clean = (out == x).flatten(1).all(1).float().mean().item()
    assert 0.06 < clean < 0.22, clean  # (1 - 0.4)^4 = 13% expected
    torch.testing.assert_close(out, P.augment(x, _gen()))


@pytest.mark.parametrize("call, message", [
    (lambda: P.blur(torch.zeros(3, 32, 32)), "images must be a \\(B, 3, H, W\\) batch"),
    (lambda: P.jpeg_like(torch.zeros(1, 3, 30, 30)), "divisible by 8"),
    (lambda: P.jpeg_like(torch.zeros(1, 3, 32, 32), 0), "quality must lie in \\[1, 100\\]"),
])
def test_bad_input_gets_one_clear_sentence(call, message):
    with pytest.raises(ValueError, match=message):
        call()



def test_the_robust_evaluator_recipe_trains_on_defective_batches_and_leaves_the_plain_one_unchanged():
    from diffusion_course.recipes.pixel import train_evaluator

    def weights(robust):
        model, _ = train_evaluator("cpu", epochs=1, n_train=512, robust=robust, accuracy_images=64)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    plain, again, robust = weights(False), weights(False), weights(True)
    assert torch.equal(plain, again)  # seeded: the augmentation's generator takes nothing from the data's
    assert not torch.equal(plain, robust)
