"""``migfuzz dashboard``: the read-only web dashboard over a store (see docs/dashboard.md)."""
from __future__ import annotations

import errno
import ipaddress
import socket
import sys

from migfuzz.db.errors import StoreError

from ..cli import EXIT_OK, UsageError

USER_ERRORS = (StoreError,)


def register(sub) -> None:
    p = sub.add_parser(
        "dashboard", help="serve the read-only web dashboard (campaigns, bugs, corpus, /metrics)",
        description="Serve a read-only web dashboard over the store: campaign charts, the "
        "bug list, each bug's interleaving as a swimlane with its page audit log, the "
        "corpus, and Prometheus metrics at /metrics. It binds to loopback unless "
        "--allow-remote is given, and never writes to the database.",
        epilog="Exit status: 0 stopped, 2 usage error or a database it cannot read.")
    p.add_argument("--db", metavar="URL", help="database URL (default: $MIGFUZZ_DB, else "
                   "sqlite:///migfuzz.db here)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; a non-loopback address needs "
                        "--allow-remote)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow binding a non-loopback address: anyone who can reach it "
                        "sees the bugs and reproducers (there is no authentication)")
    p.set_defaults(func=cmd_dashboard)


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False                      # a name: it could resolve to anything


def check_bind(host: str, port: int, allow_remote: bool) -> None:
    if not 0 < port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, not {port}")
    if not host:
        raise UsageError("--host must not be empty")
    if not allow_remote and not is_loopback(host):
        raise UsageError(f"refusing to bind {host}: it is not a loopback address and the "
                         f"dashboard has no authentication; pass --allow-remote to do it "
                         f"anyway")


NO_AUTH_WARNING = ("migfuzz dashboard: WARNING: listening on {host}, a non-loopback "
                   "address, with no authentication: anyone who can reach port {port} can "
                   "read every bug and download every reproducer")


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is printed: a port in use or an address
    this machine does not have is one line and exit 2, not a banner and then a traceback.
    uvicorn serves on this very socket, so nothing can take the port in between."""
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise UsageError(f"cannot bind {host}:{port}: {getattr(e, 'strerror', None) or e}"
                         ) from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as uvicorn does
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is already in use; pick another with "
                             f"--port") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise UsageError(f"cannot bind {host}:{port}: permission denied (ports below "
                             f"1024 need root); pick another with --port") from None
        raise UsageError(f"cannot bind {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def cmd_dashboard(args) -> int:
    check_bind(args.host, args.port, args.allow_remote)
    import uvicorn

    from migfuzz.dashboards.app import create_app
    from migfuzz.dashboards.readonly import open_readonly
    from migfuzz.db.engine import redact

    store = open_readonly(args.db)
    try:
        sock = bind_socket(args.host, args.port)
    except BaseException:
        store.close()
        raise
    app = create_app(store=store)
    host = f"[{args.host.strip('[]')}]" if ":" in args.host else args.host
    if not is_loopback(args.host):
        print(NO_AUTH_WARNING.format(host=host, port=args.port), file=sys.stderr)
    print(f"migfuzz dashboard: http://{host}:{args.port}/ (read-only, {redact(store.url)}); "
          f"Ctrl+C stops it", file=sys.stderr)
    try:
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        server.run(sockets=[sock])
    except KeyboardInterrupt:             # uvicorn re-raises the Ctrl+C it caught: a stop
        pass
    finally:
        sock.close()
        store.close()
    return EXIT_OK
