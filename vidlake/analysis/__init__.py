"""Science analyses over the lake: deployments, wall-clock time, counts per site and bin, tracks, lines and zones."""
