"""What the benchmark scripts share: where things are, the record of a run, result rows, run specs."""
