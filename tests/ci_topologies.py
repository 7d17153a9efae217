"""CI: run the store and pipeline tests on a real 3-master Redis Cluster and through Sentinel.

    python3 tests/ci_topologies.py        # needs redis-server and redis-cli on PATH

Starts the servers on 127.0.0.1 (ports from FANZHA_TEST_PORT_RANGE, default 17000-17099),
runs ``python3 dev.py test`` on the store/pipeline test files with the matching
``FANZHA_TEST_REDIS_*`` variables, and kills every server it started, whatever happened.
Standard library only, so it runs before the virtual environment exists.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import redis_procs as rp  # noqa: E402 - after the path is set

TESTS = ["tests/test_store.py", "tests/test_dialogs.py", "tests/test_group.py", "tests/test_engine.py",
         "tests/test_http.py", "tests/test_http_faults.py"]


def run(env: dict[str, str], label: str) -> int:
    print(f"=== {label} ===", flush=True)
    return subprocess.call([sys.executable, "dev.py", "test", "-q", *TESTS], cwd=ROOT, env={**os.environ, **env})


def main() -> int:
    if rp.REDIS_SERVER is None or rp.REDIS_CLI is None:
        print("redis-server/redis-cli not found: cluster and Sentinel passes cannot run", file=sys.stderr)
        return 1
    failed = 0
    with tempfile.TemporaryDirectory(prefix="fanzha-ci-") as tmp:
        nodes = rp.cluster(Path(tmp) / "cluster")
        try:
            failed |= run({"FANZHA_TEST_REDIS_CLUSTER": nodes[0].url.removesuffix("/0")},
                          f"Redis Cluster, 3 masters on ports {[n.port for n in nodes]}")
        finally:
            for n in nodes:
                n.kill()
        setup = rp.sentinel_setup(Path(tmp) / "sentinel")
        try:
            failed |= run({"FANZHA_TEST_REDIS_SENTINELS": setup.env, "FANZHA_TEST_REDIS_SENTINEL_MASTER": setup.name},
                          f"Sentinel ({setup.env}), master {setup.master.port}, replica {setup.replica.port}")
        finally:
            setup.kill()
    return failed


if __name__ == "__main__":
    sys.exit(main())
