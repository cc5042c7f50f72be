"""The console every message, warning and prompt of cardctl goes to: standard error, so that
standard output carries only the command's result (README, "Output")."""

from __future__ import annotations

from rich.console import Console

err = Console(stderr=True, highlight=False, soft_wrap=True)
