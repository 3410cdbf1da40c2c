"""Message Batches: in-memory batches that end after a configurable delay, as the API's lifecycle.

A batch is ``in_progress`` until ``batch_delay_seconds`` pass (or it is cancelled), then every
request is answered at once and the batch is ``ended`` with per-``custom_id`` results.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmops.sim.messages import new_id
from llmops.sim.protocol import ApiError, parse_request

BatchResult = dict[str, Any]
"""One request's result: ``{"type": "succeeded", "message": …}`` or ``{"type": "errored", "error": …}``."""


class BatchRequest(BaseModel):
    """One request of a batch: the caller's id for it and its Messages parameters."""

    model_config = ConfigDict(extra="forbid")

    custom_id: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    params: dict[str, Any]


class BatchCreate(BaseModel):
    """Body of ``POST /v1/messages/batches``."""

    model_config = ConfigDict(extra="forbid")

    requests: list[BatchRequest] = Field(min_length=1, max_length=100_000)


def rfc3339(moment: datetime | None) -> str | None:
    """A UTC time as the API writes it (``…Z``), or None.

    Example:
        >>> rfc3339(datetime(2025, 11, 15, 10, 0, tzinfo=UTC))
        '2025-11-15T10:00:00Z'
    """
    return moment.isoformat().replace("+00:00", "Z") if moment else None


@dataclass
class Batch:
    """One message batch: its requests, lifecycle timestamps and, once ended, its results."""

    id: str
    requests: list[BatchRequest]
    created_at: datetime
    processing_status: Literal["in_progress", "canceling", "ended"] = "in_progress"
    ended_at: datetime | None = None
    cancel_initiated_at: datetime | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)

    def counts(self) -> dict[str, int]:
        """The API's ``request_counts``: all ``processing`` until the batch ends, then by result type."""
        tally = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if self.processing_status != "ended":
            tally["processing"] = len(self.requests)
            return tally
        for line in self.results:
            tally[line["result"]["type"]] += 1
        return tally

    def to_json(self, base_url: str) -> dict[str, Any]:
        """The MessageBatch object; ``results_url`` is absolute because the SDK follows it as is."""
        ended = self.processing_status == "ended"
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.processing_status,
            "request_counts": self.counts(),
            "created_at": rfc3339(self.created_at),
            "expires_at": rfc3339(self.created_at + timedelta(hours=24)),
            "ended_at": rfc3339(self.ended_at),
            "cancel_initiated_at": rfc3339(self.cancel_initiated_at),
            "archived_at": None,
            "results_url": f"{base_url}/v1/messages/batches/{self.id}/results" if ended else None,
        }


class BatchStore:
    """Every batch of this server, newest last, with the background task that ends each one.

    Args:
        answer: Answers one request's params (``SimState.answer_batch_request``).
        delay_seconds: How long a new batch stays ``in_progress`` (read as each batch starts).
    """

    def __init__(self, answer: Callable[[dict[str, Any]], BatchResult], delay_seconds: Callable[[], float]):
        self._answer = answer
        self._delay_seconds = delay_seconds
        self._batches: dict[str, Batch] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def create(self, body: object) -> Batch:
        """Validate a create body and start the batch (needs a running event loop).

        Raises:
            ApiError: 400 for an invalid body or a duplicated ``custom_id``.
        """
        spec = parse_request(BatchCreate, body)
        seen: set[str] = set()
        for item in spec.requests:
            if item.custom_id in seen:
                raise ApiError(400, "invalid_request_error", f"requests: custom_id {item.custom_id!r} is duplicated")
            seen.add(item.custom_id)
        batch = Batch(id=new_id("msgbatch"), requests=spec.requests, created_at=datetime.now(UTC))
        self._batches[batch.id] = batch
        task = asyncio.get_running_loop().create_task(self._process(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return batch

    async def _process(self, batch: Batch) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(batch.cancel_requested.wait(), self._delay_seconds())
        canceled = batch.cancel_requested.is_set()
        for item in batch.requests:
            result = {"type": "canceled"} if canceled else self._answer(item.params)
            batch.results.append({"custom_id": item.custom_id, "result": result})
        batch.processing_status = "ended"
        batch.ended_at = datetime.now(UTC)

    def get(self, batch_id: str) -> Batch:
        """The batch, or the API's 404."""
        if batch_id not in self._batches:
            raise ApiError(404, "not_found_error", f"message batch {batch_id!r} not found")
        return self._batches[batch_id]

    def page(self, limit: int, after_id: str | None, before_id: str | None) -> tuple[list[Batch], bool]:
        """Newest first, cursor-paginated like the API: (batches, has_more)."""
        newest_first = list(reversed(self._batches.values()))
        ids = [batch.id for batch in newest_first]
        for name, cursor in (("after_id", after_id), ("before_id", before_id)):
            if cursor is not None and cursor not in ids:
                raise ApiError(400, "invalid_request_error", f"{name}: {cursor!r} is not a message batch id")
        if after_id is not None:
            start = ids.index(after_id) + 1
            return newest_first[start : start + limit], start + limit < len(ids)
        if before_id is not None:
            end = ids.index(before_id)
            start = max(0, end - limit)
            return newest_first[start:end], start > 0
        return newest_first[:limit], limit < len(ids)

    def cancel(self, batch_id: str) -> Batch:
        """Ask an in-progress batch to end early; its unanswered requests end ``canceled``."""
        batch = self.get(batch_id)
        if batch.processing_status == "in_progress":
            batch.processing_status = "canceling"
            batch.cancel_initiated_at = datetime.now(UTC)
            batch.cancel_requested.set()
        return batch

    def delete(self, batch_id: str) -> None:
        """Forget an ended batch; a 400 while it is still running."""
        batch = self.get(batch_id)
        if batch.processing_status != "ended":
            raise ApiError(
                400,
                "invalid_request_error",
                f"message batch {batch_id!r} is {batch.processing_status}; cancel it and wait until it has ended",
            )
        del self._batches[batch_id]

    def results_jsonl(self, batch_id: str) -> str:
        """The ended batch's results, one JSON line per request; a 400 before it has ended."""
        batch = self.get(batch_id)
        if batch.processing_status != "ended":
            raise ApiError(
                400,
                "invalid_request_error",
                f"message batch {batch_id!r} has no results yet: it is still {batch.processing_status}",
            )
        return "".join(json.dumps(line) + "\n" for line in batch.results)

    def close(self) -> None:
        """Stop the background tasks (server shutdown)."""
        for task in self._tasks:
            task.cancel()
