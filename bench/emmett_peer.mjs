// The peer figure of bench/eventstore.py (`append --emmett`): Emmett's PostgreSQL event store
// appending one ~200-byte event per call with an expected stream version, from N concurrent
// clients (one stream each), for a fixed time. Run by the Python bench only; it loads the npm
// package from the scratch folder the bench installed it into (EMMETT_DIR), never from Lufy.
//   node bench/emmett_peer.mjs URL CLIENTS SECONDS   -> prints {"rate": events per second}
import { createRequire } from "node:module";
import { randomUUID } from "node:crypto";

const require = createRequire(`${process.env.EMMETT_DIR}/`);
const { getPostgreSQLEventStore } = require("@event-driven-io/emmett-postgresql");
const { STREAM_DOES_NOT_EXIST } = require("@event-driven-io/emmett");

const [url, clientsArg, secondsArg] = process.argv.slice(2);
const clients = Number(clientsArg);
const seconds = Number(secondsArg);
const store = getPostgreSQLEventStore(url);
const track = randomUUID();
const artist = randomUUID();
let seq = 0;

const event = () => {
  seq += 1;
  return {
    type: "TrackPlayed",
    data: {
      track_id: track,
      artist_id: artist,
      session_id: `s-${String(seq).padStart(8, "0")}`,
      listened_ms: 30000 + (seq % 1000),
      source: "library",
      country: "DE",
      device: "ios",
    },
    metadata: { correlation_id: randomUUID(), actor_id: artist },
  };
};

// Schema creation and connection warm-up stay outside the timed window.
for (let c = 0; c < clients; c += 1) {
  await store.appendToStream(`warmup-${randomUUID()}`, [event()]);
}

const counts = new Array(clients).fill(0);
const start = performance.now();
const deadline = start + seconds * 1000;
const loop = async (c) => {
  const stream = `bench-${randomUUID()}`;
  let version = null;
  while (performance.now() < deadline) {
    const result = await store.appendToStream(stream, [event()], {
      expectedStreamVersion: version ?? STREAM_DOES_NOT_EXIST,
    });
    version = result.nextExpectedStreamVersion;
    counts[c] += 1;
  }
};
await Promise.all(Array.from({ length: clients }, (_, c) => loop(c)));
const elapsed = (performance.now() - start) / 1000;
await store.close();
console.log(JSON.stringify({ rate: counts.reduce((a, b) => a + b, 0) / elapsed }));
