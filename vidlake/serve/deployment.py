"""The Ray Serve deployment around the FastAPI app, and ``run_service`` for ``vidlake serve``.

Each replica builds its own app with ``create_app(settings)`` (late-bound ingress), so the index is
opened and the embedding model loaded in the replica, not on the driver.
"""

from __future__ import annotations

import os
import signal
import socket
from typing import Any

from ray import serve

from vidlake.errors import ConfigError
from vidlake.platform.config import Settings
from vidlake.serve.app import create_app
from vidlake.serve.tuning import prepare_ray, tune_replica

__all__ = ["SearchService", "app_builder", "build_app", "run_service"]


@serve.deployment(name="vidlake-search")
@serve.ingress()
class SearchService:
    """One replica: the search app over the index of ``settings.lake``."""

    def __init__(self, settings: Settings):
        self._settings = settings
        tune_replica(settings.serve)

    def __serve_build_asgi_app__(self) -> Any:
        return create_app(self._settings)


def build_app(settings: Settings) -> Any:
    """The Serve application for ``settings`` (replicas and concurrency from ``settings.serve``)."""
    plain = Settings.model_validate(settings.model_dump())  # a YAML-file subclass pickles poorly
    return SearchService.options(
        num_replicas=settings.serve.replicas,
        max_ongoing_requests=settings.serve.max_ongoing_requests,
        ray_actor_options={"num_cpus": settings.serve.replica_cpus},
        logging_config={"log_level": "WARNING"},  # per-request access lines: see /metrics instead
    ).bind(plain)


def app_builder(args: dict[str, Any]) -> Any:
    """Serve's application builder, for ``serve run`` and a RayService's ``import_path:
    vidlake.serve.deployment:app_builder``. ``args`` (the RayService's ``args``) are settings sections as
    in a settings YAML, plus ``config``: a settings file to start from, for example
    ``{"lake": {"uri": "s3://bucket/lake"}, "serve": {"replicas": 2}}``. The environment
    (``VIDLAKE_*``) fills in the rest, as for the command line."""
    from vidlake.platform.config import load_settings

    args = dict(args or {})
    config = args.pop("config", None)
    return build_app(load_settings(config, **args))


def run_service(settings: Settings, blocking: bool = True, name: str = "vidlake") -> str:
    """Start Serve's HTTP proxy on ``serve.host:serve.port`` and deploy the app; returns its URL.

    ``blocking`` keeps the call running until Ctrl-C or SIGTERM, then stops what it started: in a Ray
    it started itself, Serve and that Ray; in a cluster it joined, only its own application (the
    cluster's Serve and other applications keep running).
    """
    import ray

    from vidlake.platform.runtime import ensure_ray

    s = settings.serve
    joining = bool(ray.is_initialized() or settings.ray.address or os.environ.get("RAY_ADDRESS"))
    ingress = prepare_ray(s, joining)
    if not joining:
        check_port_free(s.host, s.port)
    ensure_ray(settings.ray)
    serve.start(http_options={"host": s.host, "port": s.port}, logging_config={"log_level": "WARNING"})
    url = f"http://{s.host}:{s.port}{s.route_prefix.rstrip('/')}/"
    if not blocking:
        serve.run(build_app(settings), name=name, route_prefix=s.route_prefix)
        return url
    # SIGTERM (systemd, Kubernetes, kill) stops the service as Ctrl-C does, instead of Ray's handler
    # printing a C stack dump
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve.run(build_app(settings), name=name, route_prefix=s.route_prefix)
        via = {"haproxy": "HAProxy", "proxy": "Serve's Python proxy"}.get(ingress, "the cluster's ingress")
        print(f"vidlake search on {url} via {via} (API docs: {url}docs); Ctrl-C stops it", flush=True)
        _wait_for_stop()
    except KeyboardInterrupt:  # also while the app was still deploying
        pass
    print("stopping vidlake search", flush=True)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal does not cut the stop short
    try:
        if joining:
            serve.delete(name)
        else:  # the Ray is ours: it goes, with Serve's actors and proxies
            if ingress == "haproxy":
                serve.shutdown()  # HAProxy is a child of Serve's proxy actor: stopped by Serve, not orphaned
            ray.shutdown()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return url


def check_port_free(host: str, port: int) -> None:
    """Refuse, before Ray starts, a ``host:port`` another process listens on (Serve would retry binding
    it for a while and then fail with a long traceback)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free to Serve too
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); another process holds the "
                              "port: stop it or pick another with --port") from None


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM (both raise KeyboardInterrupt here)."""
    import time

    while True:
        time.sleep(3600)
