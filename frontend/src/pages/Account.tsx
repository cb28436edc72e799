// The signed-in person's sessions (devices), each revocable, and signing out.
import { useState } from "react";
import { api } from "../api/client";
import { messageOf } from "../api/problem";
import { session, type User } from "../api/session";
import { Alert, Button, Card, Spinner } from "../components/ui";
import { useApi } from "../lib/useApi";

import type { SessionInfo } from "../api/types";

const when = (iso: string) => new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));

export function Account({ user }: { user: User }) {
  const sessions = useApi<{ sessions: SessionInfo[] }>("/api/auth/sessions");
  const [error, setError] = useState<string | null>(null);
  const revoke = async (s: SessionInfo) => {
    setError(null);
    try {
      if (s.current) {
        await session.signOut("You signed out.");
        return;
      }
      await api(`/api/auth/sessions/${s.id}`, { method: "DELETE" });
      sessions.reload();
    } catch (err) {
      setError(messageOf(err));
    }
  };
  return (
    <div className="flex flex-col gap-4">
      <h1 className="text-2xl font-semibold">Account</h1>
      <Card title="You">
        <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 text-sm">
          <dt className="text-slate-600">Name</dt>
          <dd>{user.display_name}</dd>
          <dt className="text-slate-600">E-mail</dt>
          <dd>
            {user.email} {user.email_verified ? "(verified)" : "(not verified yet)"}
          </dd>
          <dt className="text-slate-600">Role</dt>
          <dd>{user.role}</dd>
        </dl>
      </Card>
      <Card title="Where you are signed in">
        {error && <Alert>{error}</Alert>}
        {sessions.error && <Alert>{sessions.error}</Alert>}
        {sessions.loading && !sessions.data && <Spinner />}
        {sessions.data && (
          <ul className="divide-y divide-slate-200">
            {sessions.data.sessions.map((s) => (
              <li key={s.id} className="flex flex-wrap items-center justify-between gap-2 py-2">
                <div className="text-sm">
                  <p className="font-medium">
                    {s.device} {s.current && <span className="ml-1 rounded bg-violet-100 px-1.5 py-0.5 text-xs text-violet-900">this device</span>}
                  </p>
                  <p className="text-slate-600">
                    Signed in {when(s.created_at)} by {s.method.replace("_", " ")}, last seen {when(s.last_seen_at)}
                    {s.ip_prefix ? ` from ${s.ip_prefix}` : ""}
                  </p>
                </div>
                <Button variant="secondary" onClick={() => void revoke(s)} aria-label={s.current ? "Sign out of this device" : `Revoke the session on ${s.device}`}>
                  {s.current ? "Sign out" : "Revoke"}
                </Button>
              </li>
            ))}
          </ul>
        )}
      </Card>
    </div>
  );
}
