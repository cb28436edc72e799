// The player's analytics: one playback session per play of a track, sent to POST
// /api/analytics/events with the stream grant's id, so the dashboard can count it as a stream.
//   playback.started   when audio first plays
//   playback.progress  every 15 s of playing (and as a beacon when the page is hidden)
//   playback.completed when the track ends; playback.skipped when it is left before the end
// listened_ms is the media time actually played (seeks are not listening).

export type PlaybackType = "playback.started" | "playback.progress" | "playback.completed" | "playback.skipped";

export interface PlaybackEvent {
  event_id: string;
  type: PlaybackType;
  occurred_at: string;
  session_id: string;
  anonymous_id: string;
  track_id: string;
  artist_id?: string;
  listened_ms: number;
  source: string;
  grant_id?: string;
}

export interface TrackerDeps {
  send: (events: PlaybackEvent[]) => void;
  beacon: (events: PlaybackEvent[]) => void;
  now: () => Date;
  uuid: () => string;
  anonymousId: string;
}

export const PROGRESS_EVERY_MS = 15_000;
const MAX_STEP_S = 2; // a larger jump of currentTime is a seek, not listening

export class PlaybackTracker {
  readonly sessionId: string;
  private listenedMs = 0;
  private lastTime: number | null = null;
  private started = false;
  private finished = false;

  constructor(
    private readonly deps: TrackerDeps,
    private readonly track: { id: string; artist_id?: string },
    private readonly grantId: string | undefined,
    private readonly source = "web",
  ) {
    this.sessionId = deps.uuid();
  }

  get listened(): number {
    return this.listenedMs;
  }

  private event(type: PlaybackType): PlaybackEvent {
    return {
      event_id: this.deps.uuid(),
      type,
      occurred_at: this.deps.now().toISOString(),
      session_id: this.sessionId,
      anonymous_id: this.deps.anonymousId,
      track_id: this.track.id,
      ...(this.track.artist_id ? { artist_id: this.track.artist_id } : {}),
      listened_ms: Math.round(this.listenedMs),
      source: this.source,
      ...(this.grantId ? { grant_id: this.grantId } : {}),
    };
  }

  /** The audio element started or resumed playing. */
  playing(currentTime: number): void {
    this.lastTime = currentTime;
    if (!this.started && !this.finished) {
      this.started = true;
      this.deps.send([this.event("playback.started")]);
    }
  }

  paused(): void {
    this.lastTime = null;
  }

  /** A timeupdate: count the media time played since the last one. */
  time(currentTime: number): void {
    if (this.lastTime !== null && !this.finished) {
      const step = currentTime - this.lastTime;
      if (step > 0 && step <= MAX_STEP_S) this.listenedMs += step * 1000;
    }
    this.lastTime = currentTime;
  }

  /** Called every PROGRESS_EVERY_MS while playing. */
  progress(): void {
    if (this.started && !this.finished) this.deps.send([this.event("playback.progress")]);
  }

  ended(): void {
    if (!this.started || this.finished) return;
    this.finished = true;
    this.deps.send([this.event("playback.completed")]);
  }

  /** The listener moved on (another track, closed the player) before the end. */
  skipped(): void {
    if (!this.started || this.finished) return;
    this.finished = true;
    this.deps.send([this.event("playback.skipped")]);
  }

  /** The page is being hidden: report how far we got, with a beacon that survives unload. */
  hidden(unloading: boolean): void {
    if (!this.started || this.finished) return;
    if (unloading) {
      this.finished = true;
      this.deps.beacon([this.event("playback.skipped")]);
    } else {
      this.deps.beacon([this.event("playback.progress")]);
    }
  }
}

export function anonymousId(storage: Storage = localStorage): string {
  let id = storage.getItem("lufy.anonymous_id");
  if (!id) {
    id = crypto.randomUUID();
    storage.setItem("lufy.anonymous_id", id);
  }
  return id;
}
