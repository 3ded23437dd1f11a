"""Import paths from before the package was split into layers: they keep working, with a DeprecationWarning naming the
new place. Nothing in the package imports through them; they exist so a learner's older code still runs.

    import diffusion_course.schedules          → diffusion_course.core.schedules
    from diffusion_course.recipes import X     → diffusion_course.recipes.configs (or .pixel, .latent, ...)
    dc.widen_decoder                           → diffusion_course.networks.vae_decoder.widen_decoder
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

PACKAGE = "diffusion_course"
#: old module → the modules its names live in now, searched in order
OLD_MODULES = {
    "analytic": ("core.analytic",), "denoisers": ("core.denoisers",), "experts": ("core.experts",),
    "samplers": ("core.samplers",), "schedules": ("core.schedules",), "spacing": ("core.spacing",),
    "guidance": ("core.guidance",), "generation": ("core.generation",),
    "embeddings": ("networks.embeddings",), "clip_text": ("networks.clip_text",), "unet": ("networks.unet",),
    "text": ("networks.text",), "latent": ("networks.latent",), "vae": ("networks.vae", "training.vae"),
    "vae_decoder": ("networks.vae_decoder", "training.vae"), "diffusers_export": ("networks.diffusers_export",),
    "toy_models": ("networks.toy_mlp",),
    "shapes": ("data.shapes",), "shape_render": ("data.shape_render",), "toy_data": ("data.toy",),
    "image_data": ("data.standard_datasets",),
    "prompts": ("data.captions", "training.text_encoder", "recipes.records"),
    "checkpoints": ("training.checkpoints", "runtime", "recipes.records"),
    "evaluator": ("evaluation.evaluator",), "metrics": ("evaluation.distances",),
    "evaluation": ("evaluation.reports", "evaluation.text_probes", "evaluation.distances"),
    "exercises": ("notebook.exercises",), "plotting": ("notebook.plotting",), "widgets": ("notebook.widgets",),
    "train": ("training.loop", "recipes.options"),
    "training": ("core.loss", "training.toy"),
    "recipes": ("recipes.configs", "recipes.pixel", "recipes.records", "recipes.studies", "train"),
    "recipes_latent": ("recipes.latent", "recipes.configs", "recipes.records", "evaluation.distances",
                       "recipes.studies"),
    "": ("runtime", "core.samplers", "core.spacing", "core.schedules", "core.analytic", "core.denoisers",
         "core.generation", "data.shapes", "data.standard_datasets", "networks.text", "networks.vae", "training.vae",
         "networks.vae_decoder", "networks.latent", "networks.embeddings", "evaluation.distances"),
}
#: names that changed: old → new
RENAMED = {"floor": "real_data_floor", "PIXEL_UNET": "PATCHED_UNET", "FIRST_LATENT_UNET": "ATTENTIVE_LATENT_UNET"}


def sample_latent(sampler, denoiser, latents, sigmas, adapter, **options):
    """Deprecated: `adapter.to_image(sample(sampler, denoiser, latents, sigmas, **options))`, or `generate(...,
    shape=adapter.latent_shape(), decode=adapter.to_image, clip=None)`."""
    from .core.samplers import sample

    return adapter.to_image(sample(sampler, denoiser, latents, sigmas, **options))


#: functions that are gone, kept here as deprecated aliases: old module → {name: function}
GONE = {"latent": {"sample_latent": sample_latent}, "": {"sample_latent": sample_latent}}


def resolve(old: str, name: str):
    """The object `name` of the old module `old` ("" for the package itself), with a DeprecationWarning."""
    if name.startswith("__"):
        raise AttributeError(name)
    new_name = RENAMED.get(name, name)
    if name in GONE.get(old, {}):
        warnings.warn(f"{PACKAGE}.{old + '.' if old else ''}{name} is deprecated: {GONE[old][name].__doc__.split(': ', 1)[1]}",
                      DeprecationWarning, stacklevel=3)
        return GONE[old][name]
    if old == "" and name in OLD_MODULES:  # `dc.exercises`: an old module, reached as an attribute
        return importlib.import_module(f"{PACKAGE}.{name}")
    for module in OLD_MODULES.get(old, ()):
        mod = importlib.import_module(f"{PACKAGE}.{module}")
        if hasattr(mod, new_name):
            where = f"{PACKAGE}.{old}.{name}" if old else f"{PACKAGE}.{name}"
            warnings.warn(f"{where} is deprecated: use {PACKAGE}.{module}.{new_name}", DeprecationWarning, stacklevel=3)
            return getattr(mod, new_name)
    raise AttributeError(f"module {PACKAGE + ('.' + old if old else '')!r} has no attribute {name!r}")


class _OldModule(types.ModuleType):
    def __getattr__(self, name):
        return resolve(self.__name__[len(PACKAGE) + 1:], name)


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old modules that no longer exist as files and gives each a module that forwards to the new places. It
    sits last on sys.meta_path, so a module or package that exists under an old name (recipes, train, training,
    evaluation) is found as itself first; those forward their old names with a module `__getattr__`."""

    def find_spec(self, fullname, path=None, target=None):
        old = fullname[len(PACKAGE) + 1:] if fullname.startswith(PACKAGE + ".") else None
        if old is None or old not in OLD_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return _OldModule(spec.name)

    def exec_module(self, module):
        module.__doc__ = f"Deprecated: {module.__name__}'s names now live in " + ", ".join(
            f"{PACKAGE}.{m}" for m in OLD_MODULES[module.__name__[len(PACKAGE) + 1:]])


def install() -> None:
    if not any(isinstance(f, _OldPaths) for f in sys.meta_path):
        sys.meta_path.append(_OldPaths())
