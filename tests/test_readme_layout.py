"""The README's layout table names every module of ``flarenb/`` and ``js/src/`` (so it matches the tree)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def layout() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Layout")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def unnamed(table: str) -> list[str]:
    missing = []
    for path in sorted((ROOT / "flarenb").rglob("*.py")) + sorted((ROOT / "js" / "src").rglob("*.ts")):
        if path.name in ("__init__.py", "__main__.py") or "static" in path.parts:
            continue
        rel = path.relative_to(ROOT).as_posix()
        if path.name not in table and rel not in table:
            missing.append(rel)
    return missing


def test_every_module_is_in_the_layout_table():
    assert unnamed(layout()) == [], "add these to the README's Layout table"


def test_the_check_sees_a_missing_module():
    assert "flarenb/receiver.py" in unnamed(layout().replace("receiver.py", "r.py"))
