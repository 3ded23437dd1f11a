"""Recipes for latent diffusion: the course's VAE and its mini Stable Diffusion (notebook 08).

    python -m diffusion_course.train vae      # VAE, 32×32×3 → 8×8×4, scale factor measured on data
    python -m diffusion_course.train latent   # text-conditional U-Net on VAE latents + its own text encoder
    python -m diffusion_course.train vae_decoder  # the VAE's decoder fine-tuned, its encoder (the latents) frozen
    python -m diffusion_course.train latent_refiner  # a low-noise expert: the latent U-Net fine-tuned on t < 300 only

Same conventions as `recipes.py`: fixed seeds, quality measured at the end, safetensors + JSON.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import replace

import torch

from .checkpoints import checkpoint_location, load_checkpoint, load_text_model, read_manifest, round_to_float16
from .experts import SwitchAtTimestep
from .evaluation import caption_quality, caption_quality_record, evaluate_samples, joint_accuracy
from .generation import generate
from .latent import LatentAdapter, compute_scaling_factor, encode_latents, with_scaling_factor
from .prompts import ENCODER_PRETRAIN_STEPS, caption_batches, evaluation_prompts, text_conditioner
from .runtime import seed_everything
from .schedules import NoiseSchedule
from .shapes import make_shapes
from .text import TextConditionedModel
from .train import RunOptions, TrainConfig, train_diffusion
from .unet import UNetConfig, UNet, count_parameters, grow
from .vae import LDM_KL_WEIGHT, VAE, VAEConfig, train_vae
from .vae_decoder import VAEDecoder, decoder_of, finetune_decoder, widen_decoder, with_decoder

VAE_CONFIG = VAEConfig(block_out_channels=(16, 32, 64), latent_channels=4)  # f = 4: 32×32×3 → 8×8×4
VAE_STEPS, VAE_BATCH, VAE_LR, VAE_KL_WEIGHT = 2000, 64, 1e-3, LDM_KL_WEIGHT
LATENT_SCHEDULE = ("cosine", 1000)
# Chosen by measured speed (notebook 08; training steps at batch 64 timed against the pixel text U-Net of that time, the
# patched one, in one run): that U-Net ran at 16×16 (patch size 2), so a latent U-Net as wide as its two lower levels,
# (64, 128), trained only ~1.8× faster. Widths (32, 64) with self- and cross-attention at 8×8 and 4×4 and in the middle:
# 2.7–2.9×. At 8×8 the many small operations cost nearly as much as the pixel U-Net's larger ones, so attention sits at
# 4×4 only and the middle block has none: about 4× (notebook 08: 3.9×; benchmarks/latent_vs_pixel: 4.1×). Against
# today's pixel text model (notebook 04's U-Net at 32×32, since 2026-11-29): 5.8–7.1× training, 6.4× sampling (two days).
LATENT_UNET = UNetConfig(in_channels=4, out_channels=4, image_size=8, channels=(32, 64), attention_levels=(1,),
                         mid_attention=False, context_dim=64)
# The course's first latent U-Net (shipped until the one above replaced it): attention at 8×8, 4×4 and in the middle. The
# recorded runs of benchmarks/latent_init and benchmarks/gpu_session used it.
FIRST_LATENT_UNET = replace(LATENT_UNET, attention_levels=(0, 1), mid_attention=True)
# 13,164 steps × 512 = 6.74M images, 71 minutes on the 2-core CPU. Shape-and-colour adherence on the 500 seen-pair
# captions: 85.2% (83.0% on held-out pairs); its curve is `quality_during_training` in its JSON. The run before it,
# 8,776 steps (two thirds as long, its learning rate decayed sooner), reached 82.8% (80.6%); the one before that, 4,388
# steps, 71.8%. Both are in the git history of weights/latent_unet.json (commits 2283e3f and e779024).
LATENT_TRAIN = TrainConfig(steps=13164, batch_size=512, lr=1e-3, warmup=200, prediction="v", weighting="min_snr",
                           cond_drop=0.15, sample_every=2000)
LATENT_GUIDANCE = 3.0
# The decoder fine-tune (vae_decoder.py): starts from the shipped VAE and trains its decoder only. A step is a decoder
# pass (the posterior is computed once): 4,000 steps × 128 took 35 minutes on the 2-core CPU (247 images/s).
# Its checkpoint holds the decoding half only (0.85 MB in float16): the shipped weights stay under their 25 MB budget.
DECODER_STEPS, DECODER_BATCH, DECODER_LR, DECODER_WARMUP, DECODER_EVAL_EVERY = 4000, 128, 1e-3, 200, 1000
# The wider decoder: `vae_decoder` widened 2× (every width and group count; 4× the parameters, 2.7× the time per step)
# by vae_decoder.widen_decoder, which starts it as an exact copy, then fine-tuned on at half the learning rate. More
# steps of the narrow fine-tune no longer helped (600 more at 3e-4: 95.1% → 95.1% of shapes kept), nor did an L1 loss
# (93.8%) or an image-gradient term (92.6%): its width, 16 channels at 32×32, was the limit left.
WIDE_DECODER_FACTOR, WIDE_DECODER_STEPS, WIDE_DECODER_LR, WIDE_DECODER_EVAL_EVERY = 2, 2000, 5e-4, 500
# Its second cycle (`--continue-from` the first cycle's checkpoint): 2,000 more steps, a fresh warm-up and cosine at
# 3e-4, batches from a new stream (seed + 1). Over the first cycle (2026-12-04, on the 2-core CPU): test reconstructions
# 35.7 → 36.5 dB, shapes kept 97.3% → 98.4%, FD / floor 12.6 → 9.2; the pair's seen-pair adherence 94.6% → 95.6% on the
# recipe's 500 captions, 93.6% → 94.4% on 500 others (seed 77); 93.2% on 4,500 samples from caption and noise seeds
# never used to choose anything (benchmarks/latent_levers), below issue 6's 95%.
WIDE_DECODER_MORE_STEPS, WIDE_DECODER_MORE_LR, WIDE_DECODER_MORE_WARMUP = 2000, 3e-4, 100
# The low-noise expert (experts.py; eDiff-I's expert denoisers, SDXL's refiner): the shipped latent U-Net, grown
# (REFINER_UNET below), fine-tuned on timesteps t < 300 only (σ < 0.52 on the cosine schedule), where the U-Net was found
# to lose the corners of squares (notebook 08), without loss weighting (min-SNR all but silences those steps). Sampling
# hands it every step below the switch. The shipped run (5,400 steps × 512, 79 minutes on the 2-core CPU) raised
# seen-pair shape-and-colour adherence under the fine-tuned decoder from 88.4% (the U-Net alone) to 91.8% on the recipe's
# 500 captions (held-out pairs 85.2% → 90.0%; FD / floor 6.9 → 7.8); its curve: 90.8%, 91.4%, 91.8% at steps 1,800,
# 3,600 and 5,400. The expert it replaced, a plain copy of the U-Net trained 3,600 steps the same way, reached 90.6% and
# 88.6% (benchmarks/results/latent_refiner_copy_3600.json). One run each.
REFINER_T_MAX = 300
# The expert's own U-Net: the latent U-Net grown (unet.grow: every new layer starts at zero, so the expert starts as an
# exact copy) with what the pixel text model has and the latent U-Net was built without, for speed: self- and
# cross-attention at 8×8 as well as 4×4, each pixel's position in its attention tokens, and the pooled caption in the
# time embedding. The blocks at 8×8 draw the corners the probe found lost; without these they learn the caption only
# through the 4×4 level below them. A training step costs ~25% more; the expert runs below the switch only.
REFINER_UNET = replace(LATENT_UNET, attention_levels=(0, 1), attention_position=True, context_pooling=True)
REFINER_TRAIN = replace(LATENT_TRAIN, steps=5400, lr=3e-4, warmup=100, weighting="none", sample_every=1800,
                        t_max=REFINER_T_MAX)
LATENT_PHRASE_DROP = 0.25  # as the pixel text model: each optional phrase left out of 1 caption in 4
TRAIN_IMAGES = 50_000  # shapes train split images every generative recipe trains on (seed 0; recipes.py's too)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [-1, 1] (peak-to-peak 2)."""
    mse = float((a.double() - b.double()).pow(2).mean())
    return 10 * math.log10(4 / mse) if mse > 0 else math.inf


