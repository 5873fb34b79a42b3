"""Command-line runners that need more than a few lines: `build` (the asset graph in the Dagster instance).

The argument parser and the other commands are in `llm_assets/__main__.py`.
"""

import os

DEBUG_ENV = "LLM_ASSETS_DEBUG"  # set: a failing command, and every run and program it starts, shows tracebacks


def debug_requested() -> bool:
    """$LLM_ASSETS_DEBUG says to show tracebacks (1, true, yes or on)."""
    return os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes", "on")
