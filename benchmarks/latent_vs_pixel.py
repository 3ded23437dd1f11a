"""Latent diffusion against pixel space: the shipped text-to-image models side by side (notebook 08).

    python -m benchmarks.latent_vs_pixel

Speed is measured here, in one run, alternating the two models so machine noise hits both alike: training
images/s (forward + backward + AdamW step, batch 64, medians of 8; the text encoder frozen where its recipe froze it) and sampling images/s (64 captions, DPM-Solver++(2M),
20 trailing steps, classifier-free guidance w = 3, the VAE decode included for the latent model; medians of 5). Quality
and training minutes are the ones the two recipes recorded in their checkpoints' JSON (500 seen-pair and 500
held-out-pair test captions each, w = 3). The rows for the fine-tuned decoder `vae_decoder` come from its recipe's
record while that record is of the shipped latent U-Net, and are measured here the same way otherwise. The rows for the
low-noise expert `latent_refiner` (the latent U-Net for t ≥ its switch, the expert below) come from its recipe's record;
its sampling speed is measured here too, alternating with the others. Writes "Latent vs pixel diffusion" in
docs/benchmarks.md.
"""
from __future__ import annotations

import copy
import re
import time

import torch

import diffusion_course as dc
from diffusion_course.core.generation import generate
from diffusion_course.data.captions import evaluation_prompts
from diffusion_course.networks.unet import config_changes
from diffusion_course.networks.vae_decoder import with_decoder
from diffusion_course.recipes.configs import (
    LATENT_SCHEDULE,
    LATENT_UNET,
    REFINER_UNET,
    TEXT_UNET,
    UNCOND_SCHEDULE,
)
from diffusion_course.recipes.latent import (
    latent_quality,
    load_latent_model,
    sample_latent_model,
)
from diffusion_course.recipes.records import (
    decoder_record_is_current,
    encoder_was_frozen,
)
from diffusion_course.training.checkpoints import (
    checkpoint_info,
    fine_tuned_from,
    load_checkpoint,
    load_text_model,
    minutes_compare,
    read_manifest,
    trained_on_cpu,
)

from .record import median, record

BATCH, TRAIN_RUNS, SAMPLE_RUNS, GUIDANCE = 64, 7, 5, 3.0


def _without_out(command: str) -> str:
    """`command` without its `--out DIR` (where a run wrote its checkpoint is not part of the recipe)."""
    return re.sub(r" --out \S+", "", command)


def load_models():
    pixel, pix_info = load_text_model("text_unet", "text_encoder", expect=TEXT_UNET)
    latent, lat_info = load_latent_model(refiner=False)
    vae, vae_info = load_checkpoint("vae")
    return pixel, pix_info, latent, lat_info, dc.LatentAdapter(vae), vae_info


def train_step_seconds(model, meta, shape, schedule, runs: int) -> list[float]:
    m = copy.deepcopy(model).train()
    m.conditioner.encoder.requires_grad_(not encoder_was_frozen(meta))  # a frozen text encoder has no backward pass
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-5)
    cond = m.conditioner.tokenize(["a large red star in the centre on a dark background"] * BATCH, "cpu")
    g = torch.Generator().manual_seed(0)
    times = []
    for _ in range(runs + 1):  # the first step warms up
        start = time.perf_counter()
        loss = dc.diffusion_loss(m, torch.randn(BATCH, *shape, generator=g), schedule, cond=cond, prediction="v")
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return times[1:]


