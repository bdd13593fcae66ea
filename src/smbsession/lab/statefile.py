"""A lab's state file: JSON in its directory, readable by root only (it holds passwords)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def read_state(path: Path) -> dict:
    """The state kept in ``path``; empty when there is none or it cannot be read."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_state(path: Path, state: dict) -> None:
    """Replace the state in ``path`` (created mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(state, fh, indent=1)
