// The artist dashboard: overview cards (change against the previous period), a chart per
// metric, top tracks, breakdowns, a realtime panel and CSV export, for a range, granularity and
// time zone (the browser's by default), remembered between visits.
import { useCallback, useMemo, useState } from "react";
import { send } from "../api/client";
import { messageOf } from "../api/problem";
import { BarChart, TimeChart } from "../components/Chart";
import { Alert, Button, Card, Empty, Spinner } from "../components/ui";
import { Link } from "../lib/router";
import {
  METRICS,
  RANGES,
  browserZone,
  bucketLabel,
  change,
  defaultGranularity,
  formatMetric,
  granularitiesFor,
  isValidCustom,
  periodQuery,
  type Granularity,
  type Metric,
  type Period,
  type RangeKey,
} from "../lib/period";
import { useApi } from "../lib/useApi";

import type { BreakdownRow, Overview, Point, TrackRow } from "../api/types";

const STORE = "lufy.dashboard.period";

function loadPeriod(): Period {
  try {
    const saved = JSON.parse(localStorage.getItem(STORE) ?? "null") as Period | null;
    if (saved && RANGES.some((r) => r.key === saved.range)) return { ...saved, tz: saved.tz || browserZone() };
  } catch {
    // A damaged preference: start from the defaults.
  }
  return { range: "28d", granularity: "day", tz: browserZone() };
}

function zones(): string[] {
  try {
    return (Intl as unknown as { supportedValuesOf(k: string): string[] }).supportedValuesOf("timeZone");
  } catch {
    return ["UTC"];
  }
}

function Controls({ period, onChange }: { period: Period; onChange: (p: Period) => void }) {
  const set = (patch: Partial<Period>) => {
    const next = { ...period, ...patch };
    if (patch.range || patch.from || patch.to) {
      const allowed = granularitiesFor(next);
      if (!allowed.includes(next.granularity)) next.granularity = defaultGranularity(next.range, next.from, next.to);
      if (patch.range && patch.range !== "custom") next.granularity = defaultGranularity(next.range);
    }
    onChange(next);
  };
  const zoneList = useMemo(zones, []);
  return (
    <div className="flex flex-wrap items-end gap-4">
      <fieldset>
        <legend className="mb-1 text-sm font-medium text-slate-800">Range</legend>
        <div className="inline-flex overflow-hidden rounded-md border border-slate-300" role="group" aria-label="Range">
          {RANGES.map((r) => (
            <button
              key={r.key}
              aria-pressed={period.range === r.key}
              onClick={() => set({ range: r.key as RangeKey })}
              className={`px-3 py-1.5 text-sm focus-visible:outline focus-visible:outline-2 focus-visible:outline-violet-700 ${period.range === r.key ? "bg-violet-800 text-white" : "bg-white text-slate-800 hover:bg-slate-100"}`}
            >
              {r.label}
            </button>
          ))}
        </div>
      </fieldset>
      {period.range === "custom" && (
        <div className="flex gap-2">
          <label className="flex flex-col text-sm">
            From
            <input type="date" className="rounded-md border border-slate-400 px-2 py-1" value={period.from ?? ""} onChange={(e) => set({ from: e.target.value })} />
          </label>
          <label className="flex flex-col text-sm">
            To
            <input type="date" className="rounded-md border border-slate-400 px-2 py-1" value={period.to ?? ""} onChange={(e) => set({ to: e.target.value })} />
          </label>
        </div>
      )}
      <label className="flex flex-col text-sm">
        Granularity
        <select className="rounded-md border border-slate-400 bg-white px-2 py-1.5" value={period.granularity} onChange={(e) => set({ granularity: e.target.value as Granularity })}>
          {granularitiesFor(period).map((g) => (
            <option key={g} value={g}>
              {g}
            </option>
          ))}
        </select>
      </label>
      <label className="flex flex-col text-sm">
        Time zone
        <input className="w-52 rounded-md border border-slate-400 px-2 py-1" list="tz-list" value={period.tz} onChange={(e) => e.target.value && set({ tz: e.target.value })} />
        <datalist id="tz-list">
          {zoneList.map((z) => (
            <option key={z} value={z} />
          ))}
        </datalist>
      </label>
    </div>
  );
}

