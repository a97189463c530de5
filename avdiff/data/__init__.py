"""Prepared corpora: JSONL manifests (`avdiff.data.manifest`)."""
