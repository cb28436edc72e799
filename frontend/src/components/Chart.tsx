// Charts with uPlot (small, fast, canvas): a time series whose axis is drawn in the chosen time
// zone (uPlot.tzDate, so DST days keep their 23 or 25 hours), and bars by category.
// Each chart also carries its numbers as a table for screen readers.
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const VIOLET = "#6d28d9";

function useWidth(ref: React.RefObject<HTMLDivElement | null>, onWidth: (w: number) => void) {
  useEffect(() => {
    const el = ref.current;
    if (!el || typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(([entry]) => entry && onWidth(Math.max(200, Math.floor(entry.contentRect.width))));
    observer.observe(el);
    return () => observer.disconnect();
  }, [ref, onWidth]);
}

interface TimeChartProps {
  label: string;
  points: { t: string; value: number }[];
  tz: string;
  format: (v: number) => string;
  formatX: (t: string) => string;
  bars?: boolean;
  height?: number;
  /** Counts: ticks on whole numbers only. */
  integer?: boolean;
}

const WHOLE = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1e6, 2.5e6, 5e6, 1e7];

export function TimeChart({ label, points, tz, format, formatX, bars = false, height = 240, integer = false }: TimeChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const xs = points.map((p) => Date.parse(p.t) / 1000);
    const ys = points.map((p) => p.value);
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth || 600),
      height,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), tz),
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: "#475569", grid: { stroke: "#e2e8f0" } },
        { stroke: "#475569", grid: { stroke: "#e2e8f0" }, size: 60, values: (_u, splits) => splits.map(format), ...(integer ? { incrs: WHOLE } : {}) },
      ],
      series: [
        {},
        {
          label,
          stroke: VIOLET,
          width: 2,
          fill: "rgba(109, 40, 217, 0.12)",
          points: { show: !bars && points.length < 60 },
          ...(bars ? { paths: uPlot.paths.bars!({ size: [0.7, 40] }), fill: "rgba(109, 40, 217, 0.7)" } : {}),
        },
      ],
    };
    plot.current?.destroy();
    plot.current = new uPlot(opts, [xs, ys], el);
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
  }, [points, tz, label, format, bars, height, integer]);

  useWidth(box, (width) => plot.current?.setSize({ width, height }));

  return (
    <figure className="m-0">
      <div ref={box} role="img" aria-label={`${label} chart`} className="w-full overflow-hidden" />
      <table className="sr-only">
        <caption>{label}</caption>
        <tbody>
          {points.map((p) => (
            <tr key={p.t}>
              <th scope="row">{formatX(p.t)}</th>
              <td>{format(p.value)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}

interface BarChartProps {
  label: string;
  rows: { key: string; value: number }[];
  height?: number;
}

export function BarChart({ label, rows, height = 200 }: BarChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const keys = rows.map((r) => r.key);
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth || 300),
      height,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false, range: () => [-0.5, Math.max(0.5, keys.length - 0.5)] }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: "#475569", grid: { show: false }, splits: () => keys.map((_, i) => i), values: (_u, splits) => splits.map((i) => keys[i] ?? "") },
        { stroke: "#475569", grid: { stroke: "#e2e8f0" }, size: 50, incrs: WHOLE },
      ],
      series: [{}, { label, fill: "rgba(109, 40, 217, 0.75)", stroke: VIOLET, paths: uPlot.paths.bars!({ size: [0.6, 48] }), points: { show: false } }],
    };
    plot.current?.destroy();
    plot.current = new uPlot(opts, [keys.map((_, i) => i), rows.map((r) => r.value)], el);
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
  }, [rows, label, height]);

  useWidth(box, (width) => plot.current?.setSize({ width, height }));

  return (
    <figure className="m-0">
      <div ref={box} role="img" aria-label={`${label} chart`} className="w-full overflow-hidden" />
      <table className="sr-only">
        <caption>{label}</caption>
        <tbody>
          {rows.map((r) => (
            <tr key={r.key}>
              <th scope="row">{r.key}</th>
              <td>{r.value}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
