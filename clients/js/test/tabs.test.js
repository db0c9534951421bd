import { test } from "node:test";
import assert from "node:assert/strict";

import { CHANNEL_NAME } from "../rampart-client.js";
import { FakeClock, channelHub, fakeGateway, flush, makeClient } from "../testing/fakes.js";

// Two tabs of one browser: one cookie jar (the fake gateway), one clock, one channel hub.
function twoTabs(serverOptions) {
  const clock = new FakeClock();
  const server = fakeGateway(serverOptions);
  const hub = channelHub();
  const open = () => makeClient(server, clock, { broadcastChannel: hub.factory });
  return { clock, server, hub, a: open(), b: open() };
}

const types = (hub) => hub.log.map((m) => m.data.type);

test("the channel is named rampart-auth", () => {
  const names = [];
  const client = makeClient(fakeGateway(), new FakeClock(), {
    broadcastChannel: (name) => {
      names.push(name);
      return null;
    },
  });
  assert.equal(CHANNEL_NAME, "rampart-auth");
  assert.deepEqual(names, ["rampart-auth"]);
  client.close();
});

test("a login in one tab signs the other tab in with the same token", async () => {
  const { hub, a, b } = twoTabs();
  const seen = [];
  b.onChange((c) => seen.push(c.authenticated));
  await a.login("alice", "wonderland");
  await flush();
  assert.equal(b.isAuthenticated(), true);
  assert.equal(b.accessTokenExpiresAt(), a.accessTokenExpiresAt());
  assert.deepEqual(b.claims(), a.claims());
  assert.deepEqual(seen, [true]);
  const msg = hub.log.find((m) => m.data.type === "token").data;
  assert.equal(typeof msg.access_token, "string");
  assert.equal(msg.expires_at, a.accessTokenExpiresAt());
  a.close();
  b.close();
});

test("two tabs needing a refresh at once cause one /auth/refresh call", async () => {
  const { clock, server, hub, a, b } = twoTabs();
  await a.login("alice", "wonderland");
  await flush();
  server.expireAccessTokens();

  const pending = [a.fetch("/api/a"), b.fetch("/api/b")];
  await flush();
  await clock.advance(50); // the claim window
  const [ra, rb] = await Promise.all(pending);

  assert.equal(ra.status, 200);
  assert.equal(rb.status, 200);
  assert.equal(server.count("/auth/refresh"), 1);
  assert.equal(server.reuseDetected, 0);
  assert.deepEqual(a.claims(), b.claims());
  assert.equal(a.claims().n, 2);
  assert.equal(types(hub).filter((t) => t === "refreshing").length, 2, "both announced");
  assert.equal(types(hub).filter((t) => t === "token").length, 2, "login + one refresh");
  a.close();
  b.close();
});

test("two reloaded tabs restoring at once cause one /auth/refresh call", async () => {
  const { clock, server, a, b } = twoTabs();
  await a.login("alice", "wonderland");
  a.close();
  b.close();
  const hub = channelHub();
  const c = makeClient(server, clock, { broadcastChannel: hub.factory });
  const d = makeClient(server, clock, { broadcastChannel: hub.factory });

  const pending = [c.restore(), d.restore()];
  await clock.advance(50);
  assert.deepEqual(await Promise.all(pending), [true, true]);
  assert.equal(server.count("/auth/refresh"), 1);
  assert.equal(server.reuseDetected, 0);
  assert.deepEqual(c.claims(), d.claims());
  c.close();
  d.close();
});

test("a tab that hears another tab refreshing waits for its token", async () => {
  const { clock, server, hub, a, b } = twoTabs();
  await a.login("alice", "wonderland");
  await flush();
  server.expireAccessTokens();

  const release = server.holdRefresh();
  const first = a.fetch("/api/a");
  await clock.advance(50); // a's claim window: a now has its refresh request out
  assert.equal(server.count("/auth/refresh"), 1);

  const second = b.fetch("/api/b");
  await flush();
  assert.equal(server.count("/auth/refresh"), 1, "b does not rotate the cookie itself");
  release();
  const [ra, rb] = await Promise.all([first, second]);
  assert.equal(ra.status, 200);
  assert.equal(rb.status, 200);
  assert.equal(server.count("/auth/refresh"), 1);
  assert.equal(server.reuseDetected, 0);
  assert.match(new Headers(server.calls.at(-1).headers).get("authorization"), /sig2$/);
  assert.ok(types(hub).includes("refreshing"));
  a.close();
  b.close();
});

