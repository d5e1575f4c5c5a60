"""Export a model's deploy (or training) form to ONNX, TorchScript or a state dict: `bench export`."""
