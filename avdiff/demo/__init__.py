"""`avdiff demo`: synthetic corpus -> training -> video-to-speech and enhancement -> metrics -> report.

`DemoSettings` is light; `run_demo` (training, models) loads on first use (PEP 562).
"""

from __future__ import annotations

from typing import Any

from avdiff.demo.settings import DemoSettings

__all__ = ["DemoSettings", "run_demo"]


def __getattr__(name: str) -> Any:
    """`run_demo` from avdiff.demo.runner, imported when first asked for."""
    if name != "run_demo":
        raise AttributeError(f"module 'avdiff.demo' has no attribute {name!r}")
    from avdiff.demo.runner import run_demo

    return run_demo
