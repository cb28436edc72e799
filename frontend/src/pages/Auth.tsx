// Sign up, verify e-mail, sign in, magic link, forgot and reset password.
import { useEffect, useState, type FormEvent, type ReactNode } from "react";
import { api } from "../api/client";
import { messageOf } from "../api/problem";
import { session, type AuthTokens } from "../api/session";
import { Alert, Button, Field } from "../components/ui";
import { Link, navigate, useLocation } from "../lib/router";

function AuthFrame({ title, children, footer }: { title: string; children: ReactNode; footer?: ReactNode }) {
  return (
    <div className="mx-auto mt-10 max-w-md rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
      <h1 className="mb-4 text-xl font-semibold">{title}</h1>
      {children}
      {footer && <div className="mt-4 border-t border-slate-200 pt-4 text-sm text-slate-700">{footer}</div>}
    </div>
  );
}

function useSubmit() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (fn: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}

const form = (event: FormEvent<HTMLFormElement>) => {
  event.preventDefault();
  return new FormData(event.currentTarget);
};

export function SignIn() {
  const { busy, error, run } = useSubmit();
  const state = session.snapshot;
  const notice = state.status === "signed-out" ? state.message : undefined;
  const submit = (event: FormEvent<HTMLFormElement>) => {
    const data = form(event);
    void run(async () => {
      const tokens = await api<AuthTokens>("/api/auth/sign-in", {
        method: "POST",
        auth: false,
        body: { email: data.get("email"), password: data.get("password") },
      });
      await session.adopt(tokens);
      navigate("/", { replace: true });
    });
  };
  return (
    <AuthFrame
      title="Sign in to Lufy"
      footer={
        <ul className="space-y-1">
          <li>
            New here? <Link className="text-violet-800 underline" href="/sign-up">Create an account</Link>
          </li>
          <li>
            <Link className="text-violet-800 underline" href="/magic-link">E-mail me a sign-in link</Link>
          </li>
          <li>
            <Link className="text-violet-800 underline" href="/forgot-password">Forgot your password?</Link>
          </li>
        </ul>
      }
    >
      <form onSubmit={submit} className="flex flex-col gap-4">
        {notice && <Alert kind="info">{notice}</Alert>}
        {error && <Alert>{error}</Alert>}
        <Field id="email" name="email" type="email" label="E-mail" autoComplete="email" required />
        <Field id="password" name="password" type="password" label="Password" autoComplete="current-password" required />
        <Button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </Button>
      </form>
    </AuthFrame>
  );
}

export function SignUp() {
  const { busy, error, run } = useSubmit();
  const [done, setDone] = useState<string | null>(null);
  const submit = (event: FormEvent<HTMLFormElement>) => {
    const data = form(event);
    void run(async () => {
      await api("/api/auth/sign-up", {
        method: "POST",
        auth: false,
        body: {
          email: data.get("email"),
          password: data.get("password"),
          display_name: data.get("display_name"),
          role: data.get("role"),
        },
      });
      setDone(String(data.get("email")));
    });
  };
  if (done) {
    return (
      <AuthFrame title="Check your inbox">
        <Alert kind="success">
          We sent a confirmation link to <strong>{done}</strong>. Open it to verify your address, then sign in.
        </Alert>
        <p className="mt-4 text-sm">
          <Link className="text-violet-800 underline" href="/sign-in">Go to sign in</Link>
        </p>
      </AuthFrame>
    );
  }
  return (
    <AuthFrame title="Create your Lufy account" footer={<>Already have one? <Link className="text-violet-800 underline" href="/sign-in">Sign in</Link></>}>
      <form onSubmit={submit} className="flex flex-col gap-4">
        {error && <Alert>{error}</Alert>}
        <Field id="display_name" name="display_name" label="Name shown to listeners" autoComplete="nickname" required maxLength={100} />
        <Field id="email" name="email" type="email" label="E-mail" autoComplete="email" required />
        <Field id="password" name="password" type="password" label="Password" autoComplete="new-password" required minLength={8} maxLength={128} hint="8 to 128 characters, not a common password." />
        <fieldset className="flex flex-col gap-1">
          <legend className="text-sm font-medium text-slate-800">I am</legend>
          <label className="flex items-center gap-2 text-sm">
            <input type="radio" name="role" value="artist" defaultChecked /> an artist (upload music, see my numbers)
          </label>
          <label className="flex items-center gap-2 text-sm">
            <input type="radio" name="role" value="listener" /> a listener
          </label>
        </fieldset>
        <Button type="submit" disabled={busy}>
          {busy ? "Creating…" : "Create account"}
        </Button>
      </form>
    </AuthFrame>
  );
}

// Tokens from e-mail links work once: never send one twice, even if the page is rendered again.
const usedTokens = new Set<string>();

