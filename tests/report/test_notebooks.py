"""The notebooks execute headless (nbclient, kernel python3) on real results and are stored without outputs.

Results: the committed results/ folder, else a tiny CPU sweep made by the `real_results` fixture
(tests/report/conftest.py). A broken notebook fails here, and so in CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# Optional test dependencies (the `test` extra): a machine without them skips this module instead of
# failing collection of the whole run (e.g. `pytest -m gpu` on a GPU machine with no Jupyter stack).
nbformat = pytest.importorskip("nbformat", reason="the notebook tests need nbformat (pip install '.[test]')")
NotebookClient = pytest.importorskip(
    "nbclient", reason="the notebook tests need nbclient (pip install '.[test]')").NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = ("01_speed_memory.ipynb", "02_hardware_comparison.ipynb", "03_blog_claim.ipynb")


def _outputs_text(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(str(output.get("data", {}).get("text/plain", "")))
            parts.append(str(output.get("data", {}).get("text/markdown", "")))
    return "\n".join(parts)


def _execute(name: str, results: Path, monkeypatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("REPBENCH_RESULTS", str(results))
    monkeypatch.setenv("PYTHONPATH", f"{REPO}")
    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    client = NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}})
    client.execute()
    return notebook


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_without_outputs_and_matches_its_builder(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOK_DIR / "build_notebooks.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    stored = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    assert all(not cell.get("outputs") and cell.get("execution_count") is None
               for cell in stored.cells if cell.cell_type == "code")
    expected = builder.build(name, builder.NOTEBOOKS[name])
    assert [c.source for c in stored.cells] == [c.source for c in expected.cells], \
        "notebook differs from notebooks/build_notebooks.py; run it to regenerate"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_on_real_results(name, real_results, monkeypatch):
    notebook = _execute(name, real_results, monkeypatch)
    text = _outputs_text(notebook)
    assert "results folder:" in text
    assert "No results found" not in text
    images = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, f"{name} displayed no figure"


@pytest.mark.slow
def test_notebook_says_clearly_when_there_are_no_results(tmp_path, monkeypatch):
    notebook = _execute("01_speed_memory.ipynb", tmp_path, monkeypatch)
    assert f"No results found for a run under {tmp_path}" in _outputs_text(notebook)
