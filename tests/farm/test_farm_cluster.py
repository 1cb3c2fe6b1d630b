"""The farm on a two-node ``ray.cluster_utils.Cluster`` (both nodes on 127.0.0.2, one
cluster for the module): workers land on both nodes; removing the node under a worker
mid-campaign restarts it on the other node, its batch is re-run and every finding is
stored once."""
from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

from farmutil import check_stored_once, run, session
from migfuzz.workers.runtime import LOOPBACK_NODE_IP, ray_session


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster
    tmp = tempfile.mkdtemp(prefix="/tmp/mfc")
    # the Cluster writes its address file under $RAY_TMPDIR/ray (default /tmp/ray, where
    # any `ray.init(address="auto")` on the machine would find it): keep it private
    old = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = tmp
    os.makedirs(os.path.join(tmp, "ray"))
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "include_dashboard": False, "temp_dir": tmp,
        "node_ip_address": LOOPBACK_NODE_IP,
        # declare a removed node dead in ~1 s, not ~30 s (Ray's defaults)
        "_system_config": {"health_check_initial_delay_ms": 0,
                           "health_check_period_ms": 300,
                           "health_check_failure_threshold": 3}})
    try:
        c.add_node(num_cpus=1, node_ip_address=LOOPBACK_NODE_IP)
        c.wait_for_nodes()
        with ray_session(address=c.address) as ray:
            yield c, ray
    finally:
        c.shutdown()
        if old is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = old
        shutil.rmtree(tmp, ignore_errors=True)


def _nodes(ray) -> set:
    return {n["NodeID"] for n in ray.nodes() if n["Alive"]}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _idle(ray, timeout: float = 30.0) -> None:
    """Wait until the last test's actors are gone (ray.kill is asynchronous): a campaign
    started before would find one node full and place both workers on the other."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ray.available_resources().get("CPU", 0) >= ray.cluster_resources().get("CPU", 0):
            return
        time.sleep(0.1)
    raise AssertionError(f"the cluster stayed busy: {ray.available_resources()}")


def test_workers_run_on_both_nodes(cluster, tmp_path):
    c, ray = cluster
    _idle(ray)
    assert len(_nodes(ray)) == 2
    url = f"sqlite:///{tmp_path / 'two.db'}"
    sess = session(url, "two-nodes", ["dp-fault-race", "dirty-page"])
    try:
        res, farm = run(ray, sess, 2, 1200)
    finally:
        sess.close()
    nodes = {w.node for w in farm.coord.workers}
    assert nodes == _nodes(ray), nodes
    assert all(w.executions > 0 for w in farm.coord.workers)
    st = check_stored_once(url, "two-nodes")
    assert st["status"] == "finished" and st["executions"] == 1200
    assert {"USE_AFTER_FREE", "LOST_WRITE"} <= set(st["kinds"])


def test_node_removed_mid_campaign(cluster, tmp_path):
    c, ray = cluster
    _idle(ray)
    url = f"sqlite:///{tmp_path / 'rm.db'}"
    sess = session(url, "node-removed", ["dp-fault-race", "dirty-page"])
    removed = {}
    logs = []
    worker_node = {n.node_id: n for n in c.worker_nodes}

    def progress(st):
        if removed:
            return
        for w in st["workers"]:
            # the worker on the non-head node, once it has done some batches
            if w["node"] in worker_node and w["executions"] >= 200:
                removed["node"], removed["worker"] = w["node"], w["name"]
                t0 = time.monotonic()
                c.remove_node(worker_node[w["node"]], allow_graceful=False)
                # the actor's process outlives its raylet for a moment (calls go to it
                # directly): wait until it is gone, so the removal lands mid-campaign
                while _alive(w["pid"]) and time.monotonic() - t0 < 30:
                    time.sleep(0.05)
                removed["seconds"] = time.monotonic() - t0
                return

    try:
        res, farm = run(ray, sess, 2, 3000, progress=progress, log=logs.append)
    finally:
        sess.close()
    assert removed, "no worker ran on the second node"
    assert removed["seconds"] < 30, removed
    w = next(x for x in farm.coord.workers if x.name == removed["worker"])
    assert w.node != removed["node"] and not w.failed, (w, logs)
    assert w.restarts >= 1 or any("re-sending" in m for m in logs), logs
    assert res.executions == 3000
    st = check_stored_once(url, "node-removed")
    assert st["status"] == "finished" and st["executions"] == 3000
    assert {"USE_AFTER_FREE", "LOST_WRITE"} <= set(st["kinds"])
