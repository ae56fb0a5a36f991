"""The notebooks run from top to bottom, quickly, and are committed without outputs.

Each notebook is executed with nbclient on a kernel of this Python (the project's
environment) in a temporary working folder. With ``HCR_DATA_DIR`` set (CI sets it when the
project's data is present) the notebooks use the real data sets; without it, the digits
embedded in hcr. Any cell error fails the test, and so does a notebook running
longer than the 3 minutes the project allows.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Iterator

import nbclient  # the test extra (pip install -e '.[test]') brings nbclient, nbformat and ipykernel
import nbformat
import pytest

from helpers_train import hcr_cache  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
#: The issue's limit for one notebook on the project's 2-core machine.
LIMIT_S = 180


@pytest.fixture(scope="module")
def kernel_here(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``python3`` kernelspec that starts ipykernel with this interpreter (the project's
    environment), found before any other kernelspec installed on the machine."""
    import json

    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "hcr tests", "language": "python"}))
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(root))
    yield "python3"
    mp.undo()


def _outputs_text(nb: object) -> str:
    out = []
    for cell in nb.cells:  # type: ignore[attr-defined]
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                out.append(o.get("text", ""))
            elif "text/plain" in o.get("data", {}):
                out.append(o["data"]["text/plain"])
    return "".join(out)


def test_the_three_notebooks_are_there() -> None:
    assert [p.name for p in NOTEBOOKS] == ["01-data-exploration.ipynb", "02-training.ipynb", "03-results.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs: run  python tools/strip_notebooks.py"
    assert nb.metadata["kernelspec"]["name"] == "python3"


def _data_dir_has(name: str) -> bool:
    env = os.environ.get("HCR_DATA_DIR")
    return env is not None and (Path(env) / name).is_dir()


@pytest.mark.usefixtures("hcr_cache")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel_here: str) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")  # figures are still shown inline by the kernel's own backend
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=LIMIT_S, kernel_name=kernel_here, resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    seconds = time.perf_counter() - start
    assert seconds < LIMIT_S, f"{path.name} took {seconds:.0f} s (limit {LIMIT_S} s)"
    text = _outputs_text(nb)
    # the notebook used the data it should have: the real sets when HCR_DATA_DIR holds them
    if _data_dir_has("emnist") and path.stem != "02-training":
        assert "data: emnist-byclass" in text
    elif _data_dir_has("mnist"):
        assert "data: mnist" in text
    elif not os.environ.get("HCR_DATA_DIR"):
        assert "data: digits" in text
    print(f"{path.name}: {seconds:.1f} s")


def test_strip_tool_removes_outputs(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("strip_notebooks", REPO / "tools" / "strip_notebooks.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)"), nbformat.v4.new_markdown_cell("text")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[0].execution_count = 1
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert tool.main(["--check", str(path)]) == 1
    assert tool.main([str(path)]) == 0
    clean = nbformat.read(path, as_version=4)
    assert tool.is_clean(clean) and clean.cells[0].source == "print(1)" and clean.cells[1].source == "text"
    assert tool.main(["--check", str(path)]) == 0
