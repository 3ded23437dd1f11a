"""Recipes for latent diffusion (lesson 08): the VAE, the mini Stable Diffusion, its decoders and its low-noise expert.

Same conventions as `pixel.py`: fixed seeds, quality measured at the end on the weights as they ship (float16),
safetensors + JSON. Every setting is in `configs.py`; docs/checkpoints.md lists the commands.
"""
from __future__ import annotations

import copy
import time
from dataclasses import replace

import torch

from ..core.experts import SwitchAtTimestep
from ..core.generation import generate
from ..core.schedules import NoiseSchedule
from ..data.captions import caption_batches, evaluation_prompts
from ..data.shapes import make_shapes
from ..evaluation.distances import psnr
from ..evaluation.reports import caption_quality, caption_quality_record, evaluate_samples, joint_accuracy
from ..networks.latent import LatentAdapter, compute_scaling_factor, encode_latents, with_scaling_factor
from ..networks.text import TextConditionedModel
from ..networks.unet import UNet, UNetConfig, count_parameters, grow
from ..networks.vae import VAE, VAEConfig
from ..networks.vae_decoder import VAEDecoder, decoder_of, widen_decoder, with_decoder
from ..runtime import seed_everything
from ..training.checkpoints import (
    checkpoint_location,
    load_checkpoint,
    load_text_model,
    read_manifest,
    round_to_float16,
)
from ..training.loop import train_diffusion
from ..training.text_encoder import ENCODER_PRETRAIN_STEPS, text_conditioner
from ..training.vae import finetune_decoder, train_vae
from .configs import (
    DECODER_BATCH,
    DECODER_EVAL_EVERY,
    DECODER_LR,
    DECODER_STEPS,
    DECODER_WARMUP,
    LATENT_GUIDANCE,
    LATENT_PHRASE_DROP,
    LATENT_SCHEDULE,
    LATENT_TRAIN,
    LATENT_UNET,
    REFINER_TRAIN,
    REFINER_UNET,
    TRAIN_IMAGES,
    VAE_BATCH,
    VAE_CONFIG,
    VAE_KL_WEIGHT,
    VAE_LR,
    VAE_STEPS,
    WIDE_DECODER_EVAL_EVERY,
    WIDE_DECODER_FACTOR,
    WIDE_DECODER_LR,
    WIDE_DECODER_MORE_LR,
    WIDE_DECODER_MORE_STEPS,
    WIDE_DECODER_MORE_WARMUP,
    WIDE_DECODER_STEPS,
)
from .options import RunOptions


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
    state = options.run_state(vae_name(config.latent_channels))
    if state is not None and state.resume:  # the step count the interrupted run chose, its budget included
        steps = state.extra()["steps"]
    elif options.budget_seconds is not None:
        steps, per_step = vae_steps_for_budget(vae, on_device, batch, options.budget_seconds)
        print(f"time budget {options.minutes:.1f} min at {per_step * 1000:.1f} ms/step: {steps} steps", flush=True)
    t0 = time.perf_counter()
    history = train_vae(vae, on_device, steps=steps, batch_size=batch, lr=VAE_LR, kl_weight=VAE_KL_WEIGHT, generator=g,
                        state=state)
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
    state = options.run_state("latent", quality_during_training=log.rows if log else None)
    t0 = time.perf_counter()
    batches = caption_batches(latents, data.attrs, conditioner, cfg.batch_size, LATENT_PHRASE_DROP)
    result = train_diffusion(model, schedule, batches, cfg, drop_condition=model.drop, on_sample=log,
                             budget_seconds=options.budget_seconds, state=state)
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


def train_vae_decoder(device, options: RunOptions = RunOptions(), seed: int = 0):
    """The shipped VAE's decoder fine-tuned on the training images, its encoder frozen (training.vae.finetune_decoder): the latents and
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
    state = options.run_state("vae_decoder_wide" if refiner else "vae_decoder", reconstruction_during_training=curve)
    losses = finetune_decoder(vae, images, steps=steps, batch_size=batch, lr=lr, warmup=warmup, generator=g,
                              on_eval=judge, eval_every=every, state=state)
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
    state = options.run_state("latent_refiner", quality_during_training=log.rows if log else None)
    t0 = time.perf_counter()
    batches = caption_batches(latents, data.attrs, model.conditioner, cfg.batch_size, LATENT_PHRASE_DROP)
    result = train_diffusion(model, schedule, batches, cfg, drop_condition=model.drop, on_sample=log,
                             budget_seconds=options.budget_seconds, state=state)
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
