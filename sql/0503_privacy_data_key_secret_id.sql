-- Privacy: master key rotation. Each data key wrapped by DATA_KEY_SECRET records which secret
-- wrapped it (a fingerprint: HMAC-SHA256 of a constant under the secret, 16 bytes, hex), so
-- `lufy migrate` rewraps exactly the keys not wrapped by the current secret (those wrapped by
-- a secret listed in DATA_KEY_PREVIOUS_SECRETS, by the per-database dev key, or of unknown
-- origin: NULL, written before this migration).
ALTER TABLE lufy.data_keys ADD COLUMN IF NOT EXISTS secret_id text;
COMMENT ON COLUMN lufy.data_keys.secret_id IS
    'Fingerprint of the DATA_KEY_SECRET that wrapped this key (NULL: the dev key, or unknown).';