def main() -> None:
    pixel, pix_info, latent, lat_info, adapter, vae_info = load_models()
    pixel_schedule = dc.NoiseSchedule.from_kind(*UNCOND_SCHEDULE)
    latent_schedule = dc.NoiseSchedule.from_kind(*LATENT_SCHEDULE)
    prompts, _ = evaluation_prompts(BATCH, held_out=False)
    null = lambda m: (lambda b, dev: m.conditioner.tokenize([""] * b, dev))  # noqa: E731

    def sample_pixel():
        generate(pixel, pixel_schedule, BATCH, seed=0, prediction="v", cond=pixel.conditioner.tokenize(prompts, "cpu"),
                 guidance=GUIDANCE, null_cond=null(pixel), batch=BATCH)

    def sample_latent(model=latent, decoding=adapter):
        sample_latent_model(model, latent_schedule, decoding, prompts, torch.device("cpu"), guidance=GUIDANCE, seed=0)

    has_expert = "latent_refiner" in read_manifest()
    pair = load_latent_model(refiner=True)[0] if has_expert else None
    ref_meta = checkpoint_info("latent_refiner")["meta"] if has_expert else None
    has_wide = has_expert and "vae_decoder_wide" in read_manifest()  # the wider decoder, recorded under the pair
    wide_meta = checkpoint_info("vae_decoder_wide")["meta"] if has_wide else None
    adapter_wide = dc.LatentAdapter(with_decoder(adapter.vae, load_checkpoint("vae_decoder_wide")[0])) if has_wide else None

    train = {"pixel": [], "latent": []}
    for _ in range(2):  # alternate: pixel, latent, pixel, latent
        train["pixel"] += train_step_seconds(pixel, pix_info["meta"], (3, 32, 32), pixel_schedule, TRAIN_RUNS // 2 + 1)
        train["latent"] += train_step_seconds(latent, lat_info["meta"], adapter.latent_shape(), latent_schedule,
                                              TRAIN_RUNS // 2 + 1)
    sample = {"pixel": [], "latent": [], "pair": [], "pair_wide": []}
    samplers = (("pixel", sample_pixel), ("latent", sample_latent)) + ((("pair", lambda: sample_latent(pair)),) if has_expert else ())
    samplers += (("pair_wide", lambda: sample_latent(pair, adapter_wide)),) if has_wide else ()
    with torch.no_grad():
        for _ in range(SAMPLE_RUNS):
            for name, fn in samplers:
                start = time.perf_counter()
                fn()
                sample[name].append(time.perf_counter() - start)
    ips = {k: {"train": BATCH / median(train[k]), "sample": BATCH / median(sample[k])} for k in train}
    q = {"pixel": pix_info["meta"]["quality"], "latent": lat_info["meta"]["quality"]}
    starts = fine_tuned_from(pix_info["meta"])  # the models it was fine-tuned from count too
    start_minutes = sum(meta["seconds"] for _, meta in starts) / 60
    minutes = {"pixel": start_minutes + pix_info["meta"]["seconds"] / 60,
               "latent": (vae_info["meta"]["seconds"] + lat_info["meta"]["encode_seconds"] + lat_info["meta"]["seconds"]) / 60}
    params = {"pixel": dc.count_parameters(pixel), "latent": dc.count_parameters(latent)}
    dec_meta = checkpoint_info("vae_decoder")["meta"] if "vae_decoder" in read_manifest() else None
    lines = ["| | pixel (`text_unet`) | latent (`latent_unet` + `vae`) | latent / pixel |", "|---|---:|---:|---:|"]

    def row(label, p, l, ratio, fmt="{:.1f}"):
        lines.append(f"| {label} | {fmt.format(p)} | {fmt.format(l)} | {ratio:.2f}× |")

    row("parameters (U-Net + text encoder), M", params["pixel"] / 1e6, params["latent"] / 1e6,
        params["latent"] / params["pixel"], "{:.2f}")
    row("training, images/s (median)", ips["pixel"]["train"], ips["latent"]["train"],
        ips["latent"]["train"] / ips["pixel"]["train"])
    row("sampling, images/s (median, decode included)", ips["pixel"]["sample"], ips["latent"]["sample"],
        ips["latent"]["sample"] / ips["pixel"]["sample"])
    row("shape + colour, seen pairs (recorded, n = 500)", 100 * q["pixel"]["accuracy"]["shape_and_colour"],
        100 * q["latent"]["accuracy"]["shape_and_colour"],
        q["latent"]["accuracy"]["shape_and_colour"] / q["pixel"]["accuracy"]["shape_and_colour"], "{:.1f}%")
    row("shape + colour, held-out pairs (recorded, n = 500)", 100 * q["pixel"]["held_out_shape_and_colour"],
        100 * q["latent"]["held_out_shape_and_colour"],
        q["latent"]["held_out_shape_and_colour"] / q["pixel"]["held_out_shape_and_colour"], "{:.1f}%")
    row("FD / floor, seen pairs (recorded, n = 500)", q["pixel"]["fd_ratio"], q["latent"]["fd_ratio"],
        q["latent"]["fd_ratio"] / q["pixel"]["fd_ratio"])
    decoder_note = ""
    if dec_meta:  # the same latent U-Net, its samples drawn by the fine-tuned decoder
        if decoder_record_is_current(dec_meta):
            ft, how, source = dec_meta["latent_model_quality"], "recorded", f"recorded by `{dec_meta['command']}`"
        else:  # the decoder's record is of another latent U-Net: measure the shipped one here, the same way
            vae_ft = with_decoder(adapter.vae, load_checkpoint("vae_decoder")[0])
            ft = latent_quality(latent, latent_schedule, dc.LatentAdapter(vae_ft), torch.device("cpu"))
            how, source = "measured", ("measured in this run as the latent recipe measures (the decoder's own record "
                                       "is of another latent U-Net)")
        decoder_note = (f" The fine-tuned decoder's rows: the same latent U-Net and captions, {source} (the decoder "
                        f"alone retrained, the encoder and so every latent unchanged; sampling speed is the same "
                        f"network's).")
        seen = ("seen", q["pixel"]["accuracy"]["shape_and_colour"], ft["accuracy"]["shape_and_colour"])
        held = ("held-out", q["pixel"]["held_out_shape_and_colour"], ft["held_out_shape_and_colour"])
        for label, pix, lat in (seen, held):
            row(f"shape + colour, {label} pairs, latent samples drawn by the fine-tuned decoder `vae_decoder` ({how}, "
                "n = 500)", 100 * pix, 100 * lat, lat / pix, "{:.1f}%")
        row(f"FD / floor, seen pairs, fine-tuned decoder ({how}, n = 500)", q["pixel"]["fd_ratio"], ft["fd_ratio"],
            ft["fd_ratio"] / q["pixel"]["fd_ratio"])
    if has_expert:  # the latent U-Net above the switch, the low-noise expert below it
        pair_ips = BATCH / median(sample["pair"])
        row("sampling with the low-noise expert `latent_refiner`, images/s (median, decode included)",
            ips["pixel"]["sample"], pair_ips, pair_ips / ips["pixel"]["sample"])
        decoders = [("shipped decoder", ref_meta["quality"], None),
                    ("fine-tuned decoder", ref_meta["quality_fine_tuned_decoder"], None)]
        if has_wide:  # the pair again, its samples drawn by the wider decoder (as the decoder's recipe recorded)
            decoders.append(("wider decoder", wide_meta["latent_model_quality"], BATCH / median(sample["pair_wide"])))
        for label, rec, speed in decoders:
            if speed is not None:
                row("sampling with the low-noise expert and the wider decoder `vae_decoder_wide`, images/s (median, "
                    "decode included)", ips["pixel"]["sample"], speed, speed / ips["pixel"]["sample"])
            for pairs, pix, lat in (("seen", q["pixel"]["accuracy"]["shape_and_colour"], rec["accuracy"]["shape_and_colour"]),
                                    ("held-out", q["pixel"]["held_out_shape_and_colour"], rec["held_out_shape_and_colour"])):
                row(f"shape + colour, {pairs} pairs, with the low-noise expert, {label} (recorded, n = 500)",
                    100 * pix, 100 * lat, lat / pix, "{:.1f}%")
            row(f"FD / floor, seen pairs, with the low-noise expert, {label} (recorded, n = 500)", q["pixel"]["fd_ratio"],
                rec["fd_ratio"], rec["fd_ratio"] / q["pixel"]["fd_ratio"])
    if minutes_compare(pix_info["meta"], *(meta for _, meta in starts), lat_info["meta"], vae_info["meta"]):
        row("training minutes, everything included (recorded)", minutes["pixel"], minutes["latent"],
            minutes["latent"] / minutes["pixel"])
    else:  # minutes on different machines, or on a GPU shared between runs, do not compare: each part with its machine
        where = lambda info: "CPU" if trained_on_cpu(info["meta"]) else "GPU"  # noqa: E731
        lines.append(f"| training minutes (recorded, on different machines or a shared GPU: not comparable) | "
                     f"{minutes['pixel']:.1f} ({where(pix_info)}) | {vae_info['meta']['seconds'] / 60:.1f} (VAE, "
                     f"{where(vae_info)}) + {lat_info['meta']['encode_seconds'] / 60:.1f} (encoding the data) + "
                     f"{lat_info['meta']['seconds'] / 60:.1f} (U-Net, {where(lat_info)})"
                     + (f" + {ref_meta['seconds'] / 60:.1f} (low-noise expert, {where({'meta': ref_meta})})" if has_expert else "")
                     + " | — |")
    frozen = " and ".join(k for k, info in (("pixel", pix_info), ("latent", lat_info))
                          if encoder_was_frozen(info["meta"]))
    body = (f"Speed measured in this run (batch {BATCH}; training: medians of {2 * (TRAIN_RUNS // 2 + 1)} steps, the two "
            f"models alternating, each trained the way its recipe trains it"
            f"{f' (text encoder frozen: {frozen})' if frozen else ''}; sampling: {BATCH} captions, DPM-Solver++(2M), 20 trailing steps, w = {GUIDANCE:g}, medians of "
            f"{SAMPLE_RUNS}). Quality and minutes as recorded by `{pix_info['meta'].get('reproduce', pix_info['meta']['command'])}` / "
            f"`{vae_info['meta'].get('reproduce', vae_info['meta']['command'])}` / `{lat_info['meta'].get('reproduce', lat_info['meta']['command'])}` "
            f"(pixel minutes {'include the models it was fine-tuned from: ' + ', then '.join(n for n, _ in starts) if starts else 'are the text recipe alone: it trains from scratch'}; "
            f"latent minutes include the VAE and "
            f"encoding the training set once; minutes are compared only when all three were trained on one CPU: a GPU run's minutes depend on what else shared the GPU). The course's goal: ≥ 4× faster training and sampling with adherence and FD "
            f"within 20%.{decoder_note}"
            + (f" The low-noise expert's rows: `{ref_meta.get('reproduce', ref_meta['command'])}`, the latent U-Net grown (unet.grow: {', '.join(config_changes(LATENT_UNET, REFINER_UNET))}) "
               f"and fine-tuned on timesteps t < {ref_meta['t_switch']} only, handed every sampling step below that (experts.SwitchAtTimestep); "
               f"quality as its recipe recorded it, with each decoder." if has_expert else "")
            + (f" The wider decoder's rows: `{_without_out(wide_meta['command'])}`, the fine-tuned decoder widened 2× (vae_decoder.widen_decoder) "
               f"and fine-tuned on, the pair's samples drawn by it, as its recipe recorded them." if has_wide else "")
            + "\n\n" + "\n".join(lines))
    print(body)
    record("latent_vs_pixel", "Latent vs pixel diffusion (text-to-image)", "python -m benchmarks.latent_vs_pixel", body, judged=True)


if __name__ == "__main__":
    main()
