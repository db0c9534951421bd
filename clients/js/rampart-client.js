// Rampart browser client: login, silent refresh and bearer requests against a Rampart gateway.
//
// The access token lives only in this module's closure. The refresh token never reaches
// script: the gateway keeps it in an HttpOnly cookie scoped to /auth.

/** Name of the BroadcastChannel that tabs of one origin use to share tokens. */
export const CHANNEL_NAME = "rampart-auth";

// setTimeout stores its delay in a signed 32-bit integer; longer delays fire at once.
const MAX_TIMER_MS = 2147483647;
// A tab that adopted another tab's token refreshes this much later than that tab would.
const FOLLOWER_DELAY_MAX_MS = 5000;

/** Error of the auth endpoints: `status` (0 for a network failure) and the problem document. */
export class RampartAuthError extends Error {
  constructor(message, { status = 0, problem = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "RampartAuthError";
    this.status = status;
    this.problem = problem;
  }
}

const noop = () => {};

function isTransient(err) {
  const s = err instanceof RampartAuthError ? err.status : 0;
  return s === 0 || s === 408 || s === 429 || s >= 500;
}

function isAbsoluteUrl(s) {
  return /^[a-z][a-z0-9+.-]*:/i.test(s) || s.startsWith("//");
}

function joinUrl(base, path) {
  if (!base) return path;
  return base.replace(/\/+$/, "") + (path.startsWith("/") ? path : `/${path}`);
}

function makeTabId() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function defaultChannel(name) {
  return typeof globalThis.BroadcastChannel === "function"
    ? new globalThis.BroadcastChannel(name)
    : null;
}

// Bodies fetch can send again unchanged. Streams (and anything unknown) are read once.
function isReplayableBody(body) {
  if (body === undefined || body === null || typeof body === "string") return true;
  const is = (name) => typeof globalThis[name] === "function" && body instanceof globalThis[name];
  return (
    is("URLSearchParams") ||
    is("Blob") ||
    is("FormData") ||
    is("ArrayBuffer") ||
    ArrayBuffer.isView(body)
  );
}

/** Decodes the payload of a JWT without verifying it (display only). */
function decodeJwtPayload(token) {
  try {
    const part = token.split(".")[1];
    if (!part) return null;
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
    const value = JSON.parse(new TextDecoder().decode(bytes));
    return value && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

async function readProblem(res) {
  const type = (res.headers && res.headers.get("content-type")) || "";
  if (!/json/i.test(type)) return null;
  try {
    const value = await res.json();
    return value && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

async function errorFrom(res, what) {
  const problem = await readProblem(res);
  const reason = (problem && (problem.detail || problem.title)) || `HTTP ${res.status}`;
  return new RampartAuthError(`${what}: ${reason}`, { status: res.status, problem });
}

function discard(res) {
  try {
    if (res.body && typeof res.body.cancel === "function") res.body.cancel().catch(noop);
  } catch {
    // already read or locked: nothing to free
  }
}

/**
 * Creates a client. Each page (tab) should create one and keep it for its lifetime.
 */
export function createClient(options = {}) {
  const {
    baseUrl = "",
    fetch: fetchOption,
    refreshLeewaySeconds = 30,
    minRefreshDelaySeconds = 1,
    peerTimeoutMs = 5000,
    claimWindowMs = 50,
    broadcastChannel = defaultChannel,
    now = () => Date.now(),
    setTimeout: setTimer = (fn, ms) => globalThis.setTimeout(fn, ms),
    clearTimeout: clearTimer = (id) => globalThis.clearTimeout(id),
  } = options;

  const fetchImpl = fetchOption || ((input, init) => globalThis.fetch(input, init));
  const leewayMs = Math.max(0, refreshLeewaySeconds * 1000);
  const minDelayMs = Math.max(0, minRefreshDelaySeconds * 1000);
  const followerDelayMs = Math.min(FOLLOWER_DELAY_MAX_MS, leewayMs / 3);
  const tabId = makeTabId();

  // Session state, in this closure only.
  let token = null;
  let expiresAt = null; // ms since the epoch
  let authenticated = false;
  let timer = null;
  let refreshPromise = null;
  let epoch = 0; // bumped by login and sign-out: refresh results from an older epoch are dropped
  let generation = 0; // bumped by every new token, own or adopted
  let closed = false;
  const listeners = new Set();

  // Tab coordination.
  let peerClaim = null; // { from, until }: another tab announced a refresh
  let claiming = null; // { rivals: [] } while this tab waits out its claim window
  const waiters = new Set();

  let channel = null;
  if (typeof broadcastChannel === "function") {
    try {
      channel = broadcastChannel(CHANNEL_NAME) || null;
    } catch {
      channel = null;
    }
  }
  if (channel) {
    const handler = (event) => onPeerMessage(event && event.data);
    if (typeof channel.addEventListener === "function") {
      channel.addEventListener("message", handler);
    } else {
      channel.onmessage = handler;
    }
  }

  function post(message) {
    if (!channel || closed) return;
    try {
      channel.postMessage({ ...message, from: tabId });
    } catch {
      // a closed or broken channel only costs coordination
    }
  }

  const url = (path) => joinUrl(baseUrl, path);

  function gatewayOrigin() {
    try {
      const loc = globalThis.location && globalThis.location.href;
      return new URL(baseUrl || "/", loc || undefined).origin;
    } catch {
      return null;
    }
  }

  function tokenValid() {
    return token !== null && now() < expiresAt;
  }

  function notify() {
    const change = { authenticated };
    for (const listener of [...listeners]) {
      try {
        listener(change);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  function setAuthenticated(value) {
    if (authenticated === value) return;
    authenticated = value;
    notify();
  }

  function cancelTimer() {
    if (timer !== null) {
      clearTimer(timer);
      timer = null;
    }
  }

  function schedule(fromPeer) {
    cancelTimer();
    if (token === null || closed) return;
    const remaining = expiresAt - now();
    let delay = remaining - leewayMs;
    if (delay < minDelayMs) {
      // A lifetime shorter than the leeway: refresh half-way instead.
      delay = remaining / 2;
    } else if (fromPeer) {
      // Let the tab that fetched this token refresh it; step in only if it does not.
      delay += followerDelayMs;
    }
    delay = Math.min(MAX_TIMER_MS, Math.max(minDelayMs, delay));
    timer = setTimer(onTimer, delay);
  }

  function onTimer() {
    timer = null;
    const startEpoch = epoch;
    refresh().catch((err) => {
      if (epoch !== startEpoch || token === null) return;
      const remaining = expiresAt - now();
      const retryIn = Math.max(minDelayMs, remaining / 2);
      if (isTransient(err) && remaining > retryIn) {
        cancelTimer();
        timer = setTimer(onTimer, Math.min(MAX_TIMER_MS, retryIn));
      } else {
        signOutLocal();
      }
    });
  }

  function setToken(accessToken, expiry, fromPeer) {
    token = accessToken;
    expiresAt = expiry;
    generation += 1;
    schedule(fromPeer);
    setAuthenticated(true);
  }

  function signOutLocal() {
    token = null;
    expiresAt = null;
    epoch += 1;
    cancelTimer();
    setAuthenticated(false);
  }

  function settleWaiters(outcome) {
    for (const done of [...waiters]) done(outcome);
  }

  function onPeerMessage(msg) {
    if (closed || !msg || typeof msg !== "object" || msg.from === tabId) return;
    const from = String(msg.from);
    switch (msg.type) {
      case "refreshing":
        peerClaim = { from, until: now() + peerTimeoutMs };
        if (claiming) claiming.rivals.push(from);
        break;
      case "token": {
        const { access_token: accessToken, expires_at: expiry } = msg;
        if (
          typeof accessToken === "string" &&
          accessToken !== "" &&
          Number.isFinite(expiry) &&
          expiry > now()
        ) {
          setToken(accessToken, expiry, true);
        }
        peerClaim = null;
        settleWaiters("token");
        break;
      }
      case "refresh-failed":
        if (peerClaim && peerClaim.from === from) peerClaim = null;
        settleWaiters("failed");
        break;
      case "logout":
        peerClaim = null;
        signOutLocal();
        settleWaiters("logout");
        break;
      default:
        break;
    }
  }

  function peerClaimActive() {
    if (peerClaim && now() >= peerClaim.until) peerClaim = null;
    return peerClaim !== null;
  }

  // Waits for the tab that announced a refresh: "token", "failed", "logout" or "timeout".
  function waitForPeer() {
    return new Promise((resolve) => {
      const wait = peerClaim ? Math.max(0, peerClaim.until - now()) : peerTimeoutMs;
      let handle = null;
      const done = (outcome) => {
        if (!waiters.delete(done)) return;
        if (handle !== null) clearTimer(handle);
        resolve(outcome);
      };
      waiters.add(done);
      handle = setTimer(() => {
        handle = null;
        peerClaim = null;
        done("timeout");
      }, wait);
    });
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimer(resolve, ms));
  }

  function authInit(method, { body, bearer } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    const init = { method, credentials: "include", cache: "no-store", headers };
    if (body !== undefined) init.body = body;
    return init;
  }

  async function callAuth(what, path, init) {
    try {
      return await fetchImpl(url(path), init);
    } catch (cause) {
      throw new RampartAuthError(`${what}: network error`, { status: 0, cause });
    }
  }

  async function readGrant(res, what) {
    let body = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    const accessToken = body && body.access_token;
    const expiresIn = body && body.expires_in;
    if (typeof accessToken !== "string" || accessToken === "" || !Number.isFinite(expiresIn)) {
      throw new RampartAuthError(`${what}: malformed token response`, { status: res.status });
    }
    return { accessToken, expiresAt: now() + Math.max(0, expiresIn) * 1000 };
  }

  // Adopted a token from a peer since `startGen`?
  const adoptedSince = (startGen) => generation !== startGen && tokenValid();

  async function doRefresh() {
    const startEpoch = epoch;
    const startGen = generation;
    const signedOutMeanwhile = () =>
      new RampartAuthError("refresh: signed out meanwhile", { status: 401 });

    // Another tab is already rotating the cookie: wait for its token.
    if (peerClaimActive()) {
      const outcome = await waitForPeer();
      if (adoptedSince(startGen)) return true;
      if (outcome === "logout" || epoch !== startEpoch) throw signedOutMeanwhile();
    }

    if (channel) {
      claiming = { rivals: [] };
      post({ type: "refreshing" });
      if (claimWindowMs > 0) {
        // Tabs that announced within the same window settle it: the smallest id refreshes.
        await sleep(claimWindowMs);
        const rivals = claiming ? claiming.rivals : [];
        claiming = null;
        if (adoptedSince(startGen)) return true;
        if (epoch !== startEpoch) throw signedOutMeanwhile();
        if (rivals.some((id) => id < tabId)) {
          const outcome = await waitForPeer();
          if (adoptedSince(startGen)) return true;
          if (outcome === "logout" || epoch !== startEpoch) throw signedOutMeanwhile();
          post({ type: "refreshing" });
        } else if (peerClaim && rivals.includes(peerClaim.from)) {
          peerClaim = null;
        }
      }
      claiming = null;
    }

    let grant;
    try {
      const res = await callAuth("refresh", "/auth/refresh", authInit("POST"));
      if (!res.ok) throw await errorFrom(res, "refresh");
      grant = await readGrant(res, "refresh");
    } catch (err) {
      post({ type: "refresh-failed" });
      if (!isTransient(err) && epoch === startEpoch) signOutLocal();
      throw err;
    }
    if (epoch !== startEpoch) {
      // A login or logout happened while the request was out: its state wins.
      post({ type: "refresh-failed" });
      if (tokenValid()) return true;
      throw signedOutMeanwhile();
    }
    setToken(grant.accessToken, grant.expiresAt, false);
    post({ type: "token", access_token: grant.accessToken, expires_at: grant.expiresAt });
    return true;
  }

  // One refresh at a time per tab: concurrent callers share the request.
  function refresh() {
    if (!refreshPromise) {
      refreshPromise = doRefresh().finally(() => {
        refreshPromise = null;
      });
    }
    return refreshPromise;
  }

  // Sends with the current token; on a 401, refreshes once and sends once more (when it can).
  async function sendAuthorized(send, replayable) {
    let refreshed = false;
    if (refreshPromise) {
      await refreshPromise.catch(noop);
    } else if (token !== null && now() >= expiresAt) {
      refreshed = true;
      await refresh().catch(() => {
        if (token !== null && now() >= expiresAt) signOutLocal();
      });
    }
    const used = token;
    const sentEpoch = epoch;
    const res = await send(used);
    if (res.status !== 401 || !replayable) return res;
    if (token !== null && token !== used) {
      // Another caller refreshed while this request was out.
      discard(res);
      return send(token);
    }
    // Signed out when sent (restore() resumes a session), or signed out since: nothing to renew.
    if (used === null || refreshed || (epoch !== sentEpoch && token === null)) return res;
    try {
      await refresh();
    } catch {
      if (token !== null && token === used) signOutLocal();
      return res;
    }
    if (token === null) return res;
    discard(res);
    return send(token);
  }

  function requestUrl(input) {
    if (typeof input === "string") return isAbsoluteUrl(input) ? input : url(input);
    if (input instanceof URL) return input.href;
    return input.url;
  }

  function isGatewayUrl(target) {
    if (!isAbsoluteUrl(target)) return true;
    const origin = gatewayOrigin();
    try {
      return origin !== null && new URL(target).origin === origin;
    } catch {
      return false;
    }
  }

  async function authFetch(input, init = {}) {
    const isRequest = typeof Request === "function" && input instanceof Request;
    const target = requestUrl(input);
    const resource = isRequest ? input : target;
    const baseHeaders = init.headers !== undefined ? init.headers : isRequest ? input.headers : undefined;

    // The token only goes to the gateway, and never over a caller's own Authorization.
    if (!isGatewayUrl(target) || new Headers(baseHeaders).has("Authorization")) {
      return fetchImpl(resource, init);
    }
    const replayable =
      init.body !== undefined ? isReplayableBody(init.body) : !isRequest || input.body === null;
    return sendAuthorized((bearer) => {
      const headers = new Headers(baseHeaders);
      if (bearer) headers.set("Authorization", `Bearer ${bearer}`);
      return fetchImpl(resource, { ...init, headers });
    }, replayable);
  }

  async function authorizedCall(what, path, method) {
    let res;
    try {
      res = await sendAuthorized(
        (bearer) => fetchImpl(url(path), authInit(method, { bearer })),
        true,
      );
    } catch (cause) {
      throw new RampartAuthError(`${what}: network error`, { status: 0, cause });
    }
    if (!res.ok) throw await errorFrom(res, what);
    return res;
  }

  const client = {
    /** Signs in; the refresh token is set as an HttpOnly cookie by the gateway. */
    async login(username, password) {
      const body = JSON.stringify({ username, password });
      const res = await callAuth("login", "/auth/login", authInit("POST", { body }));
      if (!res.ok) throw await errorFrom(res, "login");
      const grant = await readGrant(res, "login");
      epoch += 1;
      setToken(grant.accessToken, grant.expiresAt, false);
      post({ type: "token", access_token: grant.accessToken, expires_at: grant.expiresAt });
    },

    /** Ends this session. Local state is cleared first, whatever the network does. */
    async logout() {
      const used = token;
      signOutLocal();
      post({ type: "logout" });
      settleWaiters("logout");
      // Let an in-flight rotation land so the cookie sent below is the current one.
      if (refreshPromise) await refreshPromise.catch(noop);
      const res = await callAuth("logout", "/auth/logout", authInit("POST", { bearer: used }));
      if (!res.ok) throw await errorFrom(res, "logout");
    },

    /** Ends every session of the user, on every device. */
    async logoutEverywhere() {
      await authorizedCall("logout-all", "/auth/logout-all", "POST");
      signOutLocal();
      post({ type: "logout" });
    },

    /** After a page load: one refresh through the cookie. Resolves to whether it worked. */
    async restore() {
      if (tokenValid()) return true;
      try {
        await refresh();
      } catch {
        return false;
      }
      return tokenValid();
    },

    /** fetch() with the bearer token; a 401 triggers one refresh and one retry. */
    fetch: authFetch,

    /** The user's active sessions. */
    async sessions() {
      const res = await authorizedCall("sessions", "/auth/sessions", "GET");
      let data = null;
      try {
        data = await res.json();
      } catch {
        data = null;
      }
      return data && Array.isArray(data.sessions) ? data.sessions : [];
    },

    /** Revokes one of the user's sessions. */
    async revokeSession(sid) {
      const path = `/auth/sessions/${encodeURIComponent(String(sid))}`;
      await authorizedCall("revoke session", path, "DELETE");
    },

    /** True while an unexpired access token is held. */
    isAuthenticated() {
      return tokenValid();
    },

    /** Calls `listener({ authenticated })` on every sign-in and sign-out; returns an unsubscribe. */
    onChange(listener) {
      if (typeof listener !== "function") throw new TypeError("listener must be a function");
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },

    /** Expiry of the access token in ms since the epoch, or null when signed out. */
    accessTokenExpiresAt() {
      return token === null ? null : expiresAt;
    },

    /** The access token's claims, decoded without verification: for display only. */
    claims() {
      return token === null ? null : decodeJwtPayload(token);
    },

    /** Stops timers and leaves the tab channel. The session itself is not ended. */
    close() {
      closed = true;
      cancelTimer();
      settleWaiters("closed");
      listeners.clear();
      if (channel && typeof channel.close === "function") {
        try {
          channel.close();
        } catch {
          // already closed
        }
      }
      channel = null;
    },
  };

  return Object.freeze(client);
}
