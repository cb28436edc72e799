// One way to call the API: JSON in and out, the bearer token attached, problem+json turned into
// readable errors, and one retry after refreshing when a token turns out to be expired.

import { ApiError, NetworkError, problemFrom } from "./problem";
import { session, type Session } from "./session";

export interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
  auth?: boolean;
}

export async function api<T>(path: string, options: RequestOptions = {}, who: Session = session): Promise<T> {
  const response = await send(path, options, who);
  if (response.status === 204 || response.status === 202 && response.headers.get("content-length") === "0") {
    return undefined as T;
  }
  const type = response.headers.get("content-type") ?? "";
  return (type.includes("json") ? await response.json() : await response.text()) as T;
}

export async function send(path: string, options: RequestOptions = {}, who: Session = session): Promise<Response> {
  const attempt = async (token: string | null): Promise<Response> => {
    const headers: Record<string, string> = {};
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    try {
      return await who.deps.fetch(path, {
        method: options.method ?? "GET",
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: options.signal,
      });
    } catch (error) {
      if (error instanceof DOMException && error.name === "AbortError") throw error;
      throw new NetworkError();
    }
  };
  const wantsAuth = options.auth !== false;
  let response = await attempt(wantsAuth ? await who.token() : null);
  if (response.status === 401 && wantsAuth && who.snapshot.status === "signed-in") {
    const fresh = await who.refresh();
    if (fresh) response = await attempt(fresh);
  }
  if (!response.ok) throw await problemFrom(response);
  return response;
}

export { ApiError, NetworkError };