@torch.no_grad()
def reconstruction_report(vae: VAE, n: int = 1000, device=None) -> dict:
    """PSNR, FD / floor and evaluator accuracy of reconstructions of n test images."""
    test = make_shapes(n, split="test", seed=0)
    adapter = LatentAdapter(vae)
    recon = torch.cat([adapter.to_image(adapter.to_latent(c.to(device))).cpu() for c in test.images.split(250)])
    evaluator, _ = load_checkpoint("evaluator", device=device)
    targets = {k: test.attrs[k] for k in ("shape", "colour", "size", "position")}
    rep = evaluate_samples(recon, evaluator, targets=targets, split="test")
    return {"psnr_db": psnr(recon, test.images), "fd_ratio": rep.fd_ratio, "fd": rep.fd, "fd_floor": rep.fd_floor,
            "accuracy": rep.accuracy, "recognised": rep.recognised}


def train_vae_recipe(device, options: RunOptions = RunOptions(), seed: int = 0, config: VAEConfig = VAE_CONFIG):
    """Train the VAE, then measure its latent scale factor and reconstruction quality.

    options: steps, batch_size, and minutes (a time budget: the step count is chosen by timing a throwaway copy
    first, so the run itself is exactly the `--steps N` run its JSON's `reproduce` names)."""
    g = seed_everything(seed)
    if options.latent_channels is not None:
        config = replace(config, latent_channels=options.latent_channels)
    batch = VAE_BATCH if options.batch_size is None else options.batch_size
    images = make_shapes(TRAIN_IMAGES, split="train", seed=0).images
    on_device = images.to(device)  # batches are drawn where the VAE is (indices still come from the CPU generator `g`)
    vae = VAE(config).to(device)
    steps = VAE_STEPS if options.steps is None else options.steps
    if options.budget_seconds is not None:
        steps, per_step = vae_steps_for_budget(vae, on_device, batch, options.budget_seconds)
        print(f"time budget {options.minutes:.1f} min at {per_step * 1000:.1f} ms/step: {steps} steps", flush=True)
    t0 = time.perf_counter()
    history = train_vae(vae, on_device, steps=steps, batch_size=batch, lr=VAE_LR, kl_weight=VAE_KL_WEIGHT, generator=g)
    seconds = time.perf_counter() - t0
    del on_device
    round_to_float16(vae)  # shipped in float16 (the 25 MB budget): measure what ships
    scale = compute_scaling_factor(vae, images[:5000].to(device))
    vae.config = with_scaling_factor(vae.config, scale)
    report = reconstruction_report(vae, device=device)
    print(f"VAE: scale factor {scale:.4f}, {report}")
    meta = {"steps": steps, "batch_size": batch, "lr": VAE_LR, "kl_weight": VAE_KL_WEIGHT,
            "seconds": round(seconds, 1), "images_per_second": round(steps * batch / seconds, 1),
            "parameters": count_parameters(vae), "final_reconstruction_mse": sum(history["reconstruction"][-100:]) / len(history["reconstruction"][-100:]),
            "scaling_factor_from": "5000 training images, posterior means", "reconstruction": report,
            "stored_as": "float16"}
    return {vae_name(config.latent_channels): vae}, meta


