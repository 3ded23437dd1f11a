"""Bad input gets one clear sentence that names the argument and what was expected — never a deep stack error, a
silent wrong answer, or a crash. `BAD_INPUTS` is the list docs/reliability.md counts."""
import math
from pathlib import Path

import pytest
import torch

import diffusion_course as dc
from diffusion_course import train
from diffusion_course.core.guidance import ClassifierFreeGuidance, label_null
from diffusion_course.evaluation.distances import frechet_distance, precision_recall
from diffusion_course.training.checkpoints import CheckpointError, load_checkpoint, load_text_model, read_manifest
from diffusion_course.training.optimiser import NonFiniteError, update

ROOT = Path(__file__).resolve().parents[1]


def _tiny_unet(**kw):
    return dc.UNet(dc.UNetConfig(channels=(8, 16), image_size=8, groups=4, attention_levels=(), **kw))


def _generate(**kw):
    args = {"n": 4, "seed": 0, "prediction": "eps", "shape": (3, 8, 8), "steps": 2}
    return dc.generate(_tiny_unet(), dc.NoiseSchedule.cosine(50), **{**args, **kw})


def _cli(*argv):
    return train.parser().parse_args(["uncond", *argv])


def _nan_loss_step():
    p = torch.nn.Parameter(torch.ones(2))
    update(torch.optim.SGD([p], lr=0.1), (p * float("nan")).sum())


def _exploding_gradient_step():
    p = torch.nn.Parameter(torch.zeros(2))
    update(torch.optim.SGD([p], lr=0.1), p.sqrt().sum())  # a finite loss, 0, whose gradient 1 / (2√p) is infinite


def _tokenizer():
    return dc.TextConditioner().tokenizer


#: (what a learner did, the call, the error type, words the message must contain)
BAD_INPUTS = [
    ("--steps -5", lambda: _cli("--steps", "-5"), SystemExit, None),
    ("--batch-size 0", lambda: _cli("--batch-size", "0"), SystemExit, None),
    ("--sample-every -1", lambda: _cli("--sample-every", "-1"), SystemExit, None),
    ("--minutes 0", lambda: _cli("--minutes", "0"), SystemExit, None),
    ("--checkpoint-every 0", lambda: _cli("--checkpoint-every", "0"), SystemExit, None),
    ("--steps ten", lambda: _cli("--steps", "ten"), SystemExit, None),
    ("generate n=0", lambda: _generate(n=0), ValueError, "n must be a positive number"),
    ("generate guidance=nan", lambda: _generate(guidance=float("nan"), null_cond=label_null(8)), ValueError,
     "guidance must be a finite"),
    ("guidance scale -1", lambda: ClassifierFreeGuidance(lambda x, s, c: x, -1.0, label_null(8)), ValueError,
     "finite number >= 0"),
    ("a label out of range", lambda: _tiny_unet(num_classes=8)(torch.zeros(2, 3, 8, 8), torch.ones(2),
                                                               torch.tensor([3, 9])), ValueError, "labels must lie in 0..7"),
    ("an empty prompt list", lambda: _tokenizer()([]), ValueError, "at least one caption"),
    ("a prompt that is a bare string", lambda: _tokenizer()("a red star"), TypeError, "wrap a single caption"),
    ("make_shapes(10**9)", lambda: dc.make_shapes(10**9), MemoryError, "would need about"),
    ("NaN features into the Fréchet distance", lambda: frechet_distance(torch.full((5, 3), math.nan),
                                                                        torch.randn(5, 3)), ValueError, "NaN"),
    ("NaN features into precision/recall", lambda: precision_recall(torch.randn(9, 3), torch.full((9, 3), math.inf)),
     ValueError, "NaN or infinite"),
    ("NaN samples to the evaluator's report", lambda: dc.evaluate_samples(torch.full((10, 3, 32, 32), math.nan), None),
     ValueError, "NaN or infinite pixels"),
    ("a NaN loss", _nan_loss_step, NonFiniteError, "the loss is nan"),
    ("an infinite gradient", _exploding_gradient_step, NonFiniteError, "gradients are NaN or infinite"),
    ("a text model from the wrong checkpoints", lambda: load_text_model("text_encoder", "text_unet"), CheckpointError,
     "a U-Net checkpoint, then a text-encoder"),
    ("a checkpoint folder with no manifest", lambda: load_checkpoint("uncond", directory=ROOT), CheckpointError,
     "has no manifest.json"),
]


@pytest.mark.parametrize("what, call, error, words", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_a_clear_error(what, call, error, words, capsys):
    with pytest.raises(error) as info:
        call()
    if words is not None:
        assert words in str(info.value), str(info.value)
    if error is SystemExit:  # argparse: the usage line and one sentence naming the option
        assert info.value.code == 2 and "--" in capsys.readouterr().err


def test_a_damaged_manifest_names_the_file_and_how_to_restore_it(tmp_path):
    (tmp_path / "manifest.json").write_text('{"uncond": {"sha256": ')  # truncated mid-write
    with pytest.raises(CheckpointError, match="manifest.json is damaged.*rerun the command"):
        read_manifest(tmp_path)


def test_a_float64_model_samples_without_a_dtype_error():
    torch.manual_seed(0)
    out = dc.generate(_tiny_unet().double(), dc.NoiseSchedule.cosine(50), 3, seed=0, prediction="eps",
                      shape=(3, 8, 8), steps=2)
    assert out.dtype == torch.float32 and out.shape == (3, 3, 8, 8) and torch.isfinite(out).all()


def test_the_reliability_page_counts_the_bad_inputs_tested_here():
    assert f"{len(BAD_INPUTS) + 2} bad inputs" in (ROOT / "docs" / "reliability.md").read_text()
