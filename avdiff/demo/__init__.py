"""`avdiff demo`: synthetic corpus -> training -> video-to-speech and enhancement -> metrics -> report.

`DemoSettings` is light; `run_demo` (training, models) loads on first use (`avdiff.lazy`).
"""

from __future__ import annotations

from avdiff.demo.settings import DemoSettings
from avdiff.lazy import lazy_exports

__all__ = ["DemoSettings", "run_demo"]

__getattr__ = lazy_exports(__name__, {"run_demo": "avdiff.demo.runner"})
