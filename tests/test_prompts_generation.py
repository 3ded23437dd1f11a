"""Prompt helpers and batched generation (with guidance and decode hooks)."""
import pytest
import torch

import diffusion_course as dc
from diffusion_course.core.generation import generate
from diffusion_course.core.guidance import label_null
from diffusion_course.data.captions import caption, evaluation_prompts, partial_captions
from diffusion_course.data.shapes import caption_words, held_out_mask, parse_caption
from diffusion_course.evaluation.text_probes import word_consistency
from diffusion_course.recipes.configs import UNCOND_SCHEDULE
from diffusion_course.training.text_encoder import pretrain_text_encoder


def test_full_caption_equals_the_dataset_caption():
    b = dc.make_shapes(100, seed=3)
    for i in range(100):
        kw = {k: int(b.attrs[k][i]) for k in ("size", "colour", "position", "background")}
        assert caption(int(b.attrs["shape"][i]), **kw) == b.captions[i]


def test_partial_captions_drop_phrases_at_the_given_rate_and_use_only_known_words():
    b = dc.make_shapes(2000, seed=1)
    caps = partial_captions(b.attrs, 0.25, torch.Generator().manual_seed(0))
    words = set(caption_words())
    assert all(set(c.split()) <= words for c in caps)
    has_colour = sum(any(f" {col} " in f" {c} " for col in dc.COLOURS) for c in caps) / len(caps)
    assert 0.70 < has_colour < 0.80  # kept with probability 0.75
    assert partial_captions(b.attrs, 0.0, torch.Generator().manual_seed(0)) == b.captions
    assert all(len(c.split()) == 2 for c in partial_captions(b.attrs, 1.0, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="drop_prob"):
        partial_captions(b.attrs, 1.5, torch.Generator())


def test_partial_captions_report_which_phrases_they_kept():
    b = dc.make_shapes(300, seed=2)
    caps, kept = partial_captions(b.attrs, 0.5, torch.Generator().manual_seed(0), return_kept=True)
    assert caps == partial_captions(b.attrs, 0.5, torch.Generator().manual_seed(0))  # the same draw either way
    assert kept["shape"].all() and 0.4 < kept["colour"].float().mean() < 0.6
    for i, c in enumerate(caps):
        stated = {"size": any(f" {w} " in f" {c} " for w in dc.SIZES),
                  "colour": any(f" {w} " in f" {c} " for w in dc.COLOURS),
                  "position": " in the " in c or " at the " in c or " on the " in c,
                  "background": c.endswith(" background")}
        assert stated == {k: bool(kept[k][i]) for k in stated}, c


def test_pretraining_a_text_encoder_rejects_an_empty_run():
    attrs = dc.make_shapes(10, seed=0).attrs
    with pytest.raises(ValueError, match="steps and batch_size"):
        pretrain_text_encoder(dc.TextConditioner(), attrs, steps=0)


def test_evaluation_prompts_split_seen_and_held_out_pairs():
    seen, a_seen = evaluation_prompts(50, held_out=False)
    held, a_held = evaluation_prompts(50, held_out=True)
    assert len(seen) == len(held) == 50
    assert not held_out_mask(a_seen).any() and held_out_mask(a_held).all()
    assert [parse_caption(c)["shape"] for c in held] == a_held["shape"].tolist()


class _LabelNet(torch.nn.Module):
    """Predicts x0 = a constant image per label (label 3 = null: zeros), as an 'x0' network."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))
        self.values = torch.tensor([-0.5, 0.0, 0.5, 0.0])

    def forward(self, x, t, cond=None):
        v = self.values[cond] if cond is not None else torch.zeros(x.shape[0])
        # a small pull towards the input, so samples depend on the starting noise
        return v.reshape(-1, 1, 1, 1).expand_as(x).to(x) + 0.01 * torch.tanh(x)


def test_batching_changes_a_real_networks_samples_only_by_round_off():
    """generate's docstring: the same samples whatever `batch` is, up to float round-off, not bit for bit."""
    net, info = dc.load_checkpoint("uncond")
    schedule = dc.NoiseSchedule.from_kind(*UNCOND_SCHEDULE)
    whole, split = (generate(net, schedule, 8, seed=0, prediction=info["meta"]["prediction"], steps=10, batch=b)
                    for b in (8, 3))
    torch.testing.assert_close(split, whole, atol=2e-4, rtol=0)


def test_generate_batches_conditions_and_guidance():
    sched = dc.NoiseSchedule.cosine(100)
    net = _LabelNet()
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    out = generate(net, sched, 7, seed=0, cond=labels, prediction="x0", batch=3, steps=5, shape=(1, 2, 2))
    torch.testing.assert_close(out[:, 0, 0, 0], net.values[labels], atol=0.02, rtol=0)
    guided = generate(net, sched, 7, seed=0, cond=labels, prediction="x0", guidance=2.0, null_cond=label_null(3),
                      batch=3, steps=5, shape=(1, 2, 2), clip=None)
    torch.testing.assert_close(guided[:, 0, 0, 0], 2 * net.values[labels], atol=0.04, rtol=0)
    again = generate(net, sched, 7, seed=0, cond=labels, prediction="x0", batch=7, steps=5, shape=(1, 2, 2))
    torch.testing.assert_close(out, again)  # batching does not change deterministic samples
    other = generate(net, sched, 7, seed=1, cond=labels, prediction="x0", batch=7, steps=5, shape=(1, 2, 2))
    assert not torch.equal(out, other)  # ... while the seed does
    with pytest.raises(ValueError, match="null_cond"):
        generate(net, sched, 7, seed=0, prediction="x0", cond=labels, guidance=2.0, shape=(1, 2, 2))
    with pytest.raises(ValueError, match="n=5 rows"):
        generate(net, sched, 5, seed=0, prediction="x0", cond=labels, shape=(1, 2, 2))


def test_token_targets_keep_each_word_in_its_own_token():
    """With token_targets, pretraining also reads each token's word back from its own feature: the colour word's feature
    then depends less on which shape follows it (mean cosine similarity of 'blue' across the 8 shapes rises). 200 steps
    of 128 captions: the rise clears 0.05 for other seeds too; it needs the steps more than the batch (after 120 steps
    it can vanish)."""
    attrs = dc.make_shapes(2000, split="train", seed=0).attrs
    similarity, reports = {}, {}
    for token_targets in (False, True):
        torch.manual_seed(0)
        conditioner = dc.TextConditioner()
        reports[token_targets] = pretrain_text_encoder(conditioner, attrs, steps=200, batch_size=128,
                                                       token_targets=token_targets)
        similarity[token_targets] = word_consistency(conditioner.eval())  # 'blue' before each of the 8 shapes
    assert "token_targets" not in reports[False] and "token" not in reports[False]["accuracy"]  # default JSON unchanged
    assert reports[True]["token_targets"] and reports[True]["accuracy"]["token"] > 0.9
    assert similarity[True] > similarity[False] + 0.05, similarity


def test_word_consistency_is_one_for_the_same_context_and_needs_two_captions():
    conditioner = dc.TextConditioner().eval()
    assert abs(word_consistency(conditioner, ["a red star", "a red star"], 2) - 1.0) < 1e-5
    assert word_consistency(conditioner, ["a red star", "a red circle on a dark background"], 2) < 1.0 - 1e-4
    with pytest.raises(ValueError, match="two captions"):
        word_consistency(conditioner, ["a red star"], 2)
