-- lufy.issue_stream_grant(): decide a stream grant and record it, in one statement.
--
-- `GET /api/music/tracks/{id}/stream` is the first request of every play, so its cost is part
-- of the time to first segment. This function is that request's whole database work, in one
-- statement (pipelined with the tier's read, in the same implicit transaction):
--   1. binds the caller to the transaction for Row-Level Security (set_config(..., true), as
--      lufy.db.set_context does) when there is one;
--   2. reads the track under RLS (an owner sees their tracks in every state, everyone else
--      published ones only);
--   3. refuses (appends nothing) when the track is missing, deleted, not visible to the caller,
--      or not `ready`: `visible` and `status` say which, for the caller's 404 or 409;
--   4. otherwise appends the `catalog.stream_authorized` event to the stream
--      `track_stream/{track id}` with lufy.append_to_stream (expected version: any) and asks
--      for an asynchronous commit of this transaction only (synchronous_commit = off, local):
--      what a crash can lose and why that is acceptable is written in docs/media.md.
--
-- SECURITY INVOKER: it reads and writes with the caller's rights and RLS.
CREATE FUNCTION lufy.issue_stream_grant(
    p_track_id uuid, p_user_id uuid, p_role text,
    p_stream_type text, p_event_id uuid, p_type text, p_schema_version int,
    p_data jsonb, p_metadata jsonb, p_occurred_at timestamptz
) RETURNS TABLE (visible boolean, status text, granted boolean)
LANGUAGE plpgsql AS $$
DECLARE
    t record;
BEGIN
    IF p_user_id IS NOT NULL THEN
        PERFORM set_config('app.current_user_id', p_user_id::text, true),
                set_config('app.current_role', coalesce(p_role, ''), true);
    END IF;
    SELECT tr.artist_id, tr.status, tr.published, tr.deleted_at INTO t
    FROM lufy.tracks tr WHERE tr.id = p_track_id;
    IF NOT FOUND OR t.deleted_at IS NOT NULL OR NOT (
        coalesce(t.published, false)
        OR t.artist_id IS NOT DISTINCT FROM p_user_id AND p_user_id IS NOT NULL
        OR coalesce(p_role, '') = 'admin'
    ) THEN
        RETURN QUERY SELECT false, NULL::text, false;
        RETURN;
    END IF;
    IF t.status IS DISTINCT FROM 'ready' THEN
        RETURN QUERY SELECT true, t.status::text, false;
        RETURN;
    END IF;
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM lufy.append_to_stream(
        p_stream_type, p_track_id::text, -2, ARRAY[p_event_id], ARRAY[p_type],
        ARRAY[p_schema_version], ARRAY[p_data], ARRAY[p_metadata], ARRAY[p_occurred_at]);
    RETURN QUERY SELECT true, t.status::text, true;
END $$;
COMMENT ON FUNCTION lufy.issue_stream_grant(uuid, uuid, text, text, uuid, text, int, jsonb, jsonb, timestamptz) IS
    'A stream grant: the track read under RLS and, when it may be streamed, its catalog.stream_authorized event appended (asynchronous commit).';
REVOKE ALL ON FUNCTION lufy.issue_stream_grant(uuid, uuid, text, text, uuid, text, int, jsonb, jsonb, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lufy.issue_stream_grant(uuid, uuid, text, text, uuid, text, int, jsonb, jsonb, timestamptz) TO lufy_app;
