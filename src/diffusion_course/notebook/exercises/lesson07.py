"""Lesson 07's exercises: text-to-image."""
from __future__ import annotations

from .checking import exercise  # noqa: F401
