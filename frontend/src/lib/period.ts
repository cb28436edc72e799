// What the dashboard asks for: a range (7d, 28d, 90d, 12m or custom dates), a granularity and a
// time zone (the browser's by default), as the query string the dashboard API reads.

export type RangeKey = "7d" | "28d" | "90d" | "12m" | "custom";
export type Granularity = "hour" | "day" | "week" | "month";
export type Metric = "streams" | "listeners" | "listen_seconds" | "completion_rate" | "skip_rate" | "likes" | "followers";

export const METRICS: { key: Metric; label: string }[] = [
  { key: "streams", label: "Streams" },
  { key: "listeners", label: "Listeners" },
  { key: "listen_seconds", label: "Listening time" },
  { key: "completion_rate", label: "Completion rate" },
  { key: "skip_rate", label: "Skip rate" },
  { key: "likes", label: "Likes" },
  { key: "followers", label: "Followers" },
];

export const RANGES: { key: RangeKey; label: string }[] = [
  { key: "7d", label: "7 days" },
  { key: "28d", label: "28 days" },
  { key: "90d", label: "90 days" },
  { key: "12m", label: "12 months" },
  { key: "custom", label: "Custom" },
];

export interface Period {
  range: RangeKey;
  from?: string; // YYYY-MM-DD, inclusive
  to?: string;
  granularity: Granularity;
  tz: string;
}

export function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

export function defaultGranularity(range: RangeKey, from?: string, to?: string): Granularity {
  switch (range) {
    case "7d":
    case "28d":
      return "day";
    case "90d":
      return "week";
    case "12m":
      return "month";
    case "custom": {
      const days = from && to ? daysBetween(from, to) + 1 : 28;
      if (days <= 2) return "hour";
      if (days <= 62) return "day";
      if (days <= 370) return "week";
      return "month";
    }
  }
}

export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}

/** Granularities that make sense for a range (an hourly year is 8760 points: refused). */
export function granularitiesFor(period: Pick<Period, "range" | "from" | "to">): Granularity[] {
  const days =
    period.range === "custom"
      ? period.from && period.to
        ? daysBetween(period.from, period.to) + 1
        : 28
      : { "7d": 7, "28d": 28, "90d": 90, "12m": 366 }[period.range];
  const all: Granularity[] = ["hour", "day", "week", "month"];
  return all.filter((g) => (g === "hour" ? days <= 31 : g === "month" ? days >= 28 : true));
}

export function isValidCustom(from?: string, to?: string): boolean {
  const date = /^\d{4}-\d{2}-\d{2}$/;
  return !!from && !!to && date.test(from) && date.test(to) && from <= to;
}

/** The query string shared by every dashboard endpoint. */
export function periodQuery(period: Period): URLSearchParams {
  const q = new URLSearchParams();
  if (period.range === "custom" && isValidCustom(period.from, period.to)) {
    q.set("from", period.from!);
    q.set("to", period.to!);
  } else {
    q.set("range", period.range === "custom" ? "28d" : period.range);
  }
  q.set("tz", period.tz);
  return q;
}

export interface Change {
  /** Relative change against the previous period, e.g. 0.25 for +25%; null when undefined. */
  ratio: number | null;
  direction: "up" | "down" | "flat";
  text: string;
}

export function change(current: number, previous: number): Change {
  if (current === previous) return { ratio: 0, direction: "flat", text: "no change" };
  if (previous === 0) return { ratio: null, direction: current > 0 ? "up" : "down", text: "new" };
  const ratio = (current - previous) / Math.abs(previous);
  const pct = Math.abs(ratio * 100);
  const shown = pct >= 10 ? Math.round(pct).toString() : pct.toFixed(1).replace(/\.0$/, "");
  return { ratio, direction: ratio > 0 ? "up" : "down", text: `${ratio > 0 ? "+" : "−"}${shown}%` };
}

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

export function formatMetric(metric: Metric, value: number): string {
  switch (metric) {
    case "completion_rate":
    case "skip_rate":
      return `${(value * 100).toFixed(1).replace(/\.0$/, "")}%`;
    case "listen_seconds":
      return formatDuration(value);
    default:
      return Math.abs(value) >= 100_000 ? compact.format(value) : integer.format(value);
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  return h < 100 ? `${h} h ${m % 60} min` : `${integer.format(h)} h`;
}

/** A bucket start as the API sends it (RFC 3339 with the zone's offset) → a label in `tz`. */
export function bucketLabel(t: string, granularity: Granularity | "minute", tz: string): string {
  const date = new Date(t);
  const opts: Intl.DateTimeFormatOptions =
    granularity === "month"
      ? { month: "short", year: "numeric", timeZone: tz }
      : granularity === "hour" || granularity === "minute"
        ? { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZone: tz }
        : { day: "numeric", month: "short", year: "numeric", timeZone: tz };
  return new Intl.DateTimeFormat(undefined, opts).format(date);
}