def vae_name(latent_channels: int) -> str:
    """The checkpoint name the vae recipe saves under: "vae" for VAE_CONFIG's channels (the VAE every latent model uses),
    "vae8" etc. for the channel trade-off's other VAEs (`--latent-channels 8`), so they never overwrite it."""
    return "vae" if latent_channels == VAE_CONFIG.latent_channels else f"vae{latent_channels}"


def vae_steps_for_budget(vae: VAE, images: torch.Tensor, batch_size: int, budget_seconds: float,
                         warm: int = 10, timed: int = 40) -> tuple[int, float]:
    """(steps that fit `budget_seconds`, seconds per step), timed on a throwaway copy of `vae` with its own generator."""
    if budget_seconds <= 0:
        raise ValueError(f"budget_seconds must be positive, got {budget_seconds}")
    probe, g = copy.deepcopy(vae), torch.Generator().manual_seed(12345)
    train_vae(probe, images, steps=warm, batch_size=batch_size, lr=VAE_LR, generator=g, show_progress=False)
    t0 = time.perf_counter()
    train_vae(probe, images, steps=timed, batch_size=batch_size, lr=VAE_LR, generator=g, show_progress=False)
    per_step = (time.perf_counter() - t0) / timed
    return max(1, int(budget_seconds / per_step)), per_step


