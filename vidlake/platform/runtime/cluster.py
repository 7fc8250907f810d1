"""Start or join Ray (local Ray in-process by default; a cluster when an address is given), and find a free
loopback port for processes this machine starts."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from vidlake.errors import ConfigError
from vidlake.platform.config import RaySettings

__all__ = ["alive_nodes", "check_local_sources", "ensure_ray", "free_port"]


def ensure_ray(settings: RaySettings) -> None:
    """Connect to ``settings.address`` (or ``RAY_ADDRESS``), or start a quiet local Ray of its own (never
    attaching to a Ray that happens to run on the machine).

    A Ray already initialised in this process (tests, notebooks, ``ray job submit``) is reused.
    """
    import ray

    # Ray Data's default hands finished tasks' block metadata to a background thread that polls with a
    # timeout; a task's CPU slot is freed only after that, so where one decode task at a time fits, each
    # window task was followed by idle CPU (benchmarks/results/pipeline-notes.md). Fetched inline, the
    # gap shrinks. Read when Ray Data is first imported; a value set outside wins.
    os.environ.setdefault("RAY_DATA_METADATA_PREFETCH_ON_THREAD", "0")
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    address = settings.address or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": True}
    if address:
        kwargs["address"] = address
    else:
        # address="local": a new Ray of this process, never a cluster someone started on the machine
        # (ray.init() alone attaches to one); its node address is loopback, not a network interface
        kwargs.update(address="local", num_cpus=settings.num_cpus, include_dashboard=False,
                      _node_ip_address="127.0.0.1")
    try:
        ray.init(**kwargs)
    except ConnectionError as exc:
        raise ConfigError(f"cannot join the Ray cluster at {address}: {exc}") from exc
    _quiet_ray_data()


def _quiet_ray_data() -> None:
    """vidlake draws its own progress; Ray Data's per-operator bars would interleave with it."""
    from ray.data import DataContext

    logging.getLogger("ray.data").setLevel(logging.ERROR)
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.verbose_stats_logs = False


def alive_nodes() -> int:
    """How many nodes of the connected Ray are alive (a head with no CPUs counts)."""
    import ray

    return sum(1 for n in ray.nodes() if n.get("Alive"))


def check_local_sources(sources: list[str], settings: RaySettings) -> None:
    """Before any work: on a Ray cluster of more than one node, every local source must lie under one of
    ``ray.shared_paths`` (files are listed on the driver and opened by workers on other nodes, which
    would record them as missing). Raises ``ConfigError`` naming the source and the fix."""
    from vidlake.platform.storage import is_s3

    local = [s for s in sources if not is_s3(s)]
    if not local:
        return
    ensure_ray(settings)
    nodes = alive_nodes()
    if nodes <= 1:
        return
    shared = [os.path.abspath(os.path.expanduser(p)) for p in settings.shared_paths]
    for source in local:
        path = os.path.abspath(os.path.expanduser(source.removeprefix("file://")))
        if not any(path == root or path.startswith(root.rstrip("/") + "/") for root in shared):
            raise ConfigError(
                f"source {source} is a local path, but the Ray cluster has {nodes} nodes whose workers open the "
                "files: put the videos on S3, or, when the folder is on a mount every node sees at the same path, "
                f"declare it (ray.shared_paths: [{path}], or VIDLAKE_RAY__SHARED_PATHS='[\"{path}\"]')")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the system picks it): for processes this machine starts and joins
    over loopback (data-parallel training, test servers and Ray nodes)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
