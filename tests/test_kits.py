"""Startup-kit selection follows the `nvflare job` CLI: --kit-id, --startup-kit, NVFLARE_STARTUP_KIT_DIR, active."""

from __future__ import annotations

import json

import pytest

from flarenb.errors import StartupKitError
from flarenb.session import resolve_kit


def fake_admin_kit(root, name):
    kit = root / name
    (kit / "startup").mkdir(parents=True)
    (kit / "startup" / "fed_admin.json").write_text(json.dumps({"admin": {"username": name}}))
    for f in ("client.crt", "rootCA.pem"):
        (kit / "startup" / f).write_text("x")
    return kit


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NVFLARE_STARTUP_KIT_DIR", raising=False)
    (tmp_path / "home" / ".nvflare").mkdir(parents=True)
    return tmp_path


def register(home, entries: dict, active: str | None):
    lines = ["version = 2", "startup_kits {", "  entries {"]
    lines += [f'    "{k}" = "{v}"' for k, v in entries.items()]
    lines += ["  }"] + ([f'  active = "{active}"'] if active else []) + ["}"]
    (home / "home" / ".nvflare" / "config.conf").write_text("\n".join(lines) + "\n")


def test_order_kit_id_then_startup_kit_then_env_then_active(home, monkeypatch):
    a, b, c, d = (fake_admin_kit(home, n) for n in ("a@x.org", "b@x.org", "c@x.org", "d@x.org"))
    register(home, {"kit-a": a, "kit-d": d}, active="kit-d")
    assert resolve_kit().username == "d@x.org"
    assert resolve_kit().source == "active"
    monkeypatch.setenv("NVFLARE_STARTUP_KIT_DIR", str(c))
    assert (resolve_kit().username, resolve_kit().source) == ("c@x.org", "env")
    assert resolve_kit(startup_kit=str(b)).username == "b@x.org"
    assert resolve_kit(startup_kit=str(b / "startup")).path == str(b.resolve())
    k = resolve_kit(kit_id="kit-a")
    assert (k.username, k.source, k.kit_id, k.path) == ("a@x.org", "kit_id", "kit-a", str(a.resolve()))


def test_nothing_selected_says_which_to_set(home):
    with pytest.raises(StartupKitError) as e:
        resolve_kit()
    assert str(e.value) == (
        "No startup kit selected. Pass --startup-kit DIR or --kit-id ID, set NVFLARE_STARTUP_KIT_DIR, "
        "or activate a kit with 'nvflare config use ID' (or run %flare poc start for a local FLARE)"
    )


def test_missing_path_and_not_an_admin_kit(home):
    with pytest.raises(StartupKitError) as e:
        resolve_kit(startup_kit=str(home / "nope"))
    assert str(e.value) == (
        f"startup kit path does not exist: {home / 'nope'}. --startup-kit must be an admin startup kit: the folder "
        "that contains startup/fed_admin.json (for a local POC: <poc>/example_project/prod_00/admin@nvidia.com)"
    )
    site = home / "site-1" / "startup"
    site.mkdir(parents=True)
    (site / "fed_client.json").write_text("{}")
    with pytest.raises(StartupKitError) as e:
        resolve_kit(startup_kit=str(home / "site-1"))
    assert str(e.value).startswith(f"path is not an admin startup kit: {home / 'site-1'}. --startup-kit must be")


def test_unregistered_kit_id(home):
    register(home, {}, None)
    with pytest.raises(StartupKitError) as e:
        resolve_kit(kit_id="prod")
    assert str(e.value) == (
        "startup kit id 'prod' is not registered. Run 'nvflare config list' to see registered kit ids,"
        " or pass --startup-kit DIR"
    )


def test_env_pointing_nowhere_is_one_line(home, monkeypatch):
    monkeypatch.setenv("NVFLARE_STARTUP_KIT_DIR", str(home / "gone"))
    with pytest.raises(StartupKitError) as e:
        resolve_kit()
    assert str(e.value) == (
        f"NVFLARE_STARTUP_KIT_DIR points to a missing path Path: {home / 'gone'}."
        " Unset NVFLARE_STARTUP_KIT_DIR or point it at an admin startup kit"
    )
    assert "\n" not in str(e.value)


def test_both_selectors_is_an_error(home):
    with pytest.raises(StartupKitError, match=r"^--kit-id and --startup-kit are mutually exclusive\. Use only one"):
        resolve_kit(startup_kit="x", kit_id="y")


# -- a new kernel: the first command connects as the CLI would ----------------------------------------------
def test_without_any_kit_or_running_local_flare_a_command_says_not_connected(home, monkeypatch):
    from flarenb import session
    from flarenb.errors import NotConnected

    monkeypatch.setenv("NVFLARE_POC_WORKSPACE", str(home / "poc"))
    monkeypatch.setattr(session, "_current", None)
    with pytest.raises(NotConnected):
        session.current()


def test_a_kit_named_but_unusable_is_reported_not_hidden(home, monkeypatch):
    from flarenb import session

    monkeypatch.setenv("NVFLARE_STARTUP_KIT_DIR", str(home / "missing"))
    monkeypatch.setattr(session, "_current", None)
    with pytest.raises(StartupKitError) as e:
        session.current()
    assert "NVFLARE_STARTUP_KIT_DIR" in str(e.value)


def test_the_admin_kit_of_a_prepared_poc_is_recognised(tmp_path):
    from flarenb import poc

    ws = tmp_path / "poc"
    kit = fake_admin_kit(ws / poc.PROJECT / "prod_00", poc.ADMIN)
    assert poc.poc_of_kit(kit) is None  # not prepared: no project.yml
    (ws / "project.yml").write_text("participants: []\n")
    assert poc.poc_of_kit(kit) == poc.Poc(ws.resolve())
    other = fake_admin_kit(tmp_path / "deploy" / "prod_00", "admin@example.org")
    assert poc.poc_of_kit(other) is None