class LatentQualityLog:
    """`on_sample` callback for the latent recipe: shape-and-colour adherence and FD / floor of 500 seen-pair test
    captions, with the training minutes (evaluation excluded) at which each was taken — the time-to-quality curve
    that notebook 08 compares with the pixel-space text model."""

    def __init__(self, schedule, adapter, device, n: int = 500, wrap=None):
        """wrap: maps the EMA model to the model to judge (the refiner recipe: the pair it forms with the base U-Net)."""
        self.schedule, self.adapter, self.device, self.rows = schedule, adapter, device, []
        self.wrap = wrap or (lambda model: model)
        self.prompts, self.attrs = evaluation_prompts(n, held_out=False)
        self.evaluator = load_checkpoint("evaluator", device=device)[0]
        self.start, self.eval_seconds = time.perf_counter(), 0.0

    def __call__(self, step: int, ema_model) -> None:
        t0 = time.perf_counter()
        train_minutes = (t0 - self.start - self.eval_seconds) / 60
        samples = sample_latent_model(self.wrap(ema_model), self.schedule, self.adapter, self.prompts, self.device)
        report = evaluate_samples(samples, self.evaluator)
        both = joint_accuracy(self.evaluator.read(samples), self.attrs)
        self.rows.append({"step": step, "train_minutes": round(train_minutes, 2), "shape_and_colour": both,
                          "fd_ratio": report.fd_ratio, "recall": report.recall})
        print(f"step {step} ({train_minutes:.1f} min): shape+colour {both:.1%}, {report}", flush=True)
        ema_model.train(False)
        self.eval_seconds += time.perf_counter() - t0


def sample_latent_model(model, schedule, adapter, prompts, device, guidance: float | None = LATENT_GUIDANCE,
                        seed: int = 1234, decode: bool = True, guidance_interval: tuple[float, float] | None = None):
    """Images for `prompts` from a text-conditional latent model: guided sampling in latent space, then the decoder
    (decode=False: the final latents themselves, e.g. to draw the same latents with two decoders). guidance=None:
    unguided; guidance_interval: `generate`'s (guide only at σ_lo < σ ≤ σ_hi)."""
    null = lambda b, dev: model.conditioner.tokenize([""] * b, dev)  # noqa: E731
    return generate(model, schedule, len(prompts), seed=seed, device=device, prediction=LATENT_TRAIN.prediction,
                    cond=model.conditioner.tokenize(prompts, device="cpu"), guidance=guidance, null_cond=null,
                    shape=adapter.latent_shape(), clip=None, guidance_interval=guidance_interval,
                    decode=adapter.to_image if decode else lambda z: z)  # None would clamp latents to [-1, 1]


def latent_quality(model, schedule, adapter, device) -> dict:
    """The latent recipe's quality record: `model` sampled on the 500 + 500 test captions of the pixel text recipe
    (`caption_quality`), decoded by `adapter`, at LATENT_GUIDANCE."""
    return latent_qualities(model, schedule, [adapter], device)[0]


