"""The job rows of a window, read page by page: the report's and the guard's only table read.

The table has no index on time or status, and the program never changes the adopted table, so
this is a Scan with a filter on ``created_at`` (the backend writes it on every row) and a
projection of the attributes the figures use (`router.report.ROW_ATTRIBUTES`). DynamoDB bills a
Scan by the size of the items it reads, not of what it returns: the whole table is read each
time, whatever the window (docs/router.md gives the cost per 100,000 rows).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator

from botocore.exceptions import BotoCoreError, ClientError

from router.errors import RecordError
from router.record import JobTable
from router.report import ROW_ATTRIBUTES


def window_start(moment: datetime) -> str:
    # No fraction and no "Z": "...:05" sorts before "...:05Z" and "...:05.123456Z" alike, so a
    # string comparison takes every row written from that second on, in either of the row's formats.
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def rows_since(table: JobTable, since: datetime, *, page_size: int | None = None) -> Iterator[dict[str, Any]]:
    """Rows created at or after ``since``; raises `RecordError` when the table cannot be read."""
    names = {f"#a{index}": name for index, name in enumerate(ROW_ATTRIBUTES)}
    created = next(alias for alias, name in names.items() if name == "created_at")
    scan: dict[str, Any] = {
        "ProjectionExpression": ", ".join(names),
        "FilterExpression": f"{created} >= :since",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {":since": window_start(since)},
        "ConsistentRead": False,
    }
    if page_size:
        scan["Limit"] = page_size
    dynamodb_table = table.dynamodb_table()
    while True:
        try:
            page = dynamodb_table.scan(**scan)
        except (ClientError, BotoCoreError) as error:
            raise RecordError(f"could not read the job table {table.name}: {error}") from error
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
