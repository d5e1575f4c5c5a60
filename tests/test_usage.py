"""Bad input is said one way (`bench.usage`): the message names the value, the valid choices and the close
matches, and every command turns a UsageError into exit 2 before anything runs."""

from __future__ import annotations

import pytest

from bench import cli
from bench.usage import UsageError, pick, unknown


def test_unknown_names_the_value_the_choices_and_the_close_match():
    error = unknown("precision", "fp61", ["fp32", "fp16", "bf16"])
    assert isinstance(error, UsageError) and isinstance(error, ValueError)
    message = str(error)
    assert message.startswith("precision 'fp61' is unknown (did you mean 'fp16'")
    assert message.endswith("; known: fp32, fp16, bf16")


def test_a_far_off_value_gets_no_invented_hint_and_several_are_named_together():
    assert str(unknown("device", "xla", ["auto", "cpu", "cuda"])) == "device 'xla' is unknown; known: auto, cpu, cuda"
    message = str(unknown("[axes]: key", ["batch", "zzz"], ["model", "batch_size"]))
    assert message.startswith("[axes]: key 'batch', 'zzz' is unknown (did you mean 'batch_size'?)")


def test_unknown_builds_the_subclass_asked_for_with_the_note_after_the_choices():
    class NarrowError(UsageError):
        pass

    error = unknown("model", "resnet5", ["resnet18", "resnet50"], also="; external models: 'timm:<name>'",
                    error=NarrowError)
    assert type(error) is NarrowError
    assert str(error).endswith("known: resnet18, resnet50; external models: 'timm:<name>'")


def test_pick_reads_a_comma_list_of_choices_and_refuses_an_unknown_or_empty_one():
    assert pick("dtype", " float32,float64 ", ["float32", "float64"]) == ["float32", "float64"]
    with pytest.raises(UsageError, match=r"dtype 'float61' is unknown \(did you mean 'float64'"):
        pick("dtype", "float32,float61", ["float32", "float64"])
    with pytest.raises(UsageError, match="dtype ',' is unknown; known: float32, float64"):
        pick("dtype", ",", ["float32", "float64"])


@pytest.mark.parametrize("argv, hint", [
    (["rum"], "command 'rum' is unknown (did you mean 'run'?)"),
    (["run", "--preset", "smoke", "--models", "repvgg_a9", "--out", "{out}"], "(did you mean 'repvgg_a"),
    (["profile", "--model", "resnet5", "--out", "{out}"], "model 'resnet5' is unknown (did you mean 'resnet50'"),
    (["compare", "{out}/base", "{out}/new", "--fail-on", "speedups"], "(did you mean 'speedup'?)"),
    (["quant", "--models", "repvgg_a0", "--quantizer", "onnxruntim", "--out", "{out}"],
     "--quantizer 'onnxruntim' is unknown (did you mean 'onnxruntime'?); known: onnxruntime, openvino"),
])
def test_an_unknown_value_exits_2_with_the_hint_before_anything_runs(argv, hint, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main([a.replace("{out}", str(out)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert hint in err and "known: " in err, err
    assert err.count("\n") == 1, "one line, no traceback"
    assert not out.exists(), "nothing was written (compare's runs are not even read)"
