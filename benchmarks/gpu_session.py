"""What a GPU changes: speed measured on the GPU alone, and the course's recipes trained there.

    python -m benchmarks.gpu_session measure   # on a CUDA GPU: writes benchmarks/results/gpu_speed.json
    python -m benchmarks.gpu_session           # writes "On a GPU" in docs/benchmarks.md from the recorded results

`measure` times, with the GPU to itself: one training step of the patched pixel U-Net, `PATCHED_UNET` (batch 256 and 512)
with and without bfloat16 autocast (what `train_diffusion` switches on for CUDA), and the shipped pixel and latent text models'
training and sampling images/s (DPM-Solver++(2M), 20 steps, w = 3, the VAE decode included) at batch 64 and 256 — the
same measurements as `benchmarks.latent_vs_pixel` makes on the CPU. Training: medians of 16-20 timed steps, each after 5
warm-up steps; sampling: medians of 3 runs after one warm-up.

The training runs (benchmarks/results/gpu_runs.json) are the recipes' own records: five runs side by side on one GPU,
each with a 5-minute budget (`--minutes 5 --batch-size 512 --device cuda`; each JSON's `reproduce` gives the step count
that budget chose), next to the CPU-trained models they are compared with. The GPU was shared, so their minutes are
upper bounds for one run alone. Most of these runs trained designs the course measured and does not ship (the patched
pixel U-Nets and the latent U-Net with attention at 8×8, `recipes.studies`); of them, only the VAE ships. docs/gpu.md
summarises the section.
"""
from __future__ import annotations

import copy
import json
import re
import sys
import time
from pathlib import Path

import torch

import diffusion_course as dc
from diffusion_course.core.generation import generate
from diffusion_course.data.captions import evaluation_prompts
from diffusion_course.recipes.configs import (
    LATENT_SCHEDULE,
    LATENT_UNET,
    TEXT_UNET,
    UNCOND_SCHEDULE,
)
from diffusion_course.recipes.latent import load_latent_model, sample_latent_model
from diffusion_course.recipes.records import encoder_was_frozen
from diffusion_course.recipes.studies import ATTENTIVE_LATENT_UNET, PATCHED_UNET
from diffusion_course.training.checkpoints import (
    checkpoint_info,
    load_checkpoint,
    load_text_model,
    trained_on_cpu,
)

from .record import median, record

RESULTS = Path(__file__).resolve().parent / "results"


