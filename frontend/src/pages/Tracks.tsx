// An artist's tracks: upload with progress, processing status until ready or failed, publish,
// rename, delete; and play.
import { useEffect, useRef, useState, type FormEvent } from "react";
import { api } from "../api/client";
import { ApiError, messageOf } from "../api/problem";
import { type User } from "../api/session";
import { usePlayer } from "../components/Player";
import { Alert, Button, Card, Empty, Field, Spinner } from "../components/ui";
import { useApi } from "../lib/useApi";

import type { Track, TrackList, UploadTicket } from "../api/types";

const AUDIO_TYPES: Record<string, string> = {
  wav: "audio/wav",
  mp3: "audio/mpeg",
  flac: "audio/flac",
  ogg: "audio/ogg",
  m4a: "audio/mp4",
  aac: "audio/aac",
  aiff: "audio/aiff",
};

export function contentTypeOf(file: { name: string; type: string }): string {
  if (file.type) return file.type;
  const ext = file.name.split(".").pop()?.toLowerCase() ?? "";
  return AUDIO_TYPES[ext] ?? "application/octet-stream";
}

/** PUTs (or POSTs) the file to the ticket's URL, reporting progress from 0 to 1. */
export function transfer(ticket: UploadTicket, file: File, onProgress: (fraction: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(ticket.method, ticket.url);
    for (const [name, value] of Object.entries(ticket.headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => event.lengthComputable && onProgress(event.loaded / event.total);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else {
        let detail = xhr.statusText;
        try {
          const body = JSON.parse(xhr.responseText) as { title?: string; detail?: string };
          detail = body.detail ?? body.title ?? detail;
        } catch {
          // S3 answers XML: the status says enough.
        }
        reject(new Error(`The upload failed (${xhr.status}): ${detail}`));
      }
    };
    xhr.onerror = () => reject(new Error("The upload was interrupted: check your connection and try again."));
    xhr.send(file);
  });
}

function duration(ms: number | null): string {
  if (ms === null) return "";
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function Upload({ onStarted }: { onStarted: () => void }) {
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const formRef = useRef<HTMLFormElement>(null);
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    const file = data.get("file");
    if (!(file instanceof File) || file.size === 0) {
      setError("Choose an audio file first.");
      return;
    }
    const title = String(data.get("title") || "").trim() || file.name.replace(/\.[^.]+$/, "");
    setError(null);
    setProgress(0);
    try {
      const ticket = await api<UploadTicket>("/api/music/uploads", {
        method: "POST",
        body: { filename: file.name, content_type: contentTypeOf(file), size_bytes: file.size, title },
      });
      await transfer(ticket, file, setProgress);
      await api(`/api/music/uploads/${ticket.upload_id}/complete`, { method: "POST" });
      formRef.current?.reset();
      onStarted();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setProgress(null);
    }
  };
  return (
    <Card title="Upload a track">
      <form ref={formRef} onSubmit={(e) => void submit(e)} className="grid grid-cols-1 gap-4 sm:grid-cols-[1fr_1fr_auto] sm:items-end">
        <Field id="upload-title" name="title" label="Title" maxLength={200} placeholder="From the file name if empty" />
        <Field id="upload-file" name="file" type="file" label="Audio file" accept="audio/*,.wav,.mp3,.flac,.ogg,.m4a,.aiff" required />
        <Button type="submit" disabled={progress !== null}>
          Upload
        </Button>
        {progress !== null && (
          <div className="sm:col-span-3">
            <label htmlFor="upload-progress" className="text-sm text-slate-700">
              Uploading… {Math.round(progress * 100)}%
            </label>
            <progress id="upload-progress" className="h-2 w-full accent-violet-700" max={1} value={progress} />
          </div>
        )}
        {error && (
          <div className="sm:col-span-3">
            <Alert>{error}</Alert>
          </div>
        )}
      </form>
    </Card>
  );
}

const STATUS_STYLE: Record<Track["status"], string> = {
  uploading: "bg-slate-100 text-slate-800",
  processing: "bg-amber-100 text-amber-900",
  ready: "bg-emerald-100 text-emerald-900",
  failed: "bg-red-100 text-red-900",
};