def latent_qualities(model, schedule, adapters, device) -> list[dict]:
    """`latent_quality` under each of `adapters` (the same VAE latents drawn by different decoders) from one sampling:
    the latents of each caption set are sampled once, then decoded by every adapter."""
    if not adapters:
        raise ValueError("latent_qualities needs at least one adapter")
    if len({(a.latent_shape(), a.scaling_factor) for a in adapters}) > 1:
        raise ValueError("the adapters must share their latents (latent shape and scale factor): only decoders differ")
    evaluator = load_checkpoint("evaluator", device=device)[0]
    latents: dict[tuple[str, ...], torch.Tensor] = {}

    def sample(prompts, adapter):  # caption_quality asks for each caption set in turn, once per adapter
        key = tuple(prompts)
        if key not in latents:
            latents[key] = sample_latent_model(model, schedule, adapters[0], prompts, device, decode=False)
        return adapter.to_image(latents[key]).cpu()

    return [caption_quality_record(caption_quality(lambda prompts: sample(prompts, a), evaluator), LATENT_GUIDANCE)
            for a in adapters]


def _training_latents(device, name: str = "vae"):
    """(the VAE `name`, the training images, their scaled latents on the CPU, seconds spent encoding them): what the
    latent recipes train on, each training image encoded once (posterior means). `name`: a shipped VAE ("vae") or a
    path to one a vae run wrote elsewhere ("runs/vae8/vae8": `checkpoint_location`)."""
    ckpt, directory = checkpoint_location(name)
    vae, info = load_checkpoint(ckpt, device=device, directory=directory)
    if info["kind"] != "vae":
        raise ValueError(f"{name!r} is a {info['kind']} checkpoint, not a VAE")
    data = make_shapes(TRAIN_IMAGES, split="train", seed=0)
    t0 = time.perf_counter()
    latents = (encode_latents(vae, data.images) * vae.config.scaling_factor).cpu()
    return vae, data, latents, time.perf_counter() - t0


def _sha256_of(ref: str) -> str:
    """The manifest's sha256 of the weights of the checkpoint `ref` names (`checkpoint_location`)."""
    name, directory = checkpoint_location(ref)
    return read_manifest(directory)[name]["sha256"]


def latent_unet_config(vae_config: VAEConfig) -> UNetConfig:
    """LATENT_UNET with its input and output channels set to `vae_config`'s latent channels (4 for the shipped VAE)."""
    c = vae_config.latent_channels
    return replace(LATENT_UNET, in_channels=c, out_channels=c)


def train_latent(device, options: RunOptions = RunOptions(), seed: int = 0):
    """The mini Stable Diffusion: a text-conditional U-Net on the shipped VAE's latents, with its own text encoder."""
    seed_everything(seed)
    cfg = options.apply(LATENT_TRAIN, seed)
    vae_checkpoint = options.vae or "vae"
    vae, data, latents, encode_seconds = _training_latents(device, vae_checkpoint)
    adapter = LatentAdapter(vae)
    conditioner, encoder_start = text_conditioner(data.attrs, ENCODER_PRETRAIN_STEPS if options.pretrain_encoder else 0,
                                                  options.frozen_encoder, LATENT_PHRASE_DROP, options.token_targets)
    model = TextConditionedModel(UNet(latent_unet_config(vae.config)), conditioner).to(device)
    schedule = NoiseSchedule.from_kind(*LATENT_SCHEDULE)
    log = LatentQualityLog(schedule, adapter, device) if cfg.sample_every else None
    t0 = time.perf_counter()
    batches = caption_batches(latents, data.attrs, conditioner, cfg.batch_size, LATENT_PHRASE_DROP)
    result = train_diffusion(model, schedule, batches, cfg, drop_condition=model.drop, on_sample=log,
                             budget_seconds=options.budget_seconds)
    cfg = replace(cfg, steps=result.steps)  # what a time budget chose
    seconds = time.perf_counter() - t0 - (log.eval_seconds if log else 0.0)
    ema = round_to_float16(result.ema)  # measured as shipped (float16 storage)
    quality = latent_quality(ema, schedule, adapter, device)
    print(result.summary())
    meta = {"train": cfg.to_dict(), "schedule": list(LATENT_SCHEDULE), "train_images": TRAIN_IMAGES,
            "parameters": count_parameters(model), "seconds": round(seconds, 1),
            "encode_seconds": round(encode_seconds, 1), "images_per_second": round(cfg.steps * cfg.batch_size / seconds, 2),
            "final_loss": sum(result.losses[-200:]) / len(result.losses[-200:]), "prediction": cfg.prediction,
            "vae": vae_checkpoint, "vae_sha256": _sha256_of(vae_checkpoint), "stored_as": "float16", **encoder_start,
            "quality": quality}
    if log:
        meta["quality_during_training"] = log.rows
    return {"latent_unet": ema.net, "latent_text_encoder": ema.conditioner.encoder}, meta


