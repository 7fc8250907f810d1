"""Start or join Ray. Local Ray in-process by default; a cluster when an address is given."""

from __future__ import annotations

import logging
import os
from typing import Any

from vidlake.errors import ConfigError
from vidlake.platform.config import RaySettings

__all__ = ["ensure_ray"]


def ensure_ray(settings: RaySettings) -> None:
    """Connect to ``settings.address`` (or ``RAY_ADDRESS``), or start a quiet local Ray.

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
        # a Ray of this machine only: its node address is loopback, not the first network interface
        kwargs.update(num_cpus=settings.num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1")
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
