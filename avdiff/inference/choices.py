"""The names of the score network's engines, apart from the engines (the CLI reads them without torch)."""

AUTO, TORCH, ONNXRUNTIME = "auto", "torch", "onnxruntime"
BACKEND_CHOICES = (AUTO, TORCH, ONNXRUNTIME)
