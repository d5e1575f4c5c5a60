"""`bench report` on real results (committed, else a tiny CPU sweep): figures, tables and report.md."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.cli import main
from bench.results.layout import hardware_dirs_of as hardware_dirs
from bench.report.runs import find_runs, latest_run, preset_of


def test_report_command_writes_figures_and_tables_for_a_run(real_results, tmp_path, capsys):
    run = latest_run(None, real_results)
    out = tmp_path / "report"
    assert main(["report", str(run), "--out", str(out)]) == 0
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "throughput_forms.png" in text and "speedup_heatmap.png" in text
    assert (out / "throughput_forms.png").stat().st_size > 5000
    assert (out / "throughput_forms.svg").is_file()
    table4 = pd.read_csv(out / "paper_table4.csv")
    assert len(table4) >= 1 and table4["speed_samples_s"].gt(0).all()
    assert "report:" in capsys.readouterr().out


def test_real_deploy_forms_have_valid_speedups(real_results, tmp_path):
    run = latest_run(None, real_results)
    main(["report", str(run), "--out", str(tmp_path)])
    speedups = pd.read_csv(tmp_path / "speedups.csv")
    assert len(speedups) >= 1 and speedups["speedup"].gt(0).all()
    bounded = speedups[speedups["speedup_lo"].notna()]
    assert (bounded["speedup_lo"] <= bounded["speedup"]).all()
    assert (bounded["speedup"] <= bounded["speedup_hi"]).all()
    # every interval is named; rows older than the median CI say that they have none
    assert speedups["speedup_interval"].notna().all()
    assert speedups.loc[speedups["speedup_lo"].isna(), "speedup_interval"].str.startswith("no interval").all()


def test_default_output_is_inside_the_run(real_results, tmp_path):
    import shutil

    run = latest_run(None, real_results)
    copy = tmp_path / run.parent.name / run.name
    shutil.copytree(run, copy)
    assert main(["report", str(copy)]) == 0
    assert (copy / "report" / "report.md").is_file()


def test_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_runs_are_found_with_their_preset_and_hardware(real_results):
    runs = find_runs(real_results)
    assert len(runs) >= 1
    assert all(preset == preset_of(run_id) for preset, run_id in zip(runs["preset"], runs["run_id"]))
    assert hardware_dirs([real_results]) == sorted({p.parent.resolve() for p in runs["path"]})


def test_a_bad_results_file_is_reported_not_a_traceback(tmp_path, capsys):
    run = tmp_path / "cpu-x" / "bad-00000000"
    run.mkdir(parents=True)
    (run / "summary.parquet").write_bytes(b"not parquet")
    assert main(["report", str(run)]) == 2
    assert "summary.parquet" in capsys.readouterr().err


def test_an_installed_package_reads_results_from_the_working_directory(tmp_path, monkeypatch):
    """After `pip install .` the package sits in site-packages: results are the working directory's."""
    import bench.results.layout as layout

    fake = tmp_path / "site-packages" / "bench" / "results" / "layout.py"
    fake.parent.mkdir(parents=True)
    monkeypatch.setattr(layout, "__file__", str(fake))
    monkeypatch.delenv(layout.RESULTS_ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    assert layout.results_root() == tmp_path / "results"


def test_every_command_defaults_to_the_one_results_root(tmp_path, monkeypatch):
    """`bench run`, `profile`, `verify`, `baseline` and `gpu-check` all write under `results_root()`."""
    import argparse

    import bench.results.layout as layout
    from bench.compare import baseline
    from bench.gpucheck import command as gpucheck
    from bench.parity import command as parity
    from bench.profile import command as profile
    from bench.sweep.driver import command as sweep

    monkeypatch.setenv(layout.RESULTS_ENV_VAR, str(tmp_path))
    for module, dest in ((sweep, "out"), (profile, "out"), (parity, "out"), (gpucheck, "results")):
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        assert Path(parser.get_default(dest)) == tmp_path, module.__name__
    parser = argparse.ArgumentParser()
    baseline.add_arguments(parser)
    assert Path(parser.parse_args(["show"]).results_root) == tmp_path
