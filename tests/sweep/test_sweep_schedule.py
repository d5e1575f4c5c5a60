"""Which slot of a `LocalExecutor` runs which model's units (`bench.sweep.local.executor.Schedule`): plain data,
no processes. A slot looks ahead (a spare worker builds the next model while it measures) without ever
leaving another slot idle while a model is not started."""

from __future__ import annotations

import heapq

import pytest

from bench.sweep.local.executor import Schedule


def _simulate(durations: dict[str, float], n_slots: int) -> tuple[float, dict[str, int]]:
    """A run as the slots drive the schedule: a free slot takes a group, then (as its first unit starts)
    looks ahead; the slots start in index order. Returns when the last group ends and who ran what."""
    schedule = Schedule(durations, n_slots)
    free = [(0.0, slot) for slot in range(n_slots)]
    ran, end = {}, 0.0
    while free:
        now, slot = heapq.heappop(free)
        group = schedule.take(slot)
        if group is None:
            continue
        schedule.look_ahead(slot)
        ran[group], end = slot, max(end, now + durations[group])
        heapq.heappush(free, (now + durations[group], slot))
    return end, ran


def test_two_slots_and_two_models_run_side_by_side():
    """Before, the first slot claimed the second model as its look-ahead before the second slot asked:
    one GPU idled through the whole run."""
    assert _simulate({"a": 10.0, "b": 10.0}, n_slots=2) == (10.0, {"a": 0, "b": 1})


def test_a_free_slot_takes_a_group_another_slot_only_reserved():
    """Slot 0 measures a long model and reserved the next; slot 1 finishes its short one and starts the
    reserved model instead of idling until slot 0 is done (before: 15 s, the end spent on one slot)."""
    end, ran = _simulate({"long": 10.0, "next": 5.0, "short": 1.0}, n_slots=2)
    assert end == 10.0 and ran == {"long": 0, "short": 1, "next": 1}


@pytest.mark.parametrize("n_slots", [1, 2, 3])
def test_no_slot_idles_while_a_group_has_not_started(n_slots):
    """Whatever the durations, every group starts by the time the first slot runs out of its own work
    (greedy list scheduling: the makespan is at most the average load plus the longest group)."""
    durations = {f"m{i}": float(d) for i, d in enumerate([7, 1, 3, 9, 2, 2, 5, 1])}
    end, ran = _simulate(durations, n_slots)
    assert set(ran) == set(durations)
    assert end <= sum(durations.values()) / n_slots + max(durations.values())


def test_a_slot_looks_ahead_only_while_more_groups_wait_than_the_other_slots_could_take():
    schedule = Schedule(["a", "b", "c", "d"], n_slots=2)
    assert schedule.take(0) == "a" and schedule.look_ahead(0) == "b"
    assert schedule.look_ahead(0) is None, "one reservation per slot"
    assert schedule.take(1) == "c" and schedule.look_ahead(1) is None, "'d' is left for a free slot"
    assert schedule.take(0) == "b", "a slot runs what it reserved"
    assert schedule.take(0) == "d" and schedule.take(1) is None
    alone = Schedule(["a", "b"], n_slots=1)
    assert alone.take(0) == "a" and alone.look_ahead(0) == "b" and alone.take(0) == "b"


def test_two_slots_run_two_models_at_once_in_real_workers():
    """The executor follows the schedule: two slots (as on a two-GPU machine, here both on the CPU) and
    two models, each unit a real worker process (its unit aborts at once: only who ran it matters)."""
    from bench.results.cell import Cell
    from bench.sweep.local.executor import LocalExecutor
    from bench.sweep.protocol import UnitSpec

    specs = [UnitSpec(cells=(Cell(model=m, form="train", mode="infer", batch_size=1, precision="fp32",
                                  memory_format="contiguous", runtime="eager", resolution=32),),
                      device="cpu", faults=(("crash",),)) for m in ("repvgg_a0", "resnet18")]
    slots, statuses = [], []
    LocalExecutor([{}, {}], timeout_s=120).run(specs, lambda spec, slot: slots.append(slot),
                                               lambda spec, outcome, *_: statuses.append(outcome.cells[0].status))
    assert sorted(slots) == [0, 1] and statuses == ["error", "error"]
