"""`avdiff demo`: synthetic corpus -> training -> video-to-speech and enhancement -> metrics -> report."""

from avdiff.demo.runner import DemoSettings, run_demo

__all__ = ["DemoSettings", "run_demo"]