def _train_step_seconds(model, batch_fn, schedule, device, amp: bool, runs: int, warm: int = 5,
                        frozen_encoder: bool = False) -> list[float]:
    m = copy.deepcopy(model).to(device).train()
    if frozen_encoder:
        m.conditioner.encoder.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-5)
    times = []
    for i in range(warm + runs):
        x, cond = batch_fn()
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = dc.diffusion_loss(m, x, schedule, cond=cond, prediction="v", weighting="min_snr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        torch.cuda.synchronize()
        if i >= warm:
            times.append(time.perf_counter() - start)
    return times


def measure(path: Path) -> dict:
    if not torch.cuda.is_available():
        raise SystemExit("No CUDA GPU here: this benchmark measures GPU speed (its recorded results are in "
                         f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}).")
    device, g = torch.device("cuda"), torch.Generator().manual_seed(0)
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
           "amp": {}, "latent_vs_pixel": {}}
    schedule = dc.NoiseSchedule.from_kind(*UNCOND_SCHEDULE)
    net = dc.UNet(PATCHED_UNET)  # the recorded autocast timings are of this design
    for bs in (256, 512):  # autocast off / on, alternating blocks
        noise = lambda: (torch.randn(bs, 3, 32, 32, generator=g).to(device), None)  # noqa: E731
        fp32, bf16 = [], []
        for _ in range(2):
            fp32 += _train_step_seconds(net, noise, schedule, device, amp=False, runs=10)
            bf16 += _train_step_seconds(net, noise, schedule, device, amp=True, runs=10)
        out["amp"][bs] = {"fp32_ms": median(fp32) * 1e3, "bf16_ms": median(bf16) * 1e3, "speedup": median(fp32) / median(bf16),
                          "fp32_img_s": bs / median(fp32), "bf16_img_s": bs / median(bf16)}
        print("autocast", bs, out["amp"][bs], flush=True)
    pixel, pix_info = load_text_model("text_unet", "text_encoder", expect=TEXT_UNET)
    latent, lat_info = load_latent_model(refiner=False)
    out["latent_unet"] = LATENT_UNET.to_dict()  # which latent U-Net these times are for
    adapter = dc.LatentAdapter(load_checkpoint("vae")[0].to(device))
    latent_schedule = dc.NoiseSchedule.from_kind(*LATENT_SCHEDULE)
    for bs in (64, 256):
        prompts, _ = evaluation_prompts(bs, held_out=False)
        train = {"pixel": [], "latent": []}
        for _ in range(2):
            for name, model, info, shape, sched in (("pixel", pixel, pix_info, (3, 32, 32), schedule),
                                                    ("latent", latent, lat_info, adapter.latent_shape(), latent_schedule)):
                cond = {k: v.to(device) for k, v in model.conditioner.tokenize(prompts, "cpu").items()}
                train[name] += _train_step_seconds(
                    model, lambda: (torch.randn(bs, *shape, generator=g).to(device), cond), sched, device, amp=True,
                    runs=8, frozen_encoder=encoder_was_frozen(info["meta"]))
        pixel_gpu, latent_gpu = pixel.to(device), latent.to(device)
        null = lambda b, d: pixel_gpu.conditioner.tokenize([""] * b, d)  # noqa: E731
        sample = {"pixel": [], "latent": []}
        with torch.no_grad():
            for _ in range(4):  # the first of each is a warm-up
                torch.cuda.synchronize()
                start = time.perf_counter()
                generate(pixel_gpu, schedule, bs, seed=0, prediction="v", cond=pixel_gpu.conditioner.tokenize(prompts, "cpu"),
                         guidance=3.0, null_cond=null, batch=bs, device=device)
                torch.cuda.synchronize()
                sample["pixel"].append(time.perf_counter() - start)
                start = time.perf_counter()
                sample_latent_model(latent_gpu, latent_schedule, adapter, prompts, device, guidance=3.0, seed=0)
                torch.cuda.synchronize()
                sample["latent"].append(time.perf_counter() - start)
        pixel, latent = pixel.cpu(), latent.cpu()
        r = {k: {"train_img_s": bs / median(train[k]), "sample_img_s": bs / median(sample[k][1:])} for k in train}
        r["ratio_train"] = r["latent"]["train_img_s"] / r["pixel"]["train_img_s"]
        r["ratio_sample"] = r["latent"]["sample_img_s"] / r["pixel"]["sample_img_s"]
        out["latent_vs_pixel"][bs] = r
        print("latent vs pixel", bs, r, flush=True)
    path.write_text(json.dumps(out, indent=1))
    return out


def _without_out(command: str) -> str:
    """`command` without its `--out DIR` (where a run wrote its checkpoint is not part of the recipe)."""
    return re.sub(r" --out \S+", "", command)


def _ships(run: dict, name: str) -> bool:
    """Whether the package ships this run's weights: the shipped checkpoint records the same reproduce command."""
    shipped = checkpoint_info(name)["meta"].get("reproduce", "")
    return bool(shipped) and shipped == _without_out(run.get("reproduce", ""))


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _run_row(name: str, run: dict, where: str | None = None, cmd: str | None = None) -> str:
    """A table row for a recipe's training record; `where` (default: CPU or GPU, from its recorded machine) fills the second
    column, `cmd` (default: its reproduce command, with the run folder the benchmarks expect) the third."""
    t, q = run["train"], run["quality"]
    where = where or ("CPU" if trained_on_cpu(run) else "GPU")
    cmd = cmd or run.get("reproduce", run["command"]).replace(" --out /tmp/w/", " --out runs/gpu_")
    if q.get("prompts") or "held_out_shape_and_colour" in q:
        quality = (f"shape {_pct(q['accuracy']['shape'])}, colour {_pct(q['accuracy']['colour'])}, position "
                   f"{_pct(q['accuracy']['position'])}, shape and colour {_pct(q['accuracy']['shape_and_colour'])} seen / "
                   f"{_pct(q['held_out_shape_and_colour'])} never seen")
    elif q.get("accuracy"):
        quality = f"requested shape {_pct(q['accuracy']['shape'])} (w = {q['guidance']:g})"
    else:
        quality = f"recognised {_pct(q['recognised'])}"
    return (f"| {name} | {where} | `{cmd}` | {t['steps']} × {t['batch_size']} = {t['steps'] * t['batch_size'] / 1e6:.2f}M | "
            f"{run['seconds'] / 60:.1f} | {quality} | {q['fd_ratio']:.1f}× | {q['recall']:.2f} |")


