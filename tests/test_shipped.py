"""The shipped checkpoints: every manifest entry loads (hash and config checked) and meets its quality bar.

The bars are the course's promises (issue 3): the evaluator reads shape, colour, size and position with at least
99% accuracy on held-out images; the unconditional model's 1,000 samples should sit within 3x of the real-vs-real
Fréchet floor with at least 90% recognised. The shipped unconditional model does not reach that bar yet (CPU-only
training); its test is a strict xfail, so the day a retrained checkpoint meets the bar, the suite says so, and a
second test keeps the checkpoint at least as good as the quality recorded in its JSON. The conditional models
(issue 5) follow the same pattern: re-measured against their recorded quality, with the issue's bar a strict xfail
where the shipped model does not reach it.
"""

import pytest
import torch

import diffusion_course as dc
from diffusion_course.core.generation import generate
from diffusion_course.evaluation.reports import (
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
SHIPPED_BAR = {"fd_ratio": 3.0, "recognised": 0.90}


# Recipes whose default step count was set from a run given --steps (the latent U-Net's 13,164-step run, the class
# model's 19,448-step run and the text model's 9,615-step run, whose commands name the step count the recipe then adopted).
RECIPE_DEFAULT_STEPS = {"latent": LATENT_TRAIN.steps, "class": CLASS_TRAIN.steps, "text": TEXT_TRAIN.steps}


@pytest.fixture(scope="module")
def evaluator():
    return load_checkpoint("evaluator")[0]


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_every_shipped_checkpoint_loads_and_matches_its_manifest(name):
    entry = MANIFEST[name]
    assert sha256(WEIGHTS_DIR / f"{name}.safetensors") == entry["sha256"]
    model, info = load_checkpoint(name)
    assert not model.training
    # each checkpoint names the one command that reproduces it, and that command's recipe exists
    command = info["meta"]["command"].split()
    assert command[:3] == ["python", "-m", "diffusion_course.train"] and command[3] in {"evaluator", *RECIPES}
    if "--steps" in command:  # allowed only where the recipe has since adopted that step count as its default
        steps = int(command[command.index("--steps") + 1])
        assert steps == RECIPE_DEFAULT_STEPS.get(command[3]), \
            "a shipped checkpoint must come from the full recipe, not a shortened test run"
    reproduce = info["meta"].get("reproduce")
    if reproduce is not None:  # the command to rerun: a budget (--minutes), if any, replaced by the step count it chose; no --out
        words = reproduce.split()
        assert words[:4] == command[:4] and "--minutes" not in words and "--out" not in words
        assert int(words[words.index("--steps") + 1]) == info["meta"].get("train", info["meta"])["steps"]  # the VAE: top level


def test_shipped_weights_stay_small():
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.iterdir())
    assert total < 25e6, f"shipped weights take {total / 1e6:.1f} MB (budget: 25 MB)"


def test_evaluator_reads_held_out_images_at_99_percent(evaluator):
    test = dc.make_shapes(2000, split="test", seed=7)
    read = evaluator.read(test.images)
    for name in ("shape", "colour", "size", "position"):
        accuracy = float((read[name] == test.attrs[name]).float().mean())
        assert accuracy >= 0.99, f"{name}: {accuracy:.3f}"


@pytest.fixture(scope="module")
def uncond_report(evaluator):
    model, info = load_checkpoint("uncond", expect=UNCOND_UNET)
    schedule = dc.NoiseSchedule.from_kind(*UNCOND_SCHEDULE)
    samples = generate(model, schedule, 1000, seed=2024, device=torch.device("cpu"), prediction=info["meta"]["prediction"])
    return evaluate_samples(samples, evaluator), info["meta"]


def test_uncond_model_is_as_good_as_its_recorded_measurement(uncond_report):
    """Re-measured on fresh noise (seed 2024, the recipe used 1234): within sampling noise of what was recorded."""
    report, meta = uncond_report
    assert report.n == 1000
    assert report.fd_ratio <= 1.25 * meta["quality"]["fd_ratio"], report
    assert report.precision >= meta["quality"]["precision"] - 0.05, report


@pytest.mark.xfail(strict=True, reason="not met: the shipped CPU recipe (11,793 steps, 56 CPU-minutes; FD 19.2x floor, 58% "
                                       "recognised) stops well short of the bar; see BENCHMARKS.md 'Time to quality'")
def test_uncond_model_meets_the_issue_quality_bar(uncond_report):
    report, _ = uncond_report
    assert report.fd_ratio <= SHIPPED_BAR["fd_ratio"], report
    assert report.recognised >= SHIPPED_BAR["recognised"], report


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


