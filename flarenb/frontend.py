"""The log widget's front end: the bundle ``npm --prefix js run build`` writes, or a fallback that says how to build it.

The bundle (``flarenb/static/widget.js`` and ``widget.css``) is git-ignored and built at install time; where it is
missing (a source checkout installed with ``HATCH_JUPYTER_BUILDER_SKIP_NPM=1``), the widget still imports and
renders one line, :data:`BUILD_HINT`, as text (never as HTML).
"""

from __future__ import annotations

import json
import pathlib

__all__ = ["BUILD_HINT", "FALLBACK_ESM", "frontend_sources"]

BUILD_HINT = (
    "flarenb's widget front end is not built: run "
    "`npm --prefix js ci && npm --prefix js run build` (or reinstall with `pip install -e .`)"
)

FALLBACK_ESM = (
    """function render({ el }) {
  const p = document.createElement("p");
  p.className = "flarenb-logview-unbuilt";
  p.setAttribute("data-testid", "flarenb-unbuilt");
  p.textContent = """
    + json.dumps(BUILD_HINT)
    + """;
  el.appendChild(p);
}
export default { render };
"""
)


def frontend_sources(static_dir: pathlib.Path) -> tuple[str | pathlib.Path, str | pathlib.Path]:
    """(esm, css) for the widget: the built bundle in ``static_dir``, or an inline fallback."""
    js, css = static_dir / "widget.js", static_dir / "widget.css"
    if not js.is_file():
        return FALLBACK_ESM, ""
    return js, (css if css.is_file() else "")
