"""Ray start/connect, the two executors of a step list (executors.py), progress and summaries."""

from vidlake.platform.runtime.cluster import check_local_sources, ensure_ray
from vidlake.platform.runtime.progress import console, print_summary, progress_bar

__all__ = ["check_local_sources", "console", "ensure_ray", "print_summary", "progress_bar"]