def decoder_record_is_current(decoder_meta: dict) -> bool:
    """Whether a `vae_decoder` checkpoint's `latent_model_quality` was measured with the latent U-Net shipped now (its
    recipe records that U-Net's sha256; records without one predate the U-Net's last retraining, so they are not)."""
    return decoder_meta.get("latent_model_sha256") == read_manifest().get("latent_unet", {}).get("sha256")


def train_vae_decoder(device, options: RunOptions = RunOptions(), seed: int = 0):
    """The shipped VAE's decoder fine-tuned on the training images, its encoder frozen (vae_decoder.py): the latents and
    scale factor stay the ones the shipped latent U-Net was trained on. Judged on test reconstructions every
    DECODER_EVAL_EVERY steps and, at the end, under the shipped latent model (its 500 + 500 test captions)."""
    g = seed_everything(seed)
    vae, _ = load_checkpoint("vae", device=device)
    decoder, meta = _finetune_decoder_run(vae, device, options, g, DECODER_STEPS, DECODER_LR, DECODER_EVAL_EVERY,
                                          refiner=False)
    return {"vae_decoder": decoder}, {"init_from": "vae", **meta}


def train_vae_decoder_wide(device, options: RunOptions = RunOptions(), seed: int = 0):
    """The fine-tuned decoder `vae_decoder` widened WIDE_DECODER_FACTOR× by `widen_decoder` (it starts decoding exactly
    as `vae_decoder` does) and fine-tuned on, the encoder still frozen. Judged like `vae_decoder`, and at the end under
    the shipped latent model with its low-noise expert (the best combination: load_latent_model()).

    options.continue_from: the second cycle instead: the wide decoder a first run wrote there (runs/wide/vae_decoder_wide
    after `... vae_decoder_wide --out runs/wide`), fine-tuned WIDE_DECODER_MORE_STEPS more steps with a fresh warm-up and
    cosine at WIDE_DECODER_MORE_LR, its batches drawn from a new stream (seed + 1). The shipped `vae_decoder_wide` is
    that second cycle."""
    g = seed_everything(seed)
    vae, _ = load_checkpoint("vae", device=device)
    if options.continue_from is not None:
        name, directory = checkpoint_location(options.continue_from)
        first, info = load_checkpoint(name, device=device, directory=directory)
        if info["kind"] != "vae_decoder" or first.config.block_out_channels == vae.config.block_out_channels:
            raise ValueError(f"{options.continue_from!r} is not a widened VAE decoder (a vae_decoder_wide checkpoint)")
        vae = with_decoder(vae, first)
        decoder, meta = _finetune_decoder_run(vae, device, options, torch.Generator().manual_seed(seed + 1),
                                              WIDE_DECODER_MORE_STEPS, WIDE_DECODER_MORE_LR, WIDE_DECODER_EVAL_EVERY,
                                              refiner=True, warmup=WIDE_DECODER_MORE_WARMUP)
        return {"vae_decoder_wide": decoder}, {"init_from": f"{options.continue_from} (sha256 "
                                                            f"{_sha256_of(options.continue_from)}): the first cycle",
                                               "first_cycle": info["meta"], **meta}
    narrow, _ = load_checkpoint("vae_decoder", expect=vae.config, device=device)
    vae = with_decoder(vae, widen_decoder(narrow, WIDE_DECODER_FACTOR, seed=seed))
    decoder, meta = _finetune_decoder_run(vae, device, options, g, WIDE_DECODER_STEPS, WIDE_DECODER_LR,
                                          WIDE_DECODER_EVAL_EVERY, refiner=True)
    widened = (f"{WIDE_DECODER_FACTOR}x by vae_decoder.widen_decoder (new channels start unconnected to the old ones: "
               "an exact copy)")
    return {"vae_decoder_wide": decoder}, {"init_from": "vae_decoder", "widened": widened, **meta}


