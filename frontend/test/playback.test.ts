import { describe, expect, it } from "vitest";
import { PlaybackTracker, type PlaybackEvent } from "../src/lib/playback";

const GRANT = "7f1c6a52-95a3-4a8b-9a3e-0d8b3b6f2d11";

function tracker({ grant }: { grant: string | undefined } = { grant: GRANT }) {
  const sent: PlaybackEvent[] = [];
  const beacons: PlaybackEvent[] = [];
  let n = 0;
  const t = new PlaybackTracker(
    {
      send: (e) => sent.push(...e),
      beacon: (e) => beacons.push(...e),
      now: () => new Date("2026-12-06T12:00:00Z"),
      uuid: () => `00000000-0000-4000-8000-${String(++n).padStart(12, "0")}`,
      anonymousId: "anon-1",
    },
    { id: "track-1", artist_id: "artist-1" },
    grant,
  );
  return { t, sent, beacons };
}

describe("the player's analytics", () => {
  it("sends started once, with the stream grant id and one session id for every event", () => {
    const { t, sent } = tracker();
    t.playing(0);
    t.paused();
    t.playing(3);
    t.time(4);
    t.ended();
    expect(sent.map((e) => e.type)).toEqual(["playback.started", "playback.completed"]);
    expect(new Set(sent.map((e) => e.session_id)).size).toBe(1);
    expect(sent.every((e) => e.grant_id === "7f1c6a52-95a3-4a8b-9a3e-0d8b3b6f2d11")).toBe(true);
    expect(sent[0]).toMatchObject({ track_id: "track-1", artist_id: "artist-1", source: "web", anonymous_id: "anon-1" });
  });

  it("counts the media time played but not a seek", () => {
    const { t, sent } = tracker();
    t.playing(0);
    for (let s = 0.25; s <= 20; s += 0.25) t.time(s);
    t.time(35); // a seek forward
    t.time(35.5);
    t.progress();
    expect(sent.at(-1)).toMatchObject({ type: "playback.progress", listened_ms: 20_500 });
  });

  it("reports a skip when left before the end, and nothing more after", () => {
    const { t, sent } = tracker();
    t.playing(0);
    t.time(1);
    t.skipped();
    t.ended();
    t.progress();
    expect(sent.map((e) => e.type)).toEqual(["playback.started", "playback.skipped"]);
    expect(sent[1]!.listened_ms).toBe(1000);
  });

  it("uses a beacon when the page is hidden: progress while it may come back, skipped when it unloads", () => {
    const { t, beacons, sent } = tracker();
    t.playing(0);
    t.hidden(false);
    t.hidden(true);
    t.skipped();
    expect(beacons.map((e) => e.type)).toEqual(["playback.progress", "playback.skipped"]);
    expect(sent.map((e) => e.type)).toEqual(["playback.started"]);
  });

  it("sends nothing for a track that never started playing", () => {
    const { t, sent, beacons } = tracker({ grant: undefined });
    t.progress();
    t.skipped();
    t.hidden(true);
    expect(sent).toEqual([]);
    expect(beacons).toEqual([]);
  });

  it("leaves grant_id out when the API gave none", () => {
    const { t, sent } = tracker({ grant: undefined });
    t.playing(0);
    expect("grant_id" in sent[0]!).toBe(false);
  });
});
