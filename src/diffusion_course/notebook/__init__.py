"""Helpers for the notebooks only: plotting, widgets, and exercise checkers with their solutions. The library never
imports them."""
