// Generated from Lufy's OpenAPI document by openapi-typescript (npm run api-types).
// Do not edit: CI fails when this file and the document differ.

export interface paths {
    "/api/analytics/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Ingest a batch of analytics events
         * @description Body {events: [...]} of at most 500 events and 1 MiB, as application/json or text/plain (sendBeacon). Each bad event is listed in `rejected`; the rest are accepted.
         */
        post: operations["analyticsIngestEvents"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/account": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /**
         * Erase the caller's account and personal data
         * @description Proof: {password}, or {token} of a fresh sign-in link for an account without a password. Personal data is crypto-shredded, sessions revoked, an artist's tracks and media deleted; aggregates stay.
         */
        delete: operations["authEraseAccount"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/account/export": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Everything Lufy holds about the caller, as JSON */
        get: operations["authExportAccount"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/magic-link": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** E-mail a sign-in link */
        post: operations["authMagicLink"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/magic-link/verify": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Sign in with a magic link */
        post: operations["authMagicLinkVerify"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/password/change": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Change the password (signs out every other session) */
        post: operations["authChangePassword"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/password/forgot": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** E-mail a password reset link */
        post: operations["authForgotPassword"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/password/reset": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Set a new password with a reset link */
        post: operations["authResetPassword"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/refresh": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Rotate a refresh token for a new pair */
        post: operations["authRefresh"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/session": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller and their current session */
        get: operations["authCurrentSession"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/sessions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's live sessions */
        get: operations["authListSessions"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/sessions/{session_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Revoke one of the caller's sessions */
        delete: operations["authRevokeSession"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/sessions/revoke-others": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Revoke every session of the caller but the current one */
        post: operations["authRevokeOtherSessions"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/sign-in": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Sign in with e-mail and password */
        post: operations["authSignIn"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/sign-out": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** End the current session */
        post: operations["authSignOut"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/sign-up": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Create an account */
        post: operations["authSignUp"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/verify-email": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Confirm an e-mail address */
        post: operations["authVerifyEmail"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/verify-email/resend": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Send a new verification link */
        post: operations["authResendVerification"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/dashboard/breakdown": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Streams and listeners by a dimension */
        get: operations["dashboardBreakdown"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/dashboard/export.csv": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The timeseries as CSV */
        get: operations["dashboardExportCsv"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/dashboard/overview": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Totals of the period and the one before */
        get: operations["dashboardOverview"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/dashboard/realtime": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Streams per minute, last 30 minutes */
        get: operations["dashboardRealtime"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/dashboard/revenue": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Royalties for the range (estimated for the running month) and the one before */
        get: operations["dashboardRevenue"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/dashboard/timeseries": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One metric per hour, day, week or month */
        get: operations["dashboardTimeseries"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/dashboard/tracks": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The overview metrics per track */
        get: operations["dashboardTracks"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/music/tracks": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Tracks the caller may see (own in every state, others published) */
        get: operations["musicListTracks"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/music/tracks/{track_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One track */
        get: operations["musicGetTrack"];
        put?: never;
        post?: never;
        /** Delete a track, its media, and every way to stream it */
        delete: operations["musicDeleteTrack"];
        options?: never;
        head?: never;
        /** Update a track's metadata */
        patch: operations["musicUpdateTrack"];
        trace?: never;
    };
    "/api/music/tracks/{track_id}/publish": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Publish a ready track */
        post: operations["musicPublishTrack"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/music/tracks/{track_id}/stream": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A stream token and URL for a track */
        get: operations["musicStreamTrack"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/music/tracks/{track_id}/unpublish": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Unpublish a track */
        post: operations["musicUnpublishTrack"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/music/uploads": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Start an upload */
        post: operations["musicCreateUpload"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/music/uploads/{upload_id}/complete": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Finish an upload and start processing */
        post: operations["musicCompleteUpload"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/payments/checkout": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Start a Stripe Checkout for Premium */
        post: operations["paymentsCheckout"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/payments/portal": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Open Stripe's billing portal */
        post: operations["paymentsPortal"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/payments/subscription": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's plan and subscription */
        get: operations["paymentsSubscription"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/payments/webhook": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Stripe webhooks (signed with Stripe-Signature) */
        post: operations["paymentsWebhook"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/rate-limit/status": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's rate limit: policy, limit, remaining requests, seconds until reset */
        get: operations["rateLimitStatus"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The process is up */
        get: operations["healthz"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/media/hls/{path}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** HLS delivery: the local edge (the stream token is in the path) */
        get: operations["mediaDeliver"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/media/uploads/{upload_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        /** Local upload target (the API's stand-in for an S3 presigned PUT) */
        put: operations["mediaReceiveUpload"];
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/metrics": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Prometheus metrics
         * @description Prometheus text. With `METRICS_PORT` set it is served on that port only (404 here); with `METRICS_TOKEN` set it needs `Authorization: Bearer <token>` (401 otherwise); with neither, only loopback callers get it (403 otherwise). State read from PostgreSQL and Redis is cached for a few seconds, so scrapes cost at most one round of queries per window per process.
         */
        get: operations["metrics"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/readyz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Database and Redis are reachable and this build's migrations are applied
         * @description 200 when this process can serve traffic; 503 (same body) when PostgreSQL or Redis does not answer within 2 seconds, or a migration this build ships is missing or differs from the applied one. A database ahead of this build (a newer release ran its expand migrations) is ready, with those migrations listed in `ahead_of_build`. The answer comes from one probe per second per process. Load balancers route on it.
         */
        get: operations["readyz"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /** Accepted */
        Accepted: {
            detail: string;
            /**
             * @default accepted
             * @constant
             */
            status: "accepted";
        };
        /**
         * AuthTokens
         * @example {
         *       "access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI2ZjBmIn0.c2lnbmF0dXJl",
         *       "expires_in": 900,
         *       "refresh_token": "rt_8Qm2c3Jt0bS9",
         *       "token_type": "Bearer",
         *       "user": {
         *         "display_name": "Ada",
         *         "email": "ada@example.com",
         *         "email_verified": true,
         *         "id": "6f0f8a52-1c3e-4c1b-9a55-0b7c2d1e9f10",
         *         "role": "artist"
         *       }
         *     }
         */
        AuthTokens: {
            access_token: string;
            expires_in: number;
            refresh_token: string;
            /**
             * @default Bearer
             * @constant
             */
            token_type: "Bearer";
            user: components["schemas"]["User"];
        };
        /**
         * BreakdownResponse
         * @example {
         *       "rows": [
         *         {
         *           "key": "DE",
         *           "listeners": 420,
         *           "streams": 700
         *         },
         *         {
         *           "key": "unknown",
         *           "listeners": 9,
         *           "streams": 12
         *         }
         *       ]
         *     }
         */
        BreakdownResponse: {
            rows: components["schemas"]["BreakdownRow"][];
        };
        /** BreakdownRow */
        BreakdownRow: {
            key: string;
            listeners: number;
            streams: number;
        };
        /** ChangePassword */
        ChangePassword: {
            current_password: string;
            new_password: string;
        };
        /** CheckoutSession */
        CheckoutSession: {
            session_id: string;
            url: string;
        };
        /** CurrentSession */
        CurrentSession: {
            session: components["schemas"]["SessionInfo"];
            user: components["schemas"]["User"];
        };
        /** EmailRequest */
        EmailRequest: {
            /** @description e-mail address */
            email: string;
        };
        /** EraseAccount */
        EraseAccount: {
            password?: string | null;
            /** @description token from the e-mail */
            token?: string | null;
        };
        /**
         * IngestResult
         * @example {
         *       "accepted": 3,
         *       "duplicates": 0,
         *       "rejected": [],
         *       "sampled_out": 0
         *     }
         */
        IngestResult: {
            /** @default 0 */
            accepted: number;
            /** @default 0 */
            duplicates: number;
            rejected: components["schemas"]["Rejection"][];
            /** @default 0 */
            sampled_out: number;
        };
        /** Metrics */
        Metrics: {
            /** @default 0 */
            completion_rate: number;
            /** @default 0 */
            followers: number;
            /** @default 0 */
            likes: number;
            /** @default 0 */
            listen_seconds: number;
            /** @default 0 */
            listeners: number;
            /** @default 0 */
            skip_rate: number;
            /** @default 0 */
            streams: number;
        };
        /**
         * Overview
         * @example {
         *       "completion_rate": 0.62,
         *       "followers": 12,
         *       "likes": 40,
         *       "listen_seconds": 171000,
         *       "listeners": 830,
         *       "previous": {
         *         "completion_rate": 0.62,
         *         "followers": 12,
         *         "likes": 40,
         *         "listen_seconds": 171000,
         *         "listeners": 700,
         *         "skip_rate": 0.21,
         *         "streams": 1000
         *       },
         *       "skip_rate": 0.21,
         *       "streams": 1250
         *     }
         */
        Overview: {
            /** @default 0 */
            completion_rate: number;
            /** @default 0 */
            followers: number;
            /** @default 0 */
            likes: number;
            /** @default 0 */
            listen_seconds: number;
            /** @default 0 */
            listeners: number;
            previous: components["schemas"]["Metrics"];
            /** @default 0 */
            skip_rate: number;
            /** @default 0 */
            streams: number;
        };
        /** Point */
        Point: {
            /** Format: date-time */
            t: string;
            value: number;
        };
        /** PortalSession */
        PortalSession: {
            url: string;
        };
        /**
         * Problem
         * @description An RFC 9457 problem document. `detail` says in words what to change; validation failures also list `errors`, rejected rate-limited calls carry Retry-After.
         */
        Problem: {
            detail: string;
            /** @description Validation failures: where (`key`, `source`) and what (`message`). */
            errors?: Record<string, never>[];
            status: number;
            title: string;
            /** @example about:blank */
            type: string;
        };
        /** RateLimitStatus */
        RateLimitStatus: {
            limit: number;
            policy: string;
            remaining: number;
            reset: number;
        };
        /** Readiness */
        Readiness: {
            ahead_of_build: string[];
            database: string;
            migrations: string;
            redis: string;
            /** @enum {string} */
            status: "ready" | "not ready";
        };
        /**
         * RealtimeResponse
         * @example {
         *       "points": [
         *         {
         *           "t": "2026-12-06T12:00:00+01:00",
         *           "value": 3
         *         }
         *       ]
         *     }
         */
        RealtimeResponse: {
            points: components["schemas"]["Point"][];
        };
        /** Received */
        Received: {
            size_bytes: number;
            upload_id: string;
        };
        /** RefreshRequest */
        RefreshRequest: {
            /** @description token from the e-mail */
            refresh_token: string;
        };
        /** Rejection */
        Rejection: {
            index: number;
            reason: string;
        };
        /** ResetPassword */
        ResetPassword: {
            password: string;
            /** @description token from the e-mail */
            token: string;
        };
        /** Revenue */
        Revenue: {
            amount_minor: number;
            currency: string;
            final: boolean;
            previous: components["schemas"]["RevenuePeriod"];
            streams: number;
        };
        /** RevenuePeriod */
        RevenuePeriod: {
            amount_minor: number;
            currency: string;
            final: boolean;
            streams: number;
        };
        /** RevokedSessions */
        RevokedSessions: {
            revoked: number;
        };
        /** SessionInfo */
        SessionInfo: {
            /** Format: date-time */
            created_at: string;
            current: boolean;
            device: string;
            /** Format: date-time */
            expires_at: string;
            /** Format: uuid */
            id: string;
            ip_prefix: string | null;
            /** Format: date-time */
            last_seen_at: string;
            method: string;
        };
        /** SessionList */
        SessionList: {
            sessions: components["schemas"]["SessionInfo"][];
        };
        /** SignIn */
        SignIn: {
            /** @description e-mail address */
            email: string;
            password: string;
        };
        /** SignUp */
        SignUp: {
            display_name: string;
            /** @description e-mail address */
            email: string;
            password: string;
            /**
             * @default listener
             * @enum {string}
             */
            role: "listener" | "artist";
        };
        /**
         * StreamGrant
         * @example {
         *       "expires_at": "2026-12-06T13:00:00Z",
         *       "grant_id": "9d1c2b3a-4e5f-4a6b-8c7d-0e1f2a3b4c5d",
         *       "token": "eyJ…",
         *       "url": "https://lufy.example/media/hls/eyJ…/0b8f6c1e-3f59-4d3c-8d3a-7c1f2e9b4a11/master.m3u8"
         *     }
         */
        StreamGrant: {
            /** Format: date-time */
            expires_at: string;
            /** Format: uuid */
            grant_id: string;
            token: string;
            url: string;
        };
        /** SubscriptionView */
        SubscriptionView: {
            cancel_at_period_end: boolean;
            current_period_end: string | null;
            /** @enum {string} */
            plan: "free" | "premium";
            status: string | null;
        };
        /**
         * TimeseriesResponse
         * @example {
         *       "points": [
         *         {
         *           "t": "2026-10-25T00:00:00+02:00",
         *           "value": 40
         *         },
         *         {
         *           "t": "2026-10-26T00:00:00+01:00",
         *           "value": 52
         *         }
         *       ]
         *     }
         */
        TimeseriesResponse: {
            points: components["schemas"]["Point"][];
        };
        /** TokenRequest */
        TokenRequest: {
            /** @description token from the e-mail */
            token: string;
        };
        /**
         * Track
         * @example {
         *       "artist_id": "6f0f8a52-1c3e-4c1b-9a55-0b7c2d1e9f10",
         *       "created_at": "2026-11-02T10:15:00Z",
         *       "duration_ms": 215000,
         *       "id": "0b8f6c1e-3f59-4d3c-8d3a-7c1f2e9b4a11",
         *       "published": true,
         *       "status": "ready",
         *       "title": "Night Drive"
         *     }
         */
        Track: {
            /** Format: uuid */
            artist_id: string;
            /** Format: date-time */
            created_at: string;
            duration_ms: number | null;
            failure_reason: string | null;
            /** Format: uuid */
            id: string;
            published: boolean;
            /** @enum {string} */
            status: "uploading" | "processing" | "ready" | "failed";
            title: string;
        };
        /**
         * TrackList
         * @example {
         *       "tracks": [
         *         {
         *           "artist_id": "6f0f8a52-1c3e-4c1b-9a55-0b7c2d1e9f10",
         *           "created_at": "2026-11-02T10:15:00Z",
         *           "duration_ms": 215000,
         *           "id": "0b8f6c1e-3f59-4d3c-8d3a-7c1f2e9b4a11",
         *           "published": true,
         *           "status": "ready",
         *           "title": "Night Drive"
         *         }
         *       ]
         *     }
         */
        TrackList: {
            tracks: components["schemas"]["Track"][];
        };
        /** TrackRow */
        TrackRow: {
            /** @default 0 */
            completion_rate: number;
            /** @default 0 */
            followers: number;
            /** @default 0 */
            likes: number;
            /** @default 0 */
            listen_seconds: number;
            /** @default 0 */
            listeners: number;
            /** @default 0 */
            skip_rate: number;
            /** @default 0 */
            streams: number;
            title: string | null;
            /** Format: uuid */
            track_id: string;
        };
        /**
         * TracksResponse
         * @example {
         *       "rows": [
         *         {
         *           "completion_rate": 0.62,
         *           "followers": 12,
         *           "likes": 40,
         *           "listen_seconds": 171000,
         *           "listeners": 830,
         *           "skip_rate": 0.21,
         *           "streams": 1250,
         *           "title": "Night Drive",
         *           "track_id": "0b8f6c1e-3f59-4d3c-8d3a-7c1f2e9b4a11"
         *         }
         *       ]
         *     }
         */
        TracksResponse: {
            rows: components["schemas"]["TrackRow"][];
        };
        /** TrackUpdate */
        TrackUpdate: {
            title?: string | null;
        };
        /** UploadAccepted */
        UploadAccepted: {
            status: string;
            /** Format: uuid */
            track_id: string;
        };
        /** UploadCreate */
        UploadCreate: {
            content_type: string;
            filename: string;
            size_bytes: number;
            title: string;
        };
        /**
         * UploadTicket
         * @example {
         *       "expires_at": "2026-12-06T13:00:00Z",
         *       "headers": {
         *         "Content-Type": "audio/wav"
         *       },
         *       "method": "PUT",
         *       "track_id": "0b8f6c1e-3f59-4d3c-8d3a-7c1f2e9b4a11",
         *       "upload_id": "5a1e2d3c-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
         *       "url": "https://lufy.example/media/uploads/5a1e2d3c-4b5a-4c6d-8e7f-9a0b1c2d3e4f?token=…"
         *     }
         */
        UploadTicket: {
            /** Format: date-time */
            expires_at: string;
            headers: {
                [key: string]: string;
            };
            /** @enum {string} */
            method: "PUT" | "POST";
            /** Format: uuid */
            track_id: string;
            /** Format: uuid */
            upload_id: string;
            url: string;
        };
        /**
         * User
         * @example {
         *       "display_name": "Ada",
         *       "email": "ada@example.com",
         *       "email_verified": true,
         *       "id": "6f0f8a52-1c3e-4c1b-9a55-0b7c2d1e9f10",
         *       "role": "artist"
         *     }
         */
        User: {
            display_name: string;
            email: string;
            email_verified: boolean;
            /** Format: uuid */
            id: string;
            /** @enum {string} */
            role: "listener" | "artist" | "admin";
        };
        /**
         * UserEnvelope
         * @example {
         *       "user": {
         *         "display_name": "Ada",
         *         "email": "ada@example.com",
         *         "email_verified": true,
         *         "id": "6f0f8a52-1c3e-4c1b-9a55-0b7c2d1e9f10",
         *         "role": "artist"
         *       }
         *     }
         */
        UserEnvelope: {
            user: components["schemas"]["User"];
        };
        /** WebhookReceipt */
        WebhookReceipt: {
            /** @enum {string} */
            outcome: "appended" | "duplicate" | "ignored";
            /** @default true */
            received: boolean;
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    analyticsIngestEvents: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** @description At most 500 events and 1 MiB; also accepted as text/plain (sendBeacon). */
        requestBody: {
            content: {
                "application/json": {
                    events: {
                        anonymous_id?: string | null;
                        artist_id?: string | null;
                        /** Format: uuid */
                        event_id: string;
                        grant_id?: string | null;
                        listened_ms?: number | null;
                        /** Format: date-time */
                        occurred_at: string;
                        properties?: Record<string, never> | null;
                        session_id: string;
                        source?: string | null;
                        track_id?: string | null;
                        /** @enum {string} */
                        type: "artist.followed" | "artist.unfollowed" | "page.viewed" | "playback.completed" | "playback.progress" | "playback.skipped" | "playback.started" | "track.liked" | "track.unliked";
                    }[];
                };
                "text/plain": string;
            };
        };
        responses: {
            /** @description Request accepted, processing continues off-line */
            202: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["IngestResult"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authEraseAccount: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["EraseAccount"];
            };
        };
        responses: {
            /** @description Request accepted, processing continues off-line */
            202: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Accepted"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authExportAccount: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": unknown;
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authMagicLink: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["EmailRequest"];
            };
        };
        responses: {
            /** @description Request accepted, processing continues off-line */
            202: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Accepted"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authMagicLinkVerify: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["TokenRequest"];
            };
        };
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AuthTokens"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authChangePassword: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ChangePassword"];
            };
        };
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RevokedSessions"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authForgotPassword: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["EmailRequest"];
            };
        };
        responses: {
            /** @description Request accepted, processing continues off-line */
            202: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Accepted"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authResetPassword: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ResetPassword"];
            };
        };
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UserEnvelope"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authRefresh: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["RefreshRequest"];
            };
        };
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AuthTokens"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authCurrentSession: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CurrentSession"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authListSessions: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionList"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authRevokeSession: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, nothing follows */
            204: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource (or not visible to the caller) */
            404: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authRevokeOtherSessions: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RevokedSessions"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authSignIn: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SignIn"];
            };
        };
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AuthTokens"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authSignOut: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, nothing follows */
            204: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authSignUp: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SignUp"];
            };
        };
        responses: {
            /** @description Document created, URL follows */
            201: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UserEnvelope"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authVerifyEmail: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["TokenRequest"];
            };
        };
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UserEnvelope"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    authResendVerification: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request accepted, processing continues off-line */
            202: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Accepted"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    dashboardBreakdown: {
        parameters: {
            query?: {
                /** @description admins only: one artist */
                artist_id?: string | null;
                dimension?: "country" | "device" | "source";
                /** @description a date (inclusive, calendar day in tz) or an RFC 3339 instant (half-open) */
                from?: string | null;
                /** @description 7d, 28d, 90d (any Nd), 24h or 12m; the default is 28d */
                range?: string | null;
                /** @description a date (inclusive) or an RFC 3339 instant */
                to?: string | null;
                /** @description IANA time zone; the default is UTC */
                tz?: string | null;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["BreakdownResponse"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    dashboardExportCsv: {
        parameters: {
            query?: {
                /** @description admins only: one artist */
                artist_id?: string | null;
                /** @description a date (inclusive, calendar day in tz) or an RFC 3339 instant (half-open) */
                from?: string | null;
                granularity?: ("hour" | "day" | "week" | "month") | null;
                metric?: ("streams" | "listeners" | "listen_seconds" | "completion_rate" | "skip_rate" | "likes" | "followers" | "starts" | "completions" | "skips") | null;
                /** @description 7d, 28d, 90d (any Nd), 24h or 12m; the default is 28d */
                range?: string | null;
                /** @description a date (inclusive) or an RFC 3339 instant */
                to?: string | null;
                track_id?: string | null;
                /** @description IANA time zone; the default is UTC */
                tz?: string | null;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "text/csv": string;
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    dashboardOverview: {
        parameters: {
            query?: {
                /** @description admins only: one artist */
                artist_id?: string | null;
                /** @description a date (inclusive, calendar day in tz) or an RFC 3339 instant (half-open) */
                from?: string | null;
                /** @description 7d, 28d, 90d (any Nd), 24h or 12m; the default is 28d */
                range?: string | null;
                /** @description a date (inclusive) or an RFC 3339 instant */
                to?: string | null;
                /** @description IANA time zone; the default is UTC */
                tz?: string | null;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Overview"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    dashboardRealtime: {
        parameters: {
            query?: {
                /** @description admins only: one artist */
                artist_id?: string | null;
                /** @description IANA time zone; the default is UTC */
                tz?: string | null;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RealtimeResponse"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    dashboardRevenue: {
        parameters: {
            query?: {
                /** @description admins only */
                artist_id?: string | null;
                from?: string | null;
                /** @description as the other /api/dashboard routes */
                range?: string | null;
                /** @description as the other /api/dashboard routes */
                to?: string | null;
                /** @description as the other /api/dashboard routes */
                tz?: string | null;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Revenue"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    dashboardTimeseries: {
        parameters: {
            query?: {
                /** @description admins only: one artist */
                artist_id?: string | null;
                /** @description a date (inclusive, calendar day in tz) or an RFC 3339 instant (half-open) */
                from?: string | null;
                granularity?: ("hour" | "day" | "week" | "month") | null;
                metric?: "streams" | "listeners" | "listen_seconds" | "completion_rate" | "skip_rate" | "likes" | "followers" | "starts" | "completions" | "skips";
                /** @description 7d, 28d, 90d (any Nd), 24h or 12m; the default is 28d */
                range?: string | null;
                /** @description a date (inclusive) or an RFC 3339 instant */
                to?: string | null;
                track_id?: string | null;
                /** @description IANA time zone; the default is UTC */
                tz?: string | null;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TimeseriesResponse"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    dashboardTracks: {
        parameters: {
            query?: {
                /** @description admins only: one artist */
                artist_id?: string | null;
                /** @description a date (inclusive, calendar day in tz) or an RFC 3339 instant (half-open) */
                from?: string | null;
                limit?: number;
                /** @description 7d, 28d, 90d (any Nd), 24h or 12m; the default is 28d */
                range?: string | null;
                sort?: "streams" | "listeners" | "listen_seconds" | "completion_rate" | "skip_rate" | "likes";
                /** @description a date (inclusive) or an RFC 3339 instant */
                to?: string | null;
                /** @description IANA time zone; the default is UTC */
                tz?: string | null;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TracksResponse"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    musicListTracks: {
        parameters: {
            query?: {
                artist_id?: string | null;
                limit?: number;
                offset?: number;
                published?: boolean;
                status?: "uploading" | "processing" | "ready" | "failed" | null;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TrackList"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    musicGetTrack: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                track_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Track"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource (or not visible to the caller) */
            404: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    musicDeleteTrack: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                track_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, nothing follows */
            204: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource (or not visible to the caller) */
            404: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    musicUpdateTrack: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                track_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["TrackUpdate"];
            };
        };
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Track"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource (or not visible to the caller) */
            404: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    musicPublishTrack: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                track_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Track"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource (or not visible to the caller) */
            404: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    musicStreamTrack: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                track_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["StreamGrant"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource (or not visible to the caller) */
            404: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    musicUnpublishTrack: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                track_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Track"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource (or not visible to the caller) */
            404: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    musicCreateUpload: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["UploadCreate"];
            };
        };
        responses: {
            /** @description Document created, URL follows */
            201: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UploadTicket"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    musicCompleteUpload: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                upload_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request accepted, processing continues off-line */
            202: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UploadAccepted"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource (or not visible to the caller) */
            404: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    paymentsCheckout: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Document created, URL follows */
            201: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CheckoutSession"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    paymentsPortal: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Document created, URL follows */
            201: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["PortalSession"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    paymentsSubscription: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SubscriptionView"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    paymentsWebhook: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookReceipt"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    rateLimitStatus: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RateLimitStatus"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Rate limited: wait `Retry-After` seconds */
            429: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description The caller's quota left in the current window (IETF draft ratelimit-headers): remaining requests `r`, seconds until reset `t` */
                    RateLimit?: string;
                    /** @description The policy that applies: quota `q` requests per window `w` seconds */
                    "RateLimit-Policy"?: string;
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    healthz: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        [key: string]: string;
                    };
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    mediaDeliver: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                path: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": string;
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource (or not visible to the caller) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    mediaReceiveUpload: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                upload_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Received"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource (or not visible to the caller) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The resource's current state forbids this change */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than this route accepts */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body's Content-Type is not accepted here */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Well-formed but semantically invalid input */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after `Retry-After` seconds */
            503: {
                headers: {
                    /** @description Seconds to wait before retrying */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    metrics: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/plain": string;
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No valid credentials (a missing, expired or revoked token) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Signed in, but not allowed to do this */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource (or not visible to the caller) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    readyz: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Request fulfilled, document follows */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Readiness"];
                };
            };
            /** @description The request is malformed */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Not ready: a dependency is down or migrations are not current */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Readiness"];
                };
            };
        };
    };
}
