"""The one conversion from measurement objects to row columns (`bench.sweep.worker.collect`)."""

from __future__ import annotations

import dataclasses

import pytest

from bench.measure.memory import MemoryStats
from bench.measure.nvml import Telemetry
from bench.measure.stats import LatencyStats
from bench.models.gate import GateResult
from bench.results.schema import COLUMNS
from bench.sweep.worker import collect
from bench.results.cell import Cell
from bench.sweep.worker.runtimes import RuntimeRecord

CELL = Cell(model="repvgg_a0", form="deploy", mode="infer", batch_size=8, precision="fp32",
            memory_format="contiguous", runtime="compile", resolution=224)


def _stats() -> LatencyStats:
    return LatencyStats.from_samples("pipelined", [2.0, 2.1, 1.9, 2.0] * 10, stop_reason="precision")


def _full_record() -> collect.CellRecord:
    return collect.CellRecord(
        env={"torch_version": "x", "seed": 0}, gate=GateResult(1e-6, 2e-6, 1e-4), params=8_000_000,
        macs=1_400_000_000, stats=_stats(), host_enqueue_ms=1.9,
        runtime=RuntimeRecord("torch 2.x", settings=(("freezing", True), ("binary_folding", 16)), build_ms=5.0,
                              first_call_ms=900.0, cache_cold=True, convs=44, batchnorms=0,
                              columns=(("ort_provider", "CPUExecutionProvider"),)),
        flush_l2=True, telemetry=Telemetry(power_w_mean=300.0, energy_j=30.0, throttled=False,
                                           throttle_reasons=("sw_power_cap",),
                                           reason_fractions=(("sw_power_cap", 0.25),)),
        energy_j=30.0, peak_tflops=989.0,
        memory=MemoryStats(10.0, 12.0, None, None, None, 500.0))


def test_every_column_the_record_writes_is_a_result_column():
    fields = _full_record().fields(CELL)
    assert set(fields) <= set(COLUMNS), sorted(set(fields) - set(COLUMNS))


def test_the_record_fills_the_derived_columns_from_its_measurements():
    fields = _full_record().fields(CELL)
    assert fields["latency_ms_median"] == pytest.approx(2.0)
    assert fields["throughput_samples_s"] == pytest.approx(8 * 1000 / 2.0)
    assert fields["first_call_ms"] == 900.0 and fields["compile_cache_cold"] is True
    assert fields["host_enqueue_ms_median"] == 1.9 and fields["host_bound"] is True  # 1.9 >= 0.9 x 2.0
    assert fields["energy_j_per_sample"] == pytest.approx(30.0 / (40 * 8))  # the cell's own 40 calls
    assert fields["throttle_reasons"] == "sw_power_cap"
    assert fields["throttle_reason_fractions"] == "sw_power_cap:0.25"
    assert fields["pct_of_peak"] == pytest.approx(100 * fields["tflops_achieved"] / 989.0)
    assert fields["params_m"] == 8.0 and fields["gmacs"] == 1.4
    assert fields["max_rel_err"] == 2e-6 and fields["peak_rss_mib"] == 500.0
    assert fields["runtime_settings"] == "freezing=True, binary_folding=16"
    assert (fields["runtime_convs"], fields["runtime_batchnorms"], fields["runtime_build_ms"]) == (44, 0, 5.0)
    assert fields["ort_provider"] == "CPUExecutionProvider"


def test_a_record_cut_short_by_a_failure_keeps_what_was_measured():
    partial = collect.CellRecord(env={"seed": 0}, params=10, macs=None)
    fields = partial.fields(dataclasses.replace(CELL, runtime="eager"))
    assert fields == {"seed": 0, "params_m": 1e-5, "gmacs": None}


@pytest.mark.parametrize("names, kind", [
    (collect.TIMING_FIELDS.values(), LatencyStats), (collect.MEMORY_FIELDS, MemoryStats),
    (collect.TELEMETRY_FIELDS, Telemetry),
])
def test_every_attribute_read_exists_on_its_measurement_type(names, kind):
    attributes = {f.name for f in dataclasses.fields(kind)} | {n for n in dir(kind) if not n.startswith("_")}
    assert set(names) <= attributes, sorted(set(names) - attributes)


def test_each_form_of_a_pair_gets_its_own_energy_not_the_shared_windows_power_times_its_latency():
    """Same window, same power: deploy twice as fast but drawing 1.5x the power of training per call. With
    the window's mean power times each latency their ratio would be the latency ratio (2); each form's own
    counter deltas give 2 / 1.5."""
    window = Telemetry(power_w_mean=400.0, energy_j=40.0, duration_s=0.1)
    train = LatencyStats.from_samples("pipelined", [2.0] * 10, stop_reason="converged")
    deploy = LatencyStats.from_samples("pipelined", [1.0] * 20, stop_reason="converged")
    rows = {form: collect.CellRecord(stats=stats, telemetry=window, energy_j=energy).fields(
        dataclasses.replace(CELL, form=form, runtime="eager"))
        for form, stats, energy in (("train", train, 20.0), ("deploy", deploy, 30.0))}
    per_sample = {form: row["energy_j_per_sample"] for form, row in rows.items()}
    assert per_sample["train"] == pytest.approx(20.0 / (10 * 8))
    assert per_sample["train"] / per_sample["deploy"] == pytest.approx(2 / 1.5)
    no_counter = collect.CellRecord(stats=train, telemetry=window, energy_j=None).fields(CELL)
    assert no_counter["energy_j_per_sample"] is None  # never the shared window's
