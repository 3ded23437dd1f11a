"""The shipped checkpoints: every manifest entry loads (hash and config checked) and keeps its quality.

Each model is re-measured on fresh noise (sampling seed 2024; the recipes measured with seed 1234) and, for the text
models, on other captions than the recipe's, and checked two ways:
- against the measurement its JSON records, within sampling noise: an FD ratio only at the recorded number of samples
  (FD depends on n), a share with a margin of at least about three standard errors of the difference (each test says
  how it sized its margin);
- against each goal of the course that the shipped model meets (docs/checkpoints.md, "Goals met"): the evaluator
  reads shape, colour, size and position of held-out images with at least 99% accuracy, clean or under noise σ = 0.03
  and a 3×3 blur at 95%; the class model draws the requested shape in
  at least 98% of samples; the pixel text model gets shape and colour right in at least 95% of samples on seen
  colour×shape pairs and 80% on held-out ones; the latent model's adherence is within 20% of the pixel model's.
Goals the shipped models do not meet are written down in docs/checkpoints.md, "Goals not met"; a test here holds each
of those models to its recorded measurement instead.
"""

import pytest
import torch

import diffusion_course as dc
from diffusion_course.core.generation import generate
from diffusion_course.evaluation.evaluator import HEADS
from diffusion_course.evaluation.reports import (
    against_bar,
    attribute_accuracy,
    evaluate_samples,
    joint_accuracy,
)
from diffusion_course.networks.vae_decoder import with_decoder
from diffusion_course.recipes import RECIPES
from diffusion_course.recipes.configs import (
    CLASS_TRAIN,
    LATENT_TRAIN,
    TEXT_TRAIN,
    UNCOND_SCHEDULE,
    UNCOND_UNET,
)
from diffusion_course.recipes.records import decoder_record_is_current
from diffusion_course.training.checkpoints import (
    WEIGHTS_DIR,
    checkpoint_info,
    load_checkpoint,
    load_text_model,
    read_manifest,
    sha256,
)

MANIFEST = read_manifest()

# A shipped checkpoint's command may name --steps only where that count is its recipe's default.
RECIPE_DEFAULT_STEPS = {"latent": LATENT_TRAIN.steps, "class": CLASS_TRAIN.steps, "text": TEXT_TRAIN.steps}


def _channels_last(model):
    """`model` with its convolution weights stored channels-last: the same function (samples agree to about 2e-4 and
    every measurement here to its last printed digit), about a quarter faster to sample on this CPU."""
    return model.to(memory_format=torch.channels_last)


@pytest.fixture(scope="module")
def evaluator():
    return _channels_last(load_checkpoint("evaluator")[0])


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_every_shipped_checkpoint_loads_and_matches_its_manifest(name):
    entry = MANIFEST[name]
    assert sha256(WEIGHTS_DIR / f"{name}.safetensors") == entry["sha256"]
    model, info = load_checkpoint(name)
    assert not model.training
    # each checkpoint names the one command that reproduces it, and that command's recipe exists
    command = info["meta"]["command"].split()
    assert command[:3] == ["python", "-m", "diffusion_course.train"] and command[3] in {"evaluator", "evaluator_clean", *RECIPES}
    if "--steps" in command:  # allowed only where the recipe has since adopted that step count as its default
        steps = int(command[command.index("--steps") + 1])
        assert steps == RECIPE_DEFAULT_STEPS.get(command[3]), \
            "a shipped checkpoint must come from the full recipe, not a shortened test run"
    reproduce = info["meta"].get("reproduce")
    if reproduce is not None:  # the command to rerun: the steps a budget (--minutes) chose, never --minutes; no --out
        words = reproduce.split()
        assert words[:4] == command[:4] and "--minutes" not in words and "--out" not in words
        assert int(words[words.index("--steps") + 1]) == info["meta"].get("train", info["meta"])["steps"]  # the VAE: top level


def test_shipped_weights_stay_small():
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.iterdir())
    assert total < 25e6, f"shipped weights take {total / 1e6:.1f} MB (budget: 25 MB)"


#: The shipped evaluator's agreement with the eye labels, as measured (shape 93.4%, colour 100%, size 99.0%, position
#: 100%, background 90.0% of 200), less one or two images' worth: the set is fixed, so only a changed judge moves it.
#: Below the goal of 95%: shape (malformed four- and five-lobed blobs a person calls stars and the judge crosses) and
#: background (faintly mottled light backgrounds the judge calls checked); docs/checkpoints.md, "Goals not met".
EYE_AGREEMENT_BARS = {"shape": 0.92, "colour": 0.99, "size": 0.98, "position": 0.99, "background": 0.88}


