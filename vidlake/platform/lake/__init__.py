"""The lake: Arrow schemas, identities and Delta tables."""

from vidlake.platform.lake.schemas import KEYS, SCHEMAS, schema_for
from vidlake.platform.lake.tables import Lake

__all__ = ["KEYS", "Lake", "SCHEMAS", "schema_for"]
