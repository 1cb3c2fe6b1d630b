"""A cluster the way users run one, on loopback only (inside the network namespace of
``make test``): a head node started by ``ray start`` from this environment (127.0.0.2,
with the Jobs API), and a second node on 127.0.0.3 whose Python environment has Ray but
not migfuzz (a virtual environment made here that reuses this one's site-packages without
its ``.pth`` files: Ray imports, migfuzz does not; checked).

- runtime_env: ``migfuzz fuzz --address HEAD:PORT`` ships migfuzz to the workers
  (workers/runtime.py, ``py_modules``) and workers run and find bugs on the second node;
  with the shipping turned off (MIGFUZZ_SHIP_CODE=0) they cannot start there;
- Ray Jobs: ``ray job submit -- migfuzz fuzz --address auto ...`` runs a campaign whose
  driver lives on the cluster; SIGKILL of that driver leaves a campaign that
  ``--resume`` (another job) finishes, with nothing stored lost.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

import pytest

from migfuzz.workers.reaper import _stat, descendants, reap

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HEAD_IP, NODE2_IP = "127.0.0.2", "127.0.0.3"
pytestmark = pytest.mark.slow


def _port() -> int:
    s = socket.socket()
    s.bind((HEAD_IP, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _bare_env(tmp: Path) -> Path:
    """A venv with Ray but without migfuzz: this environment's site-packages on its path
    through a plain directory line (site processes .pth files only in site directories,
    so migfuzz's editable-install finder is not loaded)."""
    env = tmp / "bare"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env)
    site = next((env / "lib").glob("python3*/site-packages"))
    import ray
    (site / "main_site.pth").write_text(str(Path(ray.__file__).parent.parent) + "\n")
    return env / "bin" / "python"


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled",
               PATH=f"{BIN}:{env.get('PATH', '')}", PYTHONPATH="", **extra)
    return env


def _ray_start(python: str, tmp: Path, name: str, args: list[str], env: dict):
    temp = tempfile.mkdtemp(prefix=f"/tmp/mfj{name}")
    ports = ["--node-manager-port", _port(), "--object-manager-port", _port(),
             "--metrics-export-port", _port(), "--dashboard-agent-listen-port", _port(),
             "--dashboard-agent-grpc-port", _port(), "--runtime-env-agent-port", _port()]
    cmd = [python, "-m", "ray.scripts.scripts", "start", "--block", "--temp-dir", temp,
           *map(str, ports), *args]
    log = open(tmp / f"{name}.log", "w")
    p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    return p, temp


@pytest.fixture(scope="module")
def cluster():
    tmp = Path(tempfile.mkdtemp(prefix="/tmp/mfjt"))
    bare = _bare_env(tmp)
    # the second node's Python cannot import migfuzz (run from an empty directory)
    r = subprocess.run([str(bare), "-c", "import ray; import migfuzz"], cwd=tmp,
                       env=_env(), capture_output=True, text=True)
    assert "No module named 'migfuzz'" in r.stderr, r.stderr
    gcs, dash, client = _port(), _port(), _port()
    procs = []
    try:
        head, _ = _ray_start(sys.executable, tmp, "head", [
            "--head", "--node-ip-address", HEAD_IP, "--port", str(gcs), "--num-cpus", "1",
            "--include-dashboard", "true", "--dashboard-host", HEAD_IP,
            "--dashboard-port", str(dash), "--ray-client-server-port", str(client),
            "--min-worker-port", "20000", "--max-worker-port", "20999"], _env())
        procs.append(head)
        _wait_ready(f"{HEAD_IP}:{gcs}", 1)
        node2, _ = _ray_start(str(bare), tmp, "node2", [
            "--address", f"{HEAD_IP}:{gcs}", "--node-ip-address", NODE2_IP,
            "--num-cpus", "2", "--min-worker-port", "21000", "--max-worker-port", "21999"],
            _env())
        procs.append(node2)
        nodes = _wait_ready(f"{HEAD_IP}:{gcs}", 2)
        yield {"gcs": f"{HEAD_IP}:{gcs}", "dashboard": f"http://{HEAD_IP}:{dash}",
               "client": f"ray://{HEAD_IP}:{client}",
               "tmp": tmp, "nodes": nodes}
    finally:
        victims = {}
        for p in procs:
            victims.update(descendants(p.pid))
            st = _stat(p.pid)
            if st:
                victims[p.pid] = st[1]
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        reap(victims)          # agents that ignore SIGTERM, by pid and start time


def _wait_ready(address: str, n: int, timeout: float = 120) -> dict:
    """node id -> IP once n nodes are alive (asked by a short-lived driver)."""
    code = ("import ray, json; ray.init(address=%r, log_to_driver=False); "
            "print(json.dumps({x['NodeID']: x['NodeManagerAddress'] for x in ray.nodes() "
            "if x['Alive']}))" % address)
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        r = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                           text=True, timeout=120, cwd="/tmp")
        if r.returncode == 0:
            nodes = json.loads(r.stdout.strip().splitlines()[-1])
            if len(nodes) >= n:
                return nodes
        last = r.stderr[-500:]
        time.sleep(1)
    raise AssertionError(f"the cluster did not come up: {last}")


