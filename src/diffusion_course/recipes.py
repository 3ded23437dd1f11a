"""Recipes for every shipped checkpoint, and the command line that reproduces them.

    python -m diffusion_course.train evaluator   # attribute classifier used by all metrics
    python -m diffusion_course.train uncond      # unconditional pixel U-Net (notebook 04)
    python -m diffusion_course.train class       # class-conditional U-Net, fine-tuned from uncond (notebook 06)
    python -m diffusion_course.train text --pretrain-encoder --token-targets --frozen-encoder --init-from class  # (07)
    python -m diffusion_course.train vae         # the VAE of the latent models (notebook 08)
    python -m diffusion_course.train vae --latent-channels 8 --batch-size 256 --steps 4311 --out runs/vae8  # 8
                                                 # channels: benchmarks/results/vae8_4311.json (not shipped)
    python -m diffusion_course.train latent ... --vae runs/vae8/vae8 --out runs/latent8  # a latent U-Net on its latents
    python -m diffusion_course.train latent --pretrain-encoder --token-targets --frozen-encoder  # mini SD on latents (08)
    python -m diffusion_course.train vae_decoder  # the VAE's decoder fine-tuned under the latent model (08)
    python -m diffusion_course.train vae_decoder_wide --out runs/wide  # vae_decoder widened 2x and fine-tuned on, then
    python -m diffusion_course.train vae_decoder_wide --continue-from runs/wide/vae_decoder_wide  # its 2nd cycle (08)
    python -m diffusion_course.train latent_refiner  # the latent U-Net's low-noise expert (08)

Each recipe fixes its seed, data and settings, trains, measures quality with the metrics module and
writes safetensors + JSON (the command, the training time, the measured numbers) into the package's
weights/ folder (or --out), updating the manifest's sha256.

The class model fine-tunes `uncond`, and the shipped text model fine-tunes the class model (`--init-from class`; by
default the text recipe starts from `uncond` too): the same unpatched U-Net (`UNCOND_UNET`), plus the layers their
condition needs, each starting at zero (`--from-scratch` starts from random weights instead). From `uncond`, training
starts from exactly the unconditional model; from the class model, from its backbone without the label embedding, which
the text U-Net leaves behind. Started from the class model, whose backbone had learnt to draw the shape a condition asks
for, the text model drew the requested shape and colour in 97.8% of seen-pair samples, against 92.0% for the same 9,615
steps from `uncond` (one run each; benchmarks/results/text_finetune_9615_uncond.json; loading the class checkpoint draws
more from the global random generator, as recipes load (`initialising_from_global_rng`), so the encoder's pretraining and
the batch order differ too). The class model
adds a label embedding. The text model adds cross-attention at 16×16 and 8×8, with each pixel's position added to its
tokens there (`attention_position`), and the pooled caption added to the time embedding (`context_pooling`), and it
trains without min-SNR weighting: with it (benchmarks/results/ text_finetune_min_snr.json, one run, 3,495 steps against
3,839 for the same recipe without it, from the same 30-minute budget) the fine-tune drew shapes well but placed them at
chance (13%) and coloured them right in 75%. A plausible reading, not measured per noise level: min-SNR all but silences
the high-noise steps, where the caption's place and colour are not yet visible in the noisy image. Until 2026-11-29 the
text model was the patched `PIXEL_UNET` ((32, 64, 128) on 2×2 patches) from scratch (benchmarks/text_init measures those
recipes; notebook 07). The text encoder is first taught to read the captions' attributes (`--pretrain-encoder`), each
token keeping its own word (`--token-targets`), and then frozen (`--frozen-encoder`): trained jointly with the U-Net, it
erased the position words (benchmarks/text_init).

The shipped VAE was trained on a GPU with its recipe, a larger batch and the step count a time budget chose
(`--batch-size 256 --device cuda --steps N`; its JSON records its `reproduce` command); without those options the same
command is the 2-core CPU recipe (2,000 steps × 64). The unconditional, class and text models ship from the CPU recipes
themselves, at step counts since made the defaults: 11,793 and 9,615 steps × 64 for the unconditional and text models
(what a 55-minute budget chose, and 1.5 times the 6,410 a 65-minute budget chose for the text model from `uncond`),
19,448 for the class model (four times the 4,862 a 22-minute budget chose). So do the latent model (13,164 steps × 512,
71 minutes on 2 cores) and `vae_decoder`, the VAE's decoder fine-tuned with its encoder frozen (4,000 steps × 128),
which draws the same latent model's samples, `vae_decoder_wide`, that decoder widened 2× by `widen_decoder` and
fine-tuned on (2,000 steps × 128, 52 minutes), then given a second cycle of 2,000 steps (`--continue-from` the first;
50 minutes; re-run end to end on 2026-12-04, giving the shipped weights bit for bit), and `latent_refiner`, the latent U-Net's low-noise expert (the U-Net grown by
`unet.grow` and fine-tuned on timesteps t < 300 only, 5,400 steps × 512, which sampling hands every step below t = 300; the
plain copy it replaced on 2026-12-03 is recorded in benchmarks/results/latent_refiner_copy_3600.json). The models they replaced since 2026-12-02, from the same recipes with fewer
steps, are recorded in benchmarks/results/class_finetune_22min.json, benchmarks/results/class_finetune_9724.json and
benchmarks/results/class_finetune_14586.json (class model, 4,862, 9,724 and 14,586 steps; the last replaced on
2026-12-03) and benchmarks/results/text_finetune_30min.json, benchmarks/results/text_finetune_6410.json and
benchmarks/results/text_finetune_9615_uncond.json (text model from `uncond`, 3,839, 6,410 and 9,615 steps; the last two
replaced on 2026-12-03)."""
from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from .checkpoints import (WEIGHTS_DIR, config_differences, initialising_from_global_rng, kind_of, load_checkpoint,
                          round_to_float16, save_checkpoint)
