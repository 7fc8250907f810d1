"""Ray start/connect, resources as Ray kwargs, progress and summaries."""

from vidlake.platform.runtime.cluster import ensure_ray, ray_remote_args
from vidlake.platform.runtime.progress import console, print_summary, progress_bar

__all__ = ["console", "ensure_ray", "print_summary", "progress_bar", "ray_remote_args"]
