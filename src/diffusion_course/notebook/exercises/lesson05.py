"""Lesson 05's exercises: samplers."""
from __future__ import annotations

from .checking import exercise  # noqa: F401
