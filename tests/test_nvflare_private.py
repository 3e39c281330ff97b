"""Every private NVFlare name flarenb uses exists in the installed NVFlare, and only ``flarenb/_nvflare.py`` uses
them — so an NVFlare upgrade that renames one fails here, in one place."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flarenb import _nvflare

FLARENB = Path(_nvflare.__file__).resolve().parent


@pytest.mark.parametrize(("module", "name"), _nvflare.PRIVATE, ids=[n for _, n in _nvflare.PRIVATE])
def test_the_installed_nvflare_has_it(module, name):
    obj = _nvflare.resolve(module, name)
    if name.rsplit(".", 1)[-1].isupper():
        assert isinstance(obj, int) and obj > 0
    else:
        assert callable(obj)


def test_the_wrappers_reach_nvflare():
    assert _nvflare.max_hash_zip_member_size() == _nvflare.resolve(*_nvflare.PRIVATE[-1])
    assert _nvflare.default_job_log_tail_lines() > 0
    assert _nvflare.preferred_job_log_file(False) and _nvflare.fallback_job_log_file(True)
    assert not _nvflare.job_terminal_failure_error("FINISHED:COMPLETED")
    assert _nvflare.job_terminal_failure_error("FINISHED:ABORTED")
    _nvflare.study_name_rule()("default")
    with pytest.raises(Exception):  # noqa: B017 - NVFlare's own exception type is not part of the contract
        _nvflare.study_name_rule()("")


# a private NVFlare name: an import of an underscore name from nvflare, the job_cli module, or Session._...
_PRIVATE_USE = re.compile(r"from nvflare\S* import .*\b_[A-Za-z]|import job_cli|\bjob_cli\._|\bSession\._")


def test_no_other_module_uses_a_private_nvflare_name():
    offenders = [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted(FLARENB.glob("*.py"))
        if path.name != "_nvflare.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if _PRIVATE_USE.search(line) and not line.lstrip().startswith("#")
    ]
    assert not offenders, "import private NVFlare names through flarenb._nvflare:\n" + "\n".join(offenders)


def test_every_private_name_is_listed():
    source = Path(_nvflare.__file__).read_text()
    used = set(re.findall(r"(?:_job_cli\(\)\.|Session\.|import )(_[A-Za-z]\w*)", source))
    assert used and used <= {name.rsplit(".", 1)[-1] for _, name in _nvflare.PRIVATE}
