-- Erasure of a person (src/lufy/privacy/erasure.py). Run as system.

-- name: live_tracks
-- An artist's tracks not deleted yet, oldest first.
SELECT id, published FROM lufy.tracks WHERE artist_id = %s AND deleted_at IS NULL
ORDER BY created_at, id;