def _finetune_decoder_run(vae: VAE, device, options: RunOptions, g: torch.Generator, default_steps: int, lr: float,
                          default_every: int, refiner: bool, warmup: int = DECODER_WARMUP) -> tuple[VAEDecoder, dict]:
    """`finetune_decoder` on `vae` (in place) as the decoder recipes run it, judged on test reconstructions every
    `default_every` steps (or options.sample_every), then under the shipped latent model (with its low-noise expert if
    `refiner`), its samples drawn by the fine-tuned decoder. Returns (the decoder, rounded to float16 as it ships; the
    JSON entries of the run)."""
    steps = default_steps if options.steps is None else options.steps
    batch = DECODER_BATCH if options.batch_size is None else options.batch_size
    every = default_every if options.sample_every is None else options.sample_every
    images = make_shapes(TRAIN_IMAGES, split="train", seed=0).images
    curve, eval_seconds = [], [0.0]

    def judge(step: int) -> None:
        t = time.perf_counter()
        rep = reconstruction_report(vae, device=device)
        curve.append({"step": step, "psnr_db": round(rep["psnr_db"], 2), "shape": rep["accuracy"]["shape"],
                      "fd_ratio": round(rep["fd_ratio"], 2)})
        print(f"step {step}: {curve[-1]}", flush=True)
        eval_seconds[0] += time.perf_counter() - t

    warmup = min(warmup, steps - 1)  # short test runs keep at least one step after the warm-up
    t0 = time.perf_counter()
    losses = finetune_decoder(vae, images, steps=steps, batch_size=batch, lr=lr, warmup=warmup, generator=g,
                              on_eval=judge, eval_every=every)
    seconds = time.perf_counter() - t0 - eval_seconds[0]
    round_to_float16(vae)  # shipped in float16: measure what ships
    report = reconstruction_report(vae, device=device)
    print(f"decoder fine-tuned: {report}")
    decoder = decoder_of(vae)
    latent_model, _ = load_latent_model(refiner=refiner, device=device)
    manifest = read_manifest()
    meta = {"trained": "decoder and post_quant_conv; encoder and quant_conv frozen",
            "train": {"steps": steps, "batch_size": batch, "lr": lr, "warmup": warmup, "seed": g.initial_seed()},
            "seconds": round(seconds, 1), "images_per_second": round(steps * batch / seconds, 1),
            "parameters": count_parameters(decoder),
            "final_reconstruction_mse": sum(losses[-100:]) / len(losses[-100:]), "reconstruction": report,
            "reconstruction_during_training": curve, "stored_as": "float16",
            # the shipped latent model, judged as its recipe judges it, its samples drawn by this decoder; which
            # latent U-Net (and expert) that was (their weights' sha256), since later recipes may replace them
            "latent_model_sha256": manifest["latent_unet"]["sha256"]}
    if refiner:
        meta["latent_refiner_sha256"] = manifest.get("latent_refiner", {}).get("sha256")
    meta["latent_model_quality"] = latent_quality(latent_model, NoiseSchedule.from_kind(*LATENT_SCHEDULE),
                                                  LatentAdapter(vae), device)
    return decoder, meta


