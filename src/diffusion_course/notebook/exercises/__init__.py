"""Exercises: a checker and a reference solution for each, so a lesson stays short.

In a lesson, a learner fills in a function, then a check cell calls `check(name, their_fn)`: it runs the function on a
few fixed inputs, compares it with the reference solution and prints "✓ correct" or what is wrong (and a hint). While
the function still raises NotImplementedError it says "not attempted yet", without failing. `show_solution(name)`
prints the reference solution.

Each lesson's exercises live in `lessonNN.py`, registered with `checking.exercise(...)`; `EXERCISES` lists them all.
"""
from . import lesson01, lesson02, lesson03, lesson04, lesson05, lesson06, lesson07, lesson08  # noqa: F401,I001  (register)
from .checking import EXERCISES, Exercise, check, difference, exercise, show_solution  # noqa: F401

#: {name: reference solution}
SOLUTIONS = {name: ex.solution for name, ex in EXERCISES.items()}
