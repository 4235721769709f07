"""`schema pull`: each sign-in table's `getschema`, as the workspace has it, in files `--table-schema` reads.

One query per table through azure-monitor-query's LogsQueryClient (with our bounded retry
policy). A table the workspace does not have (its diagnostic setting is off) is reported and
left out; any other failure writes nothing. Each file is `<Table>.json`: the getschema rows
(ColumnName, ColumnOrdinal, DataType, ColumnType) in column order, which
`tables.table_from_getschema` reads.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.pipeline import policies

from .answers import AnswerTooLarge, BoundedTransport
from .endpoints import Endpoint
from .credentials import SignInFailed
from .pipeline import BoundedRetryPolicy, HttpSettings, RequestFailed, first_line, no_answer_reason, sign_in_failed

GETSCHEMA_COLUMNS = ("ColumnName", "ColumnOrdinal", "DataType", "ColumnType")
MISSING_TABLE = ("Failed to resolve table", "SEM0100")


@dataclass
class Pulled:
    files: dict[str, str] = field(default_factory=dict)  # file name → text
    missing: list[str] = field(default_factory=list)  # tables the workspace does not have


def logs_client(endpoint: Endpoint, credential, settings: HttpSettings):
    from azure.monitor.query import LogsQueryClient

    return LogsQueryClient(
        credential, endpoint=endpoint.url, retry_policy=BoundedRetryPolicy(settings),
        transport=BoundedTransport(connection_timeout=settings.connect_timeout, read_timeout=settings.timeout),
        logging_policy=policies.NetworkTraceLoggingPolicy(logging_enable=False),  # never on: it logs tokens
        http_logging_policy=policies.HttpLoggingPolicy(),
    )


def schema_rows(table) -> list[dict]:
    """The getschema rows of a LogsTable, in column order, with exactly the four getschema columns."""
    missing = [c for c in GETSCHEMA_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"the answer lacks the getschema column(s) {', '.join(missing)}")
    rows = [{name: row[table.columns.index(name)] for name in GETSCHEMA_COLUMNS} for row in table.rows]
    for row in rows:  # what the answer says becomes a file --table-schema reads: the types getschema gives
        if not (isinstance(row["ColumnName"], str) and isinstance(row["DataType"], str) and isinstance(row["ColumnType"], str)
                and isinstance(row["ColumnOrdinal"], int) and not isinstance(row["ColumnOrdinal"], bool)):
            raise ValueError(f"a getschema row of other types than getschema gives: {row!r}"[:300])
    return sorted(rows, key=lambda r: (r["ColumnOrdinal"], r["ColumnName"]))


def pull(client, endpoint: Endpoint, workspace_id: str, tables: list[str]) -> Pulled:
    options = {"enforce_https": False} if endpoint.insecure_loopback else {}
    result = Pulled()
    url = f"{endpoint.url}/v1/workspaces/{workspace_id}/query"
    for table in tables:
        try:
            answer = client.query_workspace(workspace_id, f"{table} | getschema", timespan=None, **options)
        except SignInFailed as error:  # no credential worked: what each said, in short lines
            raise sign_in_failed("POST", url, error) from None
        except HttpResponseError as error:
            text = _response_text(error)
            if error.status_code == 400 and any(mark in text for mark in MISSING_TABLE):
                result.missing.append(table)
                continue
            raise RequestFailed("POST", url, error.status_code, _error_code(error), first_line(error.message)) from None
        except AzureError as error:
            raise RequestFailed("POST", url, None, None, f"{no_answer_reason(error)} ({first_line(error.message)})") from None
        except AnswerTooLarge as error:
            raise RequestFailed("POST", url, None, "AnswerTooLarge", str(error)) from None
        except (AttributeError, TypeError, IndexError, KeyError, ValueError, RecursionError) as error:
            # the SDK read an answer of another shape than a query result (a list, text, nesting without end)
            raise RequestFailed("POST", url, 200, "InvalidResponse", f"the answer is not a query result ({type(error).__name__})") from None
        if not getattr(answer, "tables", None):
            raise RequestFailed("POST", url, 200, "PartialResult", f"'{table} | getschema' returned no table")
        try:
            rows = schema_rows(answer.tables[0])
        except (ValueError, TypeError, KeyError, IndexError) as error:
            raise RequestFailed("POST", url, 200, "InvalidResponse", str(error)) from None
        result.files[f"{table}.json"] = json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    return result


def _response_text(error: HttpResponseError) -> str:
    try:
        return error.response.text() if error.response is not None else str(error)
    except Exception:  # noqa: BLE001 - an unreadable body is only a worse message
        return str(error)


def _error_code(error: HttpResponseError) -> str | None:
    try:
        return json.loads(_response_text(error))["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def write_files(out: Path, files: dict[str, str]) -> list[Path]:
    """Each file written whole (a temporary file renamed over it); other files in `out` stay."""
    from ...write import umask_mode

    out.mkdir(parents=True, exist_ok=True)
    written, mode = [], umask_mode()
    for name, text in sorted(files.items()):
        handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=out)
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
                stream.write(text)
            os.chmod(temporary, mode)  # mkstemp's 0600 is for the temporary file, not for the file kept
            os.replace(temporary, out / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written.append(out / name)
    return written
