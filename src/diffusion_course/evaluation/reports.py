"""Judging generated shapes images with the evaluator: one report per batch of samples.

What each number measures (n = number of generated samples; real references are fresh shapes
images from the training distribution, never the images a model was trained on):

- `fd`: Fréchet distance between evaluator features of the samples and of n real images.
  Lower is better; it mixes fidelity and diversity. `fd_floor` is the same distance between two
  independent sets of n real images — finite-sample bias, the best any model can score at this n.
  Always read `fd_ratio = fd / fd_floor` (1 is perfect) and compare ratios only at equal n.
- `precision`: share of samples inside the real images' feature manifold (k=3 nearest neighbours):
  are samples realistic? `recall`: share of real images inside the samples' manifold: do samples
  cover the variety of the data?
- `recognised`: share of samples whose shape AND colour the evaluator reads with probability ≥ 0.9
  AND whose features lie inside the real images' manifold (the precision test). The manifold test is
  needed because a classifier is overconfident off its data: on uniform noise this evaluator reads
  shape and colour with p ≥ 0.9 for about half the images. Real images score ≈ 0.94 at n = 1,000
  (the k-NN manifold of n real images misses a few fresh ones); noise scores 0.
- `accuracy` (conditional samples only): per attribute, the share of samples whose attribute the
  evaluator reads as the one requested.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..core.generation import EVAL_SAMPLER, EVAL_SPACING, EVAL_STEPS
from ..data.captions import evaluation_prompts
from ..data.shapes import make_shapes
from .distances import frechet_distance, in_manifold, precision_recall
from .evaluator import HEADS, Evaluator

CONFIDENCE = 0.9  # evaluator probability needed to count an attribute as recognised
RECOGNISED_BY = ("shape", "colour")  # attributes that must be recognised for a sample to count
REFERENCE_SEED = 777  # real reference images: a seed no training run uses
_cache: "weakref.WeakKeyDictionary[Evaluator, dict]" = weakref.WeakKeyDictionary()  # evaluator -> its real features


@dataclass
class SampleReport:
    n: int
    fd: float
    fd_floor: float
    precision: float
    recall: float
    recognised: float
    accuracy: dict[str, float] = field(default_factory=dict)

    @property
    def fd_ratio(self) -> float:
        return self.fd / self.fd_floor

    def __str__(self) -> str:
        acc = "".join(f", {k} acc {v:.1%}" for k, v in self.accuracy.items())
        return (f"n={self.n}: FD {self.fd:.2f} (floor {self.fd_floor:.2f}, {self.fd_ratio:.2f}×), precision "
                f"{self.precision:.2f}, recall {self.recall:.2f}, recognised {self.recognised:.1%}{acc}")


def real_features(evaluator: Evaluator, n: int, which: int = 0, split: str = "train") -> Tensor:
    """Evaluator features of n fresh real images (`which` picks one of several disjoint reference sets)."""
    cache = _cache.setdefault(evaluator, {})
    key = (n, which, split)
    if key not in cache:
        images = make_shapes(n, split=split, seed=REFERENCE_SEED, start=which * 1_000_000).images
        cache[key] = evaluator.read(images)["features"]
    return cache[key]


def fd_floor(evaluator: Evaluator, n: int, split: str = "train") -> float:
    """FD between two independent sets of n real images: the best score possible at this sample count."""
    return frechet_distance(real_features(evaluator, n, 0, split), real_features(evaluator, n, 1, split))


def confident(read: dict[str, Tensor], confidence: float = CONFIDENCE) -> Tensor:
    """Per image: are all `RECOGNISED_BY` attributes read with probability ≥ confidence?"""
    ok = torch.ones_like(read[f"{RECOGNISED_BY[0]}_prob"], dtype=torch.bool)
    for name in RECOGNISED_BY:
        ok &= read[f"{name}_prob"] >= confidence
    return ok


def recognised_share(read: dict[str, Tensor], real: Tensor | None = None, confidence: float = CONFIDENCE) -> float:
    """Share of images read confidently (`confident`) and, given `real` reference features, inside their manifold."""
    ok = confident(read, confidence).cpu()
    if real is not None:
        ok &= in_manifold(real, read["features"])
    return float(ok.float().mean())


def proportion_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a share k/n (95% for z = 1.96): how sure an accuracy measured on n samples is. Unlike
    p ± z·SE it stays inside [0, 1] and does not shrink to a point at 0 or n successes."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need n > 0 and 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def against_bar(k: int, n: int, bar: float, z: float = 1.96) -> tuple[float, float, str]:
    """Is a share k/n above or below a goal such as "at least 98% of samples"? Returns (low, high, verdict) with the
    Wilson interval of `proportion_interval`: 'above' when the whole interval is at or over the bar, 'below' when it is
    wholly under, otherwise 'not resolved' (n samples cannot tell, whichever side the measured share fell on)."""
    if not 0 < bar < 1:
        raise ValueError(f"the bar is a share between 0 and 1, got {bar}")
    lo, hi = proportion_interval(k, n, z)
    return lo, hi, "above" if lo >= bar else "below" if hi < bar else "not resolved"


def attribute_accuracy(read: dict[str, Tensor], targets: dict[str, Tensor]) -> dict[str, float]:
    """Per requested attribute, the share of images the evaluator reads as that attribute, among the images that have
    one (a target of -1 is no label: an attribute a person labelling by eye could not decide)."""
    out = {}
    for name, want in targets.items():
        if name not in read:
            raise ValueError(f"the evaluator does not predict {name!r}; it predicts {sorted(k for k in read if '_' not in k)}")
        want = want.cpu()
        out[name] = float((read[name] == want)[want >= 0].float().mean())
    return out


def joint_accuracy(read: dict[str, Tensor], targets: dict[str, Tensor], names=("shape", "colour")) -> float:
    """The share of images whose attributes `names` are *all* read as requested (e.g. the right shape and colour)."""
    hit = torch.ones(len(targets[names[0]]), dtype=torch.bool)
    for name in names:
        hit &= read[name].cpu() == targets[name].cpu()
    return float(hit.float().mean())


def evaluate_samples(samples: Tensor, evaluator: Evaluator, targets: dict[str, Tensor] | None = None,
                     split: str = "train") -> SampleReport:
    """A full `SampleReport` for generated images (N, 3, 32, 32) in [-1, 1]."""
    n = samples.shape[0]
    if n < 10:
        raise ValueError(f"need at least 10 samples for meaningful metrics, got {n}")
    if not bool(torch.isfinite(samples).all()):
        raise ValueError(f"{int((~torch.isfinite(samples).flatten(1).all(1)).sum())} of the {n} samples hold NaN or "
                         "infinite pixels: the model or the sampler diverged, so there is nothing to judge")
    read = evaluator.read(samples.clamp(-1, 1))
    real = real_features(evaluator, n, 0, split)
    precision, recall = precision_recall(real, read["features"])
    return SampleReport(
        n=n, fd=frechet_distance(read["features"], real), fd_floor=fd_floor(evaluator, n, split),
        precision=precision, recall=recall, recognised=recognised_share(read, real),
        accuracy=attribute_accuracy(read, targets) if targets else {},
    )


def caption_quality(sample_fn, evaluator: Evaluator, n: int = 500) -> dict[bool, "SampleReport"]:
    """A text-to-image model judged on n full test captions with seen colour×shape pairs (key False) and n with
    held-out pairs (key True): `sample_fn(prompts) -> images`. Each report's accuracy adds 'shape_and_colour'."""
    reports = {}
    for held_out in (False, True):
        prompts, attrs = evaluation_prompts(n, held_out=held_out)
        samples = sample_fn(prompts)
        targets = {k: attrs[k] for k in HEADS}
        reports[held_out] = evaluate_samples(samples, evaluator, targets=targets)
        reports[held_out].accuracy["shape_and_colour"] = joint_accuracy(evaluator.read(samples), attrs)
        print("held-out pairs:" if held_out else "seen pairs:", reports[held_out])
    return reports


def quality_record(report: "SampleReport", extra: dict | None = None) -> dict:
    """The `quality` entry a recipe writes into its checkpoint's JSON, from one report (plus `extra` entries)."""
    return {"samples": report.n, "sampler": f"{EVAL_SAMPLER}, {EVAL_STEPS} steps, {EVAL_SPACING}", "fd": report.fd,
            "fd_floor": report.fd_floor, "fd_ratio": report.fd_ratio, "precision": report.precision,
            "recall": report.recall, "recognised": report.recognised, "accuracy": report.accuracy, **(extra or {})}


def caption_quality_record(reports: dict[bool, "SampleReport"], guidance: float) -> dict:
    """`quality_record` of `caption_quality`'s reports: the seen-pair report in full, held-out accuracies as held_out_*."""
    held = {f"held_out_{k}": v for k, v in reports[True].accuracy.items()}
    return quality_record(reports[False], {"guidance": guidance, **held, "prompts": "500 seen-pair and 500 held-out-pair "
                                                                                     "test captions (data.captions.evaluation_prompts)"})
