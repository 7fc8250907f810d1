"""vidlake: Molmo 2 over video archives on Ray, kept as a queryable Delta lake."""

__version__ = "0.1.0"

__all__ = ["__version__"]
