"""avdiff's benchmark suite: speed (`speed/`) and quality (`quality/`) scripts, and what they share
(`common/`). Run each as a module from the repository root, so that `benchmarks` is importable
without path edits: `.venv/bin/python -m benchmarks.speed.sampling_speed --help`. Not part of the
installed package (the wheel holds `avdiff` only)."""