@pytest.fixture(scope="module")
def judge_test_images():
    return dc.make_shapes(2000, split="test", seed=7)


def _accuracy(judge, images, labels) -> dict[str, float]:
    """Per evaluator head, the share of `images` the judge reads as labelled (-1: no label)."""
    return attribute_accuracy(judge.read(images), {h: labels[h] for h in HEADS})


@pytest.mark.parametrize("name", ["evaluator", "evaluator_clean"])
def test_evaluators_read_held_out_images_at_99_percent(name, judge_test_images):
    """Both judges read shape, colour, size and position of clean test images at ≥ 99%. Background: each is held to its
    recorded accuracy on 10,000 test images less 3 standard errors at 2,000 images (1 point near 99%, 2 near 94%); the
    shipped judge, trained through defects, is short of the 99% goal there (docs/checkpoints.md, "Goals not met")."""
    judge, info = load_checkpoint(name)
    acc = _accuracy(judge, judge_test_images.images, judge_test_images.attrs)
    for head in ("shape", "colour", "size", "position"):
        assert acc[head] >= 0.99, f"{name} {head}: {acc[head]:.3f}"
    bar = info["meta"]["test_accuracy"]["background"] - (0.01 if name == "evaluator_clean" else 0.02)
    assert acc["background"] >= bar, f"{name} background: {acc['background']:.3f}"


def test_evaluator_reads_through_noise_and_blur(evaluator, judge_test_images):
    """The robustness goal: every head ≥ 95% under Gaussian noise σ = 0.03 and a 3×3 blur. Shape, colour, size and
    position meet it; background does not (about 93%: docs/checkpoints.md) and is held to 90%. The clean-trained judge
    fails the same images: its background head reads about a quarter of them right under noise."""
    from diffusion_course.evaluation import perturbations as P

    images, attrs = judge_test_images.images, judge_test_images.attrs
    clean_judge = load_checkpoint("evaluator_clean")[0]
    for defect, changed in (("noise 0.03", P.gaussian_noise(images, 0.03, torch.Generator().manual_seed(0))),
                            ("3x3 blur", P.blur(images))):
        acc = _accuracy(evaluator, changed, attrs)
        for head in ("shape", "colour", "size", "position"):
            assert acc[head] >= 0.95, f"{defect}, {head}: {acc[head]:.3f}"
        assert acc["background"] >= 0.90, f"{defect}, background: {acc['background']:.3f}"
        assert _accuracy(clean_judge, changed, attrs)["background"] < 0.8  # what the defects do to a clean-trained judge


def test_evaluator_agrees_with_a_person_on_generated_samples(evaluator):
    """On 200 generated samples labelled by eye (evaluation.eye_labels), the evaluator's readings agree with the person's
    on every head at the measured rates; the goal, ≥ 95% on every head, is stated met or not in docs/benchmarks.md."""
    from diffusion_course.evaluation.eye_labels import eye_labelled

    images, labels, info = eye_labelled()
    assert images.shape == (200, 3, 32, 32) and float(images.min()) >= -1 and float(images.max()) <= 1
    acc = _accuracy(evaluator, images, labels)
    for head, bar in EYE_AGREEMENT_BARS.items():
        assert acc[head] >= bar, f"{head}: {acc[head]:.3f} (bar {bar})"
    clean = _accuracy(load_checkpoint("evaluator_clean")[0], images, labels)
    assert clean["background"] < 0.6 < acc["background"]  # the clean-trained judge: about half (49%)
    assert sum(e[h] == "unclear" for e in info["labels"] for h in EYE_AGREEMENT_BARS) <= 10


@pytest.fixture(scope="module")
def uncond_report(evaluator):
    model, info = load_checkpoint("uncond", expect=UNCOND_UNET)
    schedule = dc.NoiseSchedule.from_kind(*UNCOND_SCHEDULE)
    samples = generate(_channels_last(model), schedule, 1000, seed=2024, device=torch.device("cpu"),
                       prediction=info["meta"]["prediction"])
    return evaluate_samples(samples, evaluator), info["meta"]