/** Pages opened from an e-mail link: `?token=` is used once, on arrival. */
function useTokenOnce(fn: (token: string) => Promise<void>) {
  const { query } = useLocation();
  const token = query.get("token");
  const { busy, error, run } = useSubmit();
  useEffect(() => {
    if (!token || usedTokens.has(token)) return;
    usedTokens.add(token);
    void run(() => fn(token));
  }, [token]); // once per token: `fn` is a new closure on every render
  return { token, busy, error };
}

export function VerifyEmail() {
  const [ok, setOk] = useState(false);
  const { token, error } = useTokenOnce(async (t) => {
    await api("/api/auth/verify-email", { method: "POST", auth: false, body: { token: t } });
    setOk(true);
  });
  return (
    <AuthFrame title="Verify your e-mail">
      {!token && <Alert>This link has no token: open the link from the e-mail again.</Alert>}
      {error && <Alert>{error}</Alert>}
      {ok ? (
        <div className="flex flex-col gap-3">
          <Alert kind="success">Your e-mail address is confirmed.</Alert>
          <Link className="text-violet-800 underline" href={session.snapshot.status === "signed-in" ? "/" : "/sign-in"}>
            Continue
          </Link>
        </div>
      ) : (
        !error && token && <p role="status">Confirming…</p>
      )}
    </AuthFrame>
  );
}

export function MagicLink() {
  const { query } = useLocation();
  const { busy, error, run } = useSubmit();
  const [sent, setSent] = useState(false);
  const verify = useTokenOnce(async (t) => {
    const tokens = await api<AuthTokens>("/api/auth/magic-link/verify", { method: "POST", auth: false, body: { token: t } });
    await session.adopt(tokens);
    navigate("/", { replace: true });
  });
  if (query.get("token")) {
    return (
      <AuthFrame title="Signing you in">
        {verify.error ? <Alert>{verify.error}</Alert> : <p role="status">Checking your link…</p>}
        {verify.error && (
          <p className="mt-3 text-sm">
            <Link className="text-violet-800 underline" href="/magic-link">Ask for a new link</Link>
          </p>
        )}
      </AuthFrame>
    );
  }
  const submit = (event: FormEvent<HTMLFormElement>) => {
    const data = form(event);
    void run(async () => {
      await api("/api/auth/magic-link", { method: "POST", auth: false, body: { email: data.get("email") } });
      setSent(true);
    });
  };
  return (
    <AuthFrame title="Sign in with a link" footer={<Link className="text-violet-800 underline" href="/sign-in">Sign in with a password</Link>}>
      <form onSubmit={submit} className="flex flex-col gap-4">
        {sent && <Alert kind="success">If an account uses that address, a sign-in link is on its way. It works once, for 10 minutes.</Alert>}
        {error && <Alert>{error}</Alert>}
        <Field id="email" name="email" type="email" label="E-mail" autoComplete="email" required />
        <Button type="submit" disabled={busy}>
          E-mail me a link
        </Button>
      </form>
    </AuthFrame>
  );
}

export function ForgotPassword() {
  const { busy, error, run } = useSubmit();
  const [sent, setSent] = useState(false);
  const submit = (event: FormEvent<HTMLFormElement>) => {
    const data = form(event);
    void run(async () => {
      await api("/api/auth/password/forgot", { method: "POST", auth: false, body: { email: data.get("email") } });
      setSent(true);
    });
  };
  return (
    <AuthFrame title="Reset your password" footer={<Link className="text-violet-800 underline" href="/sign-in">Back to sign in</Link>}>
      <form onSubmit={submit} className="flex flex-col gap-4">
        {sent && <Alert kind="success">If an account uses that address, a reset link is on its way. It works once, for 1 hour.</Alert>}
        {error && <Alert>{error}</Alert>}
        <Field id="email" name="email" type="email" label="E-mail" autoComplete="email" required />
        <Button type="submit" disabled={busy}>
          E-mail me a reset link
        </Button>
      </form>
    </AuthFrame>
  );
}

export function ResetPassword() {
  const { query } = useLocation();
  const token = query.get("token");
  const { busy, error, run } = useSubmit();
  const [done, setDone] = useState(false);
  const submit = (event: FormEvent<HTMLFormElement>) => {
    const data = form(event);
    void run(async () => {
      await api("/api/auth/password/reset", { method: "POST", auth: false, body: { token, password: data.get("password") } });
      setDone(true);
    });
  };
  return (
    <AuthFrame title="Choose a new password">
      {!token && <Alert>This link has no token: open the link from the e-mail again.</Alert>}
      {done ? (
        <div className="flex flex-col gap-3">
          <Alert kind="success">Your password is changed and every session was signed out.</Alert>
          <Link className="text-violet-800 underline" href="/sign-in">Sign in</Link>
        </div>
      ) : (
        <form onSubmit={submit} className="flex flex-col gap-4">
          {error && <Alert>{error}</Alert>}
          <Field id="password" name="password" type="password" label="New password" autoComplete="new-password" required minLength={8} maxLength={128} hint="8 to 128 characters, not a common password." />
          <Button type="submit" disabled={busy || !token}>
            Set password
          </Button>
        </form>
      )}
    </AuthFrame>
  );
}
