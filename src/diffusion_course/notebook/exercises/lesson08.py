"""Lesson 08's exercises: latent diffusion."""
from __future__ import annotations

from .checking import exercise  # noqa: F401
