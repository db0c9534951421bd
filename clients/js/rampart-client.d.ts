/** Name of the BroadcastChannel that tabs of one origin use to share tokens. */
export declare const CHANNEL_NAME: "rampart-auth";

/** An RFC 9457 problem document, as the gateway sends with `application/problem+json`. */
export interface ProblemDetails {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  instance?: string;
  [member: string]: unknown;
}

/** Error of the auth endpoints. */
export declare class RampartAuthError extends Error {
  constructor(
    message: string,
    options?: { status?: number; problem?: ProblemDetails | null; cause?: unknown },
  );
  name: "RampartAuthError";
  /** HTTP status, or 0 when the request did not complete. */
  status: number;
  /** The parsed problem document, when the response carried one. */
  problem: ProblemDetails | null;
}

/** What the client needs of a BroadcastChannel. */
export interface BroadcastChannelLike {
  postMessage(message: unknown): void;
  close?(): void;
  addEventListener?(type: "message", listener: (event: { data: unknown }) => void): void;
  onmessage?: ((event: { data: unknown }) => void) | null;
}

export interface RampartClientOptions {
  /** Origin (and optional path prefix) of the gateway; "" for the page's own origin. */
  baseUrl?: string;
  /** The fetch to use; defaults to the global one. */
  fetch?: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
  /** Refresh this many seconds before the access token expires (default 30). */
  refreshLeewaySeconds?: number;
  /** Shortest delay of the refresh timer, in seconds (default 1). */
  minRefreshDelaySeconds?: number;
  /** How long to wait for another tab's refresh before refreshing here, in ms (default 5000). */
  peerTimeoutMs?: number;
  /** How long a tab waits after announcing a refresh for rival announcements, in ms (default 50). */
  claimWindowMs?: number;
  /** Opens the tab channel; null disables tab coordination. */
  broadcastChannel?: ((name: string) => BroadcastChannelLike | null) | null;
  /** Current time in ms since the epoch. */
  now?: () => number;
  setTimeout?: (callback: () => void, ms: number) => unknown;
  clearTimeout?: (handle: any) => void;
}

export interface AuthChange {
  authenticated: boolean;
}

/** A session as listed by `GET /auth/sessions` (times in seconds since the epoch). */
export interface SessionInfo {
  sid: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  client_addr?: string | null;
  user_agent?: string | null;
  current: boolean;
  [member: string]: unknown;
}

export interface RampartClient {
  /** Signs in. Rejects with RampartAuthError (401 on bad credentials). */
  login(username: string, password: string): Promise<void>;
  /** Ends this session. Local state is cleared even when the request fails (it then rejects). */
  logout(): Promise<void>;
  /** Ends every session of the user. */
  logoutEverywhere(): Promise<void>;
  /** Tries one refresh through the cookie; resolves to whether the client is signed in. */
  restore(): Promise<boolean>;
  /** fetch() with the bearer token for gateway URLs; a 401 triggers one refresh and one retry. */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** The user's active sessions. */
  sessions(): Promise<SessionInfo[]>;
  /** Revokes one of the user's sessions. */
  revokeSession(sid: string): Promise<void>;
  /** True while an unexpired access token is held. */
  isAuthenticated(): boolean;
  /** Called on every sign-in and sign-out; returns an unsubscribe function. */
  onChange(listener: (change: AuthChange) => void): () => void;
  /** Expiry of the access token in ms since the epoch, or null when signed out. */
  accessTokenExpiresAt(): number | null;
  /** The access token's claims, decoded without verification: for display only. */
  claims(): Record<string, unknown> | null;
  /** Stops timers and leaves the tab channel; the session itself is not ended. */
  close(): void;
}

export declare function createClient(options?: RampartClientOptions): RampartClient;
