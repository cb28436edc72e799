"""Master key rotation: `rewrap_data_keys`, run by `lufy migrate` after the sealing migration.

To rotate `DATA_KEY_SECRET`: set the new secret, list the old one in
`DATA_KEY_PREVIOUS_SECRETS` (every process then opens keys wrapped by either), run
`lufy migrate`: every data key not wrapped by the current secret (`lufy.data_keys.secret_id`
differs: a previous secret, the per-database dev key, or unknown) is unwrapped and wrapped
again by the current secret, in one transaction, recorded as `operations.data_keys_rewrapped`
(stream operations/data_keys). Then drop the old secret from `DATA_KEY_PREVIOUS_SECRETS`.
The data keys themselves do not change, so nothing sealed is rewritten. Idempotent: with every
key wrapped by the current secret it writes nothing. Without `DATA_KEY_SECRET` it does nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from lufy.eventstore.codec import default_codec
from lufy.operations.events import DataKeysRewrapped
from lufy.privacy.sealing import SealingError, _secret, _unwrap, secret_id, wrap
from lufy.sqlfiles import load_queries

__all__ = ["rewrap_data_keys"]

_Q = load_queries("lufy.privacy", "keys.sql")


def rewrap_data_keys(
    conn: psycopg.Connection[Any], say: Callable[[str], None] | None = None
) -> DataKeysRewrapped | None:
    """Wrap every data key by the current secret (see the module); None when none had to be."""
    secret = _secret()
    if secret is None:
        return None
    fingerprint = secret_id(secret)
    with conn.transaction():
        conn.execute(_Q.as_system)
        rows = conn.execute(_Q.keys_to_rewrap, {"secret_id": fingerprint}).fetchall()
        if not rows:
            return None
        master = conn.execute(_Q.master).fetchone()
        db_secret = bytes(master[0]) if master else None
        subjects: list[uuid.UUID] = []
        wrapped: list[bytes] = []
        from_database = unopenable = 0
        for subject, old, wrapped_by in rows:
            try:
                key = _unwrap(subject, bytes(old), wrapped_by, db_secret)
            except SealingError:
                unopenable += 1  # wrapped by a secret nobody listed: left as it is
                continue
            subjects.append(subject)
            wrapped.append(wrap(subject, key, secret.encode()))
            from_database += wrapped_by == "database"
        report = DataKeysRewrapped(
            rewrapped=len(subjects), from_database=from_database, unopenable=unopenable
        )
        if subjects:
            conn.execute(
                _Q.rewrap, {"subjects": subjects, "wrapped": wrapped, "secret_id": fingerprint}
            )
            type_name, version, payload = default_codec().encode(report)
            conn.execute(
                _Q.record,
                {"event_id": uuid.uuid4(), "type": type_name, "version": version, "data": payload},
            )
    if say is not None:
        say(
            f"wrapped {report.rewrapped} data key(s) by the current DATA_KEY_SECRET "
            f"({report.from_database} from the per-database dev key)"
        )
        if unopenable:
            say(
                f"{unopenable} data key(s) open with no configured secret: list the secret "
                "they were wrapped with in DATA_KEY_PREVIOUS_SECRETS and run `lufy migrate` again"
            )
    return report
