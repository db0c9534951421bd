import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";

import * as lib from "../rampart-client.js";
import { FakeClock, channelHub, fakeGateway, flush, makeClient } from "../testing/fakes.js";

const source = await readFile(new URL("../rampart-client.js", import.meta.url), "utf8");

test("the library source never references browser storage", () => {
  for (const pattern of [
    /localStorage/,
    /sessionStorage/,
    /indexedDB/i,
    /document\s*\.\s*cookie/,
    /\bcaches\b/,
    /\["(local|session)Storage"\]/,
  ]) {
    assert.doesNotMatch(source, pattern);
  }
  assert.doesNotMatch(source, /\beval\s*\(|new Function\s*\(/);
  assert.doesNotMatch(source, /^\s*import\s/m, "no dependencies");
});

test("a full session never touches storage globals", async () => {
  const writes = [];
  const storage = (name) =>
    new Proxy(
      {},
      {
        get: (_, key) => {
          writes.push(`${name}.${String(key)} (read)`);
          return () => {};
        },
        set: (_, key) => {
          writes.push(`${name}.${String(key)}`);
          return true;
        },
      },
    );
  const document = {};
  Object.defineProperty(document, "cookie", {
    get: () => {
      writes.push("document.cookie (read)");
      return "";
    },
    set: (v) => {
      writes.push(`document.cookie=${v}`);
    },
  });
  const globals = {
    localStorage: storage("localStorage"),
    sessionStorage: storage("sessionStorage"),
    indexedDB: storage("indexedDB"),
    document,
  };
  const saved = {};
  for (const [key, value] of Object.entries(globals)) {
    saved[key] = Object.getOwnPropertyDescriptor(globalThis, key);
    Object.defineProperty(globalThis, key, { value, configurable: true, writable: true });
  }
  try {
    const clock = new FakeClock();
    const server = fakeGateway();
    const hub = channelHub();
    const client = makeClient(server, clock, { broadcastChannel: hub.factory });
    await client.login("alice", "wonderland");
    await client.fetch("/api/hello");
    await clock.advance(870_000 + 50);
    await client.sessions();
    assert.equal(client.isAuthenticated(), true);
    await client.logout();
    await flush();
    client.close();

    const fresh = makeClient(server, clock);
    assert.equal(await fresh.restore(), false);
    fresh.close();
  } finally {
    for (const [key, descriptor] of Object.entries(saved)) {
      if (descriptor) Object.defineProperty(globalThis, key, descriptor);
      else delete globalThis[key];
    }
  }
  assert.deepEqual(writes, []);
});

test("the token is not reachable from the client object", async () => {
  const clock = new FakeClock();
  const server = fakeGateway();
  const client = makeClient(server, clock);
  await client.login("alice", "wonderland");
  await client.fetch("/api/hello");
  const jwt = new Headers(server.calls.at(-1).headers).get("authorization").slice("Bearer ".length);
  assert.ok(Object.isFrozen(client));
  const seen = JSON.stringify(client) + Object.values(client).map(String).join("");
  assert.ok(!seen.includes(jwt));
  for (const key of Object.keys(client)) {
    if (typeof client[key] !== "function") assert.fail(`unexpected data member ${key}`);
  }
  client.close();
});

test("the type declarations match the exports", async () => {
  const dts = await readFile(new URL("../rampart-client.d.ts", import.meta.url), "utf8");
  const declared = [...dts.matchAll(/^export declare (?:const|class|function) (\w+)/gm)]
    .map((m) => m[1])
    .sort();
  assert.deepEqual(declared, Object.keys(lib).sort());

  const body = /export interface RampartClient \{([\s\S]*?)\n\}/.exec(dts)[1];
  const members = [...body.matchAll(/^ {2}(\w+)\(/gm)].map((m) => m[1]).sort();
  const client = lib.createClient({ fetch: async () => new Response(null), broadcastChannel: null });
  assert.deepEqual(members, Object.keys(client).sort());
  client.close();

  const options = /export interface RampartClientOptions \{([\s\S]*?)\n\}/.exec(dts)[1];
  const optionNames = [...options.matchAll(/^ {2}(\w+)\?:/gm)].map((m) => m[1]).sort();
  const used = /const \{\n([\s\S]*?)\} = options;/.exec(source)[1];
  const implemented = [...used.matchAll(/^ {4}(\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(optionNames, implemented);
});

test("package.json declares an ES module without dependencies", async () => {
  const pkg = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8"));
  assert.equal(pkg.name, "@rampart/client");
  assert.equal(pkg.type, "module");
  assert.equal(pkg.scripts.test, "node --test");
  assert.equal(pkg.dependencies, undefined);
  assert.equal(pkg.devDependencies, undefined);
});