def test_uncond_model_is_as_good_as_its_recorded_measurement(uncond_report):
    """1,000 samples on fresh noise, as many as the recipe measured (an FD ratio is comparable only at equal n): the FD
    ratio within 25% of the recorded one, precision and the recognised share within sampling noise of theirs. The model
    falls short of the course's goal (FD ≤ 3× the floor, ≥ 90% recognised: docs/checkpoints.md, "Goals not met"); this
    holds it to what it records."""
    report, meta = uncond_report
    recorded = meta["quality"]
    assert report.n == recorded["samples"] == 1000
    assert report.fd_ratio <= 1.25 * recorded["fd_ratio"], report
    assert report.precision >= recorded["precision"] - 0.05, report
    # two independent shares of 1,000 samples near 60%: the difference has SE ≈ 2.2 points; 7 points ≈ 3 SE
    assert report.recognised >= recorded["recognised"] - 0.07, report


def test_caption_quality_gives_matching_images_full_marks_on_seen_and_held_out_pairs(evaluator):
    from diffusion_course.evaluation.reports import caption_quality

    bank = dc.make_shapes(20_000, split="test", seed=0)  # evaluation_prompts draws its captions from these images
    reports = caption_quality(lambda prompts: bank.images[[bank.captions.index(p) for p in prompts]], evaluator, n=50)
    for held_out in (False, True):
        assert reports[held_out].n == 50
        assert reports[held_out].accuracy["shape_and_colour"] >= 0.95, (held_out, reports[held_out])


