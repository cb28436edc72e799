-- Export of everything Lufy holds about a person (src/lufy/privacy/export.py). Run as system.

-- name: table_exists
SELECT to_regclass(%s) IS NOT NULL;

-- name: profile
SELECT id, email, display_name, role, email_verified, email_verified_at, created_at,
       erased_at, EXISTS (SELECT 1 FROM lufy.credentials c WHERE c.user_id = u.id)
FROM lufy.users u WHERE id = %(id)s;

-- name: history
SELECT type, occurred_at FROM lufy.events
WHERE stream_type = 'user' AND stream_id = %(id_text)s ORDER BY global_position;

-- name: sessions
SELECT id, method, device, ip_prefix, created_at, last_seen_at, expires_at, revoked_at,
       revoked_reason
FROM lufy.sessions WHERE user_id = %(id)s ORDER BY created_at, id;

-- name: tracks
SELECT id, title, status, duration_ms, published, published_at, created_at, deleted_at
FROM lufy.tracks WHERE artist_id = %(id)s ORDER BY created_at, id;

-- name: playback
-- Playback events name their listener by keyed hash (their `listener_id` is sealed; events from
-- before sealing hold it in clear); grouped by session as the metrics define a session.
SELECT data->>'session_id' AS session_id,
       min(data->>'track_id') AS track_id,
       min(occurred_at) AS started_at,
       max(coalesce((data->>'listened_ms')::bigint, 0)) AS listened_ms,
       bool_or(type = 'playback.completed') AS completed,
       bool_or(type = 'playback.skipped') AS skipped,
       min(data->>'source') AS source,
       min(data->>'device') AS device,
       min(data->>'country') AS country
FROM lufy.events
WHERE type LIKE 'playback.%%'
  AND (data->>'listener_key' = %(key)s OR data->>'listener_id' = %(id_text)s)
GROUP BY 1 ORDER BY 3, 1;

-- name: engagement
SELECT type, data->>'track_id', data->>'artist_id', occurred_at FROM lufy.events
WHERE type IN ('track.liked', 'track.unliked', 'artist.followed', 'artist.unfollowed')
  AND (data->>'listener_key' = %(key)s OR data->>'listener_id' = %(id_text)s)
ORDER BY global_position;

-- name: subscriptions
SELECT subscription_id, status, price_id, current_period_end, cancel_at_period_end, as_of
FROM lufy.payment_subscriptions WHERE user_id = %(id)s ORDER BY as_of, subscription_id;

-- name: payments
SELECT l.kind, l.amount_minor, l.currency, l.at
FROM lufy.payment_ledger l JOIN lufy.payment_customers c ON c.customer_id = l.customer_id
WHERE c.user_id = %(id)s ORDER BY l.at, l.stripe_event_id;
