import { test } from "node:test";
import assert from "node:assert/strict";

import { FakeClock, fakeGateway, flush, makeClient } from "../testing/fakes.js";

const auth = (call) => new Headers(call.headers).get("authorization");

async function signedIn(options = {}) {
  const clock = new FakeClock();
  const server = fakeGateway();
  const client = makeClient(server, clock, options);
  await client.login("alice", "wonderland");
  return { clock, server, client };
}

test("a 401 triggers one refresh, then one retry with the new token", async () => {
  const { server, client } = await signedIn();
  const before = auth(server.calls.at(-1)) ?? null;
  assert.equal(before, null, "login itself carries no bearer");
  server.expireAccessTokens();

  const res = await client.fetch("/api/hello");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { hello: "alice", path: "/api/hello" });

  const trail = server.calls.slice(1).map((c) => `${c.method} ${c.path}`);
  assert.deepEqual(trail, ["GET /api/hello", "POST /auth/refresh", "GET /api/hello"]);
  const [first, , retry] = server.calls.slice(1);
  assert.match(auth(first), /sig1$/);
  assert.match(auth(retry), /sig2$/);
  assert.equal(client.isAuthenticated(), true);
  client.close();
});

test("a failed refresh signs out, notifies listeners and returns the 401", async () => {
  const { server, client } = await signedIn();
  const changes = [];
  client.onChange((c) => changes.push(c));
  server.expireAccessTokens();
  server.cookie = null; // refresh cookie expired or revoked

  const res = await client.fetch("/api/hello");
  assert.equal(res.status, 401);
  assert.match(res.headers.get("www-authenticate"), /^Bearer/);
  assert.equal(server.count("/auth/refresh"), 1);
  assert.equal(server.count("/api/hello"), 1, "no retry after a failed refresh");
  assert.equal(client.isAuthenticated(), false);
  assert.equal(client.accessTokenExpiresAt(), null);
  assert.deepEqual(changes, [{ authenticated: false }]);
  client.close();
});

test("ten concurrent 401s share exactly one refresh request", async () => {
  const { server, client } = await signedIn();
  server.expireAccessTokens();
  const release = server.holdRefresh();

  const pending = Array.from({ length: 10 }, (_, i) => client.fetch(`/api/item/${i}`));
  await flush();
  assert.equal(server.count("/auth/refresh"), 1);
  release();
  const results = await Promise.all(pending);

  assert.deepEqual(
    results.map((r) => r.status),
    Array(10).fill(200),
  );
  assert.equal(server.count("/auth/refresh"), 1);
  // Each request went once with the old token and once with the new one.
  const api = server.calls.filter((c) => c.path.startsWith("/api/"));
  assert.equal(api.length, 20);
  assert.equal(api.filter((c) => /sig2$/.test(auth(c))).length, 10);
  client.close();
});

test("concurrent 401s after a failed refresh do not refresh again", async () => {
  const { server, client } = await signedIn();
  server.expireAccessTokens();
  server.cookie = null;
  const release = server.holdRefresh();
  const pending = Array.from({ length: 5 }, () => client.fetch("/api/x"));
  await flush();
  release();
  const results = await Promise.all(pending);
  assert.deepEqual(
    results.map((r) => r.status),
    Array(5).fill(401),
  );
  assert.equal(server.count("/auth/refresh"), 1);
  assert.equal(client.isAuthenticated(), false);
  client.close();
});

test("a request arriving while a refresh is in flight waits for it", async () => {
  const { server, client, clock } = await signedIn();
  await clock.advance(870_000 - 1);
  const release = server.holdRefresh();
  await clock.advance(1); // the silent refresh starts and is held
  assert.equal(server.count("/auth/refresh"), 1);
  const pending = client.fetch("/api/hello");
  await flush();
  assert.equal(server.count("/api/hello"), 0, "not sent before the new token arrives");
  release();
  const res = await pending;
  assert.equal(res.status, 200);
  assert.match(auth(server.calls.at(-1)), /sig2$/);
  client.close();
});

