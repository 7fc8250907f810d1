"""Standard exports of the lake (``vidlake export``): Camtrap DP 1.0, MOTChallenge, CSV and Parquet tables.

    camtrap.py               deployments, media and machine observations as a Camtrap DP 1.0 package
    camtrap_observations.py  the media-level observations from points, tracks and counts
    camtrap_schema.py        the Camtrap DP 1.0 table schemas, its package metadata, validate_camtrap_dp
    mot.py                   tracks as MOTChallenge files, as vidlake/evaluation/formats.py reads them
    tables.py                the science tables as CSV (ISO 8601 times) and Parquet
    common.py                what they share: Exported, Skipped, CSV writing, times with offsets

docs/exports.md says what each holds and what it leaves out.
"""
