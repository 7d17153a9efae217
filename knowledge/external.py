"""The product documents that live outside this repository, and when they are required.

The knowledge brief (the fact sheet every law text and number is compared with) and the
product's shared dev eval sets are kept in a ``shared/`` folder beside the repository (or
wherever ``FANZHA_SHARED_DIR`` points). The repository stands alone without them: its own data,
held-out and blind sets are inside it, and the comparisons against the external documents run
when they are present. In CI (``CI`` set) they are mandatory, so a missing folder fails there
instead of silently comparing nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OWN_EVAL = REPO / "tests" / "data"
"""The project's own labelled sets (held-out and blind), part of the repository."""


def shared_dir() -> Path:
    given = os.environ.get("FANZHA_SHARED_DIR")
    return Path(given) if given else REPO.parent / "shared"


def brief_path() -> Path:
    return shared_dir() / "knowledge-brief.md"


def shared_eval(name: str) -> Path:
    return shared_dir() / "eval" / name


def required() -> bool:
    """True in CI: there the external documents must be present."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
