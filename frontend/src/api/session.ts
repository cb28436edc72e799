// The signed-in person: the access token lives in memory only; the refresh token is kept in
// localStorage so a reload keeps the session, and is rotated shortly before the access token
// expires. Rotation is serialised across tabs with the Web Locks API: two tabs refreshing with
// the same token would look like a stolen token and revoke the session.

import { ApiError, NetworkError, problemFrom } from "./problem";

import type { AuthTokens, User } from "./types";

export type { AuthTokens, User };

export type SessionState =
  | { status: "loading" }
  | { status: "signed-out"; message?: string }
  | { status: "signed-in"; user: User }
  // No network at start: the last person seen, read-only, from what was cached.
  | { status: "offline"; user: User };

const REFRESH_KEY = "lufy.refresh_token";
const USER_KEY = "lufy.user";
export const DASHBOARD_CACHE = "lufy-dashboard";

export interface SessionDeps {
  fetch: typeof fetch;
  storage: Storage;
  now: () => number;
  setTimer: (fn: () => void, ms: number) => unknown;
  clearTimer: (id: unknown) => void;
  lock: <T>(fn: () => Promise<T>) => Promise<T>;
  clearCaches: () => Promise<void>;
}

function browserDeps(): SessionDeps {
  return {
    fetch: (...args) => fetch(...args),
    storage: localStorage,
    now: () => Date.now(),
    setTimer: (fn, ms) => setTimeout(fn, ms),
    clearTimer: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
    lock: <T,>(fn: () => Promise<T>): Promise<T> =>
      typeof navigator !== "undefined" && navigator.locks
        ? (navigator.locks.request("lufy-refresh", fn) as Promise<T>)
        : fn(),
    clearCaches: async () => {
      if (typeof caches !== "undefined") await caches.delete(DASHBOARD_CACHE);
    },
  };
}

export class Session {
  private state: SessionState = { status: "loading" };
  private accessToken: string | null = null;
  private expiresAt = 0;
  private timer: unknown = null;
  private inflight: Promise<string | null> | null = null;
  private listeners = new Set<() => void>();
  readonly deps: SessionDeps;

  constructor(deps: Partial<SessionDeps> = {}) {
    this.deps = { ...browserDeps(), ...deps };
  }

  get snapshot(): SessionState {
    return this.state;
  }

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  private set(state: SessionState): void {
    this.state = state;
    for (const fn of this.listeners) fn();
  }

  /** At start: trade the stored refresh token for an access token, if there is one. */
  async start(): Promise<void> {
    if (!this.deps.storage.getItem(REFRESH_KEY)) {
      this.set({ status: "signed-out" });
      return;
    }
    await this.refresh();
  }

  /** Adopts a fresh token pair (sign-in, magic link, refresh). */
  async adopt(tokens: AuthTokens): Promise<void> {
    const previous = this.storedUser();
    if (previous && previous.id !== tokens.user.id) await this.deps.clearCaches();
    this.accessToken = tokens.access_token;
    this.expiresAt = this.deps.now() + tokens.expires_in * 1000;
    this.deps.storage.setItem(REFRESH_KEY, tokens.refresh_token);
    this.deps.storage.setItem(USER_KEY, JSON.stringify(tokens.user));
    this.schedule(tokens.expires_in);
    this.set({ status: "signed-in", user: tokens.user });
  }

  private schedule(expiresIn: number): void {
    if (this.timer !== null) this.deps.clearTimer(this.timer);
    // A minute before expiry (or at 80% of a short lifetime), so requests never carry a dead token.
    const lead = Math.min(60, expiresIn * 0.2);
    this.timer = this.deps.setTimer(() => void this.refresh(), Math.max(1, expiresIn - lead) * 1000);
  }

  private storedUser(): User | null {
    try {
      const raw = this.deps.storage.getItem(USER_KEY);
      return raw ? (JSON.parse(raw) as User) : null;
    } catch {
      return null;
    }
  }

  /** A valid access token, refreshing first when it is about to expire; null when signed out. */
  async token(): Promise<string | null> {
    if (this.accessToken && this.deps.now() < this.expiresAt - 5000) return this.accessToken;
    if (this.state.status === "signed-out") return null;
    return this.refresh();
  }

  /** Rotates the refresh token (one rotation at a time, across tabs). */
  refresh(): Promise<string | null> {
    this.inflight ??= this.deps
      .lock(() => this.rotate())
      .finally(() => {
        this.inflight = null;
      });
    return this.inflight;
  }

  private async rotate(): Promise<string | null> {
    const token = this.deps.storage.getItem(REFRESH_KEY);
    if (!token) {
      await this.signedOut("You were signed out in another tab.");
      return null;
    }
    const offline = () => {
      const user = this.storedUser();
      this.set(user ? { status: "offline", user } : { status: "signed-out" });
      return null;
    };
    // Known offline: do not even try (a failed request is noise in the console).
    if (typeof navigator !== "undefined" && navigator.onLine === false) return offline();
    let response: Response;
    try {
      response = await this.deps.fetch("/api/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: token }),
      });
    } catch {
      return offline();
    }
    if (response.ok) {
      const tokens = (await response.json()) as AuthTokens;
      await this.adopt(tokens);
      return tokens.access_token;
    }
    const error = await problemFrom(response);
    if (response.status === 401 || response.status === 400 || response.status === 422) {
      // Reused, revoked or expired: the session is over; say why.
      await this.signedOut(`You have been signed out: ${error.detail || error.title}`);
      return null;
    }
    throw error;
  }

  private async signedOut(message?: string): Promise<void> {
    this.accessToken = null;
    this.expiresAt = 0;
    if (this.timer !== null) this.deps.clearTimer(this.timer);
    this.timer = null;
    this.deps.storage.removeItem(REFRESH_KEY);
    this.deps.storage.removeItem(USER_KEY);
    await this.deps.clearCaches();
    this.set({ status: "signed-out", message });
  }

  /** Ends the session on the server (best effort) and forgets it here. */
  async signOut(message?: string): Promise<void> {
    const token = this.accessToken;
    if (token) {
      try {
        await this.deps.fetch("/api/auth/sign-out", {
          method: "POST",
          headers: { Authorization: `Bearer ${token}` },
        });
      } catch {
        // Offline: the refresh token is forgotten here all the same.
      }
    }
    await this.signedOut(message);
  }

  /** Another tab signed out (its storage event): follow it. */
  onStorage(key: string | null): void {
    if ((key === REFRESH_KEY || key === null) && !this.deps.storage.getItem(REFRESH_KEY)) {
      if (this.state.status === "signed-in" || this.state.status === "offline") {
        void this.signedOut("You signed out in another tab.");
      }
    }
  }
}

export const session = new Session();

export { ApiError, NetworkError };