CLASS_BAR = 0.98  # issue 5: at its best guidance scale, ≥ 98% of samples have the requested class


@pytest.fixture(scope="module")
def class_accuracy(evaluator):
    """Shape accuracy of 400 fresh class-conditional samples (seed 2024; the recipe used 1234): guided, unguided."""
    from diffusion_course.recipes.configs import CLASS_GUIDANCE, CLASS_UNET
    from diffusion_course.recipes.pixel import sample_class_model

    model, info = load_checkpoint("class", expect=CLASS_UNET)
    schedule = dc.NoiseSchedule.from_kind(*UNCOND_SCHEDULE)
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
    # guidance at least halves the share of wrong shapes (a fixed gain in points would not fit near 100%); measured on
    # these 400 samples: 7.75% wrong without guidance, 0.75% at w = 3 (the 14,586-step model before it: 7.25% and 2.75%;
    # the 9,724-step model: 11.0% and 3.5%; the 4,862-step model in notebook 06's sweep, 600 samples: 25.3% and 5.7%)
    assert 1 - accuracy["guided"] < 0.5 * (1 - accuracy["unguided"]), accuracy


@pytest.mark.skipif("class" not in MANIFEST, reason="the class-conditional checkpoint is not shipped yet")
def test_class_model_meets_the_issue_bar(class_accuracy):
    """At the recipe's w = 3 (at most as good as the best w, so a pass here is a pass at the best w): the shipped model
    (19,448 steps) draws the requested shape in 99.25% of these 400 samples (95% interval about 97.8-99.7%); the
    14,586-step model before it drew 97.25% and this test was a strict xfail. BENCHMARKS.md 'Class model: accuracy near
    the bar' measures it on 2,000 samples per w."""
    accuracy, _ = class_accuracy
    assert accuracy["guided"] >= CLASS_BAR, accuracy


TEXT_BAR = 0.95  # issue 5: at the best guidance scale, ≥ 95% of seen-pair samples have the requested shape and colour
TEXT_HELD_OUT_BAR = 0.80  # issue 5: and ≥ 80% of samples for colour×shape pairs never seen in training


def _caption_adherence(sample_fn, evaluator, info) -> dict[str, float]:
    """Shape-and-colour ("both"), colour and position accuracy on 300 fresh seen-pair test captions (caption seed 11,
    sampling seed 2024 in sample_fn; the recipes measured 500 other captions with seed 1234), and the recipe's recorded
    shape-and-colour accuracy ("recorded")."""
    from diffusion_course.data.captions import evaluation_prompts

    prompts, attrs = evaluation_prompts(300, held_out=False, seed=11)
    read = evaluator.read(sample_fn(prompts))
    return {"both": joint_accuracy(read, attrs), "recorded": info["meta"]["quality"]["accuracy"]["shape_and_colour"],
            **attribute_accuracy(read, {k: attrs[k] for k in ("colour", "position")})}


@pytest.fixture(scope="module")
def text_sampler():
    """(captions → images from the shipped pixel text model at the recipe's guidance scale, sampling seed 2024; its info)."""
    from diffusion_course.recipes.configs import TEXT_GUIDANCE, TEXT_UNET

    model, info = load_text_model("text_unet", "text_encoder", expect=TEXT_UNET)
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
    assert both > 4 / 64, both  # well above chance (1 in 64 for shape × colour)


@pytest.mark.skipif("text_unet" not in MANIFEST, reason="the text-conditional checkpoint is not shipped yet")
def test_text_model_listens_to_colour_words(text_adherence):
    """Fine-tuned from the earlier, patched `uncond`, a text model drew the requested colour in only about 25% of samples
    (BENCHMARKS.md, "Text model: how it starts, and where position is lost"); fine-tuned from the current one with min-SNR
    weighting, in 74.8% (benchmarks/results/text_finetune_min_snr.json)."""
    assert text_adherence["colour"] >= 0.9, text_adherence  # recorded 99.6% on 500 other captions


@pytest.mark.skipif("text_unet" not in MANIFEST, reason="the text-conditional checkpoint is not shipped yet")
def test_text_model_places_shapes_where_the_caption_says(text_adherence):
    """The failure the pretrained, frozen text encoder fixed: trained jointly with the U-Net, an encoder erased the
    position words and position was right in 11% of samples, chance being 1 in 9 (BENCHMARKS.md, "Text model: how it
    starts, and where position is lost"); the fine-tune of `uncond` with min-SNR weighting, the failure the recipe's
    plain weighting fixed, placed shapes right in 13.2% (benchmarks/results/text_finetune_min_snr.json)."""
    assert text_adherence["position"] >= 0.9, text_adherence  # recorded 100.0% on 500 other captions


