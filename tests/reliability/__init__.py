"""Reliability harnesses: bad inputs through the real command line, and kill -9 fault loops.

The tests import them (`from reliability import fault_injection`: tests/ is on pytest's import
path); run at length from the repository root with `PYTHONPATH=tests .venv/bin/python -m
reliability.NAME`, which also puts the repository root (benchmarks.common.record) on the path.
"""