function OverviewCards({ data, selected, onSelect }: { data: Overview; selected: Metric; onSelect: (m: Metric) => void }) {
  return (
    <div className="grid grid-cols-2 gap-3 sm:grid-cols-4 lg:grid-cols-7" data-testid="overview">
      {METRICS.map(({ key, label }) => {
        const c = change(data[key], data.previous[key]);
        // For the skip rate, down is good.
        const good = key === "skip_rate" ? c.direction === "down" : c.direction === "up";
        const tone = c.direction === "flat" ? "text-slate-600" : good ? "text-emerald-800" : "text-red-800";
        return (
          <button
            key={key}
            onClick={() => onSelect(key)}
            aria-pressed={selected === key}
            data-metric={key}
            data-value={data[key]}
            className={`rounded-lg border bg-white p-3 text-left shadow-sm focus-visible:outline focus-visible:outline-2 focus-visible:outline-violet-700 ${selected === key ? "border-violet-700 ring-1 ring-violet-700" : "border-slate-200 hover:border-slate-400"}`}
          >
            <span className="block text-xs font-medium text-slate-600">{label}</span>
            <span className="block text-xl font-semibold" data-testid={`overview-${key}`}>
              {formatMetric(key, data[key])}
            </span>
            <span className={`block text-xs ${tone}`}>
              {c.text} <span className="text-slate-600">vs previous</span>
            </span>
          </button>
        );
      })}
    </div>
  );
}

