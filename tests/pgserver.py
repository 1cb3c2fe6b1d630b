"""A PostgreSQL server for tests and benchmarks: ``MIGFUZZ_TEST_PG_URL`` (``.ci/run``
starts one), a failure under CI without it, else a throwaway cluster (initdb under /tmp,
Unix socket only, fsync off; ../shared/docs/infra.md) removed at the end. Shared by the
store and dashboard tests and bench/store.py."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from contextlib import contextmanager

import pytest


def _pg_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: [int(x) for x in p.split("/")[4].split(".") if x.isdigit()])
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def start_throwaway_pg(port: int):
    """Start a PostgreSQL cluster under /tmp on a Unix socket; returns (url, stop).
    RuntimeError if it cannot."""
    pgbin = _pg_bin()
    if pgbin is None:
        raise RuntimeError("no PostgreSQL here: install it (apt-get install -y postgresql) "
                           "or set MIGFUZZ_TEST_PG_URL")
    root = tempfile.mkdtemp(prefix="pgt.", dir="/tmp")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data = os.path.join(root, "data")

    def run(cmd):
        return subprocess.run(_as_postgres(cmd), check=True, capture_output=True, timeout=120)

    def stop():
        subprocess.run(_as_postgres([f"{pgbin}/pg_ctl", "-D", data, "-m", "immediate", "-w",
                                     "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
    try:
        run([f"{pgbin}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
             "--locale=C.UTF-8", "--no-sync"])
        run([f"{pgbin}/pg_ctl", "-D", data, "-l", f"{root}/pg.log", "-w", "-o",
             f"-p {port} -k {root} -c listen_addresses='' -c fsync=off "
             f"-c max_connections=200", "start"])
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        stop()
        raise RuntimeError(f"could not start a throwaway PostgreSQL: "
                           f"{(getattr(e, 'stderr', b'') or b'').decode()[-300:]}") from None
    return f"postgresql+psycopg://postgres@/postgres?host={root}&port={port}", stop


def pg_server(port: int, what: str):
    """Fixture body: yield a server URL we may create databases on."""
    url = os.environ.get("MIGFUZZ_TEST_PG_URL")
    if url:
        yield url
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"MIGFUZZ_TEST_PG_URL is not set: under CI {what} must run "
                    f"(.ci/run starts a server)", pytrace=False)
    try:
        url, stop = start_throwaway_pg(port)
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield url
    finally:
        stop()


def _admin(url: str):
    import psycopg
    from sqlalchemy.engine import make_url
    u = make_url(url)
    q = dict(u.query)
    return psycopg.connect(dbname="postgres", user=u.username or "postgres",
                           password=u.password, host=q.get("host", u.host),
                           port=q.get("port", u.port), autocommit=True)


@contextmanager
def fresh_database(server: str, prefix: str):
    """A new, empty database on ``server``, dropped afterwards; yields its URL."""
    from sqlalchemy.engine import make_url
    name = prefix + uuid.uuid4().hex[:12]
    with _admin(server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with _admin(server) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
