"""Exercise checkers: each accepts its reference solution, rejects a wrong answer with a hint, and tolerates an
unattempted cell. Every lesson has at least two exercises, and checks each of them."""
import collections
import json
from pathlib import Path

import pytest
import torch

from diffusion_course.notebook.exercises import EXERCISES, SOLUTIONS, check, difference, show_solution

LESSONS = sorted(Path(__file__).resolve().parents[1].joinpath("notebooks").glob("[0-9][0-9]_*.ipynb"))


def _perturbed(solution):
    """A generic wrong answer: the reference nudged off (for exercises that name no mistake of their own)."""
    def wrong(*args):
        out = solution(*args)
        return out * 1.01 + 0.01 if torch.is_tensor(out) or isinstance(out, float) else out
    return wrong


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_reference_solution_passes_its_own_check(name, capsys):
    assert check(name, EXERCISES[name].solution) is True
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_a_wrong_answer_is_rejected_with_a_hint(name, capsys):
    ex = EXERCISES[name]
    assert check(name, ex.wrong or _perturbed(ex.solution)) is False
    out = capsys.readouterr().out
    assert "✗" in out and ex.hint in out


def test_unattempted_exercise_is_reported_not_failed(capsys):
    def todo(*args):
        raise NotImplementedError

    assert check("v_target", todo) is False
    assert "not attempted yet" in capsys.readouterr().out


def test_show_solution_prints_the_source(capsys):
    show_solution("q_sample")
    assert "def q_sample" in capsys.readouterr().out
    with pytest.raises(ValueError, match="must be one of"):
        show_solution("no_such_exercise")


def test_difference_names_what_is_wrong():
    assert difference(torch.ones(2), torch.ones(2)) is None
    assert "shape (3,)" in difference(torch.ones(2), torch.ones(3))
    assert difference(0.5, 0.5) is None and "expected 0.5" in difference(0.6, 0.5)
    assert "item 1" in difference((1.0, 2.0), (1.0, 3.0))
    assert "'b'" in difference({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 2.5})


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name[:2])
def test_every_lesson_has_two_exercises_and_checks_them(path):
    lesson = path.name[:2]
    mine = [ex for ex in EXERCISES.values() if ex.lesson == lesson]
    assert len(mine) >= 2, f"lesson {lesson} has {len(mine)} exercise(s); a lesson needs two"
    source = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
    for ex in mine:
        assert f'check("{ex.name}"' in source, f"lesson {lesson} never checks its exercise {ex.name!r}"


def test_the_solutions_table_lists_every_exercise():
    assert set(SOLUTIONS) == set(EXERCISES) and collections.Counter(e.lesson for e in EXERCISES.values())
