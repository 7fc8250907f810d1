"""The lake: Arrow schemas, identities and Delta tables."""

from vidlake.platform.lake.schemas import KEYS, SCHEMAS, schema_for
from vidlake.platform.lake.tables import Lake, delta_dataset

__all__ = ["KEYS", "Lake", "SCHEMAS", "delta_dataset", "schema_for"]
