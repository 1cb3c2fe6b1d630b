"""The cluster definitions users start from (workers/cluster/) agree with the code: the
campaign command parses with migfuzz's own CLI, the image carries this Ray and Python,
the CPUs cover --workers, and the database URL comes from a secret, never the file.
No cluster is needed: the files are parsed (PyYAML comes with Ray)."""
from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from migfuzz.cli import build_parser

CLUSTER = Path(__file__).resolve().parents[2] / "workers" / "cluster"


def _fuzz_args(command: str):
    """The `migfuzz fuzz ...` of a command line, parsed by the real parser."""
    words = shlex.split(command)
    i = words.index("migfuzz")
    assert words[i + 1] == "fuzz", command
    return build_parser().parse_args(words[i + 1:])


def _image_versions(image: str) -> tuple[str, str]:
    m = re.search(r"ray(\d+\.\d+\.\d+)-py(\d)(\d+)$", image)
    assert m, f"image {image!r} names neither its Ray nor its Python"
    return m.group(1), f"{m.group(2)}.{m.group(3)}"


def _cpu(q) -> float:
    q = str(q)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


@pytest.fixture(scope="module")
def rayjob():
    return yaml.safe_load((CLUSTER / "rayjob.yaml").read_text())


def test_rayjob_entrypoint_is_a_valid_campaign(rayjob):
    assert rayjob["apiVersion"] == "ray.io/v1" and rayjob["kind"] == "RayJob"
    args = _fuzz_args(rayjob["spec"]["entrypoint"])
    assert args.address == "auto"            # the Jobs API's driver joins its cluster
    assert args.workers and args.workers > 0
    assert args.db is None and not args.no_db   # the URL comes from MIGFUZZ_DB (secret)
    assert args.batch >= 1


def test_rayjob_image_and_resources(rayjob):
    import ray
    spec = rayjob["spec"]["rayClusterSpec"]
    assert spec["rayVersion"] == ray.__version__
    head = spec["headGroupSpec"]
    containers = [head["template"]["spec"]["containers"][0]] + [
        g["template"]["spec"]["containers"][0] for g in spec["workerGroupSpecs"]]
    for c in containers:
        rv, pv = _image_versions(c["image"])
        assert rv == ray.__version__, c["image"]
        assert pv == f"{sys.version_info.major}.{sys.version_info.minor}", c["image"]
        # Ray's CPUs are the container's: no more logical CPUs than real ones
        assert c["resources"]["requests"]["cpu"] == c["resources"]["limits"]["cpu"]
    args = _fuzz_args(rayjob["spec"]["entrypoint"])
    cpus_min = float(head["rayStartParams"].get("num-cpus", _cpu(
        containers[0]["resources"]["limits"]["cpu"])))
    for g in spec["workerGroupSpecs"]:
        n = float(g["rayStartParams"]["num-cpus"])
        assert n == _cpu(g["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"])
        cpus_min += n * g["minReplicas"]
        assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
    # the farm refuses to start with fewer CPUs than --workers (workers/farm.py); one
    # more for minimization tasks (autoscaling may add more, never fewer)
    assert cpus_min >= args.workers + 1, (cpus_min, args.workers)


def test_database_url_is_a_secret(rayjob):
    text = (CLUSTER / "rayjob.yaml").read_text()
    assert "postgresql" not in text.replace("postgresql+psycopg", "")
    assert "@" not in text
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    env = {e["name"]: e for e in head["containers"][0]["env"]}
    ref = env["MIGFUZZ_DB"]["valueFrom"]["secretKeyRef"]
    secret = yaml.safe_load((CLUSTER / "secret.yaml").read_text())
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == ref["name"]
    assert ref["key"] in secret["stringData"]
    assert secret["stringData"][ref["key"]].startswith("postgresql+psycopg://")
    # only the head (the driver) gets it
    for g in rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"]:
        names = {e["name"] for e in g["template"]["spec"]["containers"][0].get("env", [])}
        assert "MIGFUZZ_DB" not in names


def test_ray_up_config():
    import ray
    cfg = yaml.safe_load((CLUSTER / "ray-up.yaml").read_text())
    text = (CLUSTER / "ray-up.yaml").read_text()
    assert "postgresql" not in text                       # the URL is a file mount
    assert any("db-url" in k for k in cfg["file_mounts"])
    assert any(f"ray[default]=={ray.__version__}" in c for c in cfg["setup_commands"])
    py = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert any(py in c for c in cfg["setup_commands"])
    assert any("migfuzz" in c for c in cfg["head_setup_commands"])
    assert not any("migfuzz" in c for c in cfg["setup_commands"])   # workers: Ray only
    # the campaign command in its header comment (one line), against the CLI
    cmd = next(line for line in text.splitlines()
               if line.startswith("#") and "ray job submit" in line)
    args = _fuzz_args(cmd[cmd.index("-- ") + 3:])
    assert args.address == "auto"
    types = cfg["available_node_types"]
    head_cpus = types[cfg["head_node_type"]]["resources"]["CPU"]
    worker_cpus = sum(t["resources"]["CPU"] * t["min_workers"]
                      for name, t in types.items() if name != cfg["head_node_type"])
    assert head_cpus + worker_cpus >= args.workers + 1
    # the CPUs Ray is started with are the ones the node types declare
    heads = " ".join(cfg["head_start_ray_commands"])
    assert f"--num-cpus={head_cpus}" in heads
    for name, t in types.items():
        if name != cfg["head_node_type"]:
            assert f"--num-cpus={t['resources']['CPU']}" in " ".join(
                cfg["worker_start_ray_commands"])
