// Test doubles: a manual clock, an in-memory BroadcastChannel, and a fake gateway behind fetch.
import { createClient } from "../rampart-client.js";

/** Lets pending promise callbacks and queued deliveries run. */
export async function flush(rounds = 10) {
  for (let i = 0; i < rounds; i += 1) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A clock whose time only moves when `advance` is called. */
export class FakeClock {
  constructor(start = 1_700_000_000_000) {
    this.t = start;
    this.timers = new Map();
    this.nextId = 1;
    this.now = () => this.t;
    this.setTimeout = (fn, ms) => {
      const id = this.nextId;
      this.nextId += 1;
      this.timers.set(id, { at: this.t + Math.max(0, Number(ms) || 0), fn, delay: ms });
      return id;
    };
    this.clearTimeout = (id) => {
      this.timers.delete(id);
    };
  }

  /** Delays of the timers still pending, in creation order. */
  pendingDelays() {
    return [...this.timers.values()].map((t) => t.delay);
  }

  /**
   * Moves time forward by `ms`. Timers due at the same instant fire together (as they would
   * in separate tabs), then pending callbacks run before the next instant.
   */
  async advance(ms) {
    const target = this.t + ms;
    await flush();
    for (;;) {
      let at = Infinity;
      for (const timer of this.timers.values()) at = Math.min(at, timer.at);
      if (at > target) break;
      const due = [...this.timers].filter(([, timer]) => timer.at === at);
      this.t = Math.max(this.t, at);
      for (const [id, timer] of due) {
        if (!this.timers.has(id)) continue;
        this.timers.delete(id);
        timer.fn();
      }
      await flush();
    }
    this.t = target;
    await flush();
  }
}

/**
 * In-memory BroadcastChannel: instances with the same name in one hub deliver to each other
 * (never to the sender), asynchronously and in order, on a later turn of the event loop.
 */
export function channelHub() {
  const members = new Set();
  const log = [];

  class FakeBroadcastChannel {
    constructor(name) {
      this.name = name;
      this.listeners = new Set();
      this.onmessage = null;
      this.closed = false;
      members.add(this);
    }

    postMessage(data) {
      if (this.closed) throw new Error("channel is closed");
      const copy = structuredClone(data);
      log.push({ name: this.name, data: copy });
      for (const member of members) {
        if (member === this || member.name !== this.name) continue;
        setImmediate(() => member.deliver(structuredClone(copy)));
      }
    }

    deliver(data) {
      if (this.closed) return;
      const event = { data };
      for (const listener of this.listeners) listener(event);
      if (typeof this.onmessage === "function") this.onmessage(event);
    }

    addEventListener(type, listener) {
      if (type === "message") this.listeners.add(listener);
    }

    removeEventListener(type, listener) {
      if (type === "message") this.listeners.delete(listener);
    }

    close() {
      this.closed = true;
      members.delete(this);
    }
  }

  return {
    factory: (name) => new FakeBroadcastChannel(name),
    /** Every message posted on any channel of this hub. */
    log,
    /** A channel for the test itself to listen and post on, as another tab would. */
    open: (name = "rampart-auth") => new FakeBroadcastChannel(name),
  };
}

function b64url(value) {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

function deferred() {
  let resolve;
  const promise = new Promise((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * A fake gateway: the auth endpoints and a protected `/api/*`. The browser's cookie jar is
 * modelled by `cookie` (one jar shared by every tab using this server).
 */
export function fakeGateway({ expiresIn = 900, users = { alice: "wonderland" } } = {}) {
  const calls = [];
  const valid = new Set();
  let serial = 0;
  let refreshGate = null;

  const server = {
    calls,
    cookie: null,
    expiresIn,
    /** When set, the next refresh answer waits until `release()` is called. */
    holdRefresh() {
      refreshGate = deferred();
      return () => refreshGate.resolve();
    },
    /** Makes every access token issued so far invalid, as expiry would. */
    expireAccessTokens() {
      valid.clear();
    },
    /** Makes the next refresh answer with this status (once). */
    refreshStatus: null,
    /** How many times a rotated refresh token was presented again. */
    reuseDetected: 0,
    count(path, method) {
      return calls.filter((c) => c.path === path && (!method || c.method === method)).length;
    },
    issue(sub) {
      serial += 1;
      const jwt = `${b64url({ alg: "EdDSA", typ: "JWT" })}.${b64url({ sub, n: serial })}.sig${serial}`;
      valid.add(jwt);
      return jwt;
    },
    fetch: null,
  };

  const json = (status, body, headers = {}) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json", ...headers },
    });
  const problem = (status, title, headers = {}) =>
    new Response(JSON.stringify({ type: "about:blank", title, status }), {
      status,
      headers: { "content-type": "application/problem+json", ...headers },
    });
  const grant = (sub) => {
    const accessToken = server.issue(sub);
    server.cookie = { sub, serial };
    return json(200, { access_token: accessToken, token_type: "Bearer", expires_in: server.expiresIn });
  };
  const bearerOf = (headers) => {
    const m = /^Bearer (.+)$/.exec(headers.get("authorization") || "");
    return m && valid.has(m[1]) ? m[1] : null;
  };
  const subOf = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString()).sub;

  server.fetch = async (input, init = {}) => {
    const isRequest = input instanceof Request;
    const href = isRequest ? input.url : String(input);
    const u = new URL(href, "https://gw.example");
    const method = (init.method || (isRequest ? input.method : "GET")).toUpperCase();
    const headers = new Headers(init.headers !== undefined ? init.headers : isRequest ? input.headers : {});
    const call = {
      url: href,
      origin: u.origin,
      path: u.pathname,
      method,
      headers,
      body: init.body,
      credentials: init.credentials,
      // The browser attaches the cookie when the request leaves.
      cookie: server.cookie,
    };
    calls.push(call);
    await Promise.resolve();

    switch (`${method} ${u.pathname}`) {
      case "POST /auth/login": {
        const { username, password } = JSON.parse(init.body);
        if (users[username] !== password) return problem(401, "invalid credentials");
        return grant(username);
      }
      case "POST /auth/refresh": {
        if (refreshGate) {
          const gate = refreshGate;
          await gate.promise;
          if (refreshGate === gate) refreshGate = null;
        }
        if (server.refreshStatus !== null) {
          const status = server.refreshStatus;
          server.refreshStatus = null;
          return problem(status, "refresh failed");
        }
        const sent = call.cookie;
        if (!sent) return problem(401, "invalid refresh token");
        if (server.cookie !== sent) {
          // An already rotated (or revoked) refresh token came back: the session is revoked.
          server.reuseDetected += 1;
          server.cookie = null;
          valid.clear();
          return problem(401, "refresh token reused");
        }
        return grant(sent.sub);
      }
      case "POST /auth/logout":
        server.cookie = null;
        return new Response(null, { status: 204 });
      case "POST /auth/logout-all": {
        if (!bearerOf(headers)) return problem(401, "invalid token", { "www-authenticate": "Bearer" });
        server.cookie = null;
        valid.clear();
        return new Response(null, { status: 204 });
      }
      case "GET /auth/sessions": {
        const jwt = bearerOf(headers);
        if (!jwt) return problem(401, "invalid token", { "www-authenticate": "Bearer" });
        return json(200, {
          sessions: [
            { sid: "s-1", created_at: 1, last_seen_at: 2, expires_at: 3, current: true },
            { sid: "s/2", created_at: 1, last_seen_at: 2, expires_at: 3, current: false },
          ],
          sub: subOf(jwt),
        });
      }
      default:
        break;
    }
    if (method === "DELETE" && u.pathname.startsWith("/auth/sessions/")) {
      if (!bearerOf(headers)) return problem(401, "invalid token", { "www-authenticate": "Bearer" });
      return new Response(null, { status: 204 });
    }
    if (u.pathname.startsWith("/api/")) {
      const jwt = bearerOf(headers);
      if (!jwt) {
        return problem(401, "token required", {
          "www-authenticate": 'Bearer error="invalid_token"',
        });
      }
      return json(200, { hello: subOf(jwt), path: u.pathname });
    }
    return problem(404, "not found");
  };

  return server;
}

/** A client wired to fakes: no real time, no real network, no real channel unless given. */
export function makeClient(server, clock, options = {}) {
  return createClient({
    fetch: server.fetch,
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    broadcastChannel: null,
    ...options,
  });
}
