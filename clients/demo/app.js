// Rampart demo SPA: sign in, call a protected API, list and end sessions.
// Data from the network is only ever written with textContent.
import { createClient, RampartAuthError } from "./rampart-client.js";

const client = createClient();

const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);
const ui = {
  loading: document.getElementById("loading"),
  loginView: document.getElementById("login-view"),
  loginTitle: document.getElementById("login-title"),
  appView: document.getElementById("app-view"),
  appTitle: document.getElementById("app-title"),
  appError: byTestId("app-error"),
  status: byTestId("status"),
  form: byTestId("login-form"),
  username: byTestId("username"),
  password: byTestId("password"),
  submit: byTestId("login-submit"),
  loginError: byTestId("login-error"),
  signedInAs: byTestId("signed-in-as"),
  callApi: byTestId("call-api"),
  apiResult: byTestId("api-result"),
  sessions: byTestId("sessions"),
  logout: byTestId("logout"),
  logoutAll: byTestId("logout-all"),
};

let signedIn = false;

function showMessage(el, text) {
  el.textContent = text;
  el.hidden = !text;
}

function describeError(err, fallback) {
  if (err instanceof RampartAuthError) {
    if (err.status === 0) return "The gateway could not be reached.";
    const detail = err.problem && (err.problem.detail || err.problem.title);
    return detail ? `${fallback} (${err.status}: ${detail})` : `${fallback} (${err.status})`;
  }
  return fallback;
}

function formatTime(seconds) {
  if (!Number.isFinite(seconds)) return "unknown";
  return new Date(seconds * 1000).toLocaleString();
}

function render(authenticated, { moveFocus = false } = {}) {
  const changed = authenticated !== signedIn;
  signedIn = authenticated;
  ui.loading.hidden = true;
  ui.status.textContent = authenticated ? "signed-in" : "signed-out";
  ui.status.classList.toggle("signed-in", authenticated);
  ui.loginView.hidden = authenticated;
  ui.appView.hidden = !authenticated;

  if (authenticated) {
    const claims = client.claims();
    // Decoded for display only; the gateway verifies the token on every request.
    ui.signedInAs.textContent = claims && claims.sub !== undefined ? String(claims.sub) : "unknown";
    if (changed) {
      showMessage(ui.appError, "");
      loadSessions();
    }
    if (moveFocus) ui.appTitle.focus();
  } else {
    ui.signedInAs.textContent = "";
    ui.apiResult.textContent = "";
    ui.sessions.replaceChildren();
    if (moveFocus) ui.username.focus();
  }
}

function sessionItem(session) {
  const item = document.createElement("li");
  item.dataset.testid = "session";
  item.dataset.current = String(Boolean(session.current));

  const text = document.createElement("div");
  const title = document.createElement("span");
  title.textContent = session.user_agent ? String(session.user_agent) : "Unknown device";
  const meta = document.createElement("span");
  meta.className = "session-meta";
  const from = session.client_addr ? ` from ${session.client_addr}` : "";
  meta.textContent =
    `Signed in ${formatTime(session.created_at)}${from}, ` +
    `last seen ${formatTime(session.last_seen_at)}`;
  text.append(title, meta);
  item.append(text);

  if (session.current) {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = "This session";
    item.append(badge);
  } else {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.dataset.testid = "session-revoke";
    button.textContent = "Sign out";
    button.setAttribute("aria-label", `Sign out the session started ${formatTime(session.created_at)}`);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await client.revokeSession(String(session.sid));
        await loadSessions();
      } catch (err) {
        button.disabled = false;
        showMessage(ui.appError, describeError(err, "Could not end that session"));
      }
    });
    item.append(button);
  }
  return item;
}

async function loadSessions() {
  ui.sessions.setAttribute("aria-busy", "true");
  try {
    const sessions = await client.sessions();
    if (!signedIn) return;
    ui.sessions.replaceChildren(...sessions.map(sessionItem));
  } catch (err) {
    if (signedIn) showMessage(ui.appError, describeError(err, "Could not list the sessions"));
  } finally {
    ui.sessions.removeAttribute("aria-busy");
  }
}

ui.form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showMessage(ui.loginError, "");
  const username = ui.username.value.trim();
  const password = ui.password.value;
  if (!username || !password) {
    showMessage(ui.loginError, "Enter a username and a password.");
    return;
  }
  ui.submit.disabled = true;
  try {
    await client.login(username, password);
    ui.password.value = "";
    render(true, { moveFocus: true });
  } catch (err) {
    ui.password.value = "";
    const message =
      err instanceof RampartAuthError && err.status === 401
        ? "Wrong username or password."
        : err instanceof RampartAuthError && err.status === 429
          ? "Too many attempts. Try again later."
          : describeError(err, "Sign-in failed");
    showMessage(ui.loginError, message);
    ui.password.focus();
  } finally {
    ui.submit.disabled = false;
  }
});

ui.callApi.addEventListener("click", async () => {
  ui.callApi.disabled = true;
  ui.apiResult.textContent = "Calling /api/hello…";
  try {
    const res = await client.fetch("/api/hello", { headers: { Accept: "application/json" } });
    const body = await res.text();
    let shown = body;
    try {
      shown = JSON.stringify(JSON.parse(body), null, 2);
    } catch {
      // not JSON: shown as received
    }
    ui.apiResult.textContent = `HTTP ${res.status}\n${shown}`;
  } catch {
    ui.apiResult.textContent = "The request failed: the gateway could not be reached.";
  } finally {
    ui.callApi.disabled = false;
  }
});

ui.logout.addEventListener("click", async () => {
  ui.logout.disabled = true;
  try {
    await client.logout();
  } catch {
    // Signed out here in any case; the server session ends with its refresh token.
  } finally {
    ui.logout.disabled = false;
    render(false, { moveFocus: true });
  }
});

ui.logoutAll.addEventListener("click", async () => {
  ui.logoutAll.disabled = true;
  try {
    await client.logoutEverywhere();
    render(false, { moveFocus: true });
  } catch (err) {
    showMessage(ui.appError, describeError(err, "Could not sign out everywhere"));
  } finally {
    ui.logoutAll.disabled = false;
  }
});

// Sign-ins and sign-outs from other tabs, silent refresh failures, and so on.
client.onChange(({ authenticated }) => render(authenticated));

client.restore().then(
  (ok) => render(ok),
  () => render(false),
);