@pytest.fixture(scope="module")
def text_held_out(evaluator, text_sampler):
    """(what the evaluator reads, the requested attributes) for 200 fresh held-out-pair captions (colour×shape pairs
    never in the training split; caption seed 11, sampling seed 2024)."""
    from diffusion_course.data.captions import evaluation_prompts

    sample, _ = text_sampler
    prompts, attrs = evaluation_prompts(200, held_out=True, seed=11)
    return evaluator.read(sample(prompts)), attrs


@pytest.mark.skipif("text_unet" not in MANIFEST, reason="the text-conditional checkpoint is not shipped yet")
def test_text_model_puts_colours_on_shapes_it_never_saw_them_on(text_held_out):
    """Held-out colour×shape pairs: without the token targets in its encoder's pretraining, the frozen encoder's model drew
    the requested colour on a never-seen pair in 78.6% of samples (BENCHMARKS.md); the shipped one recorded 98.4%."""
    read, attrs = text_held_out
    colour = attribute_accuracy(read, {"colour": attrs["colour"]})["colour"]
    assert colour >= 0.9, colour


@pytest.mark.skipif("text_unet" not in MANIFEST, reason="the text-conditional checkpoint is not shipped yet")
def test_text_model_meets_the_held_out_bar(text_held_out):
    """Issue 5's compositional bar: shape and colour both right on at least 80% of never-seen pairs. The shipped model
    (the class model fine-tuned for 9,615 steps) recorded 94.6% on 500 other captions and scores 95.5% on these 200
    (2026-12-03). The same recipe from `uncond` recorded 87.6% and scored 81.5% here; its 6,410-step run recorded 78.8%,
    the 3,839-step one, 66.4%."""
    read, attrs = text_held_out
    both = joint_accuracy(read, attrs)
    assert both >= TEXT_HELD_OUT_BAR, both


@pytest.mark.skipif("text_unet" not in MANIFEST, reason="the text-conditional checkpoint is not shipped yet")
def test_text_model_meets_the_issue_bar(text_adherence):
    """Issue 5's bar on seen pairs: shape and colour both right on at least 95%. The shipped model, the class model
    fine-tuned for 9,615 steps, recorded 97.8% on 500 other captions and scores 98.7% on these 300 (2026-12-03); the
    same recipe from `uncond` (its record: benchmarks/results/text_finetune_9615_uncond.json) recorded 92.0% and failed
    this test (a strict xfail then)."""
    assert text_adherence["both"] >= TEXT_BAR, text_adherence


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


LATENT_BAR = 0.95  # issue 6: at the best guidance scale, ≥ 95% of seen-pair samples have the requested shape and colour


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
    assert both >= recorded - 0.08, (both, recorded)  # 300 vs 500 samples at ~80%: the difference has SE ≈ 3 points
    assert both > 0.5, both  # far above chance (1 in 64 for shape × colour)


@pytest.mark.skipif(not {"latent_unet", "text_unet"} <= set(MANIFEST), reason="the latent and pixel text models are not both shipped")
def test_latent_model_adherence_stays_near_the_pixel_models(latent_adherence, text_adherence):
    """Issue 6 asks for adherence within 20% of the pixel model (≥ 0.8×). On these 300 captions the shipped pair scored
    81.3% against 98.7% (0.82×, close to the bar; these fixtures, 2026-12-03); the recipes recorded 85.2% against 97.8% on
    500 others (0.87×). Against the pixel model fine-tuned from `uncond` instead of the class model: 0.88× here and 0.93×
    recorded (9,615 steps), 0.91× and 0.95× (6,410 steps), 0.97× and 1.03× (3,839 steps).
    Against the earlier, patched pixel text model (75.0% here, 75.2% recorded): 1.08× and 1.13×.
    Earlier latent models: 1.05× (the same U-Net after 8,776 steps), 0.88× (after 4,388 steps), 0.76× (attention at 8×8
    too, 2,194 steps on a GPU) and 0.50× (on the first, CPU-trained VAE)."""
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
    noise (the decoder recipe's record if it measured the shipped U-Net, else the U-Net's own record, 85.2% on 500
    other captions with the shipped decoder), and not worse than the shipped decoder on these very latents (87.0%
    against 81.3% on these 300; this fixture, 2026-11-29)."""
    sample, latent_info = latent_sampler
    vae_ft, info = fine_tuned_vae
    adapter = dc.LatentAdapter(vae_ft)
    # the decoder recipe's record holds for the latent U-Net it measured; after that U-Net's retraining, its own record
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
    recorded accuracy minus 6 points (SE ≤ 2.3), and its PSNR is above the narrow decoder's it was grown from, on the
    same latents (recorded on 1,000 other images: 33.9 dB narrow)."""
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
    switch (`recipes_latent.load_latent_model`); the expert's info."""
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
        out[name] = _caption_adherence(lambda prompts: adapter.to_image(sample(prompts)), evaluator,
                                       {"meta": {"quality": info["meta"][key]}})
    if "vae_decoder_wide" in MANIFEST:  # the wider decoder's recipe recorded the pair under it
        vae_w, wide_info = request.getfixturevalue("wide_vae")
        adapter = dc.LatentAdapter(vae_w)
        out["wide"] = _caption_adherence(lambda prompts: adapter.to_image(sample(prompts)), evaluator,
                                         {"meta": {"quality": wide_info["meta"]["latent_model_quality"]}})
    return out


