"""The Colab notebooks run end to end on CPU with their tiny settings, and are stored
without outputs. Each runs in its own kernel (nbclient) under a timeout."""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from conftest import REPO, SHARED_DATA

NOTEBOOKS = sorted((REPO / "experiments" / "notebooks").glob("*.ipynb"))


def execute(notebook, timeout_seconds: int = 600):
  """Runs every cell in a fresh kernel from the project's root; a failing cell raises."""
  NotebookClient(notebook, timeout=timeout_seconds, kernel_name="python3",
                 resources={"metadata": {"path": str(REPO)}}).execute()
  return notebook


def with_parameters(path: pathlib.Path, workdir: pathlib.Path):
  """The notebook with its parameters cell replaced: tiny presets, a temporary workdir."""
  notebook = nbformat.read(path, as_version=4)
  cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
  assert len(cells) == 1, f"{path.name}: one cell tagged 'parameters'"
  cells[0].source = (f'SIZE = "tiny"\nWORKDIR = {str(workdir)!r}\n'
                     f'DATA_DIR = {str(SHARED_DATA)!r}\nREPOSITORY = ""\n')
  return notebook


def test_there_is_a_notebook():
  assert [p.name for p in NOTEBOOKS] == ["quickstart.ipynb"] or len(NOTEBOOKS) > 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
  notebook = nbformat.read(path, as_version=4)
  nbformat.validate(notebook)
  for cell in notebook.cells:
    if cell.cell_type == "code":
      assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
  assert "setup_tpu" not in path.read_text()  # Obsolete on today's TPU runtimes.


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_on_cpu_with_tiny_settings(path, tmp_path):
  notebook = execute(with_parameters(path, tmp_path / "runs"))
  text = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                 for output in cell.outputs)
  assert "presets: tiny" in text
  assert "Traceback" not in text
  images = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
            if "image/png" in o.get("data", {})]
  assert len(images) >= 2  # The cross-attention map and the training curves.


@pytest.mark.slow
def test_a_failing_cell_fails_the_run(tmp_path):
  notebook = nbformat.v4.new_notebook(cells=[
      nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('cell')")])
  with pytest.raises(CellExecutionError, match="cell"):
    execute(notebook, timeout_seconds=120)
