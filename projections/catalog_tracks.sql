-- The tracks read model (inline projection `catalog_tracks`, owned by the catalog context).
-- Names are unqualified: `lufy migrate` and rebuilds choose the schema through search_path.
-- When nothing chose one yet, default to the live schema `lufy` (this transaction only).
SELECT set_config('search_path', 'lufy, public', true)
WHERE current_setting('search_path') !~ 'lufy';

CREATE TABLE IF NOT EXISTS tracks (
    id                uuid PRIMARY KEY,
    artist_id         uuid        NOT NULL,
    title             text        NOT NULL,
    status            text        NOT NULL DEFAULT 'uploading'
                      CHECK (status IN ('uploading', 'processing', 'ready', 'failed')),
    failure_reason    text,
    duration_ms       bigint,
    -- Integrated loudness (EBU R128) of the source, in LUFS.
    loudness_lufs     double precision,
    published         boolean     NOT NULL DEFAULT false,
    published_at      timestamptz,
    deleted_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- The upload that created the track (one per track). Nullable so that other contexts'
    -- tests and seeds may insert a bare track.
    upload_id         uuid        UNIQUE,
    upload_key        text,
    filename          text,
    content_type      text,
    size_bytes        bigint,
    upload_expires_at timestamptz,
    -- Where the HLS package lives (`hls/{id}/`), once transcoded.
    hls_prefix        text,
    hls_encrypted     boolean     NOT NULL DEFAULT false,
    -- Version of the track's stream this row reflects.
    version           bigint      NOT NULL DEFAULT 0
);
-- Set when an upload never completed was abandoned and its source deleted (not counted in the
-- artist's stored bytes any more).
ALTER TABLE tracks ADD COLUMN IF NOT EXISTS source_deleted_at timestamptz;
COMMENT ON TABLE tracks IS
    'One row per track (stream track/{id}): its upload, processing status and publication.';

CREATE INDEX IF NOT EXISTS tracks_artist_created ON tracks (artist_id, created_at DESC);
-- The sweep of uploads never completed.
CREATE INDEX IF NOT EXISTS tracks_uploading ON tracks (created_at) WHERE status = 'uploading';
CREATE INDEX IF NOT EXISTS tracks_published ON tracks (created_at DESC)
    WHERE published AND deleted_at IS NULL;

ALTER TABLE tracks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tracks FORCE ROW LEVEL SECURITY;

-- Owners see their own tracks in every state; everyone sees published, non-deleted tracks;
-- admin and system (projector, workers, trusted internal reads) see everything.
DROP POLICY IF EXISTS tracks_read ON tracks;
CREATE POLICY tracks_read ON tracks FOR SELECT USING (
    artist_id = (select nullif(current_setting('app.current_user_id', true), '')::uuid)
    OR (published AND deleted_at IS NULL)
    OR (select current_setting('app.current_role', true)) IN ('admin', 'system')
);
-- Writes come from the inline projection in the owner's transaction, or from system/admin.
DROP POLICY IF EXISTS tracks_insert ON tracks;
CREATE POLICY tracks_insert ON tracks FOR INSERT WITH CHECK (
    artist_id = (select nullif(current_setting('app.current_user_id', true), '')::uuid)
    OR (select current_setting('app.current_role', true)) IN ('admin', 'system')
);
DROP POLICY IF EXISTS tracks_update ON tracks;
CREATE POLICY tracks_update ON tracks FOR UPDATE USING (
    artist_id = (select nullif(current_setting('app.current_user_id', true), '')::uuid)
    OR (select current_setting('app.current_role', true)) IN ('admin', 'system')
);
-- Only rebuilds delete rows (the swap replaces them), running as system.
DROP POLICY IF EXISTS tracks_delete ON tracks;
CREATE POLICY tracks_delete ON tracks FOR DELETE USING (
    (select current_setting('app.current_role', true)) IN ('admin', 'system')
);

GRANT SELECT, INSERT, UPDATE ON tracks TO lufy_app;
