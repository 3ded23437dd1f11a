"""Lesson 06's exercises: class guidance."""
from __future__ import annotations

from .checking import exercise  # noqa: F401
