"""Judging the shipped checkpoints again: each one's final quality records measured as its recipe measures them, with
the evaluator shipped now, and written back into its JSON (`python -m diffusion_course.rejudge`).

A recipe judges its model once, at the end of training, with the evaluator of the day. When the evaluator changes, the
records must follow or the course would quote two instruments as one. The weights do not change, so this does not
retrain anything; curves recorded during training (`quality_during_training`, `reconstruction_during_training`) cannot
be measured again without the intermediate weights, so they stay as measured, and `judged_by` says by which evaluator.
"""
from __future__ import annotations

from ..core.schedules import NoiseSchedule
from ..networks.latent import LatentAdapter
from ..networks.vae_decoder import with_decoder
from ..training.checkpoints import WEIGHTS_DIR, load_checkpoint, load_text_model, read_manifest
from .configs import LATENT_SCHEDULE, UNCOND_SCHEDULE
from .latent import latent_qualities, load_latent_model, reconstruction_report
from .pixel import class_quality, text_quality, uncond_quality
from .records import decoder_record_is_current

#: The evaluator that judged the training-time curves of the shipped checkpoints: the same network trained on clean
#: renders only, shipped as `evaluator_clean`.
CURVES_JUDGED_BY = "evaluator_clean"


def _pixel(name: str, device) -> dict:
    schedule = NoiseSchedule.from_kind(*UNCOND_SCHEDULE)
    if name in ("text_unet", "text_encoder"):
        model, info = load_text_model("text_unet", "text_encoder", device=device)
        return {"quality": text_quality(model, schedule, device, info["meta"]["prediction"])}
    model, info = load_checkpoint(name, device=device)
    measure = {"uncond": uncond_quality, "class": class_quality}[name]
    return {"quality": measure(model, schedule, device, info["meta"]["prediction"])}


def _latent(name: str, device) -> dict:
    vae, _ = load_checkpoint("vae", device=device)
    schedule = NoiseSchedule.from_kind(*LATENT_SCHEDULE)
    if name == "vae":
        return {"reconstruction": reconstruction_report(vae, device=device)}
    if name in ("vae_decoder", "vae_decoder_wide"):
        decoder, info = load_checkpoint(name, device=device)
        decoded = with_decoder(vae, decoder)
        out = {"reconstruction": reconstruction_report(decoded, device=device)}
        if name == "vae_decoder_wide" or decoder_record_is_current(info["meta"]):  # else: measured under a latent model gone
            model, _ = load_latent_model(refiner=name == "vae_decoder_wide", device=device)
            out["latent_model_quality"] = latent_qualities(model, schedule, [LatentAdapter(decoded)], device)[0]
        return out
    if name in ("latent_unet", "latent_text_encoder"):
        model, _ = load_latent_model(refiner=False, device=device)
        return {"quality": latent_qualities(model, schedule, [LatentAdapter(vae)], device)[0]}
    if name == "latent_refiner":
        model, _ = load_latent_model(refiner=True, device=device)
        fine_tuned = with_decoder(vae, load_checkpoint("vae_decoder", expect=vae.config, device=device)[0])
        quality, quality_ft = latent_qualities(model, schedule, [LatentAdapter(vae), LatentAdapter(fine_tuned)], device)
        return {"quality": quality, "quality_fine_tuned_decoder": quality_ft}
    raise ValueError(f"no quality record to re-judge for {name!r}")


#: checkpoint name → the function that measures its final records; the evaluators judge, they are not judged
REJUDGE = {name: _pixel for name in ("uncond", "class", "text_unet", "text_encoder")} | {
    name: _latent for name in ("vae", "vae_decoder", "vae_decoder_wide", "latent_unet", "latent_text_encoder",
                               "latent_refiner")}


def rejudge(name: str, device=None) -> dict:
    """{meta key: new record} for the shipped checkpoint `name`, measured with the shipped evaluator, plus `judged_by`
    (the evaluator's sha256 and the records it measured)."""
    if name not in REJUDGE:
        raise ValueError(f"{name!r} has no quality record to re-judge; these do: {sorted(REJUDGE)}")
    records = REJUDGE[name](name, device)
    records["judged_by"] = {"evaluator": read_manifest(WEIGHTS_DIR)["evaluator"]["sha256"], "records": sorted(records),
                            "everything else": f"{CURVES_JUDGED_BY} (curves during training; records not listed)"}
    return records