def load_latent_model(refiner: bool = True, device=None):
    """(the shipped mini Stable Diffusion's text-conditional model in eval mode, the latent U-Net's info dict): the latent
    U-Net and its text encoder, with the low-noise expert `latent_refiner` taking the steps below its switch when
    `refiner` (and when it is shipped)."""
    model, info = load_text_model("latent_unet", "latent_text_encoder", expect=LATENT_UNET, device=device)
    if refiner and "latent_refiner" in read_manifest():
        low, low_info = load_checkpoint("latent_refiner", expect=REFINER_UNET, device=device)
        model.net = SwitchAtTimestep(model.net, low.eval(), low_info["meta"]["t_switch"])
    return model.eval(), info


def train_latent_refiner(device, options: RunOptions = RunOptions(), seed: int = 0):
    """The low-noise expert: the shipped latent U-Net fine-tuned on timesteps t < REFINER_T_MAX only, its text encoder
    (the shipped `latent_text_encoder`) frozen and shared. Quality is measured with the pair (the shipped U-Net above
    the switch, this one below), decoded by the shipped VAE as the latent recipe measures, and by the fine-tuned decoder."""
    seed_everything(seed)
    cfg = options.apply(REFINER_TRAIN, seed)
    vae, data, latents, encode_seconds = _training_latents(device)
    adapter = LatentAdapter(vae)
    base, _ = load_latent_model(refiner=False, device=device)
    model = TextConditionedModel(grow(base.net, REFINER_UNET), copy.deepcopy(base.conditioner)).train()
    model.conditioner.encoder.requires_grad_(False)
    schedule = NoiseSchedule.from_kind(*LATENT_SCHEDULE)
    decoder, _ = load_checkpoint("vae_decoder", expect=vae.config, device=device)
    adapter_ft = LatentAdapter(with_decoder(vae, decoder))
    pair_of = lambda m: TextConditionedModel(SwitchAtTimestep(base.net, m.net, cfg.t_max), m.conditioner)  # noqa: E731
    # the curve is judged as the best combination is: the pair, drawn by the fine-tuned decoder
    log = LatentQualityLog(schedule, adapter_ft, device, wrap=pair_of) if cfg.sample_every else None
    t0 = time.perf_counter()
    batches = caption_batches(latents, data.attrs, model.conditioner, cfg.batch_size, LATENT_PHRASE_DROP)
    result = train_diffusion(model, schedule, batches, cfg, drop_condition=model.drop, on_sample=log,
                             budget_seconds=options.budget_seconds)
    cfg = replace(cfg, steps=result.steps)
    seconds = time.perf_counter() - t0 - (log.eval_seconds if log else 0.0)
    expert = round_to_float16(result.ema).net.eval()
    pair = pair_of(TextConditionedModel(expert, base.conditioner)).eval()
    quality, quality_ft = latent_qualities(pair, schedule, [adapter, adapter_ft], device)
    print(result.summary())
    meta = {"train": cfg.to_dict(), "schedule": list(LATENT_SCHEDULE), "train_images": TRAIN_IMAGES,
            "init_from": "latent_unet", "t_switch": cfg.t_max, "sigma_switch": float(schedule.sigma(cfg.t_max)),
            "parameters": count_parameters(expert), "seconds": round(seconds, 1), "encode_seconds": round(encode_seconds, 1),
            "images_per_second": round(cfg.steps * cfg.batch_size / seconds, 2),
            "final_loss": sum(result.losses[-200:]) / len(result.losses[-200:]), "prediction": cfg.prediction,
            "vae": "vae", "text_encoder": "latent_text_encoder (shared with latent_unet; frozen)", "stored_as": "float16",
            "quality": quality, "quality_fine_tuned_decoder": quality_ft,
            "sampled_as": f"latent_unet for t >= {cfg.t_max}, this U-Net below (experts.SwitchAtTimestep)",
            "grown": "from latent_unet by unet.grow (new layers start at zero)"}
    if log:
        meta["quality_during_training"] = log.rows
    return {"latent_refiner": expert}, meta