def _json(stdout: str) -> dict:
    """The --json document (Ray's raylet may print task errors to stdout before it)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line == "{")
    return json.loads("\n".join(lines[start:]))


def _fuzz(args: list[str], env: dict, cwd: Path, timeout: float = 600):
    return subprocess.run([str(BIN / "migfuzz"), "fuzz", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_code_is_shipped_to_a_node_without_migfuzz(cluster, tmp_path):
    db = f"sqlite:///{tmp_path / 'ship.db'}"
    r = _fuzz(["--address", cluster["gcs"], "--workers", "3", "--execs", "3000",
               "--no-minimize", "--seed", "1", "--db", db, "--name", "ship", "--json",
               "--out", str(tmp_path / "r")], _env(), tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    out = _json(r.stdout)
    workers = out["stats"]["workers"]
    ips = {cluster["nodes"].get(w["node"]) for w in workers.values()}
    on_node2 = [n for n, w in workers.items()
                if cluster["nodes"].get(w["node"]) == NODE2_IP and w["executions"] > 0]
    assert NODE2_IP in ips and HEAD_IP in ips, workers
    assert on_node2 and all(w["executions"] > 0 for w in workers.values()), workers
    assert out["buckets"], "the campaign found nothing"


def test_without_shipping_the_bare_node_cannot_run_workers(cluster, tmp_path):
    """The control: the same campaign with MIGFUZZ_SHIP_CODE=0 does not get a worker
    going on the node without migfuzz (Ray cannot unpickle the actor class there)."""
    r = _fuzz(["--address", cluster["gcs"], "--workers", "3", "--execs", "600",
               "--no-minimize", "--no-db", "--json", "--out", str(tmp_path / "r")],
              _env(MIGFUZZ_SHIP_CODE="0"), tmp_path, timeout=300)
    text = r.stdout + r.stderr
    ok = False
    if r.returncode == 0:
        workers = _json(r.stdout)["stats"]["workers"]
        ok = any(cluster["nodes"].get(w["node"]) == NODE2_IP and w["executions"] > 0
                 for w in workers.values())
    assert not ok, text[-2000:]


def test_ray_client_address(cluster, tmp_path):
    """--address ray://HOST:PORT (Ray Client): the same campaign through the head's client
    server, the code shipped the same way."""
    r = _fuzz(["--address", cluster["client"], "--workers", "3", "--execs", "1500",
               "--no-minimize", "--no-db", "--json", "--out", str(tmp_path / "r")],
              _env(), tmp_path, timeout=400)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    workers = _json(r.stdout)["stats"]["workers"]
    assert all(w["executions"] > 0 for w in workers.values()), workers
    assert NODE2_IP in {cluster["nodes"].get(w["node"]) for w in workers.values()}


def test_bad_address_is_one_line(tmp_path):
    r = _fuzz(["--address", "http://127.0.0.2:8265", "--workers", "1", "--no-db"], _env(),
              tmp_path, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "migfuzz: error: --address 'http://127.0.0.2:8265': expected HOST:PORT, "
        "ray://HOST:PORT or auto"], r.stderr


def _counts(path: Path) -> dict:
    con = sqlite3.connect(path)
    try:
        q = lambda s: con.execute(s).fetchone()[0]      # noqa: E731
        return {"corpus": q("select count(*) from corpus_entries"),
                "crashes": q("select count(*) from crashes"),
                "status": q("select status from campaigns"),
                "owner": q("select owner from campaigns")}
    finally:
        con.close()


def _job(cluster, entry: list[str], *flags: str, timeout: float = 600):
    cmd = [str(BIN / "ray"), "job", "submit", "--address", cluster["dashboard"], *flags,
           "--", *entry]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True,
                          timeout=timeout, cwd=cluster["tmp"])


def test_campaign_as_a_ray_job_survives_a_sigkilled_driver(cluster, tmp_path):
    path = tmp_path / "job.db"
    db = f"sqlite:///{path}"
    common = ["--address", "auto", "--workers", "2", "--no-minimize", "--db", db,
              "--out", str(tmp_path / "r")]
    r = _job(cluster, ["migfuzz", "fuzz", *common, "--name", "job", "--seed", "2",
                       "--execs", "10000000"], "--no-wait")
    assert r.returncode == 0, r.stdout + r.stderr
    deadline = time.monotonic() + 300
    c = None
    while time.monotonic() < deadline:
        try:
            c = _counts(path) if path.exists() else None
        except sqlite3.Error:
            c = None
        if c and c["corpus"] >= 20 and c["crashes"] >= 3 and c["owner"]:
            break
        time.sleep(0.5)
    assert c and c["crashes"] >= 3, c
    # the driver is the process named in the campaign's owner (HOST:PID:TOKEN), on the
    # cluster's head: the Jobs API started it there, not this test
    pid = int(c["owner"].split(":")[1])
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert "migfuzz" in cmdline and "fuzz" in cmdline, cmdline
    os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    killed = _counts(path)
    assert killed["status"] == "running"
    r = _job(cluster, ["migfuzz", "fuzz", *common, "--resume", "job", "--execs", "1500",
                       "--json"])
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    after = _counts(path)
    assert after["status"] == "finished"
    assert after["corpus"] >= killed["corpus"] and after["crashes"] >= killed["crashes"]
