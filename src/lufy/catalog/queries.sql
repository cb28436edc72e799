-- Catalog: the tracks read model (projection writes use unqualified names: see projections.py).

-- name: insert_track
INSERT INTO tracks (id, artist_id, title, status, created_at, updated_at, upload_id, upload_key,
                    filename, content_type, size_bytes, upload_expires_at, version)
VALUES (%(id)s, %(artist_id)s, %(title)s, 'uploading', %(at)s, %(at)s, %(upload_id)s,
        %(upload_key)s, %(filename)s, %(content_type)s, %(size_bytes)s, %(expires_at)s,
        %(version)s)
ON CONFLICT (id) DO NOTHING

-- name: set_status
UPDATE tracks SET status = %(status)s, failure_reason = %(failure_reason)s,
                  updated_at = %(at)s, version = %(version)s
WHERE id = %(id)s

-- name: set_transcoded
UPDATE tracks SET status = 'ready', failure_reason = NULL, duration_ms = %(duration_ms)s,
                  loudness_lufs = %(loudness_lufs)s, hls_prefix = %(hls_prefix)s,
                  hls_encrypted = %(encrypted)s, updated_at = %(at)s, version = %(version)s
WHERE id = %(id)s

-- name: set_published
UPDATE tracks SET published = %(published)s,
                  published_at = CASE WHEN %(published)s THEN %(at)s ELSE published_at END,
                  updated_at = %(at)s, version = %(version)s
WHERE id = %(id)s

-- name: set_title
UPDATE tracks SET title = %(title)s, updated_at = %(at)s, version = %(version)s
WHERE id = %(id)s

-- name: set_deleted
UPDATE tracks SET deleted_at = %(at)s, published = false, updated_at = %(at)s,
                  version = %(version)s
WHERE id = %(id)s

-- name: set_abandoned
UPDATE tracks SET status = 'failed', failure_reason = %(failure_reason)s,
                  source_deleted_at = %(at)s, updated_at = %(at)s, version = %(version)s
WHERE id = %(id)s

-- name: touch
UPDATE tracks SET updated_at = %(at)s, version = %(version)s WHERE id = %(id)s

-- name: get_track
SELECT id, artist_id, title, status, failure_reason, duration_ms, published, created_at
FROM lufy.tracks
WHERE id = %(id)s AND deleted_at IS NULL

-- name: get_track_internal
SELECT id, artist_id, status, published, deleted_at, hls_prefix, upload_key
FROM lufy.tracks
WHERE id = %(id)s

-- name: find_upload
SELECT id FROM lufy.tracks WHERE upload_id = %(upload_id)s AND deleted_at IS NULL

-- name: upload_status
SELECT status, deleted_at IS NOT NULL FROM lufy.tracks WHERE upload_id = %(upload_id)s

-- name: list_tracks
SELECT id, artist_id, title, status, failure_reason, duration_ms, published, created_at
FROM lufy.tracks
WHERE deleted_at IS NULL
  AND (%(artist_id)s::uuid IS NULL OR artist_id = %(artist_id)s::uuid)
  AND (NOT %(published_only)s OR published)
  AND (%(status)s::text IS NULL OR status = %(status)s::text)
ORDER BY created_at DESC, id
LIMIT %(limit)s OFFSET %(offset)s

-- name: lock_artist_uploads
-- One upload request per artist at a time, so two cannot both pass the quota.
SELECT pg_advisory_xact_lock(%(ns)s, hashtext(%(artist_id)s::text))

-- name: upload_usage
-- An artist's unfinished uploads (requested and still open, or processing) and the bytes of
-- the sources they keep in storage.
SELECT count(*) FILTER (WHERE (status = 'uploading' AND upload_expires_at > %(now)s)
                           OR status = 'processing'),
       coalesce(sum(size_bytes) FILTER (WHERE source_deleted_at IS NULL), 0)::bigint,
       min(upload_expires_at) FILTER (WHERE status = 'uploading'
                                        AND upload_expires_at > %(now)s)
FROM lufy.tracks
WHERE artist_id = %(artist_id)s AND deleted_at IS NULL

-- name: stale_uploads
-- Uploads requested before %(before)s and never completed (oldest first).
SELECT id FROM lufy.tracks
WHERE status = 'uploading' AND deleted_at IS NULL AND created_at < %(before)s
ORDER BY created_at, id
LIMIT %(limit)s

-- name: issue_stream_grant
-- The whole database work of a stream grant, the tier's read included (sql/0821).
SELECT visible, status, granted, sub_status, sub_period_end, sub_past_due_since
FROM lufy.issue_stream_grant(%(track_id)s::uuid, %(user_id)s::uuid, %(role)s::text,
                             %(stream_type)s::text, %(event_id)s::uuid, %(type)s::text,
                             %(schema_version)s::int, %(data)s::jsonb, %(metadata)s::jsonb,
                             %(occurred_at)s::timestamptz, %(subscriptions)s::boolean)

-- name: try_stream_grant
-- The same in one attempt (sql/0981): fails with unique_violation, having written nothing, when
-- another grant of the track took the stream version meanwhile; issue_stream_grant then.
SELECT visible, status, granted, sub_status, sub_period_end, sub_past_due_since
FROM lufy.try_stream_grant(%(track_id)s::uuid, %(user_id)s::uuid, %(role)s::text,
                           %(stream_type)s::text, %(event_id)s::uuid, %(type)s::text,
                           %(schema_version)s::int, %(data)s::jsonb, %(metadata)s::jsonb,
                           %(occurred_at)s::timestamptz, %(subscriptions)s::boolean)