function TrackRow({ track, onChanged }: { track: Track; onChanged: () => void }) {
  const player = usePlayer();
  const [editing, setEditing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const dialog = useRef<HTMLDialogElement>(null);

  const act = async (fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
      onChanged();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 404 ? "This track no longer exists." : messageOf(err));
    } finally {
      setBusy(false);
    }
  };
  const rename = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const title = String(new FormData(event.currentTarget).get("title") ?? "").trim();
    void act(async () => {
      await api(`/api/music/tracks/${track.id}`, { method: "PATCH", body: { title } });
      setEditing(false);
    });
  };

  return (
    <li className="flex flex-col gap-2 py-3" data-testid="track-row" data-track-id={track.id}>
      <div className="flex flex-wrap items-center gap-3">
        <div className="min-w-0 flex-1">
          {editing ? (
            <form onSubmit={rename} className="flex flex-wrap items-end gap-2">
              <Field id={`title-${track.id}`} name="title" label="New title" defaultValue={track.title} required maxLength={200} autoFocus />
              <Button type="submit" disabled={busy}>Save</Button>
              <Button type="button" variant="secondary" onClick={() => setEditing(false)}>Cancel</Button>
            </form>
          ) : (
            <p className="font-medium">{track.title}</p>
          )}
          <p className="text-sm text-slate-600">
            <span className={`rounded px-1.5 py-0.5 text-xs font-medium ${STATUS_STYLE[track.status]}`} data-testid="track-status">
              {track.status}
            </span>{" "}
            {track.published && <span className="rounded bg-violet-100 px-1.5 py-0.5 text-xs font-medium text-violet-900">published</span>} {duration(track.duration_ms)}
          </p>
          {track.status === "failed" && track.failure_reason && <p className="mt-1 text-sm text-red-800">{track.failure_reason}</p>}
        </div>
        <div className="flex flex-wrap gap-2">
          {track.status === "ready" && (
            <Button variant="secondary" onClick={() => player.play(track)} aria-label={`Play ${track.title}`}>
              Play
            </Button>
          )}
          {track.status === "ready" &&
            (track.published ? (
              <Button variant="secondary" disabled={busy} onClick={() => void act(() => api(`/api/music/tracks/${track.id}/unpublish`, { method: "POST" }))}>
                Unpublish
              </Button>
            ) : (
              <Button disabled={busy} onClick={() => void act(() => api(`/api/music/tracks/${track.id}/publish`, { method: "POST" }))} aria-label={`Publish ${track.title}`}>
                Publish
              </Button>
            ))}
          {!editing && (
            <Button variant="ghost" onClick={() => setEditing(true)} aria-label={`Rename ${track.title}`}>
              Rename
            </Button>
          )}
          <Button variant="ghost" onClick={() => dialog.current?.showModal()} aria-label={`Delete ${track.title}`}>
            Delete
          </Button>
        </div>
      </div>
      {error && <Alert>{error}</Alert>}
      <dialog ref={dialog} aria-labelledby={`del-${track.id}`} className="m-auto rounded-lg p-6 backdrop:bg-slate-900/50">
        <h2 id={`del-${track.id}`} className="text-lg font-semibold">
          Delete “{track.title}”?
        </h2>
        <p className="mt-2 text-sm text-slate-700">The track and its media are removed for good. Its past plays stay in your numbers.</p>
        <form method="dialog" className="mt-4 flex justify-end gap-2">
          <Button variant="secondary" value="cancel">Keep it</Button>
          <Button
            variant="danger"
            value="delete"
            onClick={(e) => {
              e.preventDefault();
              dialog.current?.close();
              void act(() => api(`/api/music/tracks/${track.id}`, { method: "DELETE" }));
            }}
          >
            Delete
          </Button>
        </form>
      </dialog>
    </li>
  );
}

export function Tracks({ user }: { user: User }) {
  const list = useApi<TrackList>(`/api/music/tracks?artist_id=${user.id}&limit=200`);
  const mine = list.data?.tracks ?? [];
  const pending = mine.some((t) => t.status === "uploading" || t.status === "processing");
  const { reload } = list;
  useEffect(() => {
    if (!pending) return;
    const id = setInterval(reload, 2000);
    return () => clearInterval(id);
  }, [pending, reload]);

  return (
    <div className="flex flex-col gap-4">
      <h1 className="text-2xl font-semibold">Tracks</h1>
      <Upload onStarted={reload} />
      <Card title="Your tracks">
        {list.error && <Alert>{list.error}</Alert>}
        {list.loading && !list.data && <Spinner />}
        {list.data && mine.length === 0 && (
          <Empty title="No tracks yet">Upload a WAV, FLAC or MP3 above: Lufy transcodes it for streaming and tells you when it is ready.</Empty>
        )}
        {mine.length > 0 && (
          <ul className="divide-y divide-slate-200">
            {mine.map((t) => (
              <TrackRow key={t.id} track={t} onChanged={reload} />
            ))}
          </ul>
        )}
      </Card>
    </div>
  );
}

export function Listen() {
  const player = usePlayer();
  const list = useApi<TrackList>("/api/music/tracks?published=true&limit=200");
  return (
    <div className="flex flex-col gap-4">
      <h1 className="text-2xl font-semibold">Listen</h1>
      <Card title="Published tracks">
        {list.error && <Alert>{list.error}</Alert>}
        {list.loading && !list.data && <Spinner />}
        {list.data && list.data.tracks.length === 0 && <Empty title="Nothing published yet">Come back when artists have published their first tracks.</Empty>}
        <ul className="divide-y divide-slate-200">
          {list.data?.tracks.map((t) => (
            <li key={t.id} className="flex items-center justify-between gap-2 py-2">
              <span>{t.title}</span>
              <Button variant="secondary" onClick={() => player.play(t)} aria-label={`Play ${t.title}`}>
                Play
              </Button>
            </li>
          ))}
        </ul>
      </Card>
    </div>
  );
}
