"""int8 post-training quantization of an exported form, measured and never gated.

The narrow interface a runtime calls (ONNX Runtime today; OpenVINO and TensorRT plug in the same way):
- `calibration.InputSet`: a fixed, seeded set of inputs in the graph's static shape, fed in batches; the
  calibration set and the calibration-independent evaluation set are two of them, drawn from different
  seeds (`calibration_set`, `evaluation_set`).
- `onnx_static.quantize_onnx(fp32_graph_bytes, calibration_batches) -> QuantizedGraph`: ONNX Runtime's
  static quantization (QDQ, per-channel int8 weights, MinMax calibration); `ort.open_int8` opens a form's
  fp32 and int8 sessions from one export. `openvino_static.open_int8`: OpenVINO's NNCF quantization of
  the same export, where openvino and nncf are installed. `scheme.QuantScheme` says what was done, as the
  rows record it; `quantizers.QUANTIZERS` names them for `bench quant`.
- `evaluate.Int8Form`: one form's fp32 and int8 graphs as callables (bound to the timing input, or on
  any array); `evaluate.measure_errors` measures them against their own fp32 and the training form's.
- `error.quant_error(reference, output) -> QuantError`: relative error, SQNR in dB and top-1 agreement
  of an int8 output against an fp32 one.
- `command`: `bench quant`, the deploy kernels' range and the int8 SQNR of both forms per network.

The correctness gate stays exact: the fp32 graph that is quantized is the one gated, under the fp32
tolerance (`bench.models.agreement.GATED_IN`); a form that fails it makes its row `mismatch` (no speedup)
in a sweep and gets no int8 numbers in `bench quant`. int8 error is a measurement with no tolerance.
"""
