"""The exercise machinery: a registry of reference solutions with their checkers, `check` and `show_solution`."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch


@dataclass(frozen=True)
class Exercise:
    name: str  # what `check` and `show_solution` are called with
    lesson: str  # "01", "02", ...
    solution: Callable  # the reference answer
    cases: Callable[[], Iterable[tuple]]  # fixed argument tuples the answer is checked on
    wrong: Callable | None = None  # a plausible mistake, for the tests: `check` must reject it
    atol: float = 1e-5  # tolerances for tensors and floats
    rtol: float = 1e-4

    @property
    def hint(self) -> str:
        return inspect.getdoc(self.solution).splitlines()[0]


EXERCISES: dict[str, Exercise] = {}


def exercise(lesson: str, cases: Callable[[], Iterable[tuple]], wrong: Callable | None = None, **tolerances):
    """Decorator registering a reference solution as the exercise of the same name."""
    def register(solution: Callable) -> Callable:
        if solution.__name__ in EXERCISES:
            raise ValueError(f"two exercises are named {solution.__name__!r}")
        EXERCISES[solution.__name__] = Exercise(solution.__name__, lesson, solution, cases, wrong, **tolerances)
        return solution

    return register


def difference(got: Any, want: Any, atol: float = 1e-5, rtol: float = 1e-4) -> str | None:
    """None when `got` matches `want` (tensors and numbers within tolerance, containers element by element, anything
    else by equality); otherwise one sentence saying what differs."""
    if torch.is_tensor(want):
        if not torch.is_tensor(got):
            return f"expected a tensor of shape {tuple(want.shape)}, got {type(got).__name__}"
        if got.shape != want.shape:
            return f"expected a tensor of shape {tuple(want.shape)}, got shape {tuple(got.shape)}"
        if want.dtype == torch.bool or not want.is_floating_point():
            return None if torch.equal(got.cpu(), want.cpu()) else "wrong values"
        g, w = got.detach().double().cpu(), want.detach().double().cpu()
        if not torch.allclose(g, w, atol=atol, rtol=rtol, equal_nan=True):
            return f"wrong values (largest error {(g - w).abs().nan_to_num(float('inf')).max():.3g})"
        return None
    if isinstance(want, bool) or isinstance(want, str) or want is None:
        return None if got == want else f"expected {want!r}, got {got!r}"
    if isinstance(want, (int, float)):
        if not isinstance(got, (int, float)) and not (torch.is_tensor(got) and got.numel() == 1):
            return f"expected a number, got {type(got).__name__}"
        return None if abs(float(got) - want) <= atol + rtol * abs(want) else f"expected {want:.6g}, got {float(got):.6g}"
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return f"expected a sequence of {len(want)} items, got {got!r:.60}"
        for i, (g, w) in enumerate(zip(got, want)):
            if (d := difference(g, w, atol, rtol)) is not None:
                return f"item {i}: {d}"
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return f"expected a dict with keys {sorted(want)}, got {sorted(got) if isinstance(got, dict) else got!r:.60}"
        for k in want:
            if (d := difference(got[k], want[k], atol, rtol)) is not None:
                return f"{k!r}: {d}"
        return None
    return None if got == want else f"expected {want!r}, got {got!r}"


def _get(name: str) -> Exercise:
    if name not in EXERCISES:
        raise ValueError(f"name must be one of {tuple(sorted(EXERCISES))}, got {name!r}")
    return EXERCISES[name]


def check(name: str, fn: Callable) -> bool:
    """Compare a learner's `fn` with the reference solution `name` on fixed inputs; print the verdict."""
    ex = _get(name)
    for args in ex.cases():
        try:
            got = fn(*args)
        except NotImplementedError:
            print(f"Exercise '{name}': not attempted yet. Fill in the cell above and run this one again.")
            return False
        problem = difference(got, ex.solution(*args), ex.atol, ex.rtol)
        if problem is not None:
            print(f"✗ '{name}': {problem}. Hint: {ex.hint}")
            return False
    print(f"✓ '{name}' is correct.")
    return True


def show_solution(name: str) -> None:
    """Print the reference solution's source."""
    print(inspect.getsource(_get(name).solution))
