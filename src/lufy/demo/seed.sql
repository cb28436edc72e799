-- What `lufy seed --demo` reads to stay idempotent (lufy.demo.seed).

-- name: user_by_email
SELECT id FROM lufy.users WHERE email = %s;

-- name: ready_tracks_of_artist
SELECT id, coalesce(duration_ms, 90000)
FROM lufy.tracks
WHERE artist_id = %s AND status = 'ready' AND deleted_at IS NULL
ORDER BY title;