from .evaluation import caption_quality, caption_quality_record, evaluate_samples, quality_record
from .evaluator import Evaluator, EvaluatorConfig
from .generation import generate
from .guidance import label_null
from .prompts import ENCODER_PRETRAIN_STEPS, caption_batches, text_conditioner
from .recipes_latent import (TRAIN_IMAGES, train_latent, train_latent_refiner, train_vae_decoder, train_vae_decoder_wide,
                             train_vae_recipe)
from .runtime import get_device, progress, seed_everything
from .schedules import NoiseSchedule
from .shapes import SHAPES, held_out_mask, make_shapes
from .text import TextConditionedModel, TextConditioner, TextEncoderConfig
from .train import RunOptions, TrainConfig, batches_from_tensors, train_diffusion
from .unet import UNet, UNetConfig, count_parameters

# ---------------------------------------------------------------- settings of the shipped models
EVALUATOR_TRAIN_IMAGES, EVALUATOR_EPOCHS = 50_000, 4
EVALUATOR_DATA_SEED = 1  # the evaluator's training images: test-split distribution, a seed nothing else uses
UNCOND_SCHEDULE = ("cosine", 1000)
UNCOND_UNET = UNetConfig(channels=(16, 32, 64))
UNCOND_TRAIN = TrainConfig(steps=11793, batch_size=64, lr=2e-3, warmup=200, prediction="v", weighting="min_snr",
                           sample_every=2000)  # sample_every: judge 1,000 samples every 2,000 steps (time to quality)
PIXEL_UNET = UNetConfig(channels=(32, 64, 128), patch_size=2)
CLASS_UNET = replace(UNCOND_UNET, num_classes=len(SHAPES))  # label id len(SHAPES) = "no label"
CLASS_TRAIN = replace(UNCOND_TRAIN, steps=19448, lr=1e-3, warmup=100, cond_drop=0.15, sample_every=0)
CLASS_GUIDANCE = 3.0  # guidance scale used for the recipe's own quality check (notebook 06 sweeps it)
TEXT_ENCODER = TextEncoderConfig()
# notebook 04's U-Net + cross-attention at 16×16 and 8×8 (each pixel's position added to its query) + the pooled caption
TEXT_UNET = replace(UNCOND_UNET, context_dim=TEXT_ENCODER.dim, attention_levels=(1, 2), attention_position=True,
                    context_pooling=True)
