"""The sealing migration's part for listener ids (called by `reseal.seal_existing_events`).

Analytics events written before listener sealing hold `listener_id` / `anonymous_id` in clear:
they get them sealed as ingestion seals them now (privacy.listeners: the person's key, then the
event's month key). Stream grants written before it hold the user id in `listener_id` and in
the metadata's `actor_id`: they get the `listener_key` the analytics projection used to
compute from it, and lose both (the key is all the projection needs, so its read models do not
change). Rows are streamed and rewritten in chunks, inside the caller's transaction, with the
append-only trigger already disabled by the caller.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg

from lufy.analytics.classify import listener_identity, listener_key
from lufy.analytics.events import ANALYTICS_TYPES
from lufy.privacy.listeners import (
    SealingKeys,
    month_of,
    month_subject,
    seal_listener_fields,
    throwaway_key,
)
from lufy.privacy.sealing import is_sealed
from lufy.sqlfiles import load_queries

__all__ = ["ListenerReport", "any_clear_listeners", "seal_listener_ids"]

_Q = load_queries("lufy.privacy", "listeners.sql")
_GRANT = "catalog.stream_authorized"
CHUNK = 5000


@dataclass
class ListenerReport:
    events_sealed: int = 0
    grants_rekeyed: int = 0
    first_position: int = 0
    last_position: int = 0


def any_clear_listeners(conn: psycopg.Connection[Any], since: str) -> bool:
    row = conn.execute(
        _Q.any_clear_listeners, {"since": since, "types": sorted(ANALYTICS_TYPES)}
    ).fetchone()
    return bool(row and row[0])


class _MonthKeys:
    def __init__(self, conn: psycopg.Connection[Any], person_key: Callable[[uuid.UUID], bytes]):
        self.conn = conn
        self.person_key = person_key
        self.cache: dict[date, bytes] = {}

    def month(self, month: date) -> bytes:
        if month not in self.cache:
            subject = month_subject(month)
            self.conn.execute(_Q.register_month, {"month": month, "subject": subject})
            row = self.conn.execute(_Q.month_destroyed, {"month": month}).fetchone()
            if row is not None and row[0]:
                self.cache[month] = throwaway_key()
            else:
                self.cache[month] = self.person_key(subject)
        return self.cache[month]


def _user(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str) or is_sealed(value):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _seal_analytics(keys: _MonthKeys, data: dict[str, Any], month: date) -> dict[str, Any]:
    listener, anonymous = data.get("listener_id"), data.get("anonymous_id")
    if is_sealed(listener) and is_sealed(anonymous):
        return data
    user = _user(listener)
    keymap = SealingKeys({month_subject(month): keys.month(month)})
    if user is not None:
        keymap[user] = keys.person_key(user)
    new_listener, new_anonymous = seal_listener_fields(
        keymap, month, user, anonymous if isinstance(anonymous, str) else None
    )
    out = dict(data)
    if listener is not None and not is_sealed(listener):
        # A listener_id that is no user id (hand-written) is kept under the month key only.
        out["listener_id"] = (
            new_listener
            if user is not None
            else seal_listener_fields(keymap, month, None, str(listener))[1]
        )
    if anonymous is not None and not is_sealed(anonymous):
        out["anonymous_id"] = new_anonymous
    return out


def _rekey_grant(secret: bytes, data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    user = _user(out.pop("listener_id", None))
    identity = listener_identity(user, None)
    if identity is not None and out.get("listener_key") is None:
        out["listener_key"] = listener_key(secret, identity)
    return out


def seal_listener_ids(
    conn: psycopg.Connection[Any], since: str, person_key: Callable[[uuid.UUID], bytes]
) -> ListenerReport:
    """Rewrite what still names a listener in clear (see the module); the caller holds the
    migration lock, the transaction and the disabled trigger."""
    report = ListenerReport()
    keys = _MonthKeys(conn, person_key)
    row = conn.execute(_Q.hmac_key).fetchone()
    secret = bytes(row[0]) if row else None
    params = {"since": since, "types": sorted(ANALYTICS_TYPES)}
    with conn.cursor(name="lufy_reseal_listeners") as source:
        source.execute(_Q.clear_listeners, params)
        while chunk := source.fetchmany(CHUNK):
            positions, datas, metas = [], [], []
            for position, type_name, occurred_at, data, metadata in chunk:
                if type_name == _GRANT:
                    if secret is None:
                        raise RuntimeError("analytics secret missing: run `lufy migrate`")
                    new = _rekey_grant(secret, data)
                    report.grants_rekeyed += 1
                else:
                    new = _seal_analytics(keys, data, month_of(occurred_at))
                    report.events_sealed += 1
                # A grant's actor is its listener: the user id goes from the metadata too.
                meta = metadata or {}
                if type_name == _GRANT:
                    meta = {k: v for k, v in meta.items() if k != "actor_id"}
                positions.append(position)
                datas.append(json.dumps(new))
                metas.append(json.dumps(meta))
                report.first_position = report.first_position or position
                report.last_position = position
            conn.execute(
                _Q.rewrite_events, {"positions": positions, "data": datas, "metadata": metas}
            )
    return report
