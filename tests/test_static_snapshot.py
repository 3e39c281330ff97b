"""A saved, executed notebook keeps a static snapshot of a job's logs that nbconvert renders without a kernel.

The notebook (run in-process with nbclient; the kernel inherits the POC's HOME and workspace) submits a real
1-round job, waits for it, and displays ``job.view()`` after the end. The saved ``.ipynb`` and its HTML
export must show the header (job id, final status) and the last lines of each site as escaped text, and the
notebook must not carry widget state (``metadata.widgets``).
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.poc

SITES = ("server", "site-1", "site-2")


def _export(dest: Path) -> Path:
    tests = str(Path(__file__).resolve().parent)
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from conftest import export_job

    return export_job(dest, name="static-snapshot", rounds=1, train_args="--sleep 1")


def _texts(outputs: list, mime: str) -> str:
    out = []
    for o in outputs:
        if o.get("output_type") == "stream":
            text = o.get("text", "")
            out.append(text if isinstance(text, str) else "".join(text))
        data = o.get("data") or {}
        value = data.get(mime)
        if value is not None:
            out.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(out)


def test_saved_notebook_and_html_export_hold_the_static_snapshot(flarenb_poc, tmp_path):
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    job_dir = _export(tmp_path / "jobs")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(src)
        for src in (
            "%load_ext flarenb",
            "%flare poc start",
            f"job = %flare submit {job_dir} --name static-snapshot --no-follow\nprint('JOB', job.id)",
            "meta = job.wait(timeout=300)\nprint('STATUS', meta['status'])",
            "view = job.view()\nview",
        )
    ]
    # As JupyterLab saves by default ("Save Widget State Automatically" is off): no widget state in the file, so
    # whatever a reader sees later comes from the outputs' own static bundle. (nbclient stores it by default.)
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        store_widget_state=False,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    path = tmp_path / "static.ipynb"
    nbformat.write(nb, path)

    saved = json.loads(path.read_text())
    assert "widgets" not in saved["metadata"], saved["metadata"].keys()
    job_out = _texts(saved["cells"][2]["outputs"], "text/plain")
    job_id = job_out.split("JOB", 1)[1].split()[0]
    assert "STATUS FINISHED:COMPLETED" in _texts(saved["cells"][3]["outputs"], "text/plain")

    # the saved outputs: text/plain holds the snapshot (header + last lines of each site)
    view_outputs = saved["cells"][4]["outputs"]
    plain = _texts(view_outputs, "text/plain")
    assert job_id in plain and "FINISHED:COMPLETED" in plain, plain
    for site in SITES:
        assert f"===== {site} =====" in plain, plain
    assert "(no lines" not in plain, plain
    for site in ("site-1", "site-2"):  # each client's block ends with the last line of its job log
        log_lines = [x for x in flarenb_poc.poc.job_log(site, job_id).read_text().splitlines() if x.strip()]
        shown = plain.split(f"===== {site} =====", 1)[1].split("=====", 1)[0].strip().splitlines()
        assert shown[-1] == "│ " + log_lines[-1], (shown[-1], log_lines[-1])

    # the last line of site-1's snapshot block is a real log line, and it is in the HTML export escaped
    block = plain.split("===== site-1 =====", 1)[1].split("=====", 1)[0].strip().splitlines()
    assert block, plain
    last_line = block[-1]

    body, _ = HTMLExporter().from_filename(str(path))
    assert job_id in body
    assert "FINISHED:COMPLETED" in body
    for site in SITES:
        assert f"===== {html.escape(site)} =====" in body
    assert html.escape(last_line) in body, last_line
    # log text reaches the HTML only escaped: every "<" of a line is &lt;
    for line in block:
        if "<" in line:
            assert line not in body and html.escape(line) in body
