"""One vocabulary: the constants of ``js/src/vocab.ts`` equal ``flarenb.vocab.FRONT_END`` (read without node)."""

from __future__ import annotations

import json
import pathlib
import re

import pytest

from flarenb import vocab

VOCAB_TS = pathlib.Path(__file__).resolve().parents[1] / "js" / "src" / "vocab.ts"
_BLOCK = re.compile(r"^// vocab:begin\n(.*?)^// vocab:end$", re.S | re.M)
_CONST = re.compile(r"^export const (\w+) = (.*?) as const;$", re.S | re.M)


def ts_constants(text: str) -> dict[str, object]:
    """``{name: value}`` of the ``export const NAME = <JSON> as const;`` lines between the markers."""
    block = _BLOCK.search(text)
    assert block is not None, "js/src/vocab.ts lost its '// vocab:begin' / '// vocab:end' markers"
    body = block.group(1)
    found = {m.group(1): m.group(2) for m in _CONST.finditer(body)}
    leftover = _CONST.sub("", body).strip()
    assert not leftover, (
        f"js/src/vocab.ts: not a plain `export const NAME = <JSON> as const;` between the markers: {leftover!r}"
    )
    out = {}
    for name, literal in found.items():
        try:
            out[name] = json.loads(literal)
        except ValueError as e:
            pytest.fail(f"js/src/vocab.ts: {name} is not a JSON literal ({e}): {literal}")
    return out


def test_front_end_constants_equal_the_python_ones():
    assert ts_constants(VOCAB_TS.read_text(encoding="utf-8")) == json.loads(json.dumps(vocab.FRONT_END))


def test_the_parity_check_notices_a_difference():
    text = VOCAB_TS.read_text(encoding="utf-8")
    changed = text.replace('"WARNING": 30', '"WARNING": 31', 1)
    assert changed != text
    assert ts_constants(changed) != json.loads(json.dumps(vocab.FRONT_END))
    with pytest.raises(AssertionError, match="markers"):
        ts_constants(text.replace("// vocab:end", ""))
