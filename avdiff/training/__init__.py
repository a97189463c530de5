"""Training with Accelerate: the joint model, the loop, checkpoints, EMA and validation."""
