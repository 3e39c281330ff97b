"""Re-run the tutorial notebooks against a real local FLARE and store their outputs — the reference nbval compares.

    python tests/refresh_notebooks.py notebooks/0*.ipynb

It runs each notebook as ``pytest --nbval --flarenb-poc`` will: a fresh kernel in the notebook's folder, a POC
in a temporary HOME (flarenb's pytest plugin), each cell's id sent with its execute request, and display updates
*not* applied (nbval compares a cell's first display of a live view; JupyterLab shows the update).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient


class NbvalLikeClient(NotebookClient):
    def _update_display_id(self, display_id, msg):  # nbval ignores update_display_data
        return None


def refresh(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    client = NbvalLikeClient(
        nb,
        timeout=600,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )

    def send_cell_id(cell, cell_index, **kwargs):
        client.kc.session.metadata = {"cellId": cell.get("id")}

    client.on_cell_execute = send_cell_id
    client.execute()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and "NBVAL_RAISES_EXCEPTION" not in cell.source:
                raise SystemExit(f"{path}: unexpected error in cell {cell.get('id')}: {out.get('evalue')}")
    nbformat.write(nb, path)
    print(f"refreshed {path}")


def main(paths: list[str]) -> None:
    from flarenb.pytest_plugin import _POC

    _POC.start()
    try:
        for p in paths:
            refresh(Path(p).resolve())
    finally:
        _POC.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
