"""A run's resumable state in one file, so that an interrupted run continues where it stopped.

    RUN/NAME.state.safetensors   weights, EMA, optimiser moments, random-generator states (tensors), and in its
                                 metadata the step, learning-rate schedules and each loop's own records (JSON)

One file written atomically (`files.atomic_write`): a kill at any moment leaves the previous state or the new one,
never two files that disagree. Resuming restores everything a step depends on — weights, optimiser, schedule, the
data generator's position — so a resumed run computes the same steps as an uninterrupted one and ends with the same
weights. Saving draws no random numbers. Loading never unpickles: tensors are safetensors, the rest is JSON.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .files import atomic_write


class RunState:
    """Where a loop saves its resumable state, how often, and whether it starts from it.

    path: the state file. every: save after every this many steps (0: never). resume: start from the saved state.
    A loop calls `restore(...)` once before its first step and `maybe_save(step, ...)` after each step. What a loop's
    caller keeps besides (a quality curve, say) travels in the same file: `track(name, get, set)`.
    """

    def __init__(self, path: str | Path, every: int = 0, resume: bool = False):
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(f"every must be a number of steps >= 0, got {every!r}")
        self.path, self.every, self.resume = Path(path), every, resume
        self._tracked: dict[str, tuple[Callable[[], Any], Callable[[Any], None]]] = {}
        if resume and not self.path.exists():
            raise FileNotFoundError(f"nothing to resume: {self.path} does not exist (run without --resume to start; "
                                    "a run writes its state there every few steps)")

    def track(self, name: str, get: Callable[[], Any], set: Callable[[Any], None]) -> None:
        """Save `get()` (JSON) with every state, and hand it to `set` when the run resumes."""
        self._tracked[name] = (get, set)

    def extra(self) -> dict:
        """The JSON part of the saved state (empty when not resuming): a recipe reads what it fixed before training,
        e.g. the step count a time budget chose."""
        if not self.resume:
            return {}
        with safe_open(str(self.path), framework="pt") as f:
            return json.loads(f.metadata()["extra"])

    def restore(self, modules: dict[str, nn.Module], optimisers: dict[str, torch.optim.Optimizer],
                generators: dict[str, torch.Generator], schedulers: dict | None = None) -> tuple[int, dict]:
        """(step to continue from, the loop's own records): loaded into the given objects when resuming, else (0, {})."""
        if not self.resume:
            return 0, {}
        tensors, meta = _read(self.path)
        for name, module in modules.items():
            module.load_state_dict({k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(f"{name}.")})
        for name, opt in optimisers.items():
            opt.load_state_dict(_optimiser_state(name, tensors, meta["param_groups"][name]))
        for name, scheduler in (schedulers or {}).items():
            scheduler.load_state_dict(meta["schedulers"][name])
        for name, g in generators.items():
            g.set_state(tensors[f"rng:{name}"])
        extra = meta["extra"]
        for name, (_, set_) in self._tracked.items():
            if name in extra.get("tracked", {}):
                set_(extra["tracked"][name])
        print(f"resuming from {self.path} at step {meta['step']}", flush=True)
        return meta["step"], extra

    def maybe_save(self, step: int, modules: dict[str, nn.Module], optimisers: dict[str, torch.optim.Optimizer],
                   generators: dict[str, torch.Generator], schedulers: dict | None = None,
                   extra: dict | None = None) -> bool:
        """Save the state if `step` is a multiple of `every`; returns whether it saved."""
        if not self.every or step % self.every:
            return False
        self.save(step, modules, optimisers, generators, schedulers, extra)
        return True

    def save(self, step, modules, optimisers, generators, schedulers=None, extra=None) -> None:
        tensors = {f"{name}.{k}": v for name, m in modules.items() for k, v in m.state_dict().items()}
        groups = {}
        for name, opt in optimisers.items():
            state = opt.state_dict()
            groups[name] = state["param_groups"]
            for i, per_param in state["state"].items():
                tensors.update({f"opt:{name}.{i}.{k}": torch.as_tensor(v) for k, v in per_param.items()})
        tensors.update({f"rng:{name}": g.get_state() for name, g in generators.items()})
        tracked = {name: get() for name, (get, _) in self._tracked.items()}
        meta = {"step": str(step), "param_groups": json.dumps(groups),
                "schedulers": json.dumps({n: s.state_dict() for n, s in (schedulers or {}).items()}),
                "extra": json.dumps({**(extra or {}), "tracked": tracked})}
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, lambda tmp: save_file(tensors, tmp, metadata=meta))

    def discard(self) -> None:
        """Remove the state once the run has saved its result."""
        self.path.unlink(missing_ok=True)


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta = {"step": int(raw["step"]), "param_groups": json.loads(raw["param_groups"]),
            "schedulers": json.loads(raw["schedulers"]), "extra": json.loads(raw["extra"])}
    return tensors, meta


def _optimiser_state(name: str, tensors: dict, param_groups: list) -> dict:
    state: dict[int, dict] = {}
    prefix = f"opt:{name}."
    for key, v in tensors.items():
        if key.startswith(prefix):
            i, k = key[len(prefix):].split(".", 1)
            state.setdefault(int(i), {})[k] = v
    return {"state": state, "param_groups": param_groups}
