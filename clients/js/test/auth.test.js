import { test } from "node:test";
import assert from "node:assert/strict";

import { RampartAuthError, createClient } from "../rampart-client.js";
import { FakeClock, channelHub, fakeGateway, flush, makeClient } from "../testing/fakes.js";

const headersOf = (call) => new Headers(call.headers);

test("login keeps the token in memory and sends it as a bearer", async () => {
  const clock = new FakeClock();
  const server = fakeGateway();
  const client = makeClient(server, clock);
  const changes = [];
  client.onChange((c) => changes.push(c));

  assert.equal(client.isAuthenticated(), false);
  assert.equal(client.accessTokenExpiresAt(), null);
  assert.equal(client.claims(), null);

  await client.login("alice", "wonderland");

  const login = server.calls[0];
  assert.equal(login.path, "/auth/login");
  assert.equal(login.method, "POST");
  assert.equal(login.credentials, "include");
  assert.equal(headersOf(login).get("content-type"), "application/json");
  assert.deepEqual(JSON.parse(login.body), { username: "alice", password: "wonderland" });

  assert.equal(client.isAuthenticated(), true);
  assert.equal(client.accessTokenExpiresAt(), clock.now() + 900_000);
  assert.equal(client.claims().sub, "alice");
  assert.deepEqual(changes, [{ authenticated: true }]);

  const res = await client.fetch("/api/hello");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { hello: "alice", path: "/api/hello" });
  const api = server.calls.at(-1);
  assert.match(headersOf(api).get("authorization"), /^Bearer [\w-]+\.[\w-]+\.sig1$/);
  client.close();
});

test("a refused login rejects with the problem document and stays signed out", async () => {
  const clock = new FakeClock();
  const server = fakeGateway();
  const client = makeClient(server, clock);
  const changes = [];
  client.onChange((c) => changes.push(c));

  await assert.rejects(client.login("alice", "wrong"), (err) => {
    assert.ok(err instanceof RampartAuthError);
    assert.ok(err instanceof Error);
    assert.equal(err.name, "RampartAuthError");
    assert.equal(err.status, 401);
    assert.equal(err.problem.title, "invalid credentials");
    assert.match(err.message, /invalid credentials/);
    return true;
  });
  assert.equal(client.isAuthenticated(), false);
  assert.deepEqual(changes, []);
  client.close();
});

test("a network failure on login is a RampartAuthError with status 0", async () => {
  const clock = new FakeClock();
  const cause = new TypeError("Failed to fetch");
  const client = createClient({
    fetch: async () => {
      throw cause;
    },
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    broadcastChannel: null,
  });
  await assert.rejects(client.login("a", "b"), (err) => {
    assert.ok(err instanceof RampartAuthError);
    assert.equal(err.status, 0);
    assert.equal(err.problem, null);
    assert.equal(err.cause, cause);
    return true;
  });
});

test("a malformed token response is refused", async () => {
  const clock = new FakeClock();
  const client = makeClient(
    { fetch: async () => new Response(JSON.stringify({ token_type: "Bearer" }), { status: 200 }) },
    clock,
  );
  await assert.rejects(client.login("a", "b"), (err) => err instanceof RampartAuthError && err.status === 200);
  assert.equal(client.isAuthenticated(), false);
});

test("restore() after a reload resumes the session through the refresh cookie", async () => {
  const clock = new FakeClock();
  const server = fakeGateway();
  const first = makeClient(server, clock);
  await first.login("alice", "wonderland");
  first.close();

  // A new page: a new client, nothing in memory, only the cookie jar survives.
  const second = makeClient(server, clock);
  const changes = [];
  second.onChange((c) => changes.push(c));
  assert.equal(second.isAuthenticated(), false);

  assert.equal(await second.restore(), true);
  assert.equal(second.isAuthenticated(), true);
  assert.deepEqual(changes, [{ authenticated: true }]);
  const refresh = server.calls.at(-1);
  assert.equal(refresh.path, "/auth/refresh");
  assert.equal(refresh.method, "POST");
  assert.equal(refresh.credentials, "include");
  assert.equal(refresh.body, undefined);

  const res = await second.fetch("/api/hello");
  assert.equal(res.status, 200);
  assert.equal(server.count("/auth/refresh"), 1);

  // Already signed in: no second refresh.
  assert.equal(await second.restore(), true);
  assert.equal(server.count("/auth/refresh"), 1);
  second.close();
});

test("restore() without a cookie resolves to false and does not throw", async () => {
  const clock = new FakeClock();
  const server = fakeGateway();
  const client = makeClient(server, clock);
  const changes = [];
  client.onChange((c) => changes.push(c));
  assert.equal(await client.restore(), false);
  assert.equal(client.isAuthenticated(), false);
  assert.deepEqual(changes, []);
  assert.equal(server.count("/auth/refresh"), 1);
  client.close();
});

