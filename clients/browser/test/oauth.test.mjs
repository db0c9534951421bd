// The OAuth 2.0 authorization-code flow in a real browser (Debian's chromium, headless,
// JavaScript turned off): the client sends the user to /oauth2/authorize, the gateway's
// server-rendered sign-in page and consent page work with plain HTML forms, the browser lands
// on the client's redirect URI with a code (so chromium's CSP form-action check let the
// redirect through), and the client exchanges the code with its PKCE verifier.
//
// Needs RAMPART_BIN. Screenshots go to ARTIFACTS.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const bin = process.env.RAMPART_BIN;
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const artifacts =
  process.env.ARTIFACTS ?? new URL("../../../target/browser-artifacts/", import.meta.url).pathname;

let gateway;
let browser;
let base; // http://localhost:PORT
let app; // the client's callback server: http://127.0.0.1:PORT
const callbacks = [];
const servers = [];
const dir = mkdtempSync(join(tmpdir(), "rampart-oauth-"));
const config = join(dir, "rampart.toml");
const password = randomBytes(12).toString("base64url");
let clientId;
let clientSecret;

/** The client application's callback: records what the browser brought back. */
function callbackServer() {
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      callbacks.push(new URL(req.url, "http://app.invalid"));
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end("<!doctype html><title>Demo app</title><p>signed in</p>");
    });
    server.listen(0, "127.0.0.1", () => {
      servers.push(server);
      resolve(`http://127.0.0.1:${server.address().port}`);
    });
  });
}

/** Starts `rampart serve` and waits for its `server.listening` event. */
function startGateway() {
  const child = spawn(bin, ["serve", "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the gateway did not start")), 60_000);
    child.on("exit", (code) => reject(new Error(`the gateway exited with ${code}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        const e = JSON.parse(line);
        if (e.event === "server.listening" && e.listener === "public") {
          clearTimeout(timer);
          resolve({ child, port: Number(e.addr.split(":").pop()) });
        }
      } catch {
        // not an event line
      }
    });
  });
}

const b64url = (buf) => Buffer.from(buf).toString("base64url");

/** A free loopback port (the issuer must be the gateway's own origin, known before start). */
function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

before(async () => {
  assert.ok(bin, "RAMPART_BIN names the gateway binary");
  mkdirSync(artifacts, { recursive: true });
  app = await callbackServer();
  const port = await freePort();
  base = `http://localhost:${port}`;
  writeFileSync(
    config,
    [
      "version = 1",
      `data_dir = "${join(dir, "data")}"`,
      "[admin]",
      'bind = "127.0.0.1:0"',
      "[[listener]]",
      'name = "public"',
      `bind = "127.0.0.1:${port}"`,
      "[events]",
      'sink = "stdout"',
      "[auth]",
      `issuer = "${base}"`,
      'audience = ["api"]',
      "[[route]]",
      'name = "api"',
      'upstream = "http://127.0.0.1:9"',
      'auth = ["jwt"]',
      "",
    ].join("\n"),
  );
  execFileSync(bin, ["user", "add", "--config", config, "ada"], { input: `${password}\n` });
  const out = execFileSync(
    bin,
    ["client", "add", "--config", config, "Demo app", "--redirect-uri", `${app}/callback`,
      "--scope", "openid", "--grant", "authorization_code"],
    { stdio: ["ignore", "pipe", "ignore"] },
  ).toString();
  clientId = out.match(/client_id: (\S+)/)[1];
  clientSecret = out.match(/client_secret: (\S+)/)[1];
  gateway = (await startGateway()).child;
  browser = await chromium.launch({
    executablePath,
    headless: true,
    chromiumSandbox: false,
    args: ["--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  gateway?.kill("SIGTERM");
  for (const s of servers) s.close();
});

test("authorization code flow with plain HTML forms, JavaScript off", { timeout: 120_000 }, async () => {
  const verifier = b64url(randomBytes(48));
  const challenge = b64url(createHash("sha256").update(verifier).digest());
  const state = b64url(randomBytes(12));
  const authorize = new URL(`${base}/oauth2/authorize`);
  for (const [k, v] of Object.entries({
    response_type: "code",
    client_id: clientId,
    redirect_uri: `${app}/callback`,
    scope: "openid",
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  })) authorize.searchParams.set(k, v);

  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(authorize.href);
  // Not signed in: the sign-in page, labelled fields, no script.
  assert.match(new URL(page.url()).pathname, /^\/auth\/signin$/);
  assert.equal(await page.locator("script").count(), 0);
  await page.getByLabel("Username").fill("ada");
  await page.getByLabel("Password").fill(password);
  await page.screenshot({ path: `${artifacts}/oauth-1-sign-in.png`, fullPage: true });
  await page.getByRole("button", { name: "Sign in" }).click();

  // Back at the authorization request: the consent page.
  await page.waitForURL((u) => u.pathname === "/oauth2/authorize");
  await page.getByRole("heading", { name: /Allow Demo app/ }).waitFor();
  assert.equal(await page.locator("script").count(), 0);
  await page.screenshot({ path: `${artifacts}/oauth-2-consent.png`, fullPage: true });
  await page.getByRole("button", { name: "Allow" }).click();

  // The browser lands on the client's redirect URI with a code and the state.
  await page.waitForURL((u) => u.href.startsWith(`${app}/callback`));
  // (the browser also asks the app for /favicon.ico)
  const back = callbacks.filter((u) => u.pathname === "/callback").at(-1);
  assert.ok(back, "the browser reached the callback");
  assert.equal(back.searchParams.get("state"), state);
  assert.equal(back.searchParams.get("iss"), base);
  const code = back.searchParams.get("code");
  assert.ok(code);

  // The client exchanges it with the PKCE verifier.
  const token = await fetch(`${base.replace("localhost", "127.0.0.1")}/oauth2/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString("base64")}`,
    },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: `${app}/callback`,
      code_verifier: verifier,
    }),
  });
  assert.equal(token.status, 200);
  const body = await token.json();
  assert.equal(body.token_type, "Bearer");
  assert.ok(body.access_token && body.id_token);
  await context.close();
});
