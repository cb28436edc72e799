-- Test helpers (src/lufy/testing/analytics.py).

-- name: current_xact_id
SELECT pg_current_xact_id()::text::bigint;

-- name: insert_artist
INSERT INTO lufy.users (id, email, display_name, role, email_verified)
VALUES (%s, %s, %s, %s, true);

-- name: insert_track
INSERT INTO lufy.tracks (id, artist_id, title, status, duration_ms, published, published_at)
VALUES (%s, %s, %s, 'ready', 240000, true, now());
