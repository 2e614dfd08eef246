"""Start ``cxr serve``: load the models, bind the socket, run uvicorn until stopped.

The socket is bound before uvicorn starts, so ``--port 0`` reports the port it really
got and "address already in use" is one clear error instead of a log line after the
models have loaded. uvicorn's access log is off (its lines carry the request line);
:mod:`.api` logs one line per request with the route template only. On SIGINT (Ctrl-C)
or SIGTERM uvicorn stops accepting, lets in-flight requests finish (``graceful_seconds``),
then the worker queue drains; Ctrl-C then exits 0, SIGTERM with the signal's own status
(uvicorn re-raises it, as service managers expect).

Admission control is the application's own (a bounded job queue and an in-flight byte
budget, :mod:`.admission`), never uvicorn's ``limit_concurrency``: that one counts idle
sockets too, so a few dozen connections that send nothing used to turn every answer,
``/healthz`` included, into 503. The connection cap here is far above the queue and
each connection has deadlines (:mod:`.protocol`), so idle sockets go away by themselves.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from ..errors import Unavailable
from ..log_policy import READERS, SERVERS, guard
from .api import create_app
from .config import ServeConfig
from .protocol import protocol_for

__all__ = ["run", "bind", "uvicorn_config"]

log = logging.getLogger("cxrkit.serve")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise Unavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                          "(another server there? choose another `port`)") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def uvicorn_config(app: Any, config: ServeConfig) -> Any:
    """The uvicorn settings of ``cxr serve`` for ``app`` (shared with the tests, so they run the same server)."""
    import uvicorn

    return uvicorn.Config(
        app, log_config=None, access_log=False, server_header=False, lifespan="on",
        http=protocol_for(config.header_seconds), timeout_keep_alive=max(1, round(config.keep_alive_seconds)),
        timeout_graceful_shutdown=int(config.graceful_seconds), limit_concurrency=config.max_connections,
    )


def _enough_descriptors(connections: int) -> None:
    """Raise the soft open-file limit towards the hard one so ``connections`` sockets fit (best effort)."""
    try:
        import resource
    except ImportError:  # not Unix
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 256  # sockets, plus the decoder pipes, models and logs
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            log.warning("cannot raise the open-file limit to %d; fewer connections fit", wanted)


def run(config: ServeConfig, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted; ``on_ready(url)`` is called once the models are loaded and the port is open."""
    import torch
    import uvicorn

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    if not config.loopback and config.token is None:
        log.warning("listening on %s without an access token: anyone who can reach this address can upload films",
                    config.host)
    sock = bind(config.host, config.port)
    try:
        _enough_descriptors(config.max_connections)
        app = create_app(config)
        server = uvicorn.Server(uvicorn_config(app, config))
        guard(READERS + SERVERS)  # after uvicorn's Config, which may (re)configure its loggers
        if on_ready is not None:
            on_ready(url_of(sock))
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled; the stop was already graceful
            pass
        log.info("stopped")
    finally:
        sock.close()
