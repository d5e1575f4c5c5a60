"""Config parsing and validation: bad input is rejected with the valid choices, before anything runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench import cli
from bench.results.schema import AXES
from bench.sweep.plan.axes import CHOICES, ConfigError
from bench.sweep.plan.config import (
    from_dict, load_file, load_preset, preset_names, validate, with_overrides,
)

PRESETS = ("paper", "full", "blog", "smoke")


def _raw(**axes) -> dict:
    return {"name": "t", "axes": {"model": ["repvgg_a0"], **axes}}


def test_presets_ship_and_validate_against_the_model_registry():
    assert set(PRESETS) <= set(preset_names())
    for name in PRESETS:
        config = validate(load_preset(name))
        assert config.name == name
        assert set(config.axes) == set(AXES)


def test_paper_preset_is_table4_setting():
    config = load_preset("paper")
    assert config.values("batch_size") == (128,)
    assert config.values("precision") == ("fp32",)
    assert config.values("resolution") == (224,)
    assert set(config.values("form")) == {"train", "deploy"}
    models = config.values("model")
    assert any(m.startswith("repvgg_") for m in models) and any(m.startswith("resnet") for m in models)


def test_full_preset_covers_every_axis_value():
    """Every value but the runtimes that need an extra package (ONNX Runtime, OpenVINO, TensorRT), which
    are asked for by name (`--runtime eager,onnxruntime`), and int8, which only a quantizing runtime runs
    (`--precision int8 --runtime onnxruntime`)."""
    config = load_preset("full")
    left_out = {"runtime": {"onnxruntime", "onnxruntime_trt", "openvino", "tensorrt"}, "precision": {"int8"}}
    for axis, valid in CHOICES.items():
        expected = set(valid) - left_out.get(axis, set())
        assert set(config.values(axis)) == expected, axis
    assert config.values("batch_size") == (1, 8, 32, 64, 128, 256)


def test_unknown_top_level_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"'colour' is unknown; known: name, description, axes"):
        from_dict({**_raw(), "colour": "blue"})


def test_unknown_axis_lists_axes():
    with pytest.raises(ConfigError, match=r"\[axes\]: key 'batch' is unknown \(did you mean 'batch_size'\?\); "
                                          r"known: model, form"):
        from_dict(_raw(batch=[1]))


def test_bad_precision_lists_valid_precisions():
    with pytest.raises(ConfigError, match=r"precision 'fp64' is unknown \(did you mean 'fp16'\?\); "
                                          r"known: fp32, tf32, fp16, bf16"):
        from_dict(_raw(precision=["fp32", "fp64"]))


def test_bad_batch_and_empty_axis():
    with pytest.raises(ConfigError, match="positive integers"):
        from_dict(_raw(batch_size=[0]))
    with pytest.raises(ConfigError, match="is empty"):
        from_dict(_raw(form=[]))
    with pytest.raises(ConfigError, match="must be a list"):
        from_dict(_raw(runtime="eager"))


def test_unknown_model_lists_known_models():
    config = from_dict(_raw(model=["repvgg_a9"]))
    with pytest.raises(ConfigError, match=r"model 'repvgg_a9' is unknown \(did you mean 'repvgg_a2', .*\); "
                                          r"known: .*repvgg_a0"):
        validate(config)


def test_unknown_timing_and_run_keys():
    with pytest.raises(ConfigError, match=r"\[timing\]: key 'min_samplez' is unknown "
                                          r"\(did you mean 'min_samples'.*; known: .*min_samples"):
        from_dict({**_raw(), "timing": {"min_samplez": 3}})
    with pytest.raises(ConfigError, match=r"device 'tpu' is unknown \(did you mean 'cpu'\?\); known: auto, cpu, cuda"):
        from_dict({**_raw(), "run": {"device": "tpu"}})


def test_overrides_replace_axes_and_change_the_run_id():
    base = load_preset("paper")
    changed = with_overrides(base, {"model": ["repvgg_a0", "resnet18"], "batch_size": [1, 64]})
    assert changed.values("model") == ("repvgg_a0", "resnet18")
    assert changed.values("batch_size") == (1, 64)
    assert base.run_id("cpu") == load_preset("paper").run_id("cpu")
    assert changed.run_id("cpu") != base.run_id("cpu")
    assert with_overrides(base, cell_timeout_s=5).run_id("cpu") == base.run_id("cpu")
    with pytest.raises(ConfigError, match="'nhwc' is unknown; known: contiguous, channels_last"):
        with_overrides(base, {"memory_format": ["nhwc"]})


def test_toml_file_roundtrip(tmp_path: Path):
    path = tmp_path / "mine.toml"
    path.write_text('[axes]\nmodel = ["resnet18"]\nbatch_size = [2, 4]\n[run]\ndevice = "cpu"\n')
    config = load_file(path)
    assert config.name == "mine" and config.device == "cpu"
    assert config.values("batch_size") == (2, 4)
    assert config.values("form") == ("train", "deploy")
    path.write_text("[axes\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_file(path)


@pytest.mark.parametrize("argv, message", [
    (["--preset", "smoke", "--precision", "fp64"],
     "'fp64' is unknown (did you mean 'fp16'?); known: fp32, tf32, fp16, bf16"),
    (["--preset", "smoke", "--models", "repvgg_a9"], "known: "),
    (["--preset", "smoke", "--batch", "1,x"], "comma-separated list of integers"),
    (["--preset", "nosuch"], "known: blog, full, paper, smoke"),
    ([], "give --preset"),
])
def test_cli_rejects_bad_input_before_running(argv, message, tmp_path, capsys):
    out = tmp_path / "results"
    assert cli.main(["run", *argv, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_cli_device_cuda_without_cuda_exits_2(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "results"
    assert cli.main(["run", "--preset", "smoke", "--device", "cuda", "--out", str(out)]) == 2
    assert "torch.cuda.is_available() is False" in capsys.readouterr().err
    assert not out.exists()


def test_cli_dry_run_lists_cells_and_skip_reasons(tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["--preset", "smoke", "--device", "cpu", "--precision", "fp32,fp16", "--dry-run", "--out", str(out)]
    assert cli.main(["run", *argv]) == 0
    text = capsys.readouterr().out
    assert "fp16 not timed on CPU" in text
    assert "20 cells: 10 to run, 10 skipped" in text
    assert not out.exists()


def test_the_validated_timing_travels_and_the_run_id_hashes_the_timing_a_config_sets(tmp_path):
    """`[timing]` becomes the `TimingConfig` units are timed with; the run id hashes the keys the table
    spelled out (as it always did: a preset that spells out a default keeps its run folder) and any
    setting changed on the object."""
    from bench.measure.timing import TimingConfig
    from bench.sweep.driver.runner import plan

    plain = from_dict(_raw())
    spelt = from_dict({**_raw(), "timing": {"min_samples": 10}})
    assert spelt.timing == plain.timing == TimingConfig() and spelt.timing_keys == ("min_samples",)
    assert spelt.timing_identity() == {"min_samples": 10} and plain.timing_identity() == {}
    assert spelt.run_id("cpu", "m") != plain.run_id("cpu", "m")
    longer = dataclasses.replace(plain, timing=dataclasses.replace(plain.timing, timeout_s=60.0))
    assert longer.run_id("cpu", "m") != plain.run_id("cpu", "m")
    planned = plan(dataclasses.replace(longer, device="cpu"), out=tmp_path)
    assert planned.unit_spec(planned.cells[:1]).timing is longer.timing


def test_the_run_id_depends_on_the_machine(monkeypatch):
    """Another machine gets its own folder: it must not 'resume' runs committed from elsewhere."""
    import bench.sweep.plan.config as config_module

    config = load_preset("smoke")
    here = config.run_id("cpu")
    monkeypatch.setattr(config_module, "machine_id", lambda: "another-machine")
    assert config.run_id("cpu") != here
    assert config.run_id("cpu").startswith("smoke-")


@pytest.mark.parametrize("timing, message", [
    ({"min_time_s": "fast"}, r"min_time_s = 'fast' must be a number"),
    ({"timeout_s": -1}, r"timeout_s must be a finite number > 0"),
    ({"min_time_s": 5.0, "timeout_s": 1.0}, r"must be >= min_time_s"),
    ({"timeout_s": float("nan")}, r"timeout_s = nan must be finite"),
    ({"min_time_s": float("inf")}, r"min_time_s = inf must be finite"),
    ({"min_samples": 2.5}, r"min_samples = 2.5 must be a whole number"),
    ({"min_samples": True}, r"min_samples = True must be a whole number"),
])
def test_timing_values_are_checked_against_the_timing_class(timing, message):
    with pytest.raises(ConfigError, match=message):
        from_dict({**_raw(), "timing": timing})


@pytest.mark.parametrize("run, message", [
    ({"seed": 1.7}, r"seed must be a whole number from 0 to 2\*\*64 - 2 \(18446744073709551614\); got 1.7"),
    ({"seed": 2**64 + 5}, r"seed must be a whole number from 0 to 2\*\*64 - 2 .*got 18446744073709551621"),
    ({"seed": 2**64 - 1}, r"seed must be a whole number from 0 to 2\*\*64 - 2"),
    ({"seed": "1"}, r"seed must be a whole number"),
    ({"num_threads": -2}, r"num_threads must be a whole number >= 1"),
    ({"num_threads": 0}, r"num_threads must be a whole number >= 1"),
    ({"cell_timeout_s": float("nan")}, r"cell_timeout_s must be a positive, finite number"),
    ({"cell_timeout_s": float("inf")}, r"cell_timeout_s must be a positive, finite number"),
])
def test_run_values_are_never_coerced(run, message):
    with pytest.raises(ConfigError, match=message):
        from_dict({**_raw(), "run": run})


def test_tables_must_be_tables():
    with pytest.raises(ConfigError, match=r"\[timing\] must be a table"):
        from_dict({**_raw(), "timing": [1, 2]})
    with pytest.raises(ConfigError, match=r"\[run\] must be a table"):
        from_dict({**_raw(), "run": "cpu"})


def test_cli_refuses_negative_threads_and_fractional_seed(tmp_path, capsys):
    out = tmp_path / "results"
    assert cli.main(["run", "--preset", "smoke", "--threads", "-1", "--out", str(out)]) == 2
    assert "num_threads must be a whole number >= 1" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("run_id", ["..", ".", "", " ", "a/b", ".hidden", "a\nb", "tab\tid", "x "])
def test_run_ids_must_be_one_plain_name(run_id, tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["--preset", "smoke", "--device", "cpu", "--run-id", run_id, "--dry-run", "--out", str(out)]
    assert cli.main(["run", *argv]) == 2
    assert "must be a single plain folder name" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("run_id", ["baselines", "cells", "Cells", "traces"])
def test_run_ids_that_readers_hide_are_refused_with_the_reason(run_id, tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["--preset", "smoke", "--device", "cpu", "--run-id", run_id, "--dry-run", "--out", str(out)]
    assert cli.main(["run", *argv]) == 2
    err = capsys.readouterr().err
    assert f"run id '{run_id}' is reserved" in err and "reserved: baselines, cells, traces" in err
    assert not out.exists()


def test_the_largest_seed_runs_and_a_config_name_is_a_folder_name():
    assert from_dict({**_raw(), "run": {"seed": 2**64 - 2}}).seed == 2**64 - 2
    with pytest.raises(ConfigError, match=r"name 'a\\nb' starts the run id"):
        from_dict({**_raw(), "name": "a\nb"})


def test_out_naming_a_file_is_refused(tmp_path, capsys):
    out = tmp_path / "results.txt"
    out.write_text("not a folder")
    assert cli.main(["run", "--preset", "smoke", "--device", "cpu", "--dry-run", "--out", str(out)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_a_config_that_is_not_utf8_is_refused_with_a_message(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes('[axes]\nmodel = ["repvgg_a0"]\ndescription = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_file(path)


@pytest.mark.parametrize("name, message", [
    ("timm:repvgg_a0", "needs the 'timm' package"),
    ("torchvision:resnet18", "needs the 'torchvision' package"),
])
def test_external_models_need_their_library_at_plan_time(name, message):
    pytest.importorskip("torch")
    import importlib.util

    if importlib.util.find_spec(name.split(":")[0]) is not None:
        pytest.skip(f"{name.split(':')[0]} is installed here")
    with pytest.raises(ConfigError, match=message):
        validate(from_dict(_raw(model=[name])))


def test_the_axes_are_declared_once_and_read_by_config_cells_and_cli():
    import argparse

    from bench.results.schema import AXES, AXIS_SPECS
    from bench.sweep.plan.cells import ORDER
    from bench.sweep.driver.command import add_arguments
    from bench.sweep.plan.config import DEFAULT_AXES

    assert tuple(a.name for a in AXIS_SPECS) == AXES and sorted(ORDER) == sorted(AXES) and ORDER[-1] == "form"
    assert set(DEFAULT_AXES) == set(AXES) - {"model"}
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for axis in AXIS_SPECS:
        for flag in axis.flags:
            assert getattr(parser.parse_args([flag, "x"]), axis.name) == "x"
