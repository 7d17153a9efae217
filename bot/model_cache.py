"""A cache of the trained matcher and scanner, so a warm start does not retrain them.

Training at every start costs most of the time to the first answer (scikit-learn's import
alone is about half a second, the fits another half on the 2-core VM). The trained objects are
pickled under ``<data dir>/models/``, in a file named by a hash of everything that can change
them: every file under ``knowledge/data``, the source of every ``knowledge`` module (the model
code) and the Python, numpy and scikit-learn versions. Any change gives a new name, so a stale
model is never loaded; old files are removed when a new one is written.

The cache knows nothing about the models' insides (the matcher and scanner belong to their
own modules and change independently):

* Objects from the training library (``TRAINING_ONLY``, e.g. the fitted scikit-learn
  estimators a matcher keeps to verify its export) are stored as ``None``: loading them would
  import scikit-learn again, which is what the cache is for avoiding.
* Whether the result still works is checked, not assumed: the caller gives a ``probe`` (e.g.
  classify a few known texts); its answers are stored beside the models and recomputed after
  loading. A different answer or any exception (say, a model that now needs one of the dropped
  objects) means the file is ignored and the models are trained as before.

A missing, unreadable, corrupt or unwritable cache is never an error: it costs one training.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import platform
import sys
import tempfile
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import knowledge

log = logging.getLogger("bot.model_cache")

T = TypeVar("T")

FORMAT = 1
"""Bump when the file layout below changes."""

TRAINING_ONLY = ("sklearn", "scipy", "joblib", "threadpoolctl")
"""Top-level modules whose objects are not cached (see the module docstring)."""

KNOWLEDGE_DIR = Path(knowledge.__file__).resolve().parent
SUFFIX = ".models.pickle"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def source_files(root: Path = KNOWLEDGE_DIR) -> list[Path]:
    """The data and the model code: every file under knowledge/ except caches."""
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )


def fingerprint(files: Iterable[Path] | None = None, root: Path = KNOWLEDGE_DIR) -> str:
    """Hash of the inputs that decide what training produces."""
    h = hashlib.sha256()
    h.update(f"fanzha-models/{FORMAT}/{sys.version}/{platform.machine()}".encode())
    for dist in ("numpy", "scikit-learn"):
        h.update(f"/{dist}={_version(dist)}".encode())
    for path in files if files is not None else source_files(root):
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
        data = path.read_bytes()
        h.update(f"\0{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:32]


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> str | None:
        module = type(obj).__module__.split(".", 1)[0]
        return "dropped" if module in TRAINING_ONLY else None


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> None:
        if pid != "dropped":
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        return None


def _dumps(obj: object) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def _loads(data: bytes) -> Any:
    return _Unpickler(io.BytesIO(data)).load()


def _read(path: Path, probe: Callable[[Any], object]) -> Any | None:
    """The cached models, or None when the file is absent or does not pass its probe."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("model cache unreadable", extra={"path": str(path), "error": type(exc).__name__})
        return None
    try:
        stored = _loads(data)
        models, expected = stored["models"], stored["probe"]
        if probe(models) != expected:
            log.warning("model cache probe differs; retraining", extra={"path": str(path)})
            return None
        return models
    except Exception as exc:  # a bad cache file costs a training, nothing more
        log.warning("model cache unusable; retraining", extra={"path": str(path), "error": type(exc).__name__})
        return None


def _write(directory: Path, path: Path, models: object, answers: object) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        data = _dumps({"models": models, "probe": answers})
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=SUFFIX)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        for old in directory.glob("[!.]*" + SUFFIX):  # not another process's .tmp- file
            if old != path:
                old.unlink(missing_ok=True)
    except Exception as exc:  # a read-only data dir just means no cache
        log.warning("model cache not written", extra={"path": str(path), "error": type(exc).__name__})


def load_or_build(
    directory: Path, build: Callable[[], T], probe: Callable[[T], object], *, root: Path = KNOWLEDGE_DIR
) -> tuple[T, bool]:
    """``(models, True)`` from ``directory`` when a valid cache exists, else ``(build(), False)``
    after writing the cache. ``probe`` must give comparable (``==``) answers from the models;
    ``root`` is the tree whose files decide the cache key (the knowledge package)."""
    path = directory / (fingerprint(root=root) + SUFFIX)
    cached = _read(path, probe)
    if cached is not None:
        return cached, True
    models = build()
    # The probe's answers are taken from the object as it will be loaded (dropped parts and
    # all), so a model that still needs a dropped part fails here and is simply not cached.
    try:
        reloaded = _loads(_dumps(models))
        answers = probe(reloaded)
    except Exception as exc:  # e.g. a model that needs a dropped part
        log.warning("models not cacheable", extra={"error": type(exc).__name__})
        return models, False
    if answers != probe(models):
        log.warning("models differ after a cache round trip; not cached")
        return models, False
    _write(directory, path, models, answers)
    return models, False