test("an expired token is refreshed before the request is sent", async () => {
  const clock = new FakeClock();
  const server = fakeGateway({ expiresIn: 60 });
  // A timer that never fires stands for a tab asleep past the expiry.
  const client = makeClient(server, clock, { setTimeout: () => 0, clearTimeout: () => {} });
  await client.login("alice", "wonderland");
  clock.t += 61_000;
  server.expireAccessTokens();
  assert.equal(client.isAuthenticated(), false);

  const res = await client.fetch("/api/hello");
  assert.equal(res.status, 200);
  const trail = server.calls.slice(1).map((c) => c.path);
  assert.deepEqual(trail, ["/auth/refresh", "/api/hello"]);
  client.close();
});

test("a streamed body is never retried", async () => {
  const { server, client } = await signedIn();
  server.expireAccessTokens();
  const body = new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode("chunk"));
      controller.close();
    },
  });

  const res = await client.fetch("/api/upload", { method: "POST", body, duplex: "half" });
  assert.equal(res.status, 401);
  assert.equal(server.count("/api/upload"), 1);
  assert.equal(server.count("/auth/refresh"), 0);
  client.close();
});

test("a Request with a body is never retried", async () => {
  const { server, client } = await signedIn({ baseUrl: "https://gw.example" });
  server.expireAccessTokens();
  const req = new Request("https://gw.example/api/upload", { method: "POST", body: "x" });
  const res = await client.fetch(req);
  assert.equal(res.status, 401);
  assert.equal(server.count("/api/upload"), 1);
  assert.equal(server.count("/auth/refresh"), 0);
  client.close();
});

test("replayable bodies are sent again unchanged after a refresh", async () => {
  const form = new FormData();
  form.set("a", "1");
  const buffer = new TextEncoder().encode("bytes").buffer;
  const bodies = {
    string: "text",
    params: new URLSearchParams({ q: "1" }),
    blob: new Blob(["blob"]),
    buffer,
    view: new Uint8Array([1, 2, 3]),
    form,
  };
  for (const [kind, body] of Object.entries(bodies)) {
    const { server, client } = await signedIn();
    server.expireAccessTokens();
    const res = await client.fetch(`/api/${kind}`, { method: "POST", body });
    assert.equal(res.status, 200, kind);
    const sent = server.calls.filter((c) => c.path === `/api/${kind}`);
    assert.equal(sent.length, 2, kind);
    assert.equal(sent[0].body, body, kind);
    assert.equal(sent[1].body, body, kind);
    assert.equal(server.count("/auth/refresh"), 1, kind);
    client.close();
  }
});

test("a bodyless Request is retried with the new token", async () => {
  const { server, client } = await signedIn({ baseUrl: "https://gw.example" });
  server.expireAccessTokens();
  const req = new Request("https://gw.example/api/hello", { headers: { "x-trace": "1" } });
  const res = await client.fetch(req);
  assert.equal(res.status, 200);
  const sent = server.calls.filter((c) => c.path === "/api/hello");
  assert.equal(sent.length, 2);
  assert.equal(new Headers(sent[1].headers).get("x-trace"), "1");
  assert.match(auth(sent[1]), /sig2$/);
  client.close();
});

test("caller headers are kept and the token is added", async () => {
  const { server, client } = await signedIn();
  await client.fetch("/api/hello", { headers: { "x-one": "1" } });
  const call = server.calls.at(-1);
  assert.equal(new Headers(call.headers).get("x-one"), "1");
  assert.match(auth(call), /^Bearer /);
  client.close();
});

test("the token is never sent to another origin", async () => {
  const { server, client } = await signedIn({ baseUrl: "https://gw.example" });
  await client.fetch("https://elsewhere.example/api/hello");
  const call = server.calls.at(-1);
  assert.equal(call.origin, "https://elsewhere.example");
  assert.equal(auth(call), null);

  await client.fetch(new URL("https://gw.example/api/hello"));
  assert.match(auth(server.calls.at(-1)), /^Bearer /);
  client.close();
});

test("a caller's own Authorization header is left alone", async () => {
  const { server, client } = await signedIn();
  const res = await client.fetch("/api/hello", { headers: { Authorization: "Basic eDp5" } });
  assert.equal(res.status, 401);
  assert.equal(auth(server.calls.at(-1)), "Basic eDp5");
  assert.equal(server.count("/auth/refresh"), 0);
  client.close();
});
