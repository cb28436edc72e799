// Lufy stream authorisation: a CloudFront Function (viewer request, runtime cloudfront-js-2.0).
//
// Stream URLs carry their token in the path, /hls/{token}/{track_id}/{file}, so the relative
// URIs inside the (static) playlists inherit it. This function checks the token (JWT HS256;
// the header's `kid` names the KeyValueStore key that holds the HMAC secret, so two keys are
// accepted during a rotation), `exp`, `sid` equal to the track id of the path and the `tier`,
// answers 403 (problem+json) when a check fails, and otherwise rewrites the URI to
// /hls/{track_id}/{file} for the S3 origin: the token never reaches the origin or the cache
// key. A free-tier token asking for master.m3u8 gets master-free.m3u8 (written by the
// transcoder without the 256 kbit/s rendition) and is refused that rendition itself.
//
// The same checks, in the same order and with the same reasons, are made by Lufy's local
// edge (src/lufy/media/edge.py); one table of cases runs against both.
import cf from 'cloudfront';
import crypto from 'crypto';

const kvs = cf.kvs();

const MASTER = 'master.m3u8';
const FREE_MASTER = 'master-free.m3u8';
const PREMIUM_ONLY = ['256k'];

const PATH = /^\/hls\/([^/]+)\/([^/]+)\/(.+)$/;
const TRACK = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const TOKEN = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)$/;
const SERVED = ['.m3u8', '.ts', '.bin'];

function refuse(reason) {
    return {
        statusCode: 403,
        statusDescription: 'Forbidden',
        headers: {
            'content-type': { value: 'application/problem+json' },
            'cache-control': { value: 'no-store' },
        },
        body: {
            encoding: 'text',
            data: JSON.stringify({
                type: 'about:blank', status: 403, title: 'Forbidden', detail: reason,
            }),
        },
    };
}

function b64urlJson(part) {
    try {
        return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    } catch (e) {
        return null;
    }
}

function isObject(value) {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function equalInConstantTime(a, b) {
    if (a.length !== b.length) {
        return false;
    }
    let diff = 0;
    for (let i = 0; i < a.length; i++) {
        diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
    }
    return diff === 0;
}

function endsWithServed(name) {
    for (const suffix of SERVED) {
        if (name.endsWith(suffix)) {
            return true;
        }
    }
    return false;
}

async function secretFor(kid) {
    try {
        return await kvs.get(kid);
    } catch (e) {
        return null; // get() throws for a key the store does not hold
    }
}

async function handler(event) {
    const request = event.request;
    const path = PATH.exec(request.uri);
    if (path === null) {
        return refuse('the stream URL must look like /hls/{token}/{track_id}/{file}');
    }
    const token = path[1];
    const trackId = path[2];
    let file = path[3];
    if (!TRACK.test(trackId)) {
        return refuse('the stream URL names no track id');
    }
    const names = file.split('/');
    if (names.length > 2 || names.some((n) => !NAME.test(n)) || !endsWithServed(names[names.length - 1])) {
        return refuse('no such media file');
    }

    const parts = TOKEN.exec(token);
    if (parts === null) {
        return refuse('the stream token is malformed');
    }
    const header = b64urlJson(parts[1]);
    if (!isObject(header)) {
        return refuse('the stream token is malformed');
    }
    if (header.alg !== 'HS256') {
        return refuse('the stream token must be signed with HS256');
    }
    const kid = header.kid;
    if (typeof kid !== 'string' || kid.length === 0) {
        return refuse('the stream token names no key (kid)');
    }
    const secret = await secretFor(kid);
    if (secret === null || secret === undefined) {
        return refuse("the stream token's key is not known");
    }
    const expected = crypto.createHmac('sha256', secret)
        .update(parts[1] + '.' + parts[2])
        .digest('base64url');
    if (!equalInConstantTime(expected, parts[3])) {
        return refuse("the stream token's signature does not verify");
    }

    const claims = b64urlJson(parts[2]);
    if (!isObject(claims)) {
        return refuse('the stream token is malformed');
    }
    if ('aud' in claims) {
        return refuse('the token is not a stream token');
    }
    if (typeof claims.exp !== 'number') {
        return refuse('the stream token has no expiry');
    }
    if (Date.now() / 1000 >= claims.exp) {
        return refuse('the stream token has expired');
    }
    if (claims.sid !== trackId) {
        return refuse('the stream token is for another track');
    }
    if (claims.tier !== 'free' && claims.tier !== 'premium') {
        return refuse('the stream token has no valid tier');
    }
    if (claims.tier === 'free') {
        if (names.length === 2 && PREMIUM_ONLY.includes(names[0])) {
            return refuse('the free tier does not include the 256 kbit/s rendition');
        }
        if (file === MASTER) {
            file = FREE_MASTER;
        }
    }
    request.uri = '/hls/' + trackId + '/' + file;
    request.querystring = {};
    return request;
}
