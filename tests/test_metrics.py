"""Fréchet distance and precision/recall against closed forms and obvious cases."""
import math

import pytest
import torch

from diffusion_course.evaluation.distances import (
    frechet_distance,
    in_manifold,
    precision_recall,
)


def _gauss(n, d, mean=0.0, std=1.0, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * std + mean


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    # for isotropic Gaussians FD = |μ1-μ2|² + d (s1 - s2)²; large n makes the estimate close
    d, n = 4, 200_000
    a, b = _gauss(n, d, 0.0, 1.0, 1), _gauss(n, d, 0.5, 2.0, 2)
    expected = d * 0.5**2 + d * (1.0 - 2.0) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)


def test_frechet_distance_of_a_set_with_itself_is_zero_and_grows_with_shift():
    a = _gauss(500, 8)
    assert abs(frechet_distance(a, a)) < 1e-6
    shifts = [frechet_distance(a, a + s) for s in (0.1, 0.5, 1.0)]
    assert shifts == sorted(shifts) and shifts[0] == pytest.approx(8 * 0.01, rel=1e-6)


def test_frechet_distance_uses_the_full_covariance():
    a = _gauss(20_000, 2, seed=3)
    rot = torch.tensor([[math.cos(0.7), -math.sin(0.7)], [math.sin(0.7), math.cos(0.7)]], dtype=torch.float64)
    stretched = a * torch.tensor([3.0, 0.3], dtype=torch.float64)
    # rotating an anisotropic Gaussian changes FD even though marginal variances' sum is unchanged
    assert frechet_distance(stretched, stretched @ rot.T) > 1.0


def test_precision_recall_see_fidelity_and_coverage_separately():
    real = _gauss(1000, 2, seed=4)
    same = _gauss(1000, 2, seed=5)
    collapsed = _gauss(1000, 2, std=0.2, seed=6)  # realistic but not diverse
    off = _gauss(1000, 2, mean=6.0, seed=7)  # nothing realistic
    p, r = precision_recall(real, same)
    assert p > 0.9 and r > 0.9
    p, r = precision_recall(real, collapsed)
    assert p > 0.95 and r < 0.5
    p, r = precision_recall(real, off)
    assert p < 0.05 and r < 0.05


def test_metric_inputs_are_checked():
    with pytest.raises(ValueError, match="same d"):
        frechet_distance(torch.zeros(5, 2), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(torch.zeros(1, 2), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="more than k"):
        precision_recall(torch.zeros(3, 2), torch.zeros(3, 2), k=3)


def test_in_manifold_marks_each_sample_and_averages_to_precision():
    g = torch.Generator().manual_seed(3)
    real = torch.randn(500, 4, generator=g)
    fake = torch.cat([torch.randn(100, 4, generator=g), torch.randn(100, 4, generator=g) + 50])
    inside = in_manifold(real, fake)
    assert inside.dtype == torch.bool and inside.shape == (200,)
    assert inside[:100].float().mean() > 0.8 and not inside[100:].any()
    assert precision_recall(real, fake)[0] == pytest.approx(float(inside.double().mean()))


def test_joint_accuracy_needs_every_named_attribute_right():
    from diffusion_course.evaluation.reports import joint_accuracy

    read = {"shape": torch.tensor([0, 1, 2, 3]), "colour": torch.tensor([5, 5, 6, 6]), "features": torch.zeros(4, 8)}
    want = {"shape": torch.tensor([0, 1, 2, 0]), "colour": torch.tensor([5, 4, 6, 6])}
    assert joint_accuracy(read, want) == 0.5  # items 0 and 2 have both right; 1 misses colour, 3 misses shape
    assert joint_accuracy(read, want, names=("shape",)) == 0.75


def test_proportion_interval_matches_closed_forms():
    from diffusion_course.evaluation.reports import proportion_interval

    z2 = 1.96 ** 2
    # at 0 or n successes the Wilson interval has a closed form: [0, z²/(n+z²)] and [n/(n+z²), 1]
    assert proportion_interval(0, 10) == pytest.approx((0.0, z2 / (10 + z2)))
    assert proportion_interval(10, 10) == pytest.approx((10 / (10 + z2), 1.0))
    # for large n it approaches p ± 1.96·SE
    lo, hi = proportion_interval(98_000, 100_000)
    se = (0.98 * 0.02 / 100_000) ** 0.5
    assert lo == pytest.approx(0.98 - 1.96 * se, abs=2e-5) and hi == pytest.approx(0.98 + 1.96 * se, abs=2e-5)
    # it narrows with n and always contains the measured share
    lo600, hi600 = proportion_interval(589, 600)
    lo2000, hi2000 = proportion_interval(1963, 2000)
    assert lo600 < 589 / 600 < hi600 and hi2000 - lo2000 < hi600 - lo600
    for bad in [(1, 0), (-1, 10), (11, 10)]:
        with pytest.raises(ValueError, match="0 <= k <= n"):
            proportion_interval(*bad)


def test_against_bar_needs_the_whole_interval_on_one_side():
    from diffusion_course.evaluation.reports import against_bar, proportion_interval

    assert against_bar(1990, 2000, 0.98)[2] == "above"  # 99.5%: interval 99.1%-99.7%
    assert against_bar(1900, 2000, 0.98)[2] == "below"  # 95.0%: interval 94.0%-95.9%
    # the same share of 98.5% is unresolved on 200 samples and above the bar on 20,000
    assert against_bar(197, 200, 0.98)[2] == "not resolved"
    assert against_bar(19_700, 20_000, 0.98)[2] == "above"
    assert against_bar(589, 600, 0.98)[:2] == proportion_interval(589, 600)
    for bar in (0.0, 1.0, 98):
        with pytest.raises(ValueError, match="share between 0 and 1"):
            against_bar(5, 10, bar)


def test_sharpness_is_zero_on_flat_images_falls_with_blur_and_rises_with_noise():
    from diffusion_course.evaluation import perturbations as P
    from diffusion_course.evaluation.distances import sharpness
    from diffusion_course.data.shapes import make_shapes

    assert sharpness(torch.full((2, 3, 8, 8), 0.3)) == 0.0
    ramp = torch.linspace(-1, 1, 16).expand(1, 3, 16, 16)  # a linear ramp has no curvature
    assert sharpness(ramp) == pytest.approx(0.0, abs=1e-6)
    real = make_shapes(200, split="test", seed=0).images
    base = sharpness(real)
    assert sharpness(P.blur(real)) < 0.6 * base
    assert sharpness(P.gaussian_noise(real, 0.03, torch.Generator().manual_seed(0))) > 1.3 * base
    with pytest.raises(ValueError, match="batch"):
        sharpness(real[0])


def test_attribute_accuracy_leaves_out_images_without_a_label():
    from diffusion_course.evaluation.reports import attribute_accuracy

    read = {"shape": torch.tensor([0, 1, 2, 3])}
    assert attribute_accuracy(read, {"shape": torch.tensor([0, 1, 0, 0])}) == {"shape": 0.5}
    assert attribute_accuracy(read, {"shape": torch.tensor([0, 1, -1, -1])}) == {"shape": 1.0}  # -1: no label
    with pytest.raises(ValueError, match="does not predict"):
        attribute_accuracy(read, {"rotation": torch.tensor([0.0])})
