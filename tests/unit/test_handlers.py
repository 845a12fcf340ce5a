"""handlers.py's pure helpers (the reconciler itself runs against the emulator, tests/emulator)."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_garden.auth import read_keys
from model_garden_operator.handlers import has_api_key

KEY_FILES = {
    "one": "sk-one",
    "two-with-comment": "# team a\nsk-one\nsk-two\n",
    "indented": "   sk-one   \n",
    "empty": "",
    "blank-lines": "\n\n  \n",
    "comments-only": "# none yet\n  # still none\n",
    "crlf": "sk-one\r\n",
}


@pytest.mark.parametrize("text", KEY_FILES.values(), ids=KEY_FILES.keys())
def test_has_api_key_follows_the_runtimes_reading(text: str, tmp_path: Path) -> None:
    # The operator refuses a key file the runtime would read as no key (an open server).
    path = tmp_path / "keys"
    path.write_text(text)
    assert has_api_key(text) == bool(read_keys(files=[path]))
