"""The prestarted worker is started with the env of the slot that will adopt it (on CUDA the slot pins its
GPU with CUDA_VISIBLE_DEVICES), so the first unit of a GPU sweep does not start cold."""

from __future__ import annotations

from bench.sweep.local.executor import LocalExecutor, Worker, first_slot_env, gpu_slot_env


def test_a_prestarted_worker_on_a_gpu_machine_serves_the_first_gpu_slot(monkeypatch):
    """A real worker process, started as `bench run` starts it where CUDA_VISIBLE_DEVICES lists GPUs;
    the slot env is the one `LocalExecutor.for_device('cuda')` gives the first of them."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    worker = Worker.prestart()
    try:
        slot = gpu_slot_env("3", {})
        assert LocalExecutor([slot], timeout_s=10).slots[0] == {"CUDA_VISIBLE_DEVICES": "3"}
        assert worker.serves(("repvgg_a0", "eager"), slot)
        assert not worker.serves(("repvgg_a0", "eager"), gpu_slot_env("5", {}))
    finally:
        worker.kill()


def test_the_first_slots_env_is_known_before_torch_is_imported():
    assert first_slot_env(environ={"CUDA_VISIBLE_DEVICES": "GPU-1234, 1"}) == {"CUDA_VISIBLE_DEVICES": "GPU-1234"}
    assert first_slot_env(environ={}, nvidia_present=True) == {"CUDA_VISIBLE_DEVICES": "0"}
    assert first_slot_env(environ={}, nvidia_present=False) == {}  # the CPU slot
    assert first_slot_env(environ={"CUDA_VISIBLE_DEVICES": ""}, nvidia_present=True) == {}  # none visible
    assert first_slot_env("cpu", environ={"CUDA_VISIBLE_DEVICES": "0"}) == {}  # a CPU sweep on a GPU machine
