// The demo in a real browser (Debian's chromium, headless, driven by playwright-core):
// sign in, call the protected API, survive a reload and access-token expiry through the
// HttpOnly refresh cookie, sign out, and CORS with credentials from a second origin.
//
// Needs RAMPART_BIN (the gateway binary). Screenshots go to ARTIFACTS
// (default: target/browser-artifacts at the repository root).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const bin = process.env.RAMPART_BIN;
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const artifacts =
  process.env.ARTIFACTS ?? new URL("../../../target/browser-artifacts/", import.meta.url).pathname;
const ACCESS_TTL_SECONDS = 4;

let demo;
let browser;
let base; // http://localhost:PORT/
let direct; // http://127.0.0.1:PORT/ for requests from this process
let password;
const origins = {}; // second-origin pages: allowed and refused by the demo's CORS policy
const servers = [];

/** A tiny page server on a free port: another web origin. */
function originServer() {
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end("<!doctype html><title>another site</title><p>another site</p>");
    });
    server.listen(0, "127.0.0.1", () => {
      servers.push(server);
      resolve(`http://localhost:${server.address().port}`);
    });
  });
}

/** Starts `rampart demo` and reads the URL and the one-time password it prints. */
function startDemo(allowOrigin) {
  const child = spawn(
    bin,
    [
      "demo",
      "--bind", "127.0.0.1:0",
      "--admin", "127.0.0.1:0",
      "--access-ttl", `${ACCESS_TTL_SECONDS}s`,
      "--allow-origin", allowOrigin,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the demo printed no URL")), 60_000);
    child.on("exit", (code) => reject(new Error(`the demo exited with ${code}`)));
    createInterface({ input: child.stderr }).on("line", (line) => {
      const m = line.trim().match(/^open\s+(\S+)\s+sign in as\s+demo \/ (\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], password: m[2] });
      }
    });
  });
}

const statusIs = (page, want) =>
  page.waitForFunction(
    (w) => document.querySelector('[data-testid="status"]')?.textContent.trim() === w,
    want,
    { timeout: 30_000 },
  );

before(async () => {
  assert.ok(bin, "RAMPART_BIN names the gateway binary");
  mkdirSync(artifacts, { recursive: true });
  origins.allowed = await originServer();
  origins.refused = await originServer();
  const started = await startDemo(origins.allowed);
  demo = started.child;
  base = started.url;
  password = started.password;
  direct = base.replace("localhost", "127.0.0.1");
  browser = await chromium.launch({
    executablePath,
    headless: true,
    chromiumSandbox: false,
    args: [
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  demo?.kill("SIGTERM");
  for (const s of servers) s.close();
});

test("sign in, call the API, reload, outlive the access token, sign out", { timeout: 120_000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const calls = { login: 0, refresh: 0, refreshOk: 0 };
  let lastBearer = null;
  page.on("request", (r) => {
    const path = new URL(r.url()).pathname;
    if (path === "/auth/login") calls.login += 1;
    if (path === "/auth/refresh") calls.refresh += 1;
    if (path === "/api/hello") lastBearer = r.headers()["authorization"] ?? lastBearer;
  });
  page.on("response", (r) => {
    if (new URL(r.url()).pathname === "/auth/refresh" && r.status() === 200) calls.refreshOk += 1;
  });

  await page.goto(base);
  await statusIs(page, "signed-out");
  await page.fill('[data-testid="username"]', "demo");
  await page.fill('[data-testid="password"]', password);
  await page.click('[data-testid="login-submit"]');
  await statusIs(page, "signed-in");
  assert.equal(calls.login, 1);
  await page.screenshot({ path: `${artifacts}/1-signed-in.png`, fullPage: true });

  await page.click('[data-testid="call-api"]');
  await page.waitForFunction(
    () => document.querySelector('[data-testid="api-result"]')?.textContent.includes("hello from the demo API"),
    null,
    { timeout: 30_000 },
  );
  assert.match(lastBearer ?? "", /^Bearer ey/);
  await page.screenshot({ path: `${artifacts}/2-api-called.png`, fullPage: true });

  // The refresh token is in a cookie scripts cannot read; the access token in no storage.
  const visible = await page.evaluate(() => ({
    cookie: document.cookie,
    local: JSON.stringify(Object.entries(localStorage)),
    session: JSON.stringify(Object.entries(sessionStorage)),
  }));
  assert.ok(!visible.cookie.includes("rampart_refresh"), visible.cookie);
  assert.ok(!visible.local.includes("ey") && !visible.session.includes("ey"), JSON.stringify(visible));
  const refreshCookie = (await context.cookies()).find((c) => c.name === "rampart_refresh");
  assert.ok(refreshCookie, "the refresh cookie exists");
  assert.equal(refreshCookie.httpOnly, true);
  assert.equal(refreshCookie.sameSite, "Strict");

  // A reload keeps the user signed in through the refresh cookie, without the password.
  await page.reload();
  await statusIs(page, "signed-in");
  assert.equal(calls.login, 1, "the reload asked for the password again");

  // Past the access token's lifetime, calls keep working: silent refresh rotated it.
  const refreshedBefore = calls.refreshOk;
  await page.waitForTimeout((ACCESS_TTL_SECONDS + 2) * 1000);
  assert.ok(calls.refreshOk > refreshedBefore, "no silent refresh happened");
  await page.evaluate(() => {
    document.querySelector('[data-testid="api-result"]').textContent = "";
  });
  await page.click('[data-testid="call-api"]');
  await page.waitForFunction(
    () => document.querySelector('[data-testid="api-result"]')?.textContent.includes("hello from the demo API"),
    null,
    { timeout: 30_000 },
  );

  // Sign out: the last access token the page used is refused at once.
  const bearer = lastBearer;
  const before = await fetch(`${direct}api/hello`, { headers: { authorization: bearer } });
  assert.equal(before.status, 200);
  await page.click('[data-testid="logout"]');
  await statusIs(page, "signed-out");
  await page.screenshot({ path: `${artifacts}/3-signed-out.png`, fullPage: true });
  const afterLogout = await fetch(`${direct}api/hello`, { headers: { authorization: bearer } });
  assert.equal(afterLogout.status, 401);
  // And a reload no longer restores the session.
  await page.reload();
  await statusIs(page, "signed-out");
  await context.close();
});

/** From a page of `origin`, a credentialed cross-origin request with a preflight. */
async function crossOrigin(origin, method) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(origin);
  const result = await page.evaluate(
    async ({ url, method }) => {
      try {
        const r = await fetch(url, { method, credentials: "include", headers: { "X-Demo": "1" } });
        return { read: true, status: r.status, body: await r.text() };
      } catch (e) {
        return { read: false, error: String(e) };
      }
    },
    { url: `${base}api/hello`, method },
  );
  await context.close();
  return result;
}

test("CORS: an allowed origin reads credentialed answers, another origin cannot", { timeout: 60_000 }, async () => {
  for (const method of ["PUT", "DELETE", "GET"]) {
    const allowed = await crossOrigin(origins.allowed, method);
    assert.equal(allowed.read, true, `${method} from the allowed origin: ${allowed.error}`);
    // The preflight passed; the answer itself is the API's (401: no token).
    assert.equal(allowed.status, 401, allowed.body);
    const refused = await crossOrigin(origins.refused, method);
    assert.equal(refused.read, false, `${method} from a refused origin was readable`);
  }
});
