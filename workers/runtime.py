"""Starting, joining and stopping Ray without leaving loopback or touching other clusters.

Embedded default: a local Ray instance for this campaign only, on 127.0.0.2 (Ray rewrites
127.0.0.1 to the machine's external address), usage stats off, no dashboard web server (Ray
still runs its per-node agents, ``ray::DashboardAgent`` for metrics and
``ray::RuntimeEnvAgent``, on loopback), a private temp dir. With an address: join that
cluster and start nothing, and ship migfuzz's own code to its workers through Ray's
``runtime_env`` (``py_modules``), so only the machine that starts the campaign needs
migfuzz installed; the other nodes need the same Python and Ray. Either way shut down only what this process started: never
``ray stop``, which ends every Ray process on the machine; if this process is SIGKILLed, a
reaper (``workers.reaper``) ends the processes it started.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .reaper import Reaper

LOOPBACK_NODE_IP = "127.0.0.2"
# the folders pyproject's package-dir assembles into the one namespace ``migfuzz``
NAMESPACE = ("fuzzer", "corpus", "db", "workers", "dashboards", "kernels")
ADDRESS_FORMS = "HOST:PORT, ray://HOST:PORT or auto"


def check_address(address: str) -> str:
    """The address forms ``ray.init`` takes: ``auto`` (the cluster this machine is part
    of, or $RAY_ADDRESS), ``ray://HOST:PORT`` (Ray Client) and ``HOST:PORT`` (the GCS).
    Anything else is refused here, in one line, instead of by Ray after a timeout."""
    a = address.strip()
    host_port = r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.\-]*):(\d{1,5})"
    if a == "auto" or re.fullmatch(host_port, a) or re.fullmatch("ray://" + host_port, a):
        return a
    raise FarmError(f"--address {address!r}: expected {ADDRESS_FORMS}")


def staged_package(root: str) -> str:
    """A directory ``ROOT/migfuzz`` holding the whole ``migfuzz`` package as this process
    imports it, for Ray's ``py_modules``.

    Why not ship the ``migfuzz`` folder itself: the repository is one namespace made of
    several top-level folders (pyproject's package-dir maps ``migfuzz.fuzzer`` to
    ``fuzzer/``, ...); in a source checkout ``migfuzz/`` alone has no ``fuzzer``. Each
    subpackage is copied from wherever it is imported from (an editable install: the
    checkout's folders; a wheel: inside site-packages' ``migfuzz/``), without caches:
    ~1.4 MB, which Ray zips, stores once per content hash in the GCS and unpacks on each
    node before its first worker starts."""
    spec = importlib.util.find_spec("migfuzz")
    dest = Path(root) / "migfuzz"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(list(spec.submodule_search_locations)[0], dest, ignore=skip)
    for sub in NAMESPACE:
        if (dest / sub).exists():
            continue
        sub_spec = importlib.util.find_spec(f"migfuzz.{sub}")
        if sub_spec is None or not sub_spec.submodule_search_locations:
            raise FarmError(f"cannot ship migfuzz.{sub}: not found in this installation")
        shutil.copytree(list(sub_spec.submodule_search_locations)[0], dest / sub,
                        ignore=skip)
    return str(dest)


class FarmError(RuntimeError):
    """Ray could not be started or reached; the message is one line for the user."""


def _quiet_env() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # the driver's own dashboard/metrics exporters probe the network; keep them off
    os.environ.setdefault("RAY_DISABLE_DOCKER_CPU_WARNING", "1")


def ship_code() -> bool:
    """Whether to ship migfuzz to a cluster's workers (MIGFUZZ_SHIP_CODE=0: the nodes have
    it installed, or the job's own runtime_env brings it)."""
    return os.environ.get("MIGFUZZ_SHIP_CODE", "1") != "0"


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None,
                dashboard: bool = False, ship: bool | None = None):
    """Yield an initialized Ray; on exit shut down only what was started here. With an
    address, migfuzz's code goes to the workers in the runtime_env (``ship``; default:
    ``ship_code()``)."""
    _quiet_env()
    try:
        import ray
    except ImportError as e:  # pragma: no cover - ray is a dependency
        raise FarmError(f"ray is not installed ({e})") from None
    if ray.is_initialized():
        yield ray                      # someone else (a test, a notebook) owns it
        return
    temp_dir = reaper = stage = None
    try:
        if address:
            address = check_address(address)
            env = {}
            if ship if ship is not None else ship_code():
                stage = tempfile.mkdtemp(prefix="mfpkg")
                env["py_modules"] = [staged_package(stage)]
            ray.init(address=address, log_to_driver=False, configure_logging=False,
                     runtime_env=env or None)
        else:
            # socket paths are limited to 107 bytes: keep the temp dir short
            temp_dir = tempfile.mkdtemp(prefix="/tmp/mfr")
            reaper = Reaper(temp_dir)
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=dashboard,
                     _node_ip_address=LOOPBACK_NODE_IP, _temp_dir=temp_dir,
                     log_to_driver=False, configure_logging=False)
    except Exception as e:           # Ray raises many types; the user needs one line
        if stage:
            shutil.rmtree(stage, ignore_errors=True)
        if isinstance(e, FarmError):
            raise
        if reaper:
            reaper.release()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
        where = address or "a local instance"
        raise FarmError(f"could not start Ray ({where}): {str(e).splitlines()[0][:200]}") from None
    try:
        yield ray
    finally:
        ray.shutdown()
        if reaper:
            reaper.release()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
        if stage:
            shutil.rmtree(stage, ignore_errors=True)
