#!/usr/bin/env python
"""Thin wrapper: `python sampling/generate.py ...` is `avdiff generate ...`."""

import sys

from avdiff.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["generate", *sys.argv[1:]]))