PATCHED_TEXT_UNET = replace(PIXEL_UNET, context_dim=TEXT_ENCODER.dim, attention_levels=(1, 2))  # text U-Net until 2026-11-29
TEXT_PHRASE_DROP = 0.25  # each optional phrase (size, colour, position, background) left out of 1 caption in 4
# weighting "none": fine-tuned with min-SNR weighting, the text model placed shapes at chance (one run; notebook 07).
# Presumably because min-SNR all but silences the high-noise steps, where the noisy image does not yet show place or colour
TEXT_TRAIN = replace(UNCOND_TRAIN, steps=9615, lr=1e-3, warmup=100, cond_drop=0.15, sample_every=0, weighting="none")
TEXT_GUIDANCE = 3.0


def machine(device: torch.device | str = "cpu") -> str:
    """What a run trained on, for its JSON: the device it used (not merely the best one present), torch and Python."""
    device = torch.device(device)
    if device.type == "cuda":
        dev = torch.cuda.get_device_name(device)
    elif device.type == "cpu":
        dev = f"CPU ({torch.get_num_threads()} threads)"
    else:
        dev = device.type.upper()
    return f"{dev}, torch {torch.__version__}, Python {platform.python_version()}"


def train_evaluator(device, epochs: int = EVALUATOR_EPOCHS, n_train: int = EVALUATOR_TRAIN_IMAGES, seed: int = 0):
    """Train the attribute classifier; returns (model, accuracy on the test split).

    The evaluator is a measuring instrument, so it must read every colour×shape pair, including the
    held-out pairs the generative models never see: it trains on the test-split *distribution* (all
    pairs) rendered with its own seed (EVALUATOR_DATA_SEED), disjoint from the test images it is scored on.
    """
    g = seed_everything(seed)
    data = make_shapes(n_train, split="test", seed=EVALUATOR_DATA_SEED)
    targets = {k: v for k, v in data.attrs.items() if k != "rotation"}
    model = Evaluator(EvaluatorConfig()).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * (n_train // 256)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    model.train()
    for _ in progress(range(steps), desc="evaluator"):
        idx = torch.randint(0, n_train, (256,), generator=g)
        logits = model(data.images[idx].to(device))
        loss = sum(F.cross_entropy(logits[k], targets[k][idx].to(device)) for k in logits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval(), evaluator_accuracy(model)


def evaluator_accuracy(model: Evaluator, n: int = 10_000) -> dict:
    """Per-attribute accuracy on the test split, overall and on the held-out colour×shape pairs."""
    test = make_shapes(n, split="test", seed=0)
    read = model.read(test.images)
    held = held_out_mask(test.attrs)
    out = {}
    for name in model.config.heads:
        correct = read[name] == test.attrs[name]
        out[name] = float(correct.float().mean())
        out[f"{name}_held_out_pairs"] = float(correct[held].float().mean())
    return out


#: The U-Net settings that decide the shape of every weight a checkpoint has: a conditional U-Net can start from an
#: unconditional one's weights only where these agree (conditioning adds layers, it does not reshape the old ones).
BACKBONE_FIELDS = ("in_channels", "out_channels", "image_size", "patch_size", "channels", "blocks_per_level",
                   "attention_head_dim", "mid_attention", "time_dim", "groups")


#: Layers a checkpoint may have that a network starting from it can leave behind: the class model's label embedding,
#: which a text U-Net starting from the class model has no use for (its condition arrives through cross-attention).
CONDITIONING_LAYERS = ("label.",)


def init_from(net: torch.nn.Module, name: str) -> tuple[list[str], list[str]]:
    """Load a shipped checkpoint's weights into `net` where names match; returns (the parameters left as initialised,
    the checkpoint's conditioning parameters (`CONDITIONING_LAYERS`) left behind). Refuses, naming --from-scratch, a
    U-Net whose backbone (`BACKBONE_FIELDS`) differs from the checkpoint's, and any other weight `net` lacks."""
    source, _ = load_checkpoint(name)
    backbone = lambda config: {k: config.to_dict()[k] for k in BACKBONE_FIELDS}  # noqa: E731
    differ = config_differences(backbone(net.config), backbone(source.config))
    if differ:
        raise ValueError(f"this recipe's U-Net cannot start from {name}'s weights (train it --from-scratch): "
                         + "; ".join(differ))
    state, own = source.state_dict(), net.state_dict().keys()
    dropped = [k for k in state if k.startswith(CONDITIONING_LAYERS) and k not in own]
    missing, unexpected = net.load_state_dict({k: v for k, v in state.items() if k not in dropped}, strict=False)
    if unexpected:
        raise RuntimeError(f"{name} has weights this network lacks: {unexpected[:5]}")
    return missing, dropped


class QualityLog:
    """An `on_sample` callback: judges 1,000 samples of the EMA model during training, and keeps the training
    time (evaluation excluded) at which each measurement was taken — the time-to-quality curve."""

    def __init__(self, schedule: NoiseSchedule, device, prediction: str, sample_fn=None):
        self.schedule, self.device, self.rows = schedule, device, []
        self.sample_fn = sample_fn or (lambda net: generate(net, schedule, 1000, seed=1234, device=device,
                                                            prediction=prediction))
        self.evaluator = load_checkpoint("evaluator", device=device)[0]
        self.start, self.eval_seconds = time.perf_counter(), 0.0

    def __call__(self, step: int, ema_net) -> None:
        t0 = time.perf_counter()
        train_minutes = (t0 - self.start - self.eval_seconds) / 60
        report = evaluate_samples(self.sample_fn(ema_net), self.evaluator)
        self.rows.append({"step": step, "train_minutes": round(train_minutes, 2), "fd_ratio": report.fd_ratio,
                          "recognised": report.recognised, "precision": report.precision, "recall": report.recall})
        print(f"step {step} ({train_minutes:.1f} min): {report}", flush=True)
        ema_net.train(False)
        self.eval_seconds += time.perf_counter() - t0


#: U-Nets, text encoders and the VAE are shipped in float16 (half the bytes; the shipped set must stay near 25 MB). `_fit`
#: rounds the trained weights to float16 precision before any quality measurement, so what is measured is what ships.
STORED_AS = {"unet": torch.float16, "text_encoder": torch.float16, "vae": torch.float16, "vae_decoder": torch.float16}


def _start(options: RunOptions, net: torch.nn.Module) -> dict:
    """Where a conditional recipe's weights start: a shipped checkpoint's (`options.init_from`, "uncond" unless told),
    loaded into `net`, or random ones (--from-scratch). Returns the JSON entries that say so."""
    if options.from_scratch:
        return {"init_from": None, "new_parameters": "all"}
    missing, dropped = init_from(net, options.init_from)
    return {"init_from": options.init_from, "new_parameters": missing,
            **({"left_behind": dropped} if dropped else {})}


def _fit(net, cfg: TrainConfig, next_batch, drop=None, on_sample=None, budget_seconds=None) -> tuple:
    schedule = NoiseSchedule.from_kind(*UNCOND_SCHEDULE)
    t0 = time.perf_counter()
    result = train_diffusion(net, schedule, next_batch, cfg, drop_condition=drop, on_sample=on_sample,
                             budget_seconds=budget_seconds)
    cfg = replace(cfg, steps=result.steps)  # what a time budget chose
    eval_seconds = getattr(on_sample, "eval_seconds", 0.0)
    seconds = time.perf_counter() - t0 - eval_seconds
    print(result.summary())
    meta = {"train": cfg.to_dict(), "schedule": list(UNCOND_SCHEDULE), "train_images": TRAIN_IMAGES,
            "parameters": count_parameters(net), "seconds": round(seconds, 1),
            "images_per_second": round(cfg.steps * cfg.batch_size / seconds, 2),
            "final_loss": sum(result.losses[-200:]) / len(result.losses[-200:]), "prediction": cfg.prediction}
    if on_sample is not None:
        meta["quality_during_training"] = on_sample.rows
    meta["stored_as"] = "float16"  # rounded here, before the recipe measures quality
    return round_to_float16(result.ema), schedule, meta


def train_uncond(device, options: RunOptions = RunOptions(), seed: int = 0):
    """The unconditional U-Net; returns ({name: model}, meta)."""
    seed_everything(seed)
    cfg = options.apply(UNCOND_TRAIN, seed)
    images = make_shapes(TRAIN_IMAGES, split="train", seed=0).images
    log = QualityLog(NoiseSchedule.from_kind(*UNCOND_SCHEDULE), device, cfg.prediction) if cfg.sample_every else None
    ema, schedule, meta = _fit(UNet(UNCOND_UNET).to(device), cfg, batches_from_tensors(images, None, cfg.batch_size),
                               on_sample=log, budget_seconds=options.budget_seconds)
    samples = generate(ema, schedule, 1000, seed=1234, device=device, prediction=cfg.prediction)
    report = evaluate_samples(samples, load_checkpoint("evaluator", device=device)[0])
    print(report)
    return {"uncond": ema}, {**meta, "quality": quality_record(report)}


def train_class(device, options: RunOptions = RunOptions(), seed: int = 0):
    """The class-conditional U-Net (label = shape): `uncond`'s weights with a label embedding that starts at zero (so
    training starts from exactly the unconditional model), or random weights with `options.from_scratch`; returns
    ({name: model}, meta)."""
    seed_everything(seed)
    cfg = options.apply(CLASS_TRAIN, seed)
    data = make_shapes(TRAIN_IMAGES, split="train", seed=0)
    net = UNet(CLASS_UNET).to(device)
    start = _start(options, net)
    null = label_null(CLASS_UNET.num_classes)
    drop = lambda cond, mask: torch.where(mask, null(cond.shape[0], cond.device), cond)  # noqa: E731
    ema, schedule, meta = _fit(net, cfg, batches_from_tensors(data.images, data.labels, cfg.batch_size), drop,
                               budget_seconds=options.budget_seconds)
    samples, labels = sample_class_model(ema, schedule, 1000, device, cfg.prediction, seed=1234)
    report = evaluate_samples(samples, load_checkpoint("evaluator", device=device)[0], targets={"shape": labels})
    print(report)
    return {"class": ema}, {**meta, **start, "quality": quality_record(report, {"guidance": CLASS_GUIDANCE})}


def sample_class_model(model, schedule: NoiseSchedule, n: int, device, prediction: str,
                       guidance: float | None = CLASS_GUIDANCE, seed: int = 1234,
                       **options) -> tuple[torch.Tensor, torch.Tensor]:
    """(n samples, their labels) from a class-conditional model, the labels cycling through the shapes (0, 1, ..., 7,
    0, ...) so every class gets an equal share; guidance=None samples the conditional model unguided. The one sampling
    loop behind the class recipe's quality check, the shipped-model tests and benchmarks/class_guidance; `options`
    (sampler, steps, shape, ...) go to `generate`, whose defaults are the course's evaluation sampler."""
    labels = torch.arange(n) % len(SHAPES)
    samples = generate(model, schedule, n, seed=seed, device=device, prediction=prediction, cond=labels,
                       guidance=guidance, null_cond=label_null(model.config.num_classes), **options)
    return samples, labels


def text_model(options: RunOptions = RunOptions(), attrs=None) -> tuple[TextConditionedModel, dict]:
    """The text recipe's model before training (U-Net, then text encoder, drawing from the global seed in that order),
    and the JSON entries that say how it starts. `options.pretrain_encoder` first teaches the encoder to read the
    attributes of partial captions of `attrs` (the training split's); `options.frozen_encoder` then switches its
    gradients off."""
    unet = UNet(TEXT_UNET)
    start = _start(options, unet)
    conditioner, encoder_start = text_conditioner(attrs, ENCODER_PRETRAIN_STEPS if options.pretrain_encoder else 0,
                                                  options.frozen_encoder, TEXT_PHRASE_DROP, options.token_targets)
    start.update(encoder_start)
    return TextConditionedModel(unet, conditioner), start


def train_text(device, options: RunOptions = RunOptions(), seed: int = 0):
    """The text-conditional U-Net with its text encoder (trained jointly, unless `options` freeze or pretrain it); the
    U-Net starts from `uncond`'s weights (or the class model's: `options.init_from`), its new layers at zero (random
    weights with `options.from_scratch`). The shipped model: fine-tuned from the class model, its encoder pretrained (with
    token targets) and frozen."""
    seed_everything(seed)
    cfg = options.apply(TEXT_TRAIN, seed)
    data = make_shapes(TRAIN_IMAGES, split="train", seed=0)
    model, start = text_model(options, data.attrs)
    model = model.to(device)
    batches = caption_batches(data.images, data.attrs, model.conditioner, cfg.batch_size, TEXT_PHRASE_DROP)
    ema, schedule, meta = _fit(model, cfg, batches, model.drop, budget_seconds=options.budget_seconds)
    evaluator = load_checkpoint("evaluator", device=device)[0]
    null = lambda b, dev: ema.conditioner.tokenize([""] * b, dev)  # noqa: E731
    reports = caption_quality(lambda prompts: generate(  # 500 seen-pair and 500 held-out-pair test captions
        ema, schedule, len(prompts), seed=1234, device=device, prediction=cfg.prediction,
        cond=ema.conditioner.tokenize(prompts, device="cpu"), guidance=TEXT_GUIDANCE, null_cond=null), evaluator)
    return ({"text_unet": ema.net, "text_encoder": ema.conditioner.encoder},
            {**meta, **start, "quality": caption_quality_record(reports, TEXT_GUIDANCE)})


RECIPES = {"uncond": train_uncond, "class": train_class, "text": train_text, "vae": train_vae_recipe,
           "latent": train_latent, "vae_decoder": train_vae_decoder, "latent_refiner": train_latent_refiner,
           "vae_decoder_wide": train_vae_decoder_wide}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m diffusion_course.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", choices=["evaluator", *RECIPES])
    p.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    p.add_argument("--batch-size", type=int, default=None, help="override the batch size")
    p.add_argument("--minutes", type=float, default=None,
                   help="train for about this many minutes instead of a step count (the JSON records the steps chosen)")
    p.add_argument("--sample-every", type=int, default=None, help="judge samples every this many steps (0 = never)")
    p.add_argument("--from-scratch", action="store_true", help="class/text: random initial weights, not uncond's")
    p.add_argument("--init-from", choices=["uncond", "class"], default="uncond",
                   help="text: the shipped U-Net it starts from (default uncond; class leaves its label embedding behind)")
    p.add_argument("--frozen-encoder", action="store_true",
                   help="text, latent: keep the text encoder where it starts, training only the U-Net (the shipped text model)")
    p.add_argument("--pretrain-encoder", action="store_true",
                   help="text, latent: first teach the text encoder to read the captions' attributes (the shipped text model)")
    p.add_argument("--token-targets", action="store_true",
                   help="with --pretrain-encoder: each token's feature must also keep its own word (the shipped text model)")
    p.add_argument("--latent-channels", type=int, default=None,
                   help="vae: channels of the 8x8 latents (default 4, the shipped VAE's)")
    p.add_argument("--vae", default=None,
                   help="latent: the VAE whose latents it trains on: a shipped one (default vae) or the path of one a vae run wrote "
                        "elsewhere, e.g. runs/vae8/vae8")
    p.add_argument("--continue-from", default=None,
                   help="vae_decoder_wide: its second cycle, fine-tuning on from the wide decoder a first run wrote "
                        "(e.g. runs/wide/vae_decoder_wide: the shipped decoder's command)")
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="folder for the checkpoint (default: shipped weights)")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    args = p.parse_args(argv)
    device = get_device(args.device)
    command = "python -m diffusion_course.train " + " ".join(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()
    options = RunOptions(steps=args.steps, batch_size=args.batch_size, sample_every=args.sample_every,
                         minutes=args.minutes, from_scratch=args.from_scratch,
                         frozen_encoder=args.frozen_encoder, pretrain_encoder=args.pretrain_encoder,
                         token_targets=args.token_targets, init_from=args.init_from,
                         latent_channels=args.latent_channels, vae=args.vae, continue_from=args.continue_from)
    if args.from_scratch and args.recipe not in ("class", "text"):
        p.error("--from-scratch applies to the class and text recipes (the others start from random weights)")
    if args.init_from != "uncond" and args.recipe != "text":
        p.error("--init-from applies to the text recipe (the class recipe starts from uncond)")
    if args.init_from != "uncond" and args.from_scratch:
        p.error("--init-from and --from-scratch contradict each other: pick one start")
    for flag in ("frozen_encoder", "pretrain_encoder"):
        if getattr(args, flag) and args.recipe not in ("text", "latent"):
            p.error(f"--{flag.replace('_', '-')} applies to the text and latent recipes (the ones with a text encoder)")
    if args.token_targets and not args.pretrain_encoder:
        p.error("--token-targets changes the text encoder's pretraining in the text and latent recipes: it needs "
                "--pretrain-encoder")
    if args.latent_channels is not None and args.recipe != "vae":
        p.error("--latent-channels applies to the vae recipe (the latent recipes read theirs from the shipped VAE)")
    if args.latent_channels is not None and args.latent_channels < 1:
        p.error(f"--latent-channels must be a positive count, got {args.latent_channels}")
    if args.vae is not None and args.recipe != "latent":
        p.error("--vae applies to the latent recipe (the decoder and refiner recipes follow the shipped latent U-Net)")
    if args.continue_from is not None and args.recipe != "vae_decoder_wide":
        p.error("--continue-from applies to the vae_decoder_wide recipe (its second cycle)")
    if args.recipe == "evaluator" and (args.minutes or args.batch_size or args.sample_every is not None):
        p.error("the evaluator recipe takes --steps only")
    if args.recipe in ("vae_decoder", "vae_decoder_wide") and args.minutes is not None:
        p.error(f"the {args.recipe} recipe takes --steps, --batch-size and --sample-every (no time budget)")
    if args.recipe == "vae" and args.sample_every is not None:
        p.error("the vae recipe takes --steps, --batch-size and --minutes (it draws no samples while training)")
    if args.recipe == "evaluator":
        model, acc = train_evaluator(device, epochs=args.steps or EVALUATOR_EPOCHS)
        models, meta = {"evaluator": model}, {"test_accuracy": acc}
        print("test accuracy:", {k: round(v, 4) for k, v in acc.items()})
    else:
        with initialising_from_global_rng():  # loads draw from the global RNG as when the shipped weights were trained
            models, meta = RECIPES[args.recipe](device, options)
    if args.minutes is not None:  # the step count the budget chose reproduces the run
        meta["reproduce"] = _with_steps(command, meta.get("train", meta)["steps"])  # the VAE records steps at the top
    meta.update({"command": command, "total_seconds": round(time.perf_counter() - t0, 1), "machine": machine(device),
                 "date": time.strftime("%Y-%m-%d")})
    for name, model in models.items():
        kind = kind_of(model)  # from the model's class, whatever its name (the vae recipe's vae8 is a vae)
        dtype = STORED_AS.get(kind) if meta.get("stored_as") == "float16" else None
        entry = save_checkpoint(name, model, kind, model.config.to_dict(), meta, directory=args.out, dtype=dtype)
        print(f"saved {args.out / name}.safetensors ({entry['bytes'] / 1e6:.2f} MB, sha256 {entry['sha256'][:12]}…)")


def _with_steps(command: str, steps: int) -> str:
    """`command` with its --minutes (and any --steps) replaced by `--steps STEPS`."""
    out, words = [], iter(command.split())
    for w in words:
        if w in ("--minutes", "--steps"):
            next(words, None)
        elif not w.startswith(("--minutes=", "--steps=")):
            out.append(w)
    return " ".join(out) + f" --steps {steps}"


if __name__ == "__main__":
    main()
