import { test } from "node:test";
import assert from "node:assert/strict";

import { FakeClock, fakeGateway, makeClient } from "../testing/fakes.js";

test("the silent refresh fires the leeway before expiry, and again after each refresh", async () => {
  const clock = new FakeClock();
  const server = fakeGateway({ expiresIn: 900 });
  const client = makeClient(server, clock, { refreshLeewaySeconds: 30 });
  const start = clock.now();
  await client.login("alice", "wonderland");
  assert.equal(client.accessTokenExpiresAt(), start + 900_000);

  await clock.advance(869_999);
  assert.equal(server.count("/auth/refresh"), 0, "not before expiry minus leeway");
  await clock.advance(1);
  assert.equal(server.count("/auth/refresh"), 1, "exactly at expiry minus leeway");
  assert.equal(client.accessTokenExpiresAt(), start + 870_000 + 900_000);
  assert.equal(client.claims().n, 2, "the new token is in use");

  await clock.advance(869_999);
  assert.equal(server.count("/auth/refresh"), 1);
  await clock.advance(1);
  assert.equal(server.count("/auth/refresh"), 2);
  assert.equal(client.isAuthenticated(), true);
  client.close();
  assert.equal(clock.timers.size, 0, "close() cancels the timer");
});

test("the refresh leeway is configurable", async () => {
  const clock = new FakeClock();
  const server = fakeGateway({ expiresIn: 300 });
  const client = makeClient(server, clock, { refreshLeewaySeconds: 60 });
  await client.login("alice", "wonderland");
  assert.deepEqual(clock.pendingDelays(), [240_000]);
  client.close();
});

test("the timer delay is clamped: never negative, never under the minimum", async () => {
  for (const [expiresIn, expected] of [
    [10, 5_000], // shorter than the leeway: half-way
    [1, 1_000], // half-way would be 0.5 s: the 1 s minimum
    [0, 1_000], // already expired: the minimum, not a negative delay
    [-5, 1_000],
  ]) {
    const clock = new FakeClock();
    const server = fakeGateway({ expiresIn });
    const client = makeClient(server, clock, { refreshLeewaySeconds: 30 });
    await client.login("alice", "wonderland");
    assert.deepEqual(clock.pendingDelays(), [expected], `expires_in ${expiresIn}`);
    client.close();
  }
});

test("very long lifetimes do not overflow the timer", async () => {
  const clock = new FakeClock();
  const server = fakeGateway({ expiresIn: 60 * 24 * 3600 });
  const client = makeClient(server, clock);
  await client.login("alice", "wonderland");
  assert.deepEqual(clock.pendingDelays(), [2147483647]);
  client.close();
});

test("a rejected silent refresh signs out and notifies listeners", async () => {
  const clock = new FakeClock();
  const server = fakeGateway();
  const client = makeClient(server, clock);
  const changes = [];
  client.onChange((c) => changes.push(c.authenticated));
  await client.login("alice", "wonderland");
  server.cookie = null;

  await clock.advance(870_000);
  assert.equal(server.count("/auth/refresh"), 1);
  assert.equal(client.isAuthenticated(), false);
  assert.equal(client.accessTokenExpiresAt(), null);
  assert.deepEqual(changes, [true, false]);
  assert.equal(clock.timers.size, 0);
  client.close();
});

test("a transient refresh failure is retried while the token lasts, then signs out", async () => {
  const clock = new FakeClock();
  const server = fakeGateway();
  const client = makeClient(server, clock);
  const changes = [];
  client.onChange((c) => changes.push(c.authenticated));
  await client.login("alice", "wonderland");

  server.refreshStatus = 503;
  await clock.advance(870_000);
  assert.equal(server.count("/auth/refresh"), 1);
  assert.equal(client.isAuthenticated(), true, "a 503 does not end the session");
  assert.deepEqual(clock.pendingDelays(), [15_000], "retried half-way to expiry");

  await clock.advance(15_000);
  assert.equal(server.count("/auth/refresh"), 2);
  assert.equal(client.isAuthenticated(), true);
  assert.equal(client.accessTokenExpiresAt(), clock.now() + 900_000);

  // Down until the token runs out: signed out.
  const failing = makeClient(
    {
      fetch: async (input, init) => {
        if (String(input).endsWith("/auth/refresh")) throw new TypeError("Failed to fetch");
        return server.fetch(input, init);
      },
    },
    clock,
  );
  const seen = [];
  failing.onChange((c) => seen.push(c.authenticated));
  await failing.login("alice", "wonderland");
  await clock.advance(900_000);
  assert.equal(failing.isAuthenticated(), false);
  assert.deepEqual(seen, [true, false]);
  client.close();
  failing.close();
});