def write_section() -> None:
    speed = json.loads((RESULTS / "gpu_speed.json").read_text())
    recorded = json.loads((RESULTS / "gpu_runs.json").read_text())
    runs = recorded["runs"]
    amp = ["| batch | float32 (TF32 convolutions), ms/step | bfloat16 autocast, ms/step | speed-up |", "|---:|---:|---:|---:|"]
    for bs, a in speed["amp"].items():
        amp.append(f"| {bs} | {a['fp32_ms']:.1f} | {a['bf16_ms']:.1f} | {a['speedup']:.2f}× |")
    lvp = ["| batch | training img/s: pixel | latent | latent / pixel | sampling img/s: pixel | latent | latent / pixel |",
           "|---:|---:|---:|---:|---:|---:|---:|"]
    for bs, r in speed["latent_vs_pixel"].items():
        lvp.append(f"| {bs} | {r['pixel']['train_img_s']:.0f} | {r['latent']['train_img_s']:.0f} | {r['ratio_train']:.2f}× | "
                   f"{r['pixel']['sample_img_s']:.0f} | {r['latent']['sample_img_s']:.0f} | {r['ratio_sample']:.2f}× |")
    table = ["| model | trained on | command | steps × batch = images | training minutes | adherence (w = 3) | FD / floor | recall |",
             "|---|---|---|---:|---:|---|---:|---:|"]
    for name, label in (("uncond", "`uncond`"), ("class", "`class`"), ("text", "text (pixel)"),
                        ("latent", "latent"), ("latent_tokens", "latent, encoder as the pixel model's")):
        for where in ("cpu", "gpu"):
            if where in runs[name]:
                table.append(_run_row(label, runs[name][where]))
    curve = runs["uncond"]["gpu"].get("quality_during_training", [])
    curve_text = "; ".join(f"{r['train_minutes']:.1f} min: {r['fd_ratio']:.1f}×" for r in curve)
    speedups = [a["speedup"] for a in speed["amp"].values()]
    gpu = speed["device"]
    slower = [f"{(1 - a['speedup']) * 100:.0f}% slower at batch {bs}" for bs, a in speed["amp"].items() if a["speedup"] < 0.97]
    amp_verdict = (f"bfloat16 autocast bought no speed for this network ({min(speedups):.2f}–{max(speedups):.2f}×"
                   f"{'; ' + ', '.join(slower) if slower else ''})" if max(speedups) < 1.15 else
                   f"bfloat16 autocast sped a step up by up to {max(speedups):.2f}×")
    up, uc = runs["uncond"]["gpu"]["quality"], runs["uncond"]["cpu"]["quality"]
    cpu_minutes = runs["uncond"]["cpu"]["seconds"] / 60
    ratios = [r[k] for r in speed["latent_vs_pixel"].values() for k in ("ratio_train", "ratio_sample")]
    as_json = lambda cfg: json.loads(json.dumps(cfg.to_dict()))  # noqa: E731 (tuples become lists, as recorded)
    timed = speed.get("latent_unet", as_json(ATTENTIVE_LATENT_UNET))  # a recording without the key timed this design
    current = timed == as_json(LATENT_UNET)
    which, ref = ("latent model's", ' ("Latent vs pixel diffusion")') if current else ("attentive latent U-Net's", "")
    lvp_verdict = (f"The {which} advantage on the 2-core CPU{ref} mostly "
                   f"disappears on this GPU (latent / pixel between {min(ratios):.2f}× and {max(ratios):.2f}×). A plausible "
                   "reading, not measured here: at these sizes the GPU is not limited by arithmetic, which is what the "
                   "latent model saves." if max(ratios) < 2 else
                   f"On this GPU latent / pixel lies between {min(ratios):.2f}× and {max(ratios):.2f}×.")
    if not current:
        lvp_verdict += (f" These times are for `ATTENTIVE_LATENT_UNET` (attention at levels {tuple(timed['attention_levels'])}, "
                        f"middle attention {timed['mid_attention']}) against the patched pixel text U-Net "
                        f"(`PATCHED_TEXT_UNET`), designs measured and not shipped; the shipped latent U-Net (attention at "
                        f"levels {LATENT_UNET.attention_levels}, middle attention {LATENT_UNET.mid_attention}) and pixel "
                        "text U-Net have not been timed on a GPU.")
    ships = lambda name, unet: ("ships" if _ships(runs[name]["gpu"], unet) else "is not shipped")  # noqa: E731
    tg, tc = runs["text"]["gpu"], runs["text"]["cpu"]
    more = tg["train"]["steps"] * tg["train"]["batch_size"] / (tc["train"]["steps"] * tc["train"]["batch_size"])
    cls_g, cls_c = runs["class"]["gpu"]["quality"], runs["class"]["cpu"]["quality"]
    body = f"""Recorded on {gpu} (torch {speed['torch']}) in two 15-minute sessions; single runs throughout. Speed first, measured with the GPU to
itself (`python -m benchmarks.gpu_session measure`; "float32" runs convolutions in TF32, PyTorch's default on CUDA):

{chr(10).join(amp)}

{amp_verdict}: the patched (32, 64, 128) U-Net (`recipes.studies.PATCHED_UNET`, measured and not shipped) has 2.9M parameters at 32×32. `train_diffusion` leaves autocast on for CUDA
(`TrainConfig.amp`); larger networks, not measured here, are where it is meant to pay.

{chr(10).join(lvp)}

(Training steps with bfloat16 autocast, as the recipes train; sampling: DPM-Solver++(2M), 20 steps, w = 3, decode
included, median of 3 after one warm-up.) {lvp_verdict}

**Training on the GPU, first session** (the recipes' own records, benchmarks/results/gpu_runs.json; the five GPU runs shared one {gpu}
with each other and with notebooks, so their minutes are upper bounds for one run alone; each `reproduce` command gives
the step count the 5-minute budget chose). One run each: batch, images seen, device and torch version differ between a
CPU row and its GPU row, so the differences are observations, not causes:

{chr(10).join(table)}

- `uncond` (both rows trained the patched (32, 64, 128) U-Net, `PATCHED_UNET`; the shipped `uncond` is the unpatched
  (16, 32, 64) one, "Time to quality"): {runs['uncond']['gpu']['seconds'] / 60:.0f} minutes on the GPU against {cpu_minutes:.0f} on the CPU: FD
  {up['fd_ratio']:.1f}× against {uc['fd_ratio']:.1f}×, recognised {_pct(up['recognised'])} against {_pct(uc['recognised'])}; its
  curve (FD / floor against training minutes, 1,000 samples each): {curve_text}. The 3× bar needs far more than either.
- The text model: shape and colour both right in {_pct(tg['quality']['accuracy']['shape_and_colour'])} of seen-pair samples
  against {_pct(tc['quality']['accuracy']['shape_and_colour'])} on the CPU, with the same recipe options and seed and {more:.0f}× the
  images. This run {ships('text', 'text_unet')}. Both rows trained the patched text U-Net (`PATCHED_TEXT_UNET`) from
  scratch; the `text` command builds the shipped design (notebook 04's U-Net with cross-attention, fine-tuned from the
  class model with `--init-from class`), so these rows' commands do not rebuild the model they trained.
- The class model from scratch on the GPU: {_pct(cls_g['accuracy']['shape'])} of samples have the requested shape against
  {_pct(cls_c['accuracy']['shape'])} fine-tuned on the CPU, at FD {cls_g['fd_ratio']:.1f}× against {cls_c['fd_ratio']:.1f}×. This run
  {ships('class', 'class')}.
- The latent runs: "Latent model: how its text encoder starts". The one with the pixel model's encoder
  recipe {ships('latent_tokens', 'latent_unet')}. They trained `ATTENTIVE_LATENT_UNET` (attention at 8×8 too) on the latents
  of the CPU recipe's VAE (the first row of the VAE table below), 8,000 steps × 64 on the CPU; the same commands train the
  shipped latent U-Net. Likewise the `uncond` and `class` commands build the unpatched (16, 32, 64) U-Net (the plain `class`
  command fine-tunes `uncond` for 19,448 steps × 64), so the rows' commands here and below do not rebuild the patched
  models they trained."""
    body += "\n\n" + _second_session(recorded["second_session"])
    record("gpu_session", "On a GPU", "python -m benchmarks.gpu_session", body,
           where=f"{gpu} (recorded); this section written from benchmarks/results/gpu_*.json")


