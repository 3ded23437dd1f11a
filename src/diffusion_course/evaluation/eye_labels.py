"""Generated images whose attributes a person labelled by eye: the check that the evaluator reads what a person sees.

`eye_labelled/samples.png` holds 200 generated 32×32 samples as a lossless 8-bit mosaic (10 rows of 20): 100 of the text
model at w = 3, then 100 of the latent model (with its low-noise expert and wide decoder), on the first 100 seen-pair
test captions (`data.captions.evaluation_prompts`), seed 1234. `eye_labelled/labels.json` has, for each, the shape,
colour, size, position and background a person saw, labelled without seeing the captions or any model's reading; an
attribute the person could not decide is "unclear" (label -1, which `reports.attribute_accuracy` leaves out).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..data.shapes import VOCABULARIES
from .evaluator import HEADS

EYE_LABELLED = Path(__file__).resolve().parent / "eye_labelled"


def eye_labelled() -> tuple[Tensor, dict[str, Tensor], dict]:
    """(the 200 images (200, 3, 32, 32) in [-1, 1], {attribute: label ids, -1 where "unclear"}, labels.json)."""
    from PIL import Image

    mosaic = torch.from_numpy(np.asarray(Image.open(EYE_LABELLED / "samples.png").convert("RGB")).copy())
    images = mosaic.float().div(127.5).sub(1).reshape(10, 32, 20, 32, 3).permute(0, 2, 4, 1, 3).reshape(200, 3, 32, 32)
    info = json.loads((EYE_LABELLED / "labels.json").read_text())
    labels = {h: torch.tensor([VOCABULARIES[h].index(e[h]) if e[h] != "unclear" else -1 for e in info["labels"]])
              for h in HEADS}
    return images, labels, info

