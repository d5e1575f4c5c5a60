"""Measurement: timing regimes, memory, NVML telemetry, FLOPs, reproducibility switches, environment.

Each concern is one module, imported where it is used (nothing heavy happens at package import):

- `timing`: `TimingConfig`, `measure_latency(fn, device, regime, config) -> LatencyStats` with the regimes
  "cpu", "pipelined", "synchronized" and "cudagraph" (registry in `regimes`).
- `paired`: `measure_pair(fns, device, regime, config, timed_window, seed) -> PairMeasurement`: two
  forms timed in alternating blocks, the speedup with a 95% interval.
- `stats`: `LatencyStats.from_samples(...)` and the intervals, the one place where statistics are computed.
- `memory`: `take_baseline(device)` before the model is built, `measure_memory(fn, device, baseline)`.
- `nvml`: `TelemetrySampler(device)` (clocks, power, energy, temperature, clock-event reasons).
- `flops`: `count_macs(model, example_input)`, `peak_tflops(device_name, precision)`; the counter itself
  is `mac_counter.MacCounter` (FlopCounterMode's formulas without importing torch._dynamo).
- `precision_switches`: what a precision sets in torch (TF32, cuDNN autotuning; `apply_precision_settings`,
  `precision_settings` for a block, `dtype_for`, `autocast_context`) and `reproducibility_flags()`; the
  precision table itself is `bench.results.precision`.
- `env`: `fingerprint()`, `hardware_slug()`, `preflight()` and the `bench env` command.

This package never imports `bench.models` or `bench.sweep`: it times any zero-argument callable.
"""

__all__ = ["env", "flops", "mac_counter", "memory", "nvml", "paired", "precision_switches", "regimes", "stats", "timing"]
