// The API's shapes, from the generated schema.d.ts (npm run api-types): the app and the API
// cannot drift apart without the type check noticing.
import type { components } from "./schema";

type S = components["schemas"];

export type User = S["User"];
export type AuthTokens = S["AuthTokens"];
export type SessionInfo = S["SessionInfo"];
export type Track = S["Track"];
export type TrackList = S["TrackList"];
export type UploadTicket = S["UploadTicket"];
// grant_id: the stream grant the player reports with its playback events (older servers omit it).
export type StreamGrant = S["StreamGrant"] & { grant_id?: string };
export type Overview = S["Overview"];
export type Point = S["Point"];
export type TrackRow = S["TrackRow"];
export type BreakdownRow = S["BreakdownRow"];
