// Errors from the API as people can read them: RFC 9457 problem+json (`title`, `detail`), a 429's
// Retry-After, and the browser being offline.

export interface Problem {
  type?: string;
  status: number;
  title: string;
  detail?: string;
  errors?: { key?: string; message?: string; source?: string }[];
}

export class ApiError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly retryAfter: number | null;

  constructor(problem: Problem, retryAfter: number | null = null) {
    super(describe(problem, retryAfter));
    this.name = "ApiError";
    this.status = problem.status;
    this.title = problem.title;
    this.detail = problem.detail ?? "";
    this.retryAfter = retryAfter;
  }
}

/** The browser could not reach Lufy at all (offline, server down, DNS). */
export class NetworkError extends Error {
  constructor() {
    super("Lufy cannot be reached: check your connection and try again.");
    this.name = "NetworkError";
  }
}

export function describe(problem: Problem, retryAfter: number | null): string {
  if (problem.status === 429) {
    const wait = retryAfter ?? 0;
    return wait > 0
      ? `Too many requests: please wait ${formatWait(wait)} and try again.`
      : "Too many requests: please wait a moment and try again.";
  }
  const detail = problem.detail?.trim();
  const title = problem.title?.trim() || `Error ${problem.status}`;
  if (!detail || detail === title) return `${title}.`;
  return `${title}: ${detail}`;
}

function formatWait(seconds: number): string {
  if (seconds < 60) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? "" : "s"}`;
}

/** Reads an error response into an ApiError, whatever its body (problem+json, JSON, text). */
export async function problemFrom(response: Response): Promise<ApiError> {
  const retry = response.headers.get("Retry-After");
  const retryAfter = retry !== null && /^\d+$/.test(retry.trim()) ? Number(retry.trim()) : null;
  let problem: Problem = { status: response.status, title: response.statusText || `Error ${response.status}` };
  try {
    const text = await response.text();
    const body: unknown = text ? JSON.parse(text) : null;
    if (body && typeof body === "object") {
      const b = body as Record<string, unknown>;
      problem = {
        status: typeof b.status === "number" ? b.status : response.status,
        title: typeof b.title === "string" ? b.title : problem.title,
        detail: typeof b.detail === "string" ? b.detail : undefined,
      };
    }
  } catch {
    // Not JSON (a proxy's HTML page): the status line is all there is to say.
  }
  return new ApiError(problem, retryAfter);
}

export function messageOf(error: unknown): string {
  if (error instanceof ApiError || error instanceof NetworkError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}
