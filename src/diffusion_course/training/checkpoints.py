"""Shipped checkpoints: safetensors weights + a JSON config, listed in a manifest with sha256.

    weights/NAME.safetensors   the tensors (never a pickle)
    weights/NAME.json          {"kind": ..., "config": {...}, "meta": {command, training time, metrics, ...}}
    weights/manifest.json      {NAME: {"sha256": ..., "config_sha256": ..., "bytes": ...}}

`load_checkpoint(NAME)` checks both hashes against the manifest, rebuilds the model from its
config, compares the config with what the caller expects (if given) and names every field that
differs, then loads the weights strictly.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..evaluation.evaluator import Evaluator, EvaluatorConfig
from ..networks.text import TextConditionedModel, TextConditioner, TextEncoder, TextEncoderConfig
from ..networks.unet import UNet, UNetConfig
from ..networks.vae import VAE, VAEConfig
from ..networks.vae_decoder import VAEDecoder
from ..runtime import config_differences, json_round_trip
from .files import atomic_write, atomic_write_text, locked

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
MANIFEST = "manifest.json"


_INIT_FROM_GLOBAL_RNG = False  # set only inside initialising_from_global_rng()


@contextlib.contextmanager
def initialising_from_global_rng():
    """Inside this block `load_checkpoint` draws the throwaway initial weights of each model it builds from torch's
    global RNG, advancing it, as every load did when the shipped checkpoints were trained. The training command
    (`python -m diffusion_course.train`) runs each
    recipe inside it, so that a recipe that seeds, loads a checkpoint, then draws (a new layer's weights, the batch
    order) draws exactly what it drew when its shipped checkpoint was trained. Outside it (the default)
    loading leaves the global RNG as it found it."""
    global _INIT_FROM_GLOBAL_RNG
    before, _INIT_FROM_GLOBAL_RNG = _INIT_FROM_GLOBAL_RNG, True
    try:
        yield
    finally:
        _INIT_FROM_GLOBAL_RNG = before


class CheckpointError(RuntimeError):
    """A checkpoint is missing, altered, or does not match the configuration asked for."""


def _model_classes() -> dict[str, tuple[type, type]]:
    """{kind: (model class, config class)} of the kinds of model the course ships."""
    return {"unet": (UNet, UNetConfig), "evaluator": (Evaluator, EvaluatorConfig),
            "text_encoder": (TextEncoder, TextEncoderConfig), "vae": (VAE, VAEConfig), "vae_decoder": (VAEDecoder, VAEConfig)}


def _builders() -> dict[str, Callable[[dict], nn.Module]]:
    """{kind: config dict -> model with fresh weights}."""
    return {kind: (lambda cfg, m=model_cls, c=config_cls: m(c(**cfg)))
            for kind, (model_cls, config_cls) in _model_classes().items()}


def kind_of(model: nn.Module) -> str:
    """The checkpoint kind `model` is saved as, from its class ("unet", "vae", ...): what a recipe's model is, whatever
    name it is saved under (the vae recipe's 8-channel VAE is saved as vae8, still of kind vae)."""
    for kind, (model_cls, _) in _model_classes().items():
        if type(model) is model_cls:
            return kind
    raise ValueError(f"a {type(model).__name__} is not a kind of model the course saves "
                     f"(kinds: {', '.join(sorted(_model_classes()))})")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(name: str, model: nn.Module, kind: str, config: dict, meta: dict | None = None,
                    directory: Path = WEIGHTS_DIR, dtype: torch.dtype | None = None,
                    replace_shipped: bool = False) -> dict:
    """Write NAME.safetensors and NAME.json into `directory` and record their hashes in its manifest.

    dtype: store floating-point tensors in this dtype (e.g. torch.float16 halves a U-Net's file, as Stable
    Diffusion's fp16 weights do); `load_checkpoint` casts them back to the model's float32 parameters.
    replace_shipped: the package's own weights folder is refused unless this is True (the training command's
    --replace-shipped), so that no run overwrites the course's checkpoints by accident.
    Every file is written atomically and the manifest is updated under a lock (`files.py`); a model with a non-finite
    weight is refused before anything is written.
    """
    if kind not in _builders():
        raise ValueError(f"kind must be one of {sorted(_builders())}, got {kind!r}")
    directory = Path(directory)
    if is_shipped_folder(directory) and not replace_shipped:
        raise CheckpointError(f"{directory} holds the course's shipped checkpoints: refusing to overwrite {name!r} there "
                              "(save into a run folder, or pass --replace-shipped / replace_shipped=True on purpose)")
    state = {k: v.detach().cpu().to(dtype if dtype is not None and v.is_floating_point() else v.dtype).contiguous()
             for k, v in model.state_dict().items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"refusing to save {name!r}: {len(bad)} tensor(s) hold NaN or infinite values "
                              f"(e.g. {bad[0]}); training diverged before this point")
    directory.mkdir(parents=True, exist_ok=True)
    weights, config_path = directory / f"{name}.safetensors", directory / f"{name}.json"
    atomic_write(weights, lambda tmp: save_file(state, tmp))
    atomic_write_text(config_path, json.dumps({"kind": kind, "config": json_round_trip(config), "meta": meta or {}},
                                              indent=2) + "\n")
    entry = {"sha256": sha256(weights), "config_sha256": sha256(config_path), "bytes": weights.stat().st_size}
    with locked(directory / (MANIFEST + ".lock")):  # read, change, write: one run at a time
        manifest = read_manifest(directory)
        manifest[name] = entry
        atomic_write_text(directory / MANIFEST, json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")
    return entry


def update_meta(name: str, changes: dict, directory: Path = WEIGHTS_DIR, replace_shipped: bool = False) -> dict:
    """Replace entries of checkpoint `name`'s JSON meta with `changes` (its weights untouched), atomically, and record the
    JSON's new sha256 in the manifest. The shipped folder is refused unless `replace_shipped`, as in `save_checkpoint`."""
    directory = Path(directory)
    if is_shipped_folder(directory) and not replace_shipped:
        raise CheckpointError(f"{directory} holds the course's shipped checkpoints: refusing to change {name!r} there "
                              "(pass --replace-shipped / replace_shipped=True on purpose)")
    info = checkpoint_info(name, directory)  # verifies both files first
    info["meta"] = {**info["meta"], **changes}
    config_path = directory / f"{name}.json"
    with locked(directory / (MANIFEST + ".lock")):
        atomic_write_text(config_path, json.dumps(info, indent=2) + "\n")
        manifest = read_manifest(directory)
        manifest[name] = {**manifest[name], "config_sha256": sha256(config_path)}
        atomic_write_text(directory / MANIFEST, json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")
    return manifest[name]


def is_shipped_folder(directory: Path) -> bool:
    """Whether `directory` is the package's own weights folder (the shipped checkpoints)."""
    return Path(directory).resolve() == WEIGHTS_DIR.resolve()


def read_manifest(directory: Path = WEIGHTS_DIR) -> dict:
    """{NAME: {"sha256", "config_sha256", "bytes"}} of the checkpoints in `directory` ({} where it has no manifest);
    a manifest that is not valid JSON raises CheckpointError naming the file and how to restore it."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
        return manifest
    except (ValueError, UnicodeDecodeError) as e:
        how = ("restore it with `git checkout -- src/diffusion_course/weights/manifest.json`" if is_shipped_folder(directory)
               else "rerun the command that wrote the folder, or rebuild the manifest from the files it lists")
        raise CheckpointError(f"{path} is damaged ({e}); every checkpoint in that folder needs it: {how}") from None


def trained_on_cpu(meta: dict) -> bool:
    """Whether a recipe's record (a checkpoint's `meta`) says it trained on a CPU (`recipes.records.machine` wrote its `machine`).
    Minutes compare across runs only then: a GPU run's minutes depend on what else shared the GPU."""
    return meta.get("machine", "").startswith("CPU")


def minutes_compare(*metas: dict) -> bool:
    """Whether the recorded training minutes of these runs compare: all trained on the same CPU machine."""
    return len({meta.get("machine") for meta in metas}) == 1 and all(trained_on_cpu(meta) for meta in metas)


def fine_tuned_from(meta: dict, directory: Path = WEIGHTS_DIR) -> list[tuple[str, dict]]:
    """The shipped checkpoints a run started from, nearest first, each with its meta: the text model fine-tuned from the
    class model gives [("class", ...), ("uncond", ...)]; a run from random weights gives []. What the training minutes
    of a fine-tuned model leave out."""
    chain, name = [], meta.get("init_from")
    while name:
        if any(name == seen for seen, _ in chain):
            raise CheckpointError(f"checkpoints start from each other in a loop: {[n for n, _ in chain] + [name]}")
        parent = checkpoint_info(name, directory)["meta"]
        chain.append((name, parent))
        name = parent.get("init_from")
    return chain


def checkpoint_location(ref: str | Path) -> tuple[str, Path]:
    """(name, directory) of a checkpoint named on a command line: a bare name ("vae8") is a shipped checkpoint; a path
    ("runs/vae8/vae8", with or without .safetensors or .json) names one in another folder with its own manifest, e.g.
    what `python -m diffusion_course.train ... --out runs/vae8` wrote."""
    path = Path(ref)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    if not path.name or path.name in (".", ".."):
        raise ValueError(f"{str(ref)!r} does not name a checkpoint (a name, or a folder then a name: runs/vae8/vae8)")
    if len(path.parts) == 1:
        return path.name, WEIGHTS_DIR
    return path.name, path.parent


def checkpoint_info(name: str, directory: Path = WEIGHTS_DIR) -> dict:
    """The checkpoint's JSON (kind, config, meta) after verifying both files against the manifest."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    manifest = read_manifest(directory)
    if not manifest_path.exists():
        raise CheckpointError(f"no checkpoint named {name!r}: {directory} has no {MANIFEST}, so it is not a checkpoint "
                              "folder (a training run writes one next to the checkpoints it saves)")
    if name not in manifest:
        raise CheckpointError(f"no checkpoint named {name!r} in {manifest_path}; available: {sorted(manifest)}")
    entry = manifest[name]
    for suffix, key in ((".safetensors", "sha256"), (".json", "config_sha256")):
        path = directory / f"{name}{suffix}"
        if not path.exists():
            raise CheckpointError(f"{path} is listed in the manifest but missing")
        if sha256(path) != entry[key]:
            raise CheckpointError(f"{path} does not match the sha256 in {manifest_path}: the file was changed or "
                                  f"corrupted (retrain it with the command in {name}.json, or restore it from git)")
    return json.loads((directory / f"{name}.json").read_text())


def load_checkpoint(name: str, expect: dict | None = None, device=None, directory: Path = WEIGHTS_DIR):
    """(model in eval mode, info dict) for a shipped checkpoint; `expect` is a config (dict or dataclass) to match.
    Loading leaves torch's global RNG where it was (except inside `initialising_from_global_rng`, as recipes run)."""
    info = checkpoint_info(name, directory)
    builders = _builders()
    if info["kind"] not in builders:
        raise CheckpointError(f"checkpoint {name!r} has unknown kind {info['kind']!r}")
    try:  # the weights built here are overwritten below: drawing them must not move the caller's global RNG
        with contextlib.nullcontext() if _INIT_FROM_GLOBAL_RNG else torch.random.fork_rng(devices=[]):
            model = builders[info["kind"]](info["config"])
    except TypeError as e:  # a field this version of the package does not know
        raise CheckpointError(f"checkpoint {name!r} has a config this package cannot build: {e}") from None
    if expect is not None:  # compared with the built config: a field the JSON predates counts as its default
        expect = expect.to_dict() if hasattr(expect, "to_dict") else dict(expect)
        actual = model.config.to_dict() if hasattr(model, "config") else info["config"]
        diffs = config_differences(expect, actual)
        if diffs:
            raise CheckpointError(f"checkpoint {name!r} was trained with a different config: " + "; ".join(diffs))
    state = load_file(str(Path(directory) / f"{name}.safetensors"))
    model.load_state_dict(state, strict=True)
    model.eval()
    if device is not None:
        model.to(device)
    return model, info


def load_text_model(unet: str, encoder: str, expect: dict | None = None, device=None, directory: Path = WEIGHTS_DIR):
    """(text-conditional model in eval mode, the U-Net's info dict) from a U-Net checkpoint and its text-encoder
    checkpoint, e.g. ("text_unet", "text_encoder") or ("latent_unet", "latent_text_encoder"); `expect` is the U-Net's."""
    kinds = {n: checkpoint_info(n, directory)["kind"] for n in (unet, encoder)}
    if kinds[unet] != "unet" or kinds[encoder] != "text_encoder":
        raise CheckpointError(f"load_text_model takes a U-Net checkpoint, then a text-encoder checkpoint (e.g. "
                              f"'text_unet', 'text_encoder'); got {unet!r} (a {kinds[unet]}) and {encoder!r} (a "
                              f"{kinds[encoder]})")
    net, info = load_checkpoint(unet, expect=expect, device=device, directory=directory)
    if not net.config.context_dim:
        raise CheckpointError(f"{unet!r} is a U-Net without cross-attention (context_dim 0): it cannot read text")
    text_encoder, _ = load_checkpoint(encoder, device=device, directory=directory)
    return TextConditionedModel(net, TextConditioner(text_encoder)).eval(), info


@torch.no_grad()
def round_to_float16(net: torch.nn.Module) -> torch.nn.Module:
    """Round every floating-point parameter and buffer to float16 precision, in place (kept in float32)."""
    for t in net.state_dict().values():
        if t.is_floating_point():
            t.copy_(t.half())
    return net
