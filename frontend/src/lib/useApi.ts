// GET an API resource for a screen: loading/error state, a reload, optional polling, and, when
// the network is gone, what the service worker cached with the time it was fetched ("as of").
import { useCallback, useEffect, useRef, useState } from "react";
import { send } from "../api/client";
import { NetworkError, messageOf } from "../api/problem";
import { DASHBOARD_CACHE } from "../api/session";

export interface ApiState<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  /** When the shown data was fetched from the server (a cached copy's Date header). */
  asOf: Date | null;
  reload: () => void;
}

type UpdateListener = (url: string) => void;
const updateListeners = new Set<UpdateListener>();
if (typeof navigator !== "undefined" && navigator.serviceWorker) {
  // Workbox's broadcast-update plugin: a stale-while-revalidate answer was refreshed in the cache.
  navigator.serviceWorker.addEventListener("message", (event: MessageEvent) => {
    const msg = event.data as { meta?: string; payload?: { cacheName?: string; updatedURL?: string } };
    if (msg?.meta === "workbox-broadcast-update" && msg.payload?.updatedURL) {
      updateListeners.forEach((fn) => fn(msg.payload!.updatedURL!));
    }
  });
}

// When each shown answer was produced by the server: the offline banner shows the oldest.
const asOfByPath = new Map<string, Date>();
const asOfListeners = new Set<() => void>();
function reportAsOf(path: string, date: Date | null): void {
  if (date) asOfByPath.set(path, date);
  else asOfByPath.delete(path);
  asOfListeners.forEach((fn) => fn());
}
export function oldestAsOf(): Date | null {
  let oldest: Date | null = null;
  for (const d of asOfByPath.values()) if (!oldest || d < oldest) oldest = d;
  return oldest;
}
export function subscribeAsOf(fn: () => void): () => void {
  asOfListeners.add(fn);
  return () => asOfListeners.delete(fn);
}

function dateOf(response: Response): Date | null {
  const header = response.headers.get("date");
  const parsed = header ? new Date(header) : null;
  return parsed && !Number.isNaN(parsed.getTime()) ? parsed : null;
}

async function fromCache(path: string): Promise<Response | undefined> {
  if (typeof caches === "undefined") return undefined;
  const cache = await caches.open(DASHBOARD_CACHE);
  return cache.match(new URL(path, location.origin).href);
}

export function useApi<T>(path: string | null, { pollMs }: { pollMs?: number } = {}): ApiState<T> {
  const [state, setState] = useState<Omit<ApiState<T>, "reload">>({ data: null, error: null, loading: !!path, asOf: null });
  const [tick, setTick] = useState(0);
  const current = useRef(path);
  current.current = path;

  const reload = useCallback(() => setTick((n) => n + 1), []);

  useEffect(() => {
    if (!path) return;
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    (async () => {
      try {
        const response = await send(path, { signal: controller.signal });
        const data = (await response.json()) as T;
        if (current.current === path) {
          setState({ data, error: null, loading: false, asOf: dateOf(response) });
          reportAsOf(path, dateOf(response));
        }
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error instanceof NetworkError) {
          const cached = await fromCache(path).catch(() => undefined);
          if (cached) {
            const data = (await cached.json()) as T;
            setState({ data, error: null, loading: false, asOf: dateOf(cached) });
            reportAsOf(path, dateOf(cached));
            return;
          }
        }
        setState((s) => ({ ...s, error: messageOf(error), loading: false }));
      }
    })();
    return () => {
      controller.abort();
      reportAsOf(path, null);
    };
  }, [path, tick]);

  useEffect(() => {
    if (!path || !pollMs) return;
    const id = setInterval(() => {
      if (document.visibilityState === "visible") reload();
    }, pollMs);
    return () => clearInterval(id);
  }, [path, pollMs, reload]);

  useEffect(() => {
    if (!path) return;
    const fn: UpdateListener = (url) => {
      if (url !== new URL(path, location.origin).href) return;
      void fromCache(path).then(async (cached) => {
        if (!cached || current.current !== path) return;
        const data = (await cached.json()) as T;
        setState({ data, error: null, loading: false, asOf: dateOf(cached) });
        reportAsOf(path, dateOf(cached));
      });
    };
    updateListeners.add(fn);
    return () => void updateListeners.delete(fn);
  }, [path]);

  return { ...state, reload };
}

export function useOnline(): boolean {
  const [online, setOnline] = useState(typeof navigator === "undefined" ? true : navigator.onLine);
  useEffect(() => {
    const on = () => setOnline(true);
    const off = () => setOnline(false);
    window.addEventListener("online", on);
    window.addEventListener("offline", off);
    return () => {
      window.removeEventListener("online", on);
      window.removeEventListener("offline", off);
    };
  }, []);
  return online;
}
