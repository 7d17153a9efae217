"""dev.py, the newcomer's one command: installs only what a command needs, and only once."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_under_test", ROOT / "dev.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "CHROMIUM", tmp_path / "no-chromium")
    for var in (*module.WECHATY_VARS, "CI"):
        monkeypatch.delenv(var, raising=False)
    return module


def test_a_plain_run_installs_no_extras(dev: ModuleType) -> None:
    assert dev.extras_for("run") == ""
    assert dev.extras_for("chat") == ""


def test_run_installs_the_wechaty_client_when_its_settings_are_present(
    dev: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("# FANZHA_WECHATY_ENDPOINT=x\nFANZHA_WECHATY_ENDPOINT=\n", encoding="utf-8")
    assert dev.extras_for("run") == ""  # commented out or empty: not configured
    (tmp_path / ".env").write_text("export FANZHA_WECHATY_ENDPOINT=127.0.0.1:8788\n", encoding="utf-8")
    assert dev.extras_for("run") == "wechaty"
    (tmp_path / ".env").unlink()
    monkeypatch.setenv("WECHATY_PUPPET_SERVICE_TOKEN", "t")
    assert dev.extras_for("run") == "wechaty"


def test_tests_get_the_browser_client_where_a_browser_is_or_in_ci(
    dev: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "browser" not in dev.extras_for("test").split(",")
    monkeypatch.setenv("CI", "true")
    assert "browser" in dev.extras_for("test").split(",")
    monkeypatch.setenv("CI", "false")
    (tmp_path / "no-chromium").write_text("")
    assert "browser" in dev.extras_for("test").split(",")


def test_install_happens_once_and_a_subset_of_the_extras_installs_nothing(
    dev: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv_dir = tmp_path / ".venv"
    (venv_dir / "bin").mkdir(parents=True)
    (venv_dir / "bin" / "python").write_text("")
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n", encoding="utf-8")
    monkeypatch.setattr(dev, "VENV", venv_dir)
    monkeypatch.setattr(dev, "PY", venv_dir / "bin" / "python")
    installs: list[list[str]] = []
    monkeypatch.setattr(dev.subprocess, "run", lambda cmd, **kw: installs.append(cmd))
    dev.ensure_venv("test,wechaty")
    dev.ensure_venv("wechaty")  # covered by the first install
    dev.ensure_venv("")
    assert len(installs) == 1 and installs[0][-1] == ".[test,wechaty]" and "--no-compile" in installs[0]
    dev.ensure_venv("bench")  # a new extra installs again
    (tmp_path / "pyproject.toml").write_text("[project]\nname='y'\n", encoding="utf-8")
    dev.ensure_venv("")  # a changed pyproject.toml installs again
    assert [c[-1] for c in installs] == [".[test,wechaty]", ".[bench]", "."]
