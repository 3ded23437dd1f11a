"""Exercise checkers: they accept the reference, reject wrong answers with a hint, and tolerate unattempted cells."""
import pytest
import torch

from diffusion_course.exercises import SOLUTIONS, check, show_solution


@pytest.mark.parametrize("name", sorted(SOLUTIONS))
def test_reference_solution_passes_its_own_check(name, capsys):
    assert check(name, SOLUTIONS[name]) is True
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(SOLUTIONS))
def test_a_wrong_answer_is_rejected_with_a_hint(name, capsys):
    def wrong(*args):
        return SOLUTIONS[name](*args) * 1.01 + 0.01

    assert check(name, wrong) is False
    assert "✗" in capsys.readouterr().out


def test_unattempted_exercise_is_reported_not_failed(capsys):
    def todo(*args):
        raise NotImplementedError

    assert check("v_target", todo) is False
    assert "not attempted yet" in capsys.readouterr().out


def test_wrong_shape_is_named(capsys):
    assert check("attention_weights", lambda q, k: torch.zeros(1)) is False
    assert "expected a tensor of shape" in capsys.readouterr().out


def test_unknown_exercise_names_the_choices():
    with pytest.raises(ValueError, match="name must be one of"):
        check("nope", lambda: None)
    with pytest.raises(ValueError, match="name must be one of"):
        show_solution("nope")
