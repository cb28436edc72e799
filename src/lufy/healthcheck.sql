-- `lufy healthcheck` (src/lufy/healthcheck.py).

-- name: ping
SELECT 1;
