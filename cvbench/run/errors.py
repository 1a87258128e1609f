"""Errors a run raises for the user to fix; importable without torch, so the commands that
only read results start fast."""

from __future__ import annotations


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""