test("the tab that adopted a token lets the other tab's timer refresh it", async () => {
  const { clock, server, a, b } = twoTabs();
  await a.login("alice", "wonderland");
  await flush();

  await clock.advance(870_000 + 50); // a's timer, then its claim window
  await flush();
  assert.equal(server.count("/auth/refresh"), 1);
  assert.equal(b.claims().n, 2, "b adopted a's new token");
  assert.equal(b.accessTokenExpiresAt(), a.accessTokenExpiresAt());

  // A whole second lifetime: still one refresh per lifetime for the pair.
  await clock.advance(900_000);
  assert.equal(server.count("/auth/refresh"), 2);
  assert.equal(server.reuseDetected, 0);
  assert.equal(a.isAuthenticated() && b.isAuthenticated(), true);
  a.close();
  b.close();
});

test("when the tab that fetched the token is gone, the other tab refreshes", async () => {
  const { clock, server, a, b } = twoTabs();
  await a.login("alice", "wonderland");
  await flush();
  a.close(); // the tab is closed

  await clock.advance(875_000 + 50);
  assert.equal(server.count("/auth/refresh"), 1);
  assert.equal(b.isAuthenticated(), true);
  assert.equal(b.claims().n, 2);
  b.close();
});

test("a tab waits at most the peer timeout for a silent peer, then refreshes", async () => {
  const clock = new FakeClock();
  const server = fakeGateway();
  const hub = channelHub();
  const peer = hub.open(); // another tab that announces and then hangs
  const first = makeClient(server, clock);
  await first.login("alice", "wonderland");
  first.close();

  const client = makeClient(server, clock, { broadcastChannel: hub.factory, peerTimeoutMs: 5000 });
  peer.postMessage({ type: "refreshing", from: "hung-tab" });
  await flush();

  const restoring = client.restore();
  await clock.advance(4_999);
  assert.equal(server.count("/auth/refresh"), 0, "still waiting for the other tab");
  await clock.advance(1);
  await clock.advance(50);
  assert.equal(await restoring, true);
  assert.equal(server.count("/auth/refresh"), 1);
  client.close();
});

test("a refresh failure in one tab releases the waiting tab at once", async () => {
  const clock = new FakeClock();
  const server = fakeGateway();
  const hub = channelHub();
  const peer = hub.open();
  const first = makeClient(server, clock);
  await first.login("alice", "wonderland");
  first.close();

  const client = makeClient(server, clock, { broadcastChannel: hub.factory });
  peer.postMessage({ type: "refreshing", from: "other" });
  await flush();
  const restoring = client.restore();
  await flush();
  peer.postMessage({ type: "refresh-failed", from: "other" });
  await flush();
  await clock.advance(50);
  assert.equal(await restoring, true);
  assert.equal(server.count("/auth/refresh"), 1);
  client.close();
});

test("a logout in one tab drops the token in the others", async () => {
  const { server, a, b } = twoTabs();
  await a.login("alice", "wonderland");
  await flush();
  assert.equal(b.isAuthenticated(), true);
  const seen = [];
  b.onChange((c) => seen.push(c.authenticated));

  await a.logout();
  await flush();
  assert.equal(b.isAuthenticated(), false);
  assert.equal(b.accessTokenExpiresAt(), null);
  assert.deepEqual(seen, [false]);
  assert.equal(server.count("/auth/logout"), 1, "only the tab that logged out calls the server");
  a.close();
  b.close();
});

test("malformed or expired peer tokens are ignored", async () => {
  const clock = new FakeClock();
  const hub = channelHub();
  const peer = hub.open();
  const client = makeClient(fakeGateway(), clock, { broadcastChannel: hub.factory });
  for (const msg of [
    { type: "token", from: "x", access_token: "", expires_at: clock.now() + 1000 },
    { type: "token", from: "x", access_token: 42, expires_at: clock.now() + 1000 },
    { type: "token", from: "x", access_token: "a.b.c", expires_at: clock.now() - 1 },
    { type: "token", from: "x", access_token: "a.b.c", expires_at: "soon" },
    null,
    "token",
  ]) {
    peer.postMessage(msg);
  }
  await flush();
  assert.equal(client.isAuthenticated(), false);
  client.close();
});

test("a refresh answer that lands after a logout is dropped", async () => {
  const { clock, server, hub, a, b } = twoTabs();
  await a.login("alice", "wonderland");
  await flush();
  server.expireAccessTokens();
  const release = server.holdRefresh();
  const pending = a.fetch("/api/a");
  await clock.advance(50);
  assert.equal(server.count("/auth/refresh"), 1);

  const out = a.logout();
  assert.equal(a.isAuthenticated(), false);
  release();
  await out;
  const res = await pending;
  await flush();
  assert.equal(res.status, 401);
  assert.equal(a.isAuthenticated(), false);
  assert.equal(b.isAuthenticated(), false);
  assert.equal(server.cookie, null, "the logout revoked the rotated cookie");
  assert.equal(types(hub).filter((t) => t === "token").length, 1, "only the login token was shared");
  a.close();
  b.close();
});
