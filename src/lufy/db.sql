-- The per-transaction user context that Row-Level Security reads (lufy.db). `true`: local to
-- the transaction, never the session (a pooled connection moves on to other callers).

-- name: set_context
SELECT set_config('app.current_user_id', %(user_id)s, true),
       set_config('app.current_role', %(role)s, true);
