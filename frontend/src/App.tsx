// The shell: navigation, the offline banner, the update prompt, and the screen for the path.
import { lazy, Suspense, useEffect, useSyncExternalStore, type ReactNode } from "react";
import { session } from "./api/session";
import { PlayerProvider } from "./components/Player";
import { Alert, Button, Spinner } from "./components/ui";
import { Link, navigate, useLocation } from "./lib/router";
import { oldestAsOf, subscribeAsOf, useOnline } from "./lib/useApi";
import { ForgotPassword, MagicLink, ResetPassword, SignIn, SignUp, VerifyEmail } from "./pages/Auth";
import { updates } from "./sw";

// The dashboard (and its chart library) loads only for those who see it.
const Dashboard = lazy(() => import("./pages/Dashboard").then((m) => ({ default: m.Dashboard })));
const Tracks = lazy(() => import("./pages/Tracks").then((m) => ({ default: m.Tracks })));
const Listen = lazy(() => import("./pages/Tracks").then((m) => ({ default: m.Listen })));
const Account = lazy(() => import("./pages/Account").then((m) => ({ default: m.Account })));

const PUBLIC: Record<string, () => ReactNode> = {
  "/sign-in": () => <SignIn />,
  "/sign-up": () => <SignUp />,
  "/verify-email": () => <VerifyEmail />,
  "/magic-link": () => <MagicLink />,
  "/forgot-password": () => <ForgotPassword />,
  "/reset-password": () => <ResetPassword />,
};

function OfflineBanner({ show }: { show: boolean }) {
  const asOf = useSyncExternalStore(subscribeAsOf, oldestAsOf);
  if (!show) return null;
  const when = asOf ? new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(asOf) : null;
  return (
    <div role="status" data-testid="offline-banner" className="bg-amber-100 px-4 py-2 text-center text-sm text-amber-950">
      You are offline{when ? `, as of ${when}` : ""}: showing the last data seen. Changes need a connection.
    </div>
  );
}

function UpdatePrompt() {
  const waiting = useSyncExternalStore(updates.subscribe, () => updates.waiting);
  if (!waiting) return null;
  return (
    <div role="alert" className="fixed bottom-24 left-1/2 z-30 flex -translate-x-1/2 items-center gap-3 rounded-lg bg-slate-900 px-4 py-3 text-sm text-white shadow-lg">
      A new version of Lufy is available.
      <Button onClick={() => updates.apply()}>Reload</Button>
    </div>
  );
}

function Nav({ role, name }: { role: string; name: string }) {
  const { path } = useLocation();
  const items = role === "listener" ? [["/", "Listen"]] : [["/", "Dashboard"], ["/tracks", "Tracks"], ["/listen", "Listen"]];
  items.push(["/account", "Account"]);
  return (
    <header className="border-b border-slate-200 bg-white">
      <nav aria-label="Main" className="mx-auto flex max-w-6xl flex-wrap items-center gap-1 px-4 py-2">
        <Link href="/" className="mr-4 flex items-center gap-2 font-semibold text-violet-900">
          <img src="/icons/icon.svg" alt="" width={24} height={24} /> Lufy
        </Link>
        {items.map(([href, label]) => (
          <Link
            key={href}
            href={href!}
            aria-current={path === href ? "page" : undefined}
            className={`rounded-md px-3 py-1.5 text-sm focus-visible:outline focus-visible:outline-2 focus-visible:outline-violet-700 ${path === href ? "bg-violet-100 font-medium text-violet-950" : "text-slate-700 hover:bg-slate-100"}`}
          >
            {label}
          </Link>
        ))}
        <span className="ml-auto hidden text-sm text-slate-600 sm:inline">{name}</span>
      </nav>
    </header>
  );
}

export function App() {
  const state = useSyncExternalStore(session.subscribe, () => session.snapshot);
  const { path } = useLocation();
  const online = useOnline();

  useEffect(() => {
    const user = state.status === "signed-in" || state.status === "offline";
    if (!user && state.status !== "loading" && !PUBLIC[path]) navigate("/sign-in", { replace: true });
    if (state.status === "signed-in" && (path === "/sign-in" || path === "/sign-up")) navigate("/", { replace: true });
  }, [state.status, path]);

  let screen: ReactNode;
  // E-mail links work whoever is signed in; the other public pages are for people signed out.
  const linkPage = path === "/verify-email" || path === "/reset-password" || path === "/magic-link";
  if (PUBLIC[path] && (linkPage || state.status !== "signed-in")) {
    screen = PUBLIC[path]!();
  } else if (state.status === "loading") {
    screen = <Spinner label="Starting" />;
  } else if (state.status === "signed-out") {
    screen = <SignIn />;
  } else {
    const user = state.user;
    const offline = state.status === "offline" || !online;
    const artist = user.role === "artist" || user.role === "admin";
    if (path === "/account") screen = <Account user={user} />;
    else if (path === "/tracks" && artist) screen = <Tracks user={user} />;
    else if (path === "/listen" || (path === "/" && !artist)) screen = <Listen />;
    else if (path === "/") screen = <Dashboard offline={offline} />;
    else screen = <Alert kind="info">There is no page here. <Link className="underline" href="/">Go to the start</Link></Alert>;
  }

  const signedIn = state.status === "signed-in" || state.status === "offline";
  return (
    <PlayerProvider owner={signedIn ? state.user.id : null}>
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-white focus:px-3 focus:py-2">
        Skip to content
      </a>
      <OfflineBanner show={state.status === "offline" || !online} />
      {signedIn && <Nav role={state.user.role} name={state.user.display_name} />}
      <main id="main" className="mx-auto max-w-6xl px-4 pb-32 pt-6">
        <Suspense fallback={<Spinner />}>{screen}</Suspense>
      </main>
      <UpdatePrompt />
    </PlayerProvider>
  );
}
