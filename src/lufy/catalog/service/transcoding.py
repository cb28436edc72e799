"""Processing: the media-processing job's steps on a track, decided as role `system`.

Event ids derive from the job's key and step, so a retried job appends the same events, which
the store dedupes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from lufy.catalog import model
from lufy.catalog.commands import FailTranscoding, FinishTranscoding, StartTranscoding
from lufy.catalog.service.base import CatalogBase

__all__ = ["Transcoding"]


class Transcoding(CatalogBase):
    async def processing_state(self, track_id: uuid.UUID) -> model.TrackState:
        async with self.db.transaction(role="system") as conn:
            state, _ = await self._load(conn, track_id)
        return state

    @staticmethod
    def _job_event_id(job_key: str, step: str) -> Callable[[int], uuid.UUID]:
        # Deterministic ids: a retried job appends the same events, which the store dedupes.
        return lambda i: uuid.uuid5(uuid.NAMESPACE_URL, f"lufy:process_upload:{job_key}:{step}:{i}")

    async def start_transcoding(self, track_id: uuid.UUID, job_key: str) -> model.TrackState:
        return await self._system_decide(
            track_id,
            lambda s: model.decide_start(s, StartTranscoding(job_key=job_key)),
            self._job_event_id(job_key, "started"),
            job_key,
        )

    async def finish_transcoding(
        self, track_id: uuid.UUID, job_key: str, result: FinishTranscoding
    ) -> model.TrackState:
        return await self._system_decide(
            track_id,
            lambda s: model.decide_finish(s, result),
            self._job_event_id(job_key, "transcoded"),
            job_key,
        )

    async def fail_transcoding(
        self, track_id: uuid.UUID, job_key: str, reason: str
    ) -> model.TrackState:
        return await self._system_decide(
            track_id,
            lambda s: model.decide_fail(s, FailTranscoding(reason=reason)),
            self._job_event_id(job_key, "failed"),
            job_key,
        )
