import { describe, expect, it } from "vitest";
import { bucketLabel, change, defaultGranularity, formatMetric, granularitiesFor, periodQuery } from "../src/lib/period";

describe("the dashboard's period", () => {
  it("asks for a preset range in the chosen zone", () => {
    expect(periodQuery({ range: "90d", granularity: "week", tz: "Europe/Berlin" }).toString()).toBe("range=90d&tz=Europe%2FBerlin");
  });

  it("asks for custom dates only when both are valid, else the default 28 days", () => {
    expect(periodQuery({ range: "custom", from: "2026-03-01", to: "2026-03-31", granularity: "day", tz: "UTC" }).toString()).toBe(
      "from=2026-03-01&to=2026-03-31&tz=UTC",
    );
    expect(periodQuery({ range: "custom", from: "2026-03-31", to: "2026-03-01", granularity: "day", tz: "UTC" }).get("range")).toBe("28d");
  });

  it("picks a granularity that suits the range and refuses hourly years", () => {
    expect(defaultGranularity("12m")).toBe("month");
    expect(defaultGranularity("custom", "2026-01-01", "2026-01-02")).toBe("hour");
    expect(granularitiesFor({ range: "12m" })).not.toContain("hour");
    expect(granularitiesFor({ range: "7d" })).not.toContain("month");
  });

  it("labels a DST day's bucket in the zone it was asked in", () => {
    // 2026-03-29 is the 23-hour day in Berlin: the API's bucket starts at local midnight (+01:00).
    expect(bucketLabel("2026-03-29T00:00:00+01:00", "day", "Europe/Berlin")).toContain("29");
    expect(bucketLabel("2026-03-30T00:00:00+02:00", "day", "Europe/Berlin")).toContain("30");
    expect(bucketLabel("2026-03-29T03:00:00+02:00", "hour", "Europe/Berlin")).toMatch(/03:00/);
  });
});

describe("the change against the previous period", () => {
  it("is a signed percentage", () => {
    expect(change(125, 100)).toMatchObject({ direction: "up", text: "+25%" });
    expect(change(95, 100)).toMatchObject({ direction: "down", text: "−5%" });
  });

  it("says new when there was nothing before and no change when equal", () => {
    expect(change(3, 0).text).toBe("new");
    expect(change(0, 0)).toMatchObject({ direction: "flat", text: "no change" });
  });
});

describe("metric values", () => {
  it("formats rates as percentages and listening time as a duration", () => {
    expect(formatMetric("completion_rate", 0.5)).toBe("50%");
    expect(formatMetric("listen_seconds", 3725)).toBe("1 h 2 min");
    expect(formatMetric("streams", 42)).toBe("42");
  });
});
