"""A pytest plugin for gpu-check's pytest step (`-p bench.gpucheck.pytest_plugin`): each `gpu`-marked test
carries the property `marker=gpu` into the JUnit XML, so the step's verdict counts the gpu tests' own
outcomes, not what collection made of other modules (a module skipped by a module-level
`pytest.importorskip` of a package the GPU machine lacks lands in the XML as a skipped case too)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

GPU_PROPERTY = ("marker", "gpu")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.user_properties.append(GPU_PROPERTY)