function TopTracks({ rows }: { rows: TrackRow[] }) {
  const [sort, setSort] = useState<{ key: Metric | "title"; desc: boolean }>({ key: "streams", desc: true });
  const sorted = useMemo(() => {
    const out = [...rows];
    out.sort((a, b) => {
      const d = sort.key === "title" ? (a.title ?? "").localeCompare(b.title ?? "") : a[sort.key] - b[sort.key];
      return sort.desc ? -d : d;
    });
    return out;
  }, [rows, sort]);
  const columns: { key: Metric | "title"; label: string }[] = [
    { key: "title", label: "Track" },
    { key: "streams", label: "Streams" },
    { key: "listeners", label: "Listeners" },
    { key: "listen_seconds", label: "Listening time" },
    { key: "completion_rate", label: "Completion" },
    { key: "skip_rate", label: "Skips" },
  ];
  if (rows.length === 0) return <Empty title="No plays in this period" />;
  return (
    <div className="overflow-x-auto">
      <table className="w-full text-left text-sm" data-testid="top-tracks">
        <thead>
          <tr className="border-b border-slate-200">
            {columns.map((c) => (
              <th key={c.key} scope="col" aria-sort={sort.key === c.key ? (sort.desc ? "descending" : "ascending") : "none"} className="py-2 pr-3 font-medium">
                <button className="hover:underline focus-visible:outline focus-visible:outline-2 focus-visible:outline-violet-700" onClick={() => setSort((s) => ({ key: c.key, desc: s.key === c.key ? !s.desc : c.key !== "title" }))}>
                  {c.label}
                  {sort.key === c.key ? (sort.desc ? " ↓" : " ↑") : ""}
                </button>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {sorted.map((r) => (
            <tr key={r.track_id} className="border-b border-slate-100">
              <td className="py-2 pr-3">{r.title ?? "(deleted track)"}</td>
              {columns.slice(1).map((c) => (
                <td key={c.key} className="py-2 pr-3 tabular-nums">
                  {formatMetric(c.key as Metric, r[c.key as Metric])}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Breakdown({ dimension, query }: { dimension: "country" | "device" | "source"; query: string }) {
  const res = useApi<{ rows: BreakdownRow[] }>(`/api/dashboard/breakdown?dimension=${dimension}&${query}`);
  const rows = useMemo(() => (res.data?.rows ?? []).slice(0, 8).map((r) => ({ key: r.key, value: r.streams })), [res.data]);
  const title = { country: "Streams by country", device: "Streams by device", source: "Streams by source" }[dimension];
  return (
    <Card title={title}>
      {res.error && <Alert>{res.error}</Alert>}
      {res.loading && !res.data && <Spinner />}
      {res.data && (rows.length === 0 ? <p className="text-sm text-slate-600">No streams yet.</p> : <BarChart label={title} rows={rows} />)}
    </Card>
  );
}

function Realtime({ tz }: { tz: string }) {
  const res = useApi<{ points: Point[] }>(`/api/dashboard/realtime?tz=${encodeURIComponent(tz)}`, { pollMs: 10_000 });
  const total = res.data?.points.reduce((s, p) => s + p.value, 0) ?? 0;
  const fmt = useCallback((v: number) => String(Math.round(v)), []);
  const fmtX = useCallback((t: string) => bucketLabel(t, "minute", tz), [tz]);
  return (
    <Card title="Right now" actions={<span className="text-xs text-slate-600">last 30 minutes, refreshed every 10 s</span>}>
      {res.error && <Alert>{res.error}</Alert>}
      <p className="mb-2 text-sm" aria-live="polite">
        <span className="text-2xl font-semibold" data-testid="realtime-total">
          {Math.round(total)}
        </span>{" "}
        streams in the last 30 minutes
      </p>
      {res.data && <TimeChart label="Streams per minute" points={res.data.points} tz={tz} format={fmt} formatX={fmtX} bars integer height={140} />}
    </Card>
  );
}

async function downloadCsv(path: string, filename: string): Promise<void> {
  const response = await send(path);
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function Dashboard({ offline }: { offline: boolean }) {
  const [period, setPeriodState] = useState<Period>(loadPeriod);
  const [metric, setMetric] = useState<Metric>("streams");
  const [csvError, setCsvError] = useState<string | null>(null);
  const setPeriod = (p: Period) => {
    setPeriodState(p);
    localStorage.setItem(STORE, JSON.stringify(p));
  };
  const customIncomplete = period.range === "custom" && !isValidCustom(period.from, period.to);
  const query = periodQuery(period).toString();
  const overview = useApi<Overview>(`/api/dashboard/overview?${query}`);
  const series = useApi<{ points: Point[] }>(`/api/dashboard/timeseries?metric=${metric}&granularity=${period.granularity}&${query}`);
  const tracks = useApi<{ rows: TrackRow[] }>(`/api/dashboard/tracks?sort=streams&limit=20&${query}`);
  const label = METRICS.find((m) => m.key === metric)!.label;
  const fmt = useCallback((v: number) => formatMetric(metric, v), [metric]);
  const fmtX = useCallback((t: string) => bucketLabel(t, period.granularity, period.tz), [period.granularity, period.tz]);
  const isNew = overview.data && tracks.data && tracks.data.rows.length === 0 && METRICS.every((m) => overview.data![m.key] === 0 && overview.data!.previous[m.key] === 0);

  return (
    <div className="flex flex-col gap-4">
      <div className="flex flex-wrap items-center justify-between gap-3">
        <h1 className="text-2xl font-semibold">Dashboard</h1>
        <Button
          variant="secondary"
          disabled={offline}
          onClick={() => {
            setCsvError(null);
            downloadCsv(`/api/dashboard/export.csv?metric=${metric}&granularity=${period.granularity}&${query}`, `lufy-${metric}-${period.range}.csv`).catch((e) => setCsvError(messageOf(e)));
          }}
        >
          Download CSV
        </Button>
      </div>
      <Controls period={period} onChange={setPeriod} />
      {customIncomplete && <Alert kind="info">Choose both dates (from no later than to); until then the last 28 days are shown.</Alert>}
      {csvError && <Alert>{csvError}</Alert>}
      {isNew && (
        <Empty title="No listening yet">
          Your numbers appear here once people play your music. <Link className="text-violet-800 underline" href="/tracks">Upload and publish a track</Link> to get started.
        </Empty>
      )}
      {overview.error && <Alert>{overview.error}</Alert>}
      {overview.loading && !overview.data && <Spinner label="Loading your numbers" />}
      {overview.data && <OverviewCards data={overview.data} selected={metric} onSelect={setMetric} />}
      <Card title={`${label} by ${period.granularity}`}>
        {series.error && <Alert>{series.error}</Alert>}
        {series.data && <TimeChart label={label} points={series.data.points} tz={period.tz} format={fmt} formatX={fmtX} bars={series.data.points.length <= 31} integer={!metric.endsWith("_rate") && metric !== "listen_seconds"} />}
      </Card>
      {!offline && <Realtime tz={period.tz} />}
      <Card title="Top tracks">
        {tracks.error && <Alert>{tracks.error}</Alert>}
        {tracks.data && <TopTracks rows={tracks.data.rows} />}
      </Card>
      <div className="grid gap-4 md:grid-cols-3">
        <Breakdown dimension="country" query={query} />
        <Breakdown dimension="device" query={query} />
        <Breakdown dimension="source" query={query} />
      </div>
    </div>
  );
}
