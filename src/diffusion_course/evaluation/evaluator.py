"""The evaluator: a small CNN that reads a shapes image's attributes, and supplies features for metrics.

Trained on shapes images put through the defects generated images have (noise, blur, colour shifts, JPEG-like
blocks: `perturbations.augment`; `python -m diffusion_course.train evaluator`), shipped as a checkpoint; the same
network trained on clean renders only ships as `evaluator_clean`, for comparison. Every later notebook judges samples
with it: which shape and colour (and size, position, background) it sees, how confident it is, and its 128-d penultimate features for the
Fréchet distance and precision/recall in `distances.py`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.shapes import BACKGROUNDS, COLOURS, POSITIONS, SHAPES, SIZES

#: Attributes the evaluator predicts, with their number of classes.
HEADS = {"shape": len(SHAPES), "colour": len(COLOURS), "size": len(SIZES), "position": len(POSITIONS),
         "background": len(BACKGROUNDS)}


@dataclass
class EvaluatorConfig:
    channels: tuple[int, ...] = (32, 64, 128)  # conv widths at 32, 16 and 8 pixels
    feature_dim: int = 128  # width of the penultimate features used by the metrics
    heads: dict[str, int] = field(default_factory=lambda: dict(HEADS))  # attribute -> number of classes

    def __post_init__(self):
        self.channels = tuple(self.channels)

    def to_dict(self) -> dict:
        return asdict(self)


class Evaluator(nn.Module):
    """`evaluator(images) -> {attribute: logits}`; `evaluator.features(images) -> (B, feature_dim)`."""

    def __init__(self, config: EvaluatorConfig | None = None):
        super().__init__()
        self.config = cfg = config or EvaluatorConfig()
        layers, cin = [], 3
        for c in cfg.channels:  # two 3×3 convs per resolution, then halve it
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                       nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
            cin = c
        self.body = nn.Sequential(*layers)
        side = 32 // 2 ** len(cfg.channels)
        # flatten (not global pooling): position is one of the attributes to read
        self.neck = nn.Sequential(nn.Flatten(), nn.Linear(cin * side * side, cfg.feature_dim), nn.ReLU())
        self.heads = nn.ModuleDict({name: nn.Linear(cfg.feature_dim, n) for name, n in cfg.heads.items()})

    def features(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1:] != (3, 32, 32):
            raise ValueError(f"images must be (B, 3, 32, 32) in [-1, 1], got {tuple(images.shape)}")
        return self.neck(self.body(images))

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        f = self.features(images)
        return {name: head(f) for name, head in self.heads.items()}

    @torch.no_grad()
    def read(self, images: Tensor, batch_size: int = 500) -> dict[str, Tensor]:
        """Everything metrics need, in eval mode and batches: per attribute the predicted class (`name`) and
        its probability (`name_prob`), plus `features` (B, feature_dim). Results are on the CPU."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        parts: dict[str, list[Tensor]] = {}
        for chunk in images.split(batch_size):
            chunk = chunk.to(device, torch.float32)
            f = self.features(chunk)
            parts.setdefault("features", []).append(f.cpu())
            for name, head in self.heads.items():
                prob, pred = F.softmax(head(f), dim=1).max(dim=1)
                parts.setdefault(name, []).append(pred.cpu())
                parts.setdefault(f"{name}_prob", []).append(prob.cpu())
        self.train(was_training)
        return {k: torch.cat(v) for k, v in parts.items()}