@pytest.mark.skipif(not {"latent_refiner", "vae_decoder"} <= set(MANIFEST), reason="the low-noise expert is not shipped yet")
def test_latent_refiner_is_as_good_as_its_recorded_measurement(refined_adherence):
    for name, adherence in refined_adherence.items():
        assert adherence["both"] >= adherence["recorded"] - 0.08, (name, adherence)  # 300 vs 500 samples: SE ≈ 3 points
        assert adherence["colour"] >= 0.9, (name, adherence)


REFINED_MIN_GAIN = -0.03


@pytest.mark.skipif(not {"latent_refiner", "vae_decoder"} <= set(MANIFEST), reason="the low-noise expert is not shipped yet")
def test_latent_refiner_does_not_lose_to_the_u_net_alone(evaluator, refined_adherence, latent_sampler, fine_tuned_vae):
    """Same captions and starting noise, the same decoder (the fine-tuned one): the pair differs from the U-Net alone only
    in the steps below the switch. The expert gained 3.4 points on the recipe's 500 seen-pair captions (88.4% → 91.8%) but
    only 0.7 on these 300 (87.0% → 87.7%, 2026-12-03; its plain-copy predecessor: 86.7%), so this asks only that it does
    not cost more than 3 points; a broken or mismatched expert (another schedule, another latent space) falls far below."""
    from diffusion_course.data.captions import evaluation_prompts

    sample, _ = latent_sampler
    prompts, attrs = evaluation_prompts(300, held_out=False, seed=11)  # `_caption_adherence`'s captions
    alone = joint_accuracy(evaluator.read(dc.LatentAdapter(fine_tuned_vae[0]).to_image(sample(prompts))), attrs)
    assert refined_adherence["fine-tuned"]["both"] >= alone + REFINED_MIN_GAIN, (refined_adherence, alone)


@pytest.mark.skipif(not {"latent_refiner", "vae_decoder", "vae_decoder_wide"} <= set(MANIFEST), reason="the wider decoder is not shipped")
def test_wide_decoder_does_not_lose_to_the_narrow_one_on_the_same_latents(refined_adherence):
    """The pair's latents for the 300 captions, drawn by both decoders (paired): the wider one gained 3.8 points on the
    recipe's 500 captions (91.8% → 95.6%), so it must not lose here; a decoder for another latent space falls far below."""
    assert refined_adherence["wide"]["both"] >= refined_adherence["fine-tuned"]["both"] - 0.01, refined_adherence


@pytest.mark.skipif(not {"latent_refiner", "vae_decoder"} <= set(MANIFEST), reason="the low-noise expert is not shipped yet")
@pytest.mark.xfail(strict=True, reason="not met: the best shipped latent combination (the U-Net with its low-noise expert, "
                                       "drawn by the widened decoder vae_decoder_wide after its second cycle) gets shape and "
                                       "colour both right in 95.6% of the recipe's 500 seen-pair samples, the set it was "
                                       "chosen on, but 93.2% (92.4-93.9%) of 4,500 from 9 caption x noise seed sets never "
                                       "used to choose anything (benchmarks.latent_levers, 2026-12-04) and 90.7% of this "
                                       "test's 300; the squares are the U-Net's loss, in its last, low-noise steps (notebook 08)")
def test_latent_model_meets_the_issue_bar(refined_adherence):
    """Issue 6's bar, for the best combination the course ships (the widened decoder where it is shipped)."""
    best = refined_adherence["wide" if "wide" in refined_adherence else "fine-tuned"]
    assert best["both"] >= LATENT_BAR, refined_adherence


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
