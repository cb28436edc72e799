import { describe, expect, it } from "vitest";
import { Session, type AuthTokens } from "../src/api/session";

class MemoryStorage implements Storage {
  private items = new Map<string, string>();
  get length() {
    return this.items.size;
  }
  clear() {
    this.items.clear();
  }
  getItem(key: string) {
    return this.items.get(key) ?? null;
  }
  key(i: number) {
    return [...this.items.keys()][i] ?? null;
  }
  removeItem(key: string) {
    this.items.delete(key);
  }
  setItem(key: string, value: string) {
    this.items.set(key, value);
  }
}

const user = { id: "u1", email: "a@example.com", display_name: "A", role: "artist" as const, email_verified: true };
const pair = (n: number, expiresIn = 900): AuthTokens => ({
  access_token: `access-${n}`,
  token_type: "Bearer",
  expires_in: expiresIn,
  refresh_token: `refresh-${n}`,
  user,
});

function harness(answers: (Response | Error)[]) {
  const storage = new MemoryStorage();
  const calls: { url: string; body: unknown }[] = [];
  const timers: { fn: () => void; ms: number }[] = [];
  let now = 1_000_000;
  let cleared = 0;
  const session = new Session({
    storage,
    now: () => now,
    fetch: async (url, init) => {
      calls.push({ url: String(url), body: init?.body ? JSON.parse(String(init.body)) : null });
      const answer = answers.shift();
      if (!answer) throw new Error("no answer left");
      if (answer instanceof Error) throw answer;
      return answer;
    },
    setTimer: (fn, ms) => timers.push({ fn, ms }),
    clearTimer: () => {},
    lock: (fn) => fn(),
    clearCaches: async () => {
      cleared++;
    },
  });
  return { session, storage, calls, timers, advance: (ms: number) => (now += ms), cleared: () => cleared };
}

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

describe("the session", () => {
  it("keeps the access token in memory and only the refresh token in storage", async () => {
    const h = harness([]);
    await h.session.adopt(pair(1));
    expect(await h.session.token()).toBe("access-1");
    expect(h.storage.getItem("lufy.refresh_token")).toBe("refresh-1");
    expect(JSON.stringify([...Array(h.storage.length)].map((_, i) => h.storage.getItem(h.storage.key(i)!)))).not.toContain("access-1");
  });

  it("schedules the refresh a minute before the access token expires", async () => {
    const h = harness([]);
    await h.session.adopt(pair(1, 900));
    expect(h.timers.at(-1)!.ms).toBe(840_000);
  });

  it("rotates the refresh token when the access token is about to expire", async () => {
    const h = harness([json(pair(2))]);
    await h.session.adopt(pair(1, 900));
    h.advance(899_000);
    expect(await h.session.token()).toBe("access-2");
    expect(h.calls).toEqual([{ url: "/api/auth/refresh", body: { refresh_token: "refresh-1" } }]);
    expect(h.storage.getItem("lufy.refresh_token")).toBe("refresh-2");
  });

  it("signs out with the server's reason when the refresh token was reused or revoked", async () => {
    const h = harness([
      json({ status: 401, title: "Invalid credentials", detail: "this refresh token was already used: the session has been revoked, sign in again" }, 401),
    ]);
    h.storage.setItem("lufy.refresh_token", "stolen");
    await h.session.start();
    const state = h.session.snapshot;
    expect(state.status).toBe("signed-out");
    expect(state.status === "signed-out" && state.message).toContain("already used");
    expect(h.storage.getItem("lufy.refresh_token")).toBeNull();
    expect(h.cleared()).toBe(1);
  });

  it("starts offline with the last person seen when the network is down", async () => {
    const h = harness([new TypeError("Failed to fetch")]);
    h.storage.setItem("lufy.refresh_token", "r");
    h.storage.setItem("lufy.user", JSON.stringify(user));
    await h.session.start();
    expect(h.session.snapshot).toEqual({ status: "offline", user });
    expect(h.storage.getItem("lufy.refresh_token")).toBe("r");
  });

  it("makes one refresh call for concurrent callers", async () => {
    const h = harness([json(pair(2))]);
    h.storage.setItem("lufy.refresh_token", "refresh-1");
    const [a, b] = await Promise.all([h.session.refresh(), h.session.refresh()]);
    expect(a).toBe("access-2");
    expect(b).toBe("access-2");
    expect(h.calls).toHaveLength(1);
  });

  it("clears the cached dashboard when a different person signs in", async () => {
    const h = harness([]);
    await h.session.adopt(pair(1));
    await h.session.adopt({ ...pair(2), user: { ...user, id: "u2" } });
    expect(h.cleared()).toBe(1);
  });
});
