"""int8 post-training quantization of an exported form, measured and never gated.

The narrow interface a runtime calls (ONNX Runtime today; OpenVINO and TensorRT plug in the same way):
- `calibration.InputSet`: a fixed, seeded set of inputs in the graph's static shape, fed in batches; the
  calibration set and the calibration-independent evaluation set are two of them, drawn from different
  seeds (`calibration_set`, `evaluation_set`).
- `onnx_static.quantize_onnx(fp32_graph_bytes, calibration_batches) -> QuantizedGraph`: ONNX Runtime's
  static quantization (QDQ, per-channel int8 weights, MinMax calibration); `scheme.QuantScheme` says
  what was done, as the rows record it.
- `error.quant_error(reference, output) -> QuantError`: relative error, SQNR in dB and top-1 agreement
  of an int8 output against an fp32 one.
- `command`: `bench quant`, the deploy kernels' range and the int8 SQNR of both forms per network.

The correctness gate stays exact: a form is quantized only after its fp32 graph passed the fp32 gate
(`bench.models.agreement.GATED_IN`); int8 error is a measurement with no tolerance.
"""
