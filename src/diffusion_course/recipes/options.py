"""What a command line may change in a recipe's run: `RunOptions`, which `python -m diffusion_course.train` fills in."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..training.loop import TrainConfig
from ..training.state import RunState


@dataclass(frozen=True)
class RunOptions:
    """Command-line changes to a recipe's run (the defaults reproduce the CPU recipes exactly). The text and latent models
    are shipped with pretrain_encoder, token_targets and frozen_encoder, the class model with none. Each JSON records the
    exact command.

    steps / batch_size / sample_every: override the recipe's TrainConfig. minutes: a time budget instead of a step
    count (see `train_diffusion`'s budget_seconds); the JSON then records the step count it chose, which reproduces
    the run. from_scratch: conditional recipes start from random weights instead of the shipped `uncond`.
    frozen_encoder: the text and latent recipes' text encoder kept where it starts; only the U-Net learns.
    pretrain_encoder: their text encoder first taught to read each caption's attributes back
    (`training.text_encoder.pretrain_text_encoder`), then trained with the U-Net or, with frozen_encoder, frozen.
    token_targets: that pretraining also asks each token's feature to keep its own word.
    init_from: the shipped checkpoint a conditional recipe's U-Net starts from ("uncond", or for the text recipe also
    "class", whose label embedding is then left behind).
    latent_channels: the vae recipe's latent channels (None: VAE_CONFIG's, 4).
    vae: the VAE whose latents the latent recipe trains on (None: the shipped "vae"; or a path such as runs/vae8/vae8).
    continue_from: the vae_decoder_wide recipe's second cycle: the wide decoder at this path (e.g. runs/wide/
    vae_decoder_wide, what the first cycle wrote) fine-tuned on, instead of widening vae_decoder afresh.
    run_dir: the run folder, where the recipe saves its resumable state (None: no state is saved).
    checkpoint_every: save that state every this many training steps. resume: continue from the saved state.
    """
    steps: int | None = None
    batch_size: int | None = None
    sample_every: int | None = None
    minutes: float | None = None
    from_scratch: bool = False
    frozen_encoder: bool = False
    pretrain_encoder: bool = False
    token_targets: bool = False
    init_from: str = "uncond"
    latent_channels: int | None = None
    vae: str | None = None
    continue_from: str | None = None
    run_dir: Path | None = None
    checkpoint_every: int = 250
    resume: bool = False

    def apply(self, cfg: TrainConfig, seed: int) -> TrainConfig:
        changes = {"seed": seed, "steps": self.steps, "batch_size": self.batch_size, "sample_every": self.sample_every}
        return replace(cfg, **{k: v for k, v in changes.items() if v is not None})

    def run_state(self, name: str, **curves: list | None) -> RunState | None:
        """Where the recipe `name` keeps its resumable state (RUN_DIR/NAME.state.safetensors); None without a run folder.
        curves: lists the recipe fills while training (a quality curve, say; None: not measured), saved with the state
        and refilled when the run resumes."""
        if self.run_dir is None:
            return None
        state = RunState(Path(self.run_dir) / f"{name}.state.safetensors", self.checkpoint_every, self.resume)
        for key, rows in curves.items():
            if rows is not None:
                state.track(key, lambda rows=rows: rows, rows.extend)
        return state

    @property
    def budget_seconds(self) -> float | None:
        return None if self.minutes is None else self.minutes * 60
