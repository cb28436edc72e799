// The player: asks the API for a stream grant, plays its URL as is (hls.js, or the browser's own
// HLS on Safari) and reports the playback to the analytics API (see lib/playback.ts).
import { createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import { api } from "../api/client";
import { messageOf } from "../api/problem";
import { PROGRESS_EVERY_MS, PlaybackTracker, anonymousId, type PlaybackEvent } from "../lib/playback";

export interface PlayableTrack {
  id: string;
  title: string;
  artist_id?: string;
}

import type { StreamGrant } from "../api/types";

interface PlayerApi {
  current: PlayableTrack | null;
  play: (track: PlayableTrack) => void;
  stop: () => void;
}

const PlayerContext = createContext<PlayerApi>({ current: null, play: () => {}, stop: () => {} });
export const usePlayer = () => useContext(PlayerContext);

function sendEvents(events: PlaybackEvent[]): void {
  void api("/api/analytics/events", { method: "POST", body: { events } }).catch(() => {
    // Analytics must never interrupt listening; a lost progress event is superseded by the next.
  });
}

function beaconEvents(events: PlaybackEvent[]): void {
  // sendBeacon cannot carry the bearer token: the events name the grant and the anonymous id.
  const body = JSON.stringify({ events });
  if (!navigator.sendBeacon?.("/api/analytics/events", new Blob([body], { type: "text/plain" }))) sendEvents(events);
}

function prefersNativeHls(audio: HTMLAudioElement): boolean {
  return navigator.vendor?.startsWith("Apple") === true && audio.canPlayType("application/vnd.apple.mpegurl") !== "";
}

/** `owner`: who is signed in; when it changes (sign-out, another person) the player stops. */
export function PlayerProvider({ owner, children }: { owner: string | null; children: ReactNode }) {
  // `n` counts plays, so playing the same track again starts a new playback session.
  const [playing, setPlaying] = useState<{ track: PlayableTrack; n: number } | null>(null);
  const play = useCallback((track: PlayableTrack) => setPlaying((p) => ({ track, n: (p?.n ?? 0) + 1 })), []);
  const stop = useCallback(() => setPlaying(null), []);
  const current = playing?.track ?? null;
  useEffect(() => setPlaying(null), [owner]);
  return (
    <PlayerContext.Provider value={{ current, play, stop }}>
      {children}
      {playing && <PlayerBar key={playing.n} track={playing.track} onClose={stop} />}
    </PlayerContext.Provider>
  );
}

function PlayerBar({ track, onClose }: { track: PlayableTrack; onClose: () => void }) {
  const audio = useRef<HTMLAudioElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState("Loading…");

  useEffect(() => {
    const el = audio.current;
    if (!el) return;
    let disposed = false;
    let tracker: PlaybackTracker | null = null;
    let hls: { destroy: () => void } | null = null;
    let progressTimer: ReturnType<typeof setInterval> | null = null;

    const onPlaying = () => {
      tracker?.playing(el.currentTime);
      setStatus("Playing");
      progressTimer ??= setInterval(() => tracker?.progress(), PROGRESS_EVERY_MS);
    };
    const onPause = () => {
      tracker?.paused();
      if (progressTimer) clearInterval(progressTimer);
      progressTimer = null;
      if (!el.ended) setStatus("Paused");
    };
    const onTime = () => tracker?.time(el.currentTime);
    const onEnded = () => {
      tracker?.ended();
      setStatus("Finished");
    };
    const onVisibility = () => {
      if (document.visibilityState === "hidden") tracker?.hidden(false);
    };
    const onPageHide = () => tracker?.hidden(true);
    el.addEventListener("playing", onPlaying);
    el.addEventListener("pause", onPause);
    el.addEventListener("timeupdate", onTime);
    el.addEventListener("ended", onEnded);
    document.addEventListener("visibilitychange", onVisibility);
    window.addEventListener("pagehide", onPageHide);

    (async () => {
      try {
        const grant = await api<StreamGrant>(`/api/music/tracks/${track.id}/stream`);
        if (disposed) return;
        tracker = new PlaybackTracker(
          { send: sendEvents, beacon: beaconEvents, now: () => new Date(), uuid: () => crypto.randomUUID(), anonymousId: anonymousId() },
          track,
          grant.grant_id,
        );
        if (prefersNativeHls(el)) {
          el.src = grant.url;
        } else {
          const { default: Hls } = await import("hls.js/light");
          if (disposed) return;
          if (!Hls.isSupported()) {
            el.src = grant.url;
          } else {
            const player = new Hls({ enableWorker: true });
            hls = player;
            player.on(Hls.Events.ERROR, (_event, data) => {
              if (data.fatal) setError(`Playback failed: ${data.details}`);
            });
            player.loadSource(grant.url);
            player.attachMedia(el);
          }
        }
        setStatus("Ready");
        await el.play().catch(() => setStatus("Press play to listen"));
      } catch (err) {
        if (!disposed) setError(messageOf(err));
      }
    })();

    return () => {
      disposed = true;
      tracker?.skipped();
      if (progressTimer) clearInterval(progressTimer);
      el.removeEventListener("playing", onPlaying);
      el.removeEventListener("pause", onPause);
      el.removeEventListener("timeupdate", onTime);
      el.removeEventListener("ended", onEnded);
      document.removeEventListener("visibilitychange", onVisibility);
      window.removeEventListener("pagehide", onPageHide);
      hls?.destroy();
      el.removeAttribute("src");
    };
  }, [track]);

  return (
    <div role="region" aria-label="Player" className="fixed inset-x-0 bottom-0 z-20 border-t border-slate-200 bg-white/95 px-4 py-3 shadow-lg backdrop-blur">
      <div className="mx-auto flex max-w-6xl flex-wrap items-center gap-3">
        <div className="min-w-0 flex-1">
          <p className="truncate font-medium text-slate-900" data-testid="player-title">
            {track.title}
          </p>
          <p className="text-xs text-slate-600" aria-live="polite" data-testid="player-status">
            {error ?? status}
          </p>
        </div>
        <audio ref={audio} controls preload="auto" aria-label={`Audio player: ${track.title}`} className="w-full sm:w-96" data-testid="audio" />
        <button onClick={onClose} className="rounded-md px-2 py-1 text-sm text-slate-700 hover:bg-slate-100 focus-visible:outline focus-visible:outline-2 focus-visible:outline-violet-700" aria-label="Close the player">
          Close
        </button>
      </div>
    </div>
  );
}
