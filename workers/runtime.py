"""Starting, joining and stopping Ray without leaving loopback or touching other clusters.

Embedded default: a local Ray instance for this campaign only, on 127.0.0.2 (Ray rewrites
127.0.0.1 to the machine's external address), usage stats off, no dashboard web server (Ray
still runs its per-node agents, ``ray::DashboardAgent`` for metrics and
``ray::RuntimeEnvAgent``, on loopback), a private temp dir. With an address: join that
cluster and start nothing. Either way shut down only what this process started: never
``ray stop``, which ends every Ray process on the machine; if this process is SIGKILLed, a
reaper (``workers.reaper``) ends the processes it started.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager

from .reaper import Reaper

LOOPBACK_NODE_IP = "127.0.0.2"


class FarmError(RuntimeError):
    """Ray could not be started or reached; the message is one line for the user."""


def _quiet_env() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # the driver's own dashboard/metrics exporters probe the network; keep them off
    os.environ.setdefault("RAY_DISABLE_DOCKER_CPU_WARNING", "1")


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None,
                dashboard: bool = False):
    """Yield an initialized Ray; on exit shut down only what was started here."""
    _quiet_env()
    try:
        import ray
    except ImportError as e:  # pragma: no cover - ray is a dependency
        raise FarmError(f"ray is not installed ({e})") from None
    if ray.is_initialized():
        yield ray                      # someone else (a test, a notebook) owns it
        return
    temp_dir = reaper = None
    try:
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            # socket paths are limited to 107 bytes: keep the temp dir short
            temp_dir = tempfile.mkdtemp(prefix="/tmp/mfr")
            reaper = Reaper(temp_dir)
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=dashboard,
                     _node_ip_address=LOOPBACK_NODE_IP, _temp_dir=temp_dir,
                     log_to_driver=False, configure_logging=False)
    except Exception as e:           # Ray raises many types; the user needs one line
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
