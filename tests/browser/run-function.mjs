// Runs deploy/cloudfront/stream-auth.js under Node, as the cloudfront-js-2.0 runtime would:
// the `cloudfront` module is a small shim whose KeyValueStore is the `kvs` object of the input,
// `crypto` is Node's own. Input (stdin): {"kvs": {kid: secret}, "uris": ["/hls/…"]}.
// Output (stdout): one {uri, statusCode, detail?, originUri?, querystring?} per input URI.
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = readFileSync(join(here, '..', '..', 'deploy', 'cloudfront', 'stream-auth.js'), 'utf8');
const input = JSON.parse(readFileSync(0, 'utf8'));

const dir = mkdtempSync(join(tmpdir(), 'lufy-cf-'));
try {
    mkdirSync(join(dir, 'node_modules', 'cloudfront'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"type": "module"}');
    writeFileSync(
        join(dir, 'node_modules', 'cloudfront', 'package.json'),
        '{"name": "cloudfront", "type": "module", "main": "index.js"}',
    );
    // The KeyValueStore helper: get() rejects for a key the store does not hold.
    writeFileSync(join(dir, 'node_modules', 'cloudfront', 'index.js'), `
const store = globalThis.__lufyKvs;
export default {
    kvs() {
        return {
            async get(key, options) {
                if (!Object.prototype.hasOwnProperty.call(store, key)) {
                    throw new Error('KeyValueStore: key not found');
                }
                return store[key];
            },
            async exists(key) { return Object.prototype.hasOwnProperty.call(store, key); },
        };
    },
};
`);
    // The runtime calls the top-level handler; Node needs it exported to reach it.
    writeFileSync(join(dir, 'stream-auth.js'), source + '\nexport { handler };\n');
    globalThis.__lufyKvs = input.kvs;
    const { handler } = await import(pathToFileURL(join(dir, 'stream-auth.js')).href);
    const results = [];
    for (const uri of input.uris) {
        const event = {
            version: '1.0',
            context: { eventType: 'viewer-request', distributionDomainName: 'd111111abcdef8.cloudfront.net' },
            viewer: { ip: '198.51.100.7' },
            request: {
                method: 'GET',
                uri,
                querystring: input.querystrings?.[uri] ?? {},
                headers: { host: { value: 'media.example.net' } },
                cookies: {},
            },
        };
        const answer = await handler(event);
        if (answer.statusCode !== undefined) {
            results.push({
                uri,
                statusCode: answer.statusCode,
                contentType: answer.headers['content-type'].value,
                detail: JSON.parse(answer.body.data).detail,
            });
        } else {
            results.push({ uri, statusCode: 200, originUri: answer.uri, querystring: answer.querystring });
        }
    }
    process.stdout.write(JSON.stringify(results));
} finally {
    rmSync(dir, { recursive: true, force: true });
}
