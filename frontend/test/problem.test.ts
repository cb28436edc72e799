import { describe, expect, it } from "vitest";
import { ApiError, describe as describeProblem, problemFrom } from "../src/api/problem";

describe("API errors as people read them", () => {
  it("shows a problem's title and detail", async () => {
    const response = new Response(JSON.stringify({ type: "about:blank", status: 409, title: "Conflict", detail: "the track is already published" }), {
      status: 409,
      headers: { "Content-Type": "application/problem+json" },
    });
    const error = await problemFrom(response);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.message).toBe("Conflict: the track is already published");
    expect(error.status).toBe(409);
  });

  it("tells how long to wait after a 429 from its Retry-After", async () => {
    const response = new Response(JSON.stringify({ status: 429, title: "Too many requests", detail: "rate limit exceeded" }), {
      status: 429,
      headers: { "Retry-After": "17" },
    });
    const error = await problemFrom(response);
    expect(error.retryAfter).toBe(17);
    expect(error.message).toBe("Too many requests: please wait 17 seconds and try again.");
  });

  it("rounds a long wait up to minutes", () => {
    expect(describeProblem({ status: 429, title: "Too many requests" }, 61)).toContain("2 minutes");
  });

  it("falls back to the status line when the body is not JSON", async () => {
    const error = await problemFrom(new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" }));
    expect(error.message).toBe("Bad Gateway.");
  });
});
