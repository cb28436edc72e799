-- Payments: read models (projection writes use unqualified names: see projections.py).

-- name: upsert_customer
INSERT INTO payment_customers (customer_id, user_id, since)
VALUES (%(customer_id)s, %(user_id)s, %(at)s)
ON CONFLICT (customer_id) DO NOTHING

-- name: customer_user
SELECT user_id FROM payment_customers WHERE customer_id = %(customer_id)s

-- name: backfill_subscription_user
UPDATE payment_subscriptions SET user_id = %(user_id)s
WHERE customer_id = %(customer_id)s AND user_id IS NULL

-- name: upsert_subscription
INSERT INTO payment_subscriptions AS s (subscription_id, customer_id, user_id, status, price_id,
    current_period_end, cancel_at_period_end, as_of, as_of_rank, stripe_event_id)
VALUES (%(subscription_id)s, %(customer_id)s, %(user_id)s, %(status)s, %(price_id)s,
    %(current_period_end)s, %(cancel_at_period_end)s, %(as_of)s, %(as_of_rank)s,
    %(stripe_event_id)s)
ON CONFLICT (subscription_id) DO UPDATE SET
    user_id = coalesce(s.user_id, excluded.user_id),
    status = excluded.status,
    price_id = coalesce(excluded.price_id, s.price_id),
    current_period_end = coalesce(excluded.current_period_end, s.current_period_end),
    cancel_at_period_end = excluded.cancel_at_period_end,
    as_of = excluded.as_of,
    as_of_rank = excluded.as_of_rank,
    stripe_event_id = excluded.stripe_event_id
WHERE (s.as_of, s.as_of_rank) < (excluded.as_of, excluded.as_of_rank)

-- name: insert_status
INSERT INTO payment_subscription_statuses (subscription_id, as_of, as_of_rank, stripe_event_id,
                                           status)
VALUES (%(subscription_id)s, %(as_of)s, %(as_of_rank)s, %(stripe_event_id)s, %(status)s)
ON CONFLICT DO NOTHING

-- name: set_past_due_since
-- When the current past_due run began: the first past_due after the last other status.
UPDATE payment_subscriptions s SET past_due_since = CASE WHEN s.status = 'past_due' THEN (
    SELECT min(h.as_of) FROM payment_subscription_statuses h
    WHERE h.subscription_id = s.subscription_id AND h.status = 'past_due'
      AND (h.as_of, h.as_of_rank) > coalesce(
          (SELECT (o.as_of, o.as_of_rank) FROM payment_subscription_statuses o
           WHERE o.subscription_id = s.subscription_id AND o.status <> 'past_due'
             AND (o.as_of, o.as_of_rank) <= (s.as_of, s.as_of_rank)
           ORDER BY o.as_of DESC, o.as_of_rank DESC LIMIT 1),
          ('-infinity'::timestamptz, 0)))
    END
WHERE s.subscription_id = %(subscription_id)s

-- name: insert_ledger
INSERT INTO payment_ledger (stripe_event_id, kind, object_id, customer_id, amount_minor,
                            currency, at)
VALUES (%(stripe_event_id)s, %(kind)s, %(object_id)s, %(customer_id)s, %(amount_minor)s,
        %(currency)s, %(at)s)
ON CONFLICT (stripe_event_id) DO NOTHING

-- name: user_subscriptions
SELECT subscription_id, status, current_period_end, cancel_at_period_end, past_due_since, as_of
FROM lufy.payment_subscriptions
WHERE user_id = %(user_id)s
ORDER BY as_of DESC, subscription_id

-- name: user_customer
SELECT customer_id FROM lufy.payment_customers WHERE user_id = %(user_id)s
ORDER BY since DESC LIMIT 1

-- name: month_ledger
-- Payments of the month, and every refund row up to its end (refunds are cumulative per charge).
SELECT l.kind, l.object_id, l.customer_id, c.user_id, l.amount_minor, l.currency, l.at
FROM lufy.payment_ledger l
LEFT JOIN lufy.payment_customers c ON c.customer_id = l.customer_id
WHERE (l.kind = 'payment' AND l.at >= %(start)s AND l.at < %(end)s)
   OR (l.kind = 'refund' AND l.at < %(end)s)

-- name: month_streams
-- Verified streams of the month per listener and artist (sums of sampling weights).
SELECT listener_key, artist_id, sum(weight)::float8 AS streams
FROM lufy.playback_sessions
WHERE is_stream AND started_at >= %(start)s AND started_at < %(end)s
GROUP BY listener_key, artist_id

-- name: artist_streams
SELECT coalesce(sum(weight), 0)::float8
FROM lufy.playback_sessions
WHERE is_stream AND (%(artist_id)s::uuid IS NULL OR artist_id = %(artist_id)s::uuid) AND started_at >= %(start)s AND started_at < %(end)s

-- name: hmac_key
SELECT hmac_key FROM lufy.analytics_secret
