-- Payments read models (inline projections `payments_entitlements` and `payments_ledger`, owned
-- by the payments context). Names are unqualified: `lufy migrate` and rebuilds choose the
-- schema through search_path. When nothing chose one yet, default to the live schema `lufy`.
SELECT set_config('search_path', 'lufy, public', true)
WHERE current_setting('search_path') !~ 'lufy';

-- Which Lufy user a Stripe customer is (from checkout.session.completed, or the subscription's
-- metadata set at checkout).
CREATE TABLE IF NOT EXISTS payment_customers (
    customer_id text        PRIMARY KEY,
    user_id     uuid        NOT NULL,
    since       timestamptz NOT NULL
);
COMMENT ON TABLE payment_customers IS 'One row per Stripe customer known to belong to a user.';
CREATE INDEX IF NOT EXISTS payment_customers_user ON payment_customers (user_id);

-- The latest state of each subscription, ordered by Stripe's own event time (`as_of`, then
-- `as_of_rank` within a second), so an event delivered late never overwrites a newer one.
CREATE TABLE IF NOT EXISTS payment_subscriptions (
    subscription_id      text        PRIMARY KEY,
    customer_id          text        NOT NULL,
    user_id              uuid,
    status               text        NOT NULL,
    price_id             text,
    current_period_end   timestamptz,
    cancel_at_period_end boolean     NOT NULL DEFAULT false,
    -- When the subscription entered past_due (the grace period runs from there).
    past_due_since       timestamptz,
    as_of                timestamptz NOT NULL,
    as_of_rank           int         NOT NULL,
    stripe_event_id      text        NOT NULL
);
COMMENT ON TABLE payment_subscriptions IS
    'One row per Stripe subscription: its newest known state (by the Stripe event time).';
CREATE INDEX IF NOT EXISTS payment_subscriptions_user ON payment_subscriptions (user_id);
CREATE INDEX IF NOT EXISTS payment_subscriptions_customer ON payment_subscriptions (customer_id);

-- Every status a subscription was seen in, by Stripe's event time: where its current past_due
-- run started (the grace period's start) does not depend on the order of delivery.
CREATE TABLE IF NOT EXISTS payment_subscription_statuses (
    subscription_id text        NOT NULL,
    as_of           timestamptz NOT NULL,
    as_of_rank      int         NOT NULL,
    stripe_event_id text        NOT NULL,
    status          text        NOT NULL,
    PRIMARY KEY (subscription_id, as_of, as_of_rank, stripe_event_id)
);
COMMENT ON TABLE payment_subscription_statuses IS
    'One row per subscription event: the status it reported and when (Stripe event time).';

-- Money in and out, one row per Stripe event: invoice.paid (a payment) and charge.refunded
-- (the charge's cumulative refunded amount at that time).
CREATE TABLE IF NOT EXISTS payment_ledger (
    stripe_event_id text        PRIMARY KEY,
    kind            text        NOT NULL CHECK (kind IN ('payment', 'refund')),
    object_id       text        NOT NULL,
    customer_id     text        NOT NULL,
    amount_minor    bigint      NOT NULL CHECK (amount_minor >= 0),
    currency        text        NOT NULL,
    at              timestamptz NOT NULL
);
COMMENT ON TABLE payment_ledger IS
    'One row per payment (invoice.paid: amount paid) or refund event (charge.refunded: the '
    'charge''s cumulative refunded amount), in integer minor units of its currency.';
CREATE INDEX IF NOT EXISTS payment_ledger_at ON payment_ledger (at);

ALTER TABLE payment_customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE payment_customers FORCE ROW LEVEL SECURITY;
ALTER TABLE payment_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE payment_subscriptions FORCE ROW LEVEL SECURITY;
ALTER TABLE payment_subscription_statuses ENABLE ROW LEVEL SECURITY;
ALTER TABLE payment_subscription_statuses FORCE ROW LEVEL SECURITY;
ALTER TABLE payment_ledger ENABLE ROW LEVEL SECURITY;
ALTER TABLE payment_ledger FORCE ROW LEVEL SECURITY;

-- A listener reads their own customer and subscriptions (the stream grant decides the tier in
-- the listener's transaction); admin and system (webhooks, projections, statements) see all.
DROP POLICY IF EXISTS payment_customers_read ON payment_customers;
CREATE POLICY payment_customers_read ON payment_customers FOR SELECT USING (
    user_id = (select nullif(current_setting('app.current_user_id', true), '')::uuid)
    OR (select current_setting('app.current_role', true)) IN ('admin', 'system')
);
DROP POLICY IF EXISTS payment_subscriptions_read ON payment_subscriptions;
CREATE POLICY payment_subscriptions_read ON payment_subscriptions FOR SELECT USING (
    user_id = (select nullif(current_setting('app.current_user_id', true), '')::uuid)
    OR (select current_setting('app.current_role', true)) IN ('admin', 'system')
);
DROP POLICY IF EXISTS payment_ledger_read ON payment_ledger;
CREATE POLICY payment_ledger_read ON payment_ledger FOR SELECT USING (
    (select current_setting('app.current_role', true)) IN ('admin', 'system')
);
-- Writes come only from the inline projections (webhooks, resync) and rebuilds, as system.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['payment_customers', 'payment_subscriptions',
                             'payment_subscription_statuses', 'payment_ledger'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_write', t);
        EXECUTE format(
            'CREATE POLICY %I ON %I FOR ALL USING ((select current_setting(''app.current_role'', '
            'true)) = ''system'') WITH CHECK ((select current_setting(''app.current_role'', '
            'true)) = ''system'')', t || '_write', t);
    END LOOP;
END $$;

GRANT SELECT, INSERT, UPDATE ON payment_customers, payment_subscriptions,
    payment_subscription_statuses, payment_ledger TO lufy_app;
