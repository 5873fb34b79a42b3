"""The exploration and model notebooks execute cleanly against the smoke build's outputs."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("name", ["exploration.ipynb", "models.ipynb"])
def test_notebook_runs_on_smoke_outputs(name, smoke_build, monkeypatch):
    assert smoke_build.proc.returncode == 0, smoke_build.proc.stdout[-2000:]
    monkeypatch.setenv("LLM_ASSETS_LAKE", str(smoke_build.lake))
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no plot was drawn"


def test_notebooks_are_generated_from_make_notebooks():
    """The committed .ipynb files are what make_notebooks.py writes (edit the script, not the JSON)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, cells in (("exploration.ipynb", module.EXPLORATION), ("models.ipynb", module.MODEL)):
        committed = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert [c.source for c in committed.cells] == [c.source for c in cells], name
    assert os.path.exists(NOTEBOOKS / "make_notebooks.py")
