// Registers the service worker (built by scripts/sw.mjs with Workbox) and offers a reload when a
// new version is waiting: the new worker takes over only when the person agrees.
import { Workbox } from "workbox-window";

class Updates {
  waiting = false;
  private applying = false;
  private wb: Workbox | null = null;
  private listeners = new Set<() => void>();

  subscribe = (fn: () => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  register(): void {
    if (!("serviceWorker" in navigator) || import.meta.env.DEV) return;
    const wb = new Workbox("/sw.js");
    this.wb = wb;
    wb.addEventListener("waiting", () => {
      this.waiting = true;
      this.listeners.forEach((fn) => fn());
    });
    // Reload only when the person asked for the new version (a first install also "controls").
    wb.addEventListener("controlling", () => {
      if (this.applying) window.location.reload();
    });
    void wb.register();
  }

  apply(): void {
    this.applying = true;
    this.wb?.messageSkipWaiting();
  }
}

export const updates = new Updates();
