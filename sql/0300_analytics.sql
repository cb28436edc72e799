-- Analytics: the schema analysts read, and the key that makes listener keys unlinkable.
CREATE SCHEMA IF NOT EXISTS analytics;
REVOKE ALL ON SCHEMA analytics FROM PUBLIC;
GRANT USAGE ON SCHEMA analytics TO lufy_analyst, lufy_app;

-- One row: the HMAC key of listener keys. Generated per database, never leaves it; analysts
-- cannot read it, so a listener key cannot be linked back to a user id or anonymous id.
CREATE TABLE lufy.analytics_secret (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    hmac_key  bytea   NOT NULL
);
INSERT INTO lufy.analytics_secret (hmac_key)
VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
GRANT SELECT ON lufy.analytics_secret TO lufy_app;
