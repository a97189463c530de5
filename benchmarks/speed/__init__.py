"""Speed benchmarks: how fast the network, the pipeline, the video front-end and `avdiff synth` run."""
