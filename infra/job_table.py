"""The backend's job table as its Terraform defines it.

One schema for the adopted declaration (`infra.existing`) and the local stand-in
(`sandbox.backend`), so tests run against the table the program adopts. Pure: no Pulumi.
"""

from __future__ import annotations

HASH_KEY = "video_id"
# Global secondary indexes: (name, hash key, range key or None); every key is a string.
INDEXES = (
    ("user_id-upload_date-index", "user_id", "upload_date"),
    ("user_id-created_at-index", "user_id", "created_at"),
    ("video_id-segment_type-index", "video_id", "segment_type"),
    ("user_id-segment_type-index", "user_id", "segment_type"),
    ("segment_id-index", "segment_id", None),
)


def key_attributes() -> list[str]:
    """Every attribute a key or an index uses, sorted (DynamoDB declares exactly these)."""
    return sorted({HASH_KEY} | {key for _, hash_key, range_key in INDEXES for key in (hash_key, range_key) if key})
