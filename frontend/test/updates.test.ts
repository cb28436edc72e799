import { beforeEach, describe, expect, it, vi } from "vitest";

// A stand-in for workbox-window's Workbox: records listeners and calls.
const instances: FakeWorkbox[] = [];
class FakeWorkbox {
  listeners = new Map<string, (() => void)[]>();
  skipped = 0;
  constructor(readonly url: string) {
    instances.push(this);
  }
  addEventListener(type: string, fn: () => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  emit(type: string) {
    this.listeners.get(type)?.forEach((fn) => fn());
  }
  register() {
    return Promise.resolve();
  }
  messageSkipWaiting() {
    this.skipped++;
  }
}
vi.mock("workbox-window", () => ({ Workbox: FakeWorkbox }));

describe("the update prompt", () => {
  beforeEach(() => {
    instances.length = 0;
    vi.resetModules();
    Object.defineProperty(navigator, "serviceWorker", { value: {}, configurable: true });
    vi.stubEnv("DEV", false);
  });

  it("offers the waiting version and activates it only when asked, then reloads once", async () => {
    const { updates } = await import("../src/sw");
    const reload = vi.fn();
    Object.defineProperty(window, "location", { value: { reload }, configurable: true });
    const seen: boolean[] = [];
    updates.subscribe(() => seen.push(updates.waiting));
    updates.register();
    const wb = instances[0]!;
    expect(wb.url).toBe("/sw.js");

    // A first install also takes control: that must not reload the page.
    wb.emit("controlling");
    expect(reload).not.toHaveBeenCalled();

    wb.emit("waiting");
    expect(seen).toEqual([true]);
    expect(wb.skipped).toBe(0);

    updates.apply();
    expect(wb.skipped).toBe(1);
    wb.emit("controlling");
    expect(reload).toHaveBeenCalledTimes(1);
  });
});
