"""Quality benchmarks: how well trained models do under settings, samplers and inputs, on held-out data."""