def _second_session(session: dict) -> str:
    """The second GPU session's runs: a longer class run, the VAE trained on the GPU, the latent model on that VAE."""
    runs = session["runs"]
    table = ["| model | shared the GPU with | command | steps × batch = images | training minutes | adherence (w = 3) | FD / floor | recall |",
             "|---|---|---|---:|---:|---|---:|---:|"]
    for name, label in (("class", "`class`"), ("latent", "latent, on the GPU-trained VAE")):
        run = runs[name]["gpu"]
        table.append(_run_row(label, run, where=runs[name]["shared_with"], cmd=_without_out(run["reproduce"])))
    vae = ["| VAE | trained on | steps × batch = images | minutes | PSNR (dB) | shape | colour | size | FD / floor | recognised |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for where in ("cpu", "gpu"):
        v = runs["vae"][where]
        r, a = v["reconstruction"], v["reconstruction"]["accuracy"]
        vae.append(f"| `{v.get('reproduce', v['command'])}` | {v['machine']} | {v['steps']} × {v['batch_size']} = "
                   f"{v['steps'] * v['batch_size'] / 1e6:.2f}M | {v['seconds'] / 60:.1f} | {r['psnr_db']:.1f} | {_pct(a['shape'])} | "
                   f"{_pct(a['colour'])} | {_pct(a['size'])} | {r['fd_ratio']:.1f}× | {_pct(r['recognised'])} |")
    c, g = runs["vae"]["cpu"], runs["vae"]["gpu"]
    more = g["steps"] * g["batch_size"] / (c["steps"] * c["batch_size"])
    shipped = [label for name, label, ckpt in (("class", "the class run", "class"), ("latent", "the latent run", "latent_unet"),
                                               ("vae", "the VAE", "vae")) if _ships(runs[name]["gpu"], ckpt)]
    return f"""**Training on the GPU, second session** (benchmarks/results/gpu_runs.json, `second_session`, says how the session
ran): a class model from scratch on the patched U-Net (7-minute budget) and the VAE (2-minute budget) beside other runs,
then a latent model (`ATTENTIVE_LATENT_UNET`) on that VAE with the GPU to itself.

{chr(10).join(table)}

The VAE (reconstructions of 1,000 test images, float16 weights as shipped):

{chr(10).join(vae)}

One run each: trained on {more:.1f}× the images, at batch {g['batch_size']} against {c['batch_size']}, the VAE keeps the shape in
{_pct(g['reconstruction']['accuracy']['shape'])} of reconstructions instead of {_pct(c['reconstruction']['accuracy']['shape'])}, so it does not
cap the latent model's shape near 46% as the CPU recipe's VAE does. Shipped: {', '.join(shipped) or 'none of these runs'}."""


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["measure"]:
        measure(RESULTS / "gpu_speed.json")
    elif not argv:
        write_section()
    else:
        raise SystemExit("usage: python -m benchmarks.gpu_session [measure]")


if __name__ == "__main__":
    main()
