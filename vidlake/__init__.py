"""vidlake: Molmo 2 over video archives on Ray, kept as a queryable Delta lake."""

__version__ = "0.1.0"

from vidlake.models.molmo2_parse import parse_molmo2  # noqa: E402 - pure, cheap (no torch)

__all__ = ["__version__", "parse_molmo2"]
