-- name: hmac_key
SELECT hmac_key FROM lufy.analytics_secret;

-- name: known_tracks
-- Run as role 'system': every track exists for ingestion, published or not, deleted or not
-- (late events of a deleted track are still history).
SELECT id, artist_id FROM lufy.tracks WHERE id = ANY(%(ids)s);

-- name: known_artists
SELECT u.id FROM lufy.users u WHERE u.id = ANY(%(ids)s) AND u.role IN ('artist', 'admin')
UNION
SELECT t.artist_id FROM lufy.tracks t WHERE t.artist_id = ANY(%(ids)s);

-- name: refresh_views
SELECT view_name, seconds FROM analytics.refresh_views();