test("logout clears the state, tells the other tabs and ends the server session", async () => {
  const clock = new FakeClock();
  const server = fakeGateway();
  const hub = channelHub();
  const peer = hub.open();
  const heard = [];
  peer.addEventListener("message", (e) => heard.push(e.data));
  const client = makeClient(server, clock, { broadcastChannel: hub.factory });
  const changes = [];
  client.onChange((c) => changes.push(c));

  await client.login("alice", "wonderland");
  await client.logout();
  await flush();

  assert.equal(client.isAuthenticated(), false);
  assert.equal(client.accessTokenExpiresAt(), null);
  assert.equal(client.claims(), null);
  assert.deepEqual(changes, [{ authenticated: true }, { authenticated: false }]);
  assert.deepEqual(
    heard.map((m) => m.type),
    ["token", "logout"],
  );
  const logout = server.calls.at(-1);
  assert.equal(logout.path, "/auth/logout");
  assert.equal(logout.method, "POST");
  assert.equal(logout.credentials, "include");
  assert.equal(server.cookie, null);
  assert.equal(clock.timers.size, 0, "no refresh timer left behind");

  // Signed out: requests go without a token, and a 401 does not bring the session back.
  const res = await client.fetch("/api/hello");
  assert.equal(res.status, 401);
  assert.equal(server.count("/auth/refresh"), 0);
  assert.equal(headersOf(server.calls.find((c) => c.path === "/api/hello")).get("authorization"), null);
  client.close();
});

test("logout clears the in-memory token even when the request fails", async () => {
  const clock = new FakeClock();
  const server = fakeGateway();
  let offline = false;
  const client = makeClient(
    {
      fetch: async (input, init) => {
        if (offline) throw new TypeError("Failed to fetch");
        return server.fetch(input, init);
      },
    },
    clock,
  );
  const changes = [];
  client.onChange((c) => changes.push(c));
  await client.login("alice", "wonderland");
  offline = true;

  await assert.rejects(client.logout(), (err) => err instanceof RampartAuthError && err.status === 0);
  assert.equal(client.isAuthenticated(), false);
  assert.equal(client.accessTokenExpiresAt(), null);
  assert.deepEqual(changes.at(-1), { authenticated: false });
  client.close();
});

test("logoutEverywhere ends every session and signs out", async () => {
  const clock = new FakeClock();
  const server = fakeGateway();
  const hub = channelHub();
  const peer = hub.open();
  const heard = [];
  peer.addEventListener("message", (e) => heard.push(e.data.type));
  const client = makeClient(server, clock, { broadcastChannel: hub.factory });
  await client.login("alice", "wonderland");

  await client.logoutEverywhere();
  await flush();
  const call = server.calls.at(-1);
  assert.equal(call.path, "/auth/logout-all");
  assert.equal(call.method, "POST");
  assert.equal(call.credentials, "include");
  assert.match(headersOf(call).get("authorization"), /^Bearer /);
  assert.equal(client.isAuthenticated(), false);
  assert.deepEqual(heard, ["token", "logout"]);
  client.close();
});

test("sessions() and revokeSession() use the bearer and the cookie credentials", async () => {
  const clock = new FakeClock();
  const server = fakeGateway();
  const client = makeClient(server, clock);
  await client.login("alice", "wonderland");

  const sessions = await client.sessions();
  assert.deepEqual(
    sessions.map((s) => [s.sid, s.current]),
    [
      ["s-1", true],
      ["s/2", false],
    ],
  );
  const list = server.calls.at(-1);
  assert.equal(list.method, "GET");
  assert.equal(list.credentials, "include");
  assert.match(headersOf(list).get("authorization"), /^Bearer /);

  await client.revokeSession("s/2");
  const del = server.calls.at(-1);
  assert.equal(del.method, "DELETE");
  assert.equal(del.url, "/auth/sessions/s%2F2");
  assert.match(headersOf(del).get("authorization"), /^Bearer /);
  client.close();
});

test("sessions() when signed out rejects with 401 without trying a refresh", async () => {
  const clock = new FakeClock();
  const server = fakeGateway();
  const client = makeClient(server, clock);
  await assert.rejects(client.sessions(), (err) => err instanceof RampartAuthError && err.status === 401);
  assert.equal(server.count("/auth/refresh"), 0);
  client.close();
});

test("baseUrl prefixes the auth endpoints and relative API paths", async () => {
  const clock = new FakeClock();
  const server = fakeGateway();
  const client = makeClient(server, clock, { baseUrl: "https://gw.example/" });
  await client.login("alice", "wonderland");
  assert.equal(server.calls[0].url, "https://gw.example/auth/login");
  const res = await client.fetch("/api/hello");
  assert.equal(res.status, 200);
  assert.equal(server.calls.at(-1).url, "https://gw.example/api/hello");
  client.close();
});

test("onChange returns an unsubscribe function", async () => {
  const clock = new FakeClock();
  const server = fakeGateway();
  const client = makeClient(server, clock);
  const seen = [];
  const off = client.onChange((c) => seen.push(c.authenticated));
  await client.login("alice", "wonderland");
  off();
  await client.logout();
  assert.deepEqual(seen, [true]);
  client.close();
});