def test_metrics_put_real_images_at_the_floor_and_noise_far_away(evaluator):
    real = evaluate_samples(dc.make_shapes(1000, split="train", seed=99).images, evaluator)
    noise = evaluate_samples(torch.rand(1000, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1, evaluator)
    assert real.fd_ratio < 1.5 and real.recognised > 0.9 and real.precision > 0.9 and real.recall > 0.9, real
    assert noise.fd_ratio > 20 and noise.recognised < 0.01 and noise.precision < 0.01, noise


CLASS_BAR = 0.98  # the course's goal: at its best guidance scale, ≥ 98% of samples have the requested class


@pytest.fixture(scope="module")
def class_accuracy(evaluator):
    """Shape accuracy of 400 fresh class-conditional samples (seed 2024; the recipe used 1234): guided, unguided."""
    from diffusion_course.recipes.configs import CLASS_GUIDANCE, CLASS_UNET
    from diffusion_course.recipes.pixel import sample_class_model

    model, info = load_checkpoint("class", expect=CLASS_UNET)
    model, schedule = _channels_last(model), dc.NoiseSchedule.from_kind(*UNCOND_SCHEDULE)
    out = {}
    for name, guidance in (("guided", CLASS_GUIDANCE), ("unguided", None)):
        samples, labels = sample_class_model(model, schedule, 400, torch.device("cpu"), info["meta"]["prediction"],
                                             guidance=guidance, seed=2024)
        out[name] = float((evaluator.read(samples)["shape"] == labels).float().mean())
    return out, info["meta"]["quality"]["accuracy"]["shape"]


@pytest.mark.skipif("class" not in MANIFEST, reason="the class-conditional checkpoint is not shipped yet")
def test_class_model_is_as_good_as_its_recorded_measurement(class_accuracy):
    accuracy, recorded = class_accuracy
    assert accuracy["guided"] >= recorded - 0.05, (accuracy, recorded)  # 400 samples: ±0.9 points at 97%


@pytest.mark.skipif("class" not in MANIFEST, reason="the class-conditional checkpoint is not shipped yet")
def test_class_guidance_raises_adherence(class_accuracy):
    accuracy, _ = class_accuracy
    # guidance at least halves the share of wrong shapes (a fixed gain in points would not fit near 100%); 400 samples
    # each way are enough to tell: the shipped model's two shares' 95% intervals resolve the halving
    assert 1 - accuracy["guided"] < 0.5 * (1 - accuracy["unguided"]), accuracy


@pytest.mark.skipif("class" not in MANIFEST, reason="the class-conditional checkpoint is not shipped yet")
def test_class_model_meets_the_course_bar(class_accuracy):
    """At the recipe's w = 3 (at most as good as the best w, so a pass here is a pass at the best w). 400 samples cannot
    resolve a share this close to 98% (at 99% their 95% interval is about 97.5-99.6%): this checks the measured share,
    and docs/benchmarks.md, "Class model: accuracy near the bar", resolves the goal on 2,000 samples per w."""
    accuracy, _ = class_accuracy
    assert accuracy["guided"] >= CLASS_BAR, accuracy


TEXT_BAR = 0.95  # the course's goal: at the best guidance scale, ≥ 95% of seen-pair samples have shape and colour right
TEXT_HELD_OUT_BAR = 0.80  # ... and ≥ 80% of samples for colour×shape pairs never seen in training


def _caption_adherence(sample_fn, evaluator, info) -> dict[str, float]:
    """Shape-and-colour ("both"), colour and position accuracy on 300 fresh seen-pair test captions (caption seed 11,
    sampling seed 2024 in sample_fn; the recipes measured 500 other captions with seed 1234), their number ("n"), and
    the recipe's recorded shape-and-colour accuracy ("recorded")."""
    from diffusion_course.data.captions import evaluation_prompts

    prompts, attrs = evaluation_prompts(300, held_out=False, seed=11)
    read = evaluator.read(sample_fn(prompts))
    return {"both": joint_accuracy(read, attrs), "recorded": info["meta"]["quality"]["accuracy"]["shape_and_colour"],
            "n": len(prompts), **attribute_accuracy(read, {k: attrs[k] for k in ("colour", "position")})}


@pytest.fixture(scope="module")
def text_sampler():
    """(captions → images from the shipped pixel text model at the recipe's guidance scale, sampling seed 2024; its info)."""
    from diffusion_course.recipes.configs import TEXT_GUIDANCE, TEXT_UNET

    model, info = load_text_model("text_unet", "text_encoder", expect=TEXT_UNET)
    model = _channels_last(model)
    tokenize = model.conditioner.tokenize
    return (lambda prompts: generate(
        model, dc.NoiseSchedule.from_kind(*UNCOND_SCHEDULE), len(prompts), seed=2024, device=torch.device("cpu"),
        prediction=info["meta"]["prediction"], cond=tokenize(prompts, "cpu"), guidance=TEXT_GUIDANCE,
        null_cond=lambda b, dev: tokenize([""] * b, dev))), info


@pytest.fixture(scope="module")
def text_adherence(evaluator, text_sampler):
    """The pixel text model at the recipe's guidance scale, judged by `_caption_adherence`."""
    sample, info = text_sampler
    return _caption_adherence(sample, evaluator, info)


@pytest.mark.skipif("text_unet" not in MANIFEST, reason="the text-conditional checkpoint is not shipped yet")
def test_text_model_follows_shape_and_colour(text_adherence):
    both, recorded = text_adherence["both"], text_adherence["recorded"]
    assert both >= recorded - 0.07, (both, recorded)  # 300 vs 500 samples at ~92-98%: the difference has SE ≈ 1-2.2 points


@pytest.mark.skipif("text_unet" not in MANIFEST, reason="the text-conditional checkpoint is not shipped yet")
def test_text_model_listens_to_colour_words(text_adherence):
    """A text model can ignore its colour words: fine-tuned from the patched unconditional U-Net (a design not shipped),
    one drew the requested colour in 24.6% of samples (docs/benchmarks.md, "Text model: how it starts, and where
    position is lost"); fine-tuned with min-SNR weighting, in 74.8% (benchmarks/results/text_finetune_min_snr.json)."""
    assert text_adherence["colour"] >= 0.9, text_adherence  # recorded 99.6% on 500 other captions


@pytest.mark.skipif("text_unet" not in MANIFEST, reason="the text-conditional checkpoint is not shipped yet")
def test_text_model_places_shapes_where_the_caption_says(text_adherence):
    """A text model can lose its position words: with its text encoder trained jointly with the U-Net, position was
    right in about 11% of samples, chance being 1 in 9 (docs/benchmarks.md, "Text model: how it starts, and where
    position is lost"); fine-tuned with min-SNR weighting instead of the recipe's plain weighting, in 13.2%
    (benchmarks/results/text_finetune_min_snr.json). The shipped recipe freezes a pretrained encoder."""
    assert text_adherence["position"] >= 0.9, text_adherence  # recorded 100.0% on 500 other captions


HELD_OUT_CAPTIONS = 100  # enough to resolve both held-out bars: at the recorded shares their whole interval is above


@pytest.fixture(scope="module")
def text_held_out(evaluator, text_sampler):
    """(what the evaluator reads, the requested attributes) for `HELD_OUT_CAPTIONS` fresh held-out-pair captions
    (colour×shape pairs never in the training split; caption seed 11, sampling seed 2024)."""
    from diffusion_course.data.captions import evaluation_prompts

    sample, _ = text_sampler
    prompts, attrs = evaluation_prompts(HELD_OUT_CAPTIONS, held_out=True, seed=11)
    return evaluator.read(sample(prompts)), attrs


@pytest.mark.skipif("text_unet" not in MANIFEST, reason="the text-conditional checkpoint is not shipped yet")
def test_text_model_puts_colours_on_shapes_it_never_saw_them_on(text_held_out):
    """Held-out colour×shape pairs: the requested colour in at least 90% of samples, the whole 95% interval above 90%.
    Without the token targets in its encoder's pretraining, a frozen encoder's model drew it in 78.6%
    (docs/benchmarks.md, "Text model: how it starts, and where position is lost")."""
    read, attrs = text_held_out
    n = len(attrs["colour"])
    k = round(attribute_accuracy(read, {"colour": attrs["colour"]})["colour"] * n)
    assert against_bar(k, n, 0.9)[2] == "above", (k, n, against_bar(k, n, 0.9))


@pytest.mark.skipif("text_unet" not in MANIFEST, reason="the text-conditional checkpoint is not shipped yet")
def test_text_model_meets_the_held_out_bar(text_held_out):
    """The course's compositional goal: shape and colour both right on at least 80% of never-seen pairs, the whole 95%
    interval of the measured share above the bar (at the recorded 94.6%, 100 captions put it there)."""
    read, attrs = text_held_out
    n = len(attrs["shape"])
    k = round(joint_accuracy(read, attrs) * n)
    assert against_bar(k, n, TEXT_HELD_OUT_BAR)[2] == "above", (k, n, against_bar(k, n, TEXT_HELD_OUT_BAR))


@pytest.mark.skipif("text_unet" not in MANIFEST, reason="the text-conditional checkpoint is not shipped yet")
def test_text_model_meets_the_course_bar(text_adherence):
    """The course's goal on seen pairs: shape and colour both right on at least 95%, the whole 95% interval of the share
    measured on the 300 captions above the bar. The same recipe fine-tuned from `uncond` instead of the class model
    records 92.0% (benchmarks/results/text_finetune_9615_uncond.json)."""
    k, n = round(text_adherence["both"] * text_adherence["n"]), text_adherence["n"]
    assert against_bar(k, n, TEXT_BAR)[2] == "above", (text_adherence, against_bar(k, n, TEXT_BAR))


@pytest.mark.skipif("vae" not in MANIFEST, reason="the VAE checkpoint is not shipped yet")
def test_vae_reconstructs_what_the_evaluator_reads(evaluator):
    """Reconstructions of 500 fresh test images keep shape and colour (evaluator) and the recorded PSNR."""
    from diffusion_course.evaluation.distances import psnr
    from diffusion_course.recipes.configs import VAE_CONFIG

    vae, info = load_checkpoint("vae")
    assert vae.config.latent_channels == VAE_CONFIG.latent_channels
    assert vae.config.scaling_factor != 1.0, "the scale factor must be measured on data and stored"
    test = dc.make_shapes(500, split="test", seed=13)
    adapter = dc.LatentAdapter(vae)
    with torch.no_grad():
        recon = adapter.to_image(adapter.to_latent(test.images))
    recorded = info["meta"]["reconstruction"]
    assert psnr(recon, test.images) >= recorded["psnr_db"] - 1.0
    read = evaluator.read(recon)
    for name in ("shape", "colour"):
        accuracy = float((read[name] == test.attrs[name]).float().mean())
        assert accuracy >= min(0.95, recorded["accuracy"][name] - 0.06), (name, accuracy)  # 500 images: SE ≤ 2.3 points


@pytest.fixture(scope="module")
def shipped_vae():
    """The shipped VAE, loaded once for the latent tests (LatentAdapter and with_decoder leave it unchanged)."""
    return load_checkpoint("vae")[0]


@pytest.fixture(scope="module")
def latent_sampler(shipped_vae):
    """(captions → latents from the shipped latent model at its recipe's guidance scale, sampling seed 2024, not yet
    decoded, so that both decoders can draw the same latents; its info). Remembers the last call."""
    from diffusion_course.recipes.latent import load_latent_model

    model, info = load_latent_model(refiner=False)
    return _remembering_latent_sampler(model, shipped_vae), info


def _remembering_latent_sampler(model, vae):
    """captions → undecoded latents from a latent text model at the latent recipe's guidance scale, sampling seed 2024;
    remembers the last call, so that tests sharing captions share samples."""
    from diffusion_course.recipes.configs import LATENT_SCHEDULE
    from diffusion_course.recipes.latent import sample_latent_model

    schedule, adapter, last = dc.NoiseSchedule.from_kind(*LATENT_SCHEDULE), dc.LatentAdapter(vae), {}

    def sample(prompts):
        if last.get("prompts") != prompts:
            last.update(prompts=prompts, latents=sample_latent_model(model, schedule, adapter, prompts,
                                                                     torch.device("cpu"), seed=2024, decode=False))
        return last["latents"]

    return sample


@pytest.fixture(scope="module")
def latent_adherence(evaluator, latent_sampler, shipped_vae):
    """The latent model at its recipe's guidance scale, decoded by the shipped VAE, judged by `_caption_adherence`."""
    sample, info = latent_sampler
    adapter = dc.LatentAdapter(shipped_vae)
    return _caption_adherence(lambda prompts: adapter.to_image(sample(prompts)), evaluator, info)


@pytest.mark.skipif("latent_unet" not in MANIFEST, reason="the latent text-to-image checkpoint is not shipped yet")
def test_latent_model_is_as_good_as_its_recorded_measurement(latent_adherence):
    both, recorded, colour = (latent_adherence[k] for k in ("both", "recorded", "colour"))
    assert colour >= 0.9, colour  # recorded 99.8% on 500 other captions
    assert both >= recorded - 0.08, (both, recorded)  # 300 vs 500 samples at ~85%: the difference has SE ≈ 2.6 points


@pytest.mark.skipif(not {"latent_unet", "text_unet"} <= set(MANIFEST), reason="the latent and pixel text models are not both shipped")
def test_latent_model_adherence_stays_near_the_pixel_models(latent_adherence, text_adherence):
    """The course's goal for latent diffusion: adherence within 20% of the pixel text model's (≥ 0.8×), on the same 300
    captions, for the latent U-Net alone with the VAE's own decoder (the plainest latent model shipped; its recipes
    record 0.87× on 500 other captions)."""
    assert latent_adherence["both"] >= 0.8 * text_adherence["both"], (latent_adherence, text_adherence)


@pytest.fixture(scope="module")
def fine_tuned_vae(shipped_vae):
    """(the shipped VAE decoding with the shipped fine-tuned decoder, the decoder's info); its config must be the
    VAE's."""
    decoder, info = load_checkpoint("vae_decoder", expect=shipped_vae.config)
    return with_decoder(shipped_vae, decoder), info


@pytest.mark.skipif("vae_decoder" not in MANIFEST, reason="the fine-tuned decoder is not shipped yet")
def test_fine_tuned_decoder_keeps_the_latents_and_reconstructs_better(evaluator, fine_tuned_vae, shipped_vae):
    """On 500 fresh test images, decoding the shipped VAE's latents: PSNR above the shipped decoder's (a decoder trained
    on another encoder's latents would fall far below it) and shape at least the recorded accuracy minus 6 points (500
    images: SE ≤ 2.3 points)."""
    from diffusion_course.evaluation.distances import psnr

    vae_ft, info = fine_tuned_vae
    test = dc.make_shapes(500, split="test", seed=13)
    old, new = dc.LatentAdapter(shipped_vae), dc.LatentAdapter(vae_ft)
    with torch.no_grad():
        z = old.to_latent(test.images)
        recon_old, recon_new = old.to_image(z), new.to_image(z)
    assert psnr(recon_new, test.images) > psnr(recon_old, test.images), "the fine-tune made reconstructions worse"
    assert psnr(recon_new, test.images) >= info["meta"]["reconstruction"]["psnr_db"] - 1.0
    shape = float((evaluator.read(recon_new)["shape"] == test.attrs["shape"]).float().mean())
    assert shape >= info["meta"]["reconstruction"]["accuracy"]["shape"] - 0.06, shape


@pytest.mark.skipif(not {"vae_decoder", "latent_unet"} <= set(MANIFEST), reason="the fine-tuned decoder is not shipped yet")
def test_latent_model_under_the_fine_tuned_decoder(evaluator, latent_sampler, fine_tuned_vae, latent_adherence):
    """The same latents as `latent_adherence`, drawn by the fine-tuned decoder: as good as recorded, within sampling
    noise (the decoder recipe's record if it measured the shipped U-Net, else the U-Net's own record with the VAE's
    decoder), and not worse than the VAE's own decoder on these very latents (paired: the same samples)."""
    sample, latent_info = latent_sampler
    vae_ft, info = fine_tuned_vae
    adapter = dc.LatentAdapter(vae_ft)
    # the decoder recipe's record holds for the latent U-Net it measured (the sha256 it names); else the U-Net's own
    current = decoder_record_is_current(info["meta"])
    record = info["meta"]["latent_model_quality"] if current else latent_info["meta"]["quality"]
    adherence = _caption_adherence(lambda prompts: adapter.to_image(sample(prompts)), evaluator,
                                   {"meta": {"quality": record}})
    assert adherence["both"] >= adherence["recorded"] - 0.08, (adherence, latent_adherence)
    assert adherence["both"] >= latent_adherence["both"] - 0.02, (adherence, latent_adherence)  # same latents: paired
    assert adherence["colour"] >= 0.9, adherence


@pytest.fixture(scope="module")
def wide_vae(shipped_vae):
    """(the shipped VAE decoding with the widened decoder `vae_decoder_wide`, its info): the decoder's widths differ from
    the VAE's, its latent space may not."""
    decoder, info = load_checkpoint("vae_decoder_wide")
    return with_decoder(shipped_vae, decoder), info


@pytest.mark.skipif(not {"vae_decoder", "vae_decoder_wide"} <= set(MANIFEST), reason="the wider decoder is not shipped")
def test_wide_decoder_starts_where_the_narrow_one_ended_and_reconstructs_better(evaluator, wide_vae, fine_tuned_vae):
    """On 500 fresh test images (the shipped VAE's latents): the widened decoder keeps the shape at least as often as its
    recorded accuracy minus 6 points (SE ≤ 2.3), and its PSNR is above that of the narrow decoder it was grown from, on
    the same latents."""
    from diffusion_course.evaluation.distances import psnr
    from diffusion_course.recipes.configs import WIDE_DECODER_FACTOR

    (vae_w, info), (vae_ft, _) = wide_vae, fine_tuned_vae
    assert vae_w.decoder_config.block_out_channels == tuple(WIDE_DECODER_FACTOR * c for c in vae_ft.config.block_out_channels)
    test = dc.make_shapes(500, split="test", seed=13)
    with torch.no_grad():
        z = dc.LatentAdapter(vae_ft).to_latent(test.images)
        recon_w, recon_ft = dc.LatentAdapter(vae_w).to_image(z), dc.LatentAdapter(vae_ft).to_image(z)
    assert psnr(recon_w, test.images) > psnr(recon_ft, test.images), "the widened decoder reconstructs worse"
    shape = float((evaluator.read(recon_w)["shape"] == test.attrs["shape"]).float().mean())
    assert shape >= info["meta"]["reconstruction"]["accuracy"]["shape"] - 0.06, shape


@pytest.fixture(scope="module")
def refined_sampler(shipped_vae):
    """As `latent_sampler`, for the latent U-Net with its low-noise expert `latent_refiner` taking the steps below the
    switch (`recipes.latent.load_latent_model`); the expert's info."""
    from diffusion_course.recipes.latent import load_latent_model

    return _remembering_latent_sampler(load_latent_model(refiner=True)[0], shipped_vae), checkpoint_info("latent_refiner")


@pytest.fixture(scope="module")
def refined_adherence(request, evaluator, refined_sampler, shipped_vae, fine_tuned_vae):
    """The pair's samples for `_caption_adherence`'s captions, drawn by the shipped decoder ("shipped") and by the
    fine-tuned one ("fine-tuned"), each judged against the expert recipe's record for that decoder."""
    sample, info = refined_sampler
    out = {}
    for name, vae, key in (("shipped", shipped_vae, "quality"), ("fine-tuned", fine_tuned_vae[0], "quality_fine_tuned_decoder")):
        adapter = dc.LatentAdapter(vae)
        out[name] = _caption_adherence(lambda prompts, adapter=adapter: adapter.to_image(sample(prompts)), evaluator,
                                       {"meta": {"quality": info["meta"][key]}})
    if "vae_decoder_wide" in MANIFEST:  # the wider decoder's recipe recorded the pair under it
        vae_w, wide_info = request.getfixturevalue("wide_vae")
        adapter = dc.LatentAdapter(vae_w)
        out["wide"] = _caption_adherence(lambda prompts: adapter.to_image(sample(prompts)), evaluator,
                                         {"meta": {"quality": wide_info["meta"]["latent_model_quality"]}})
    return out


@pytest.mark.skipif(not {"latent_refiner", "vae_decoder"} <= set(MANIFEST), reason="the low-noise expert is not shipped yet")
def test_latent_refiner_is_as_good_as_its_recorded_measurement(refined_adherence):
    """The U-Net with its low-noise expert, under every shipped decoder, within sampling noise of the record its recipe
    wrote for that decoder. The best of them falls short of the course's 95% goal (docs/checkpoints.md, "Goals not
    met"); this holds each to what it records."""
    for name, adherence in refined_adherence.items():
        assert adherence["both"] >= adherence["recorded"] - 0.08, (name, adherence)  # 300 vs 500 samples: SE ≈ 3 points
        assert adherence["colour"] >= 0.9, (name, adherence)


REFINED_MIN_GAIN = -0.03


@pytest.mark.skipif(not {"latent_refiner", "vae_decoder"} <= set(MANIFEST), reason="the low-noise expert is not shipped yet")
def test_latent_refiner_does_not_lose_to_the_u_net_alone(evaluator, refined_adherence, latent_sampler, fine_tuned_vae):
    """Same captions and starting noise, the same decoder (the fine-tuned one): the pair differs from the U-Net alone only
    in the steps below the switch. On 300 captions the expert's gain is within sampling noise (its recipe measures the
    gain on its own 500), so this asks only that it costs no more than 3 points; a broken or mismatched expert (another
    schedule, another latent space) falls far below."""
    from diffusion_course.data.captions import evaluation_prompts

    sample, _ = latent_sampler
    prompts, attrs = evaluation_prompts(300, held_out=False, seed=11)  # `_caption_adherence`'s captions
    alone = joint_accuracy(evaluator.read(dc.LatentAdapter(fine_tuned_vae[0]).to_image(sample(prompts))), attrs)
    assert refined_adherence["fine-tuned"]["both"] >= alone + REFINED_MIN_GAIN, (refined_adherence, alone)


@pytest.mark.skipif(not {"latent_refiner", "vae_decoder", "vae_decoder_wide"} <= set(MANIFEST), reason="the wider decoder is not shipped")
def test_wide_decoder_does_not_lose_to_the_narrow_one_on_the_same_latents(refined_adherence):
    """The pair's latents for the 300 captions, drawn by both decoders (paired): the wider decoder's recipe records a
    gain over the narrow one on its 500 captions, so it must not lose here; a decoder for another latent space falls far
    below."""
    assert refined_adherence["wide"]["both"] >= refined_adherence["fine-tuned"]["both"] - 0.01, refined_adherence


@pytest.mark.skipif("latent_refiner" not in MANIFEST, reason="the low-noise expert is not shipped yet")
def test_load_latent_model_hands_the_steps_below_the_switch_to_the_expert():
    from diffusion_course.recipes.configs import (
        LATENT_UNET,
        REFINER_T_MAX,
        REFINER_UNET,
    )
    from diffusion_course.recipes.latent import load_latent_model

    pair, _ = load_latent_model(refiner=True)
    alone, _ = load_latent_model(refiner=False)
    assert isinstance(pair.net, dc.SwitchAtTimestep) and pair.net.t_switch == REFINER_T_MAX
    assert pair.net.low.config == REFINER_UNET and pair.net.high.config == LATENT_UNET  # the grown expert below
    assert isinstance(alone.net, dc.UNet)
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    cond = pair.conditioner.tokenize(["a large red star", "a small blue moon"], "cpu")
    with torch.no_grad():
        for t, same in ((REFINER_T_MAX + 200.0, True), (REFINER_T_MAX - 200.0, False)):
            a, b = pair(x, torch.full((2,), t), cond), alone(x, torch.full((2,), t), cond)
            assert torch.equal(a, b) == same, t  # above the switch: the U-Net itself; below: the expert
