#!/usr/bin/env python
"""Thin wrapper: `python sampling/enhance.py ...` is `avdiff enhance ...`."""

import sys

from avdiff.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["enhance", *sys.argv[1:]]))
