// The latchkey dashboard: one page over latchkey's public API (/client/v4), nothing else.
//
// The token you sign in with lives in this tab's sessionStorage only and is sent as the
// bearer header. Secrets shown after create and roll live in the page until you leave it.
// Every piece of data reaches the DOM through textContent or attributes, never as HTML.
//
// Each view has its own address in the URL's fragment, the API path of what it shows:
// #/user/tokens, #/accounts/<id>/tokens, #<owner>/tokens/new, #<owner>/tokens/<id> and
// #<owner>/tokens/<id>/edit. Back, Forward and reload work; the review step and a new
// secret are not addresses of their own (a secret is shown once).

const API = "/client/v4";
const SESSION_KEY = "latchkey.token";
const PAGE_SIZE = 20;
const SOON_MS = 7 * 24 * 3600 * 1000;
const KEY = {
  user: (id) => `com.cloudflare.api.user.${id}`,
  account: (id) => `com.cloudflare.api.account.${id}`,
  allAccounts: "com.cloudflare.api.account.*",
  allZones: "com.cloudflare.api.account.zone.*",
};

const state = {
  secret: null,
  user: null, // {id, email} when the token is a user token that may see its user
  accounts: [], // [{id, name}] the token may act on
  ownAccount: null, // the account of an account token
  owner: null, // the owner whose tokens are shown: {label, prefix, family}
  session: null, // the token the page is signed in with: {id, prefix}
  groups: new Map(), // prefix -> permission groups
  tokens: [],
  filter: "",
  statusFilter: "all",
  page: 1,
};

// ---------------------------------------------------------------------------------------
// DOM

/** Builds an element: h("p", {class: "x"}, "text", child). Strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "value") el.value = value;
    else if (name === "checked") el.checked = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const main = () => document.getElementById("main");

/** Replaces the page's content and moves focus to its heading, as a page load would. */
function show(...nodes) {
  main().replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
  const heading = main().querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}

function field(label, input, hint) {
  const id = input.id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) input.setAttribute("aria-describedby", hintId);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    input,
  );
}

/** Asks before a destructive step; `warning` (if any) is shown in a box of its own. */
function confirmDialog(title, text, okLabel, warning) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  const warningBox = document.getElementById("confirm-warning");
  warningBox.textContent = warning ?? "";
  warningBox.hidden = !warning;
  document.getElementById("confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

function when(text) {
  if (!text) return "never";
  const date = new Date(text);
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

// ---------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, errors) {
    super(errors.map((e) => e.message).join("; ") || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.secret}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let envelope;
  try {
    envelope = await response.json();
  } catch {
    throw new ApiError(response.status, [{ code: 0, message: `latchkey answered HTTP ${response.status} without a JSON body` }]);
  }
  if (!response.ok || !envelope.success) throw new ApiError(response.status, envelope.errors || []);
  return envelope;
}

/** Every item of a paged list. */
async function apiAll(path) {
  const items = [];
  for (let page = 1; ; page++) {
    const sep = path.includes("?") ? "&" : "?";
    const envelope = await api("GET", `${path}${sep}per_page=50&page=${page}`);
    items.push(...envelope.result);
    if (page >= (envelope.result_info?.total_pages ?? 1)) return items;
  }
}

/** Names the field an error pointer points at, in words. */
function fieldName(pointer) {
  if (!pointer) return null;
  const parts = pointer.split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  const ordinal = (n) => Number(n) + 1;
  switch (parts[0]) {
    case "name":
      return "Name";
    case "status":
      return "Status";
    case "not_before":
      return "Start date";
    case "expires_on":
      return "Expiry date";
    case "policies": {
      if (parts.length === 1) return "Policies";
      let label = `Policy ${ordinal(parts[1])}`;
      if (parts[2] === "permission_groups") label += parts[3] !== undefined ? `, permission group ${ordinal(parts[3])}` : ", permission groups";
      else if (parts[2] === "resources") label += parts[3] !== undefined ? `, resource ${parts[3]}` : ", resources";
      else if (parts[2] === "effect") label += ", effect";
      return label;
    }
    case "condition": {
      const list = parts.includes("not_in") ? "Refused client addresses" : "Allowed client addresses";
      const index = parts[parts.length - 1];
      return /^\d+$/.test(index) ? `${list}, entry ${ordinal(index)}` : list;
    }
    case "query":
      return `Query parameter ${parts[1]}`;
    default:
      return pointer;
  }
}

/** The form control an error pointer points at, to focus and mark. */
function fieldControl(pointer) {
  if (!pointer) return null;
  const parts = pointer.split("/").slice(1);
  const ids = {
    name: "token-name",
    not_before: "not-before",
    expires_on: "expires-on",
  };
  if (ids[parts[0]]) return document.getElementById(ids[parts[0]]);
  if (parts[0] === "policies" && parts[1] !== undefined) {
    if (parts[2] === "permission_groups") return document.getElementById(`policy-${parts[1]}-search`);
    if (parts[2] === "resources") return document.getElementById(`policy-${parts[1]}-resource-0`);
    return document.getElementById(`policy-${parts[1]}-effect`);
  }
  if (parts[0] === "condition") return document.getElementById(parts.includes("not_in") ? "ip-not-in" : "ip-in");
  return null;
}

/** An alert that says, in sentences, what went wrong and where. */
function errorBox(error, lead = "latchkey refused this:") {
  if (!(error instanceof ApiError)) {
    return h("div", { class: "error", role: "alert" }, h("p", {}, `latchkey could not be reached (${error.message}). Check the server and try again.`));
  }
  const sentences = error.errors.map((e) => {
    const where = fieldName(e.source?.pointer);
    const message = e.message.endsWith(".") ? e.message : `${e.message}.`;
    return `${where ? `${where}: ` : ""}${message} (code ${e.code})`;
  });
  return h(
    "div",
    { class: "error", role: "alert" },
    h("p", {}, lead),
    h("ul", {}, sentences.map((s) => h("li", {}, s))),
  );
}

function markFields(error) {
  if (!(error instanceof ApiError)) return;
  let first = null;
  for (const e of error.errors) {
    const control = fieldControl(e.source?.pointer);
    if (control) {
      control.setAttribute("aria-invalid", "true");
      first ??= control;
    }
  }
  first?.focus();
}

// ---------------------------------------------------------------------------------------
// Sign-in

function signInView(error, notice) {
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  show(
    h("h1", {}, "Sign in to latchkey"),
    h(
      "p",
      {},
      "Paste an API token. The page keeps it in this browser tab only (session storage) and sends it to this server's API as the Authorization header. Closing the tab or signing out forgets it.",
    ),
    notice ? h("p", { class: "notice", role: "status" }, notice) : null,
    error ? errorBox(error, "This token cannot sign in:") : null,
    h(
      "form",
      {
        class: "card",
        onsubmit: async (event) => {
          event.preventDefault();
          const secret = input.value.trim();
          try {
            await signIn(secret);
            await route();
          } catch (e) {
            signOut(false);
            signInView(e);
          }
        },
      },
      field("API token", input),
      h("button", { type: "submit" }, "Sign in"),
    ),
  );
}

async function signIn(secret) {
  state.secret = secret;
  let refusal = null;
  let family = null;
  try {
    const verified = (await api("GET", "/user/tokens/verify")).result;
    family = "user";
    state.session = { id: verified.id, prefix: "/user" };
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    refusal = e;
  }
  try {
    state.accounts = await apiAll("/accounts");
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    state.accounts = [];
  }
  if (family === "user") {
    try {
      state.user = (await api("GET", "/user")).result;
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
  } else {
    for (const account of state.accounts) {
      try {
        const verified = (await api("GET", `/accounts/${account.id}/tokens/verify`)).result;
        family = "account";
        state.ownAccount = account;
        state.session = { id: verified.id, prefix: `/accounts/${account.id}` };
        break;
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
      }
    }
  }
  if (!family) throw refusal;
  const owners = ownersOf();
  if (owners.length === 0) {
    throw new ApiError(403, [{ code: 9109, message: "This token may not act on any user or account, so there is nothing to manage with it" }]);
  }
  state.owner = owners[0];
  sessionStorage.setItem(SESSION_KEY, secret);
  renderWho();
}

function signOut(render = true, notice) {
  sessionStorage.removeItem(SESSION_KEY);
  Object.assign(state, { secret: null, user: null, accounts: [], ownAccount: null, owner: null, session: null, tokens: [] });
  state.groups.clear();
  renderWho();
  history.replaceState(null, "", location.pathname);
  if (render) signInView(null, notice);
}

function renderWho() {
  const who = document.getElementById("who");
  const button = document.getElementById("sign-out");
  if (!state.secret) {
    who.textContent = "";
    button.hidden = true;
    return;
  }
  who.textContent = state.user
    ? `Signed in as ${state.user.email}`
    : state.ownAccount
      ? `Signed in with a token of ${state.ownAccount.name}`
      : "Signed in";
  button.hidden = false;
}

/** The owners whose tokens this token may manage: its user, then its accounts. */
function ownersOf() {
  const owners = [];
  if (state.user) owners.push({ family: "user", label: "Your user tokens", noun: "your user", prefix: "/user", id: state.user.id });
  for (const account of state.accounts) {
    owners.push({ family: "account", label: `Account: ${account.name}`, noun: `account ${account.name}`, prefix: `/accounts/${account.id}`, id: account.id });
  }
  return owners;
}

function accountName(id) {
  return state.accounts.find((a) => a.id === id)?.name ?? id;
}

// ---------------------------------------------------------------------------------------
// Addresses

/** The address of a view of `owner`'s tokens: "" (the list), "/new", "/<id>", "/<id>/edit". */
function hashOf(owner, rest = "") {
  return `#${owner.prefix}/tokens${rest}`;
}

let flash = null; // a message for the next view, e.g. "x was deleted."
let viewCount = 0; // a view that finished loading after a newer one started is not shown

/** Goes to `hash` (a new history entry, or in place with `replace`), then shows it. */
function go(hash, message, replace = false) {
  flash = message ?? null;
  if (replace) history.replaceState(null, "", hash);
  if (replace || location.hash === hash) route();
  else location.hash = hash; // the hashchange event shows it
}

/** Shows the view the URL names; an address that names nothing known shows the first list. */
async function route() {
  if (!state.secret) {
    signInView();
    return;
  }
  const message = flash;
  flash = null;
  const view = ++viewCount;
  const current = () => view === viewCount;
  const match = /^#(\/user|\/accounts\/[0-9a-f]{32})\/tokens(?:\/(new|[0-9a-f]{32})(\/edit)?)?$/.exec(location.hash);
  const owner = match && ownersOf().find((o) => o.prefix === match[1]);
  if (!owner) {
    history.replaceState(null, "", hashOf(state.owner ?? ownersOf()[0]));
    flash = message;
    route();
    return;
  }
  state.owner = owner;
  const [, , id, edit] = match;
  if (!id) await ownerView(owner, message, current);
  else if (id === "new") await createView(current);
  else if (edit) await editRoute(id, current);
  else await tokenView(id, message, current);
}

window.addEventListener("hashchange", () => route());

// ---------------------------------------------------------------------------------------
// Token lists

async function ownerView(owner, message, current = () => true) {
  state.owner = owner;
  state.page = 1;
  try {
    const tokens = await apiAll(`${owner.prefix}/tokens?include_expired=true`);
    if (!current()) return;
    state.tokens = tokens;
  } catch (e) {
    if (!current()) return;
    state.tokens = [];
    listView(e);
    return;
  }
  listView(null, message);
}

function statusOf(token) {
  if (token.exposure) return "exposed";
  if (token.status !== "active") return token.status;
  if (token.expires_on && new Date(token.expires_on) <= new Date()) return "expired";
  return "active";
}

function expiryCell(token) {
  if (!token.expires_on) return h("span", {}, "never");
  const left = new Date(token.expires_on) - new Date();
  const text = when(token.expires_on);
  if (left <= 0) return h("span", { class: "badge danger" }, `Expired ${text}`);
  if (left < SOON_MS) return h("span", { class: "badge warning" }, `Expires soon: ${text}`);
  return h("span", {}, text);
}

function permissionSummary(token) {
  const allowed = [];
  let denies = 0;
  for (const policy of token.policies) {
    if (policy.effect === "deny") denies++;
    else for (const group of policy.permission_groups) if (!allowed.includes(group.name)) allowed.push(group.name ?? group.id);
  }
  let text = allowed.slice(0, 2).join(", ") || "nothing";
  if (allowed.length > 2) text += ` and ${allowed.length - 2} more`;
  if (denies) text += ` (${denies} deny ${denies === 1 ? "policy" : "policies"})`;
  return text;
}

function listView(error, message) {
  const owners = ownersOf();
  const select = h(
    "select",
    {
      id: "owner",
      onchange: () => go(hashOf(owners[Number(select.value)])),
    },
    owners.map((o, i) => h("option", { value: String(i), selected: o.prefix === state.owner.prefix }, o.label)),
  );
  const filter = h("input", {
    id: "filter",
    type: "search",
    value: state.filter,
    oninput: () => {
      state.filter = filter.value;
      state.page = 1;
      renderTable();
    },
  });
  const statusFilter = h(
    "select",
    {
      id: "status-filter",
      onchange: () => {
        state.statusFilter = statusFilter.value;
        state.page = 1;
        renderTable();
      },
    },
    ["all", "active", "disabled", "expired", "exposed"].map((s) =>
      h("option", { value: s, selected: s === state.statusFilter }, s === "all" ? "Any status" : s[0].toUpperCase() + s.slice(1)),
    ),
  );
  const region = h("div", { id: "token-table" });
  show(
    h("h1", {}, "API tokens"),
    message ? h("p", { class: "notice", role: "status" }, message) : null,
    h(
      "div",
      { class: "toolbar" },
      field("Tokens of", select),
      field("Filter by name", filter),
      field("Status", statusFilter),
      h("button", { type: "button", id: "create", onclick: () => go(hashOf(state.owner, "/new")) }, "Create token"),
    ),
    error ? errorBox(error, `The tokens of ${state.owner.noun} cannot be listed:`) : region,
  );
  if (!error) renderTable();
}

function renderTable() {
  const region = document.getElementById("token-table");
  const needle = state.filter.trim().toLowerCase();
  const shown = state.tokens.filter(
    (t) => t.name.toLowerCase().includes(needle) && (state.statusFilter === "all" || statusOf(t) === state.statusFilter),
  );
  const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
  state.page = Math.min(state.page, pages);
  const slice = shown.slice((state.page - 1) * PAGE_SIZE, state.page * PAGE_SIZE);
  if (state.tokens.length === 0) {
    region.replaceChildren(h("p", {}, "No tokens yet. Create one with the button above."));
    return;
  }
  const row = (token) =>
    h(
      "tr",
      {},
      h("td", { "data-label": "Name" }, h("a", { href: hashOf(state.owner, `/${token.id}`) }, token.name)),
      h("td", { "data-label": "Status" }, h("span", { class: `badge ${statusOf(token)}` }, statusOf(token))),
      h("td", { "data-label": "Permissions" }, permissionSummary(token)),
      h("td", { "data-label": "Last used" }, when(token.last_used_on)),
      h("td", { "data-label": "Expires" }, expiryCell(token)),
      h("td", { "data-label": "Actions", class: "row-actions" }, tokenActions(token, "row")),
    );
  region.replaceChildren(
    h(
      "table",
      {},
      h("caption", {}, `${shown.length} of ${state.tokens.length} tokens of ${state.owner.noun}`),
      h(
        "thead",
        {},
        h("tr", {}, ["Name", "Status", "Permissions", "Last used", "Expires", "Actions"].map((c) => h("th", { scope: "col" }, c))),
      ),
      h("tbody", {}, slice.map(row)),
    ),
    h(
      "nav",
      { class: "pager", "aria-label": "Pages" },
      h("button", { type: "button", class: "secondary", disabled: state.page <= 1, onclick: () => { state.page--; renderTable(); } }, "Previous page"),
      h("span", { "aria-live": "polite" }, `Page ${state.page} of ${pages}`),
      h("button", { type: "button", class: "secondary", disabled: state.page >= pages, onclick: () => { state.page++; renderTable(); } }, "Next page"),
    ),
  );
}

/** Edit, roll, disable or enable (not for an expired token: it works for nobody), and
 * delete; `where` is "row" or "detail". */
function tokenActions(token, where) {
  const label = (verb) => (where === "row" ? `${verb} ${token.name}` : null);
  const disabled = token.status === "disabled";
  const expired = statusOf(token) === "expired" || (token.expires_on && new Date(token.expires_on) <= new Date());
  const exposed = Boolean(token.exposure);
  return h(
    "div",
    { class: "actions" },
    h("button", { type: "button", class: "secondary", "aria-label": label("Edit"), onclick: () => go(hashOf(state.owner, `/${token.id}/edit`)) }, "Edit"),
    exposed
      ? h("button", { type: "button", class: "danger", "aria-label": label("Roll now"), onclick: () => roll(token) }, "Roll now")
      : h("button", { type: "button", class: "secondary", "aria-label": label("Roll"), onclick: () => roll(token) }, "Roll"),
    expired || exposed
      ? null
      : h(
          "button",
          { type: "button", class: "secondary", "aria-label": label(disabled ? "Enable" : "Disable"), onclick: () => setStatus(token, disabled ? "active" : "disabled") },
          disabled ? "Enable" : "Disable",
        ),
    h("button", { type: "button", class: "danger", "aria-label": label("Delete"), onclick: () => remove(token) }, "Delete"),
  );
}

/** Whether `token` is the one the page is signed in with. */
function isSession(token) {
  return state.session?.id === token.id && state.session?.prefix === state.owner.prefix;
}

const SIGNED_OUT_AFTER =
  "This is the token you are signed in with. The dashboard signs you out, and you need another token to sign in again; with no other admin token, an operator can make one on the server with the command “latchkey recover”.";

// ---------------------------------------------------------------------------------------
// One token

/** The token `id` of the current owner, or null after showing the list and why not. */
async function tokenOrList(id, current) {
  try {
    const token = (await api("GET", `${state.owner.prefix}/tokens/${id}`)).result;
    return current() ? token : null;
  } catch (e) {
    if (!current()) return null;
    history.replaceState(null, "", hashOf(state.owner));
    await ownerView(state.owner, null, current);
    main().prepend(errorBox(e, "This token cannot be shown:"));
    return null;
  }
}

async function tokenView(id, message, current = () => true) {
  const token = await tokenOrList(id, current);
  if (!token) return;
  const ranges = token.condition?.request_ip;
  show(
    h("p", {}, h("a", { href: hashOf(state.owner) }, "← All tokens")),
    h("h1", {}, token.name),
    message ? h("p", { class: "notice", role: "status" }, message) : null,
    token.exposure ? exposureBox(token) : null,
    h(
      "dl",
      { class: "details" },
      [
        ["Token ID", h("code", {}, token.id)],
        ["Status", h("span", { class: `badge ${statusOf(token)}` }, statusOf(token))],
        ["Owner", state.owner.noun],
        ["Issued", when(token.issued_on)],
        ["Modified", when(token.modified_on)],
        ["Last used", when(token.last_used_on)],
        ["Starts", token.not_before ? when(token.not_before) : "at once"],
        ["Expires", expiryCell(token)],
        ["Allowed client addresses", ranges?.in?.length ? ranges.in.join(", ") : "any"],
        ["Refused client addresses", ranges?.not_in?.length ? ranges.not_in.join(", ") : "none"],
      ].map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
    ),
    h("h2", {}, "Policies"),
    h("ol", { class: "policies" }, token.policies.map((p) => h("li", {}, policySentence(draftPolicy(p))))),
    tokenActions(token, "detail"),
  );
}

/** Where and when the token's secret was found, and what to do about it. */
function exposureBox(token) {
  const { exposure } = token;
  const by = exposure.reporter === "github" ? "GitHub's secret scanning" : "a leak report";
  return h(
    "div",
    { class: "error", id: "exposure", role: "alert" },
    h("p", {}, h("strong", {}, "Exposed: "), `its secret was found in the open (reported by ${by} on ${when(exposure.reported_on)}${exposure.source ? `, in ${exposure.source}` : ""}).`),
    exposure.url ? h("p", {}, "Where: ", h("code", {}, exposure.url)) : null,
    h("p", {}, "latchkey disabled the token at once. Roll it for a new secret, which makes it active again; then replace the secret wherever it is used."),
    h("button", { type: "button", class: "danger", onclick: () => roll(token) }, "Roll now"),
  );
}

async function roll(token) {
  const own = isSession(token);
  const ok = await confirmDialog(
    `Roll ${token.name}?`,
    "A new secret replaces the current one at once: anything still using the old secret stops working.",
    "Roll secret",
    own ? "This is the token you are signed in with. The dashboard switches to the new secret; copy it before you leave the page, or you will need another token to sign in next time." : null,
  );
  if (!ok) return;
  try {
    const secret = (await api("PUT", `${state.owner.prefix}/tokens/${token.id}/value`, {})).result;
    if (own) {
      state.secret = secret;
      sessionStorage.setItem(SESSION_KEY, secret);
    }
    secretView(`New secret for ${token.name}`, secret);
  } catch (e) {
    main().prepend(errorBox(e, "The token was not rolled:"));
  }
}

async function setStatus(token, status) {
  const own = isSession(token);
  if (status === "disabled") {
    const ok = await confirmDialog(
      `Disable ${token.name}?`,
      "Requests with its secret are refused until the token is enabled again.",
      "Disable token",
      own ? SIGNED_OUT_AFTER : null,
    );
    if (!ok) return;
  }
  try {
    await api("PUT", `${state.owner.prefix}/tokens/${token.id}`, { ...updateBody(token), status });
  } catch (e) {
    main().prepend(errorBox(e, "The status was not changed:"));
    return;
  }
  const done = `${token.name} is now ${status === "active" ? "enabled" : "disabled"}.`;
  if (own && status === "disabled") signOut(true, `${done} It was the token you were signed in with.`);
  else go(hashOf(state.owner), done);
}

async function remove(token) {
  const own = isSession(token);
  const ok = await confirmDialog(
    `Delete ${token.name}?`,
    "Anything using this token stops working at once. This cannot be undone.",
    "Delete token",
    own ? SIGNED_OUT_AFTER : null,
  );
  if (!ok) return;
  try {
    await api("DELETE", `${state.owner.prefix}/tokens/${token.id}`);
  } catch (e) {
    main().prepend(errorBox(e, "The token was not deleted:"));
    return;
  }
  const done = `${token.name} was deleted.`;
  if (own) signOut(true, `${done} It was the token you were signed in with.`);
  else go(hashOf(state.owner), done);
}

/** An update body that keeps everything of `token` as it is. */
function updateBody(token) {
  return {
    name: token.name,
    status: token.status === "expired" ? "active" : token.status,
    policies: token.policies.map((p) => ({
      effect: p.effect,
      permission_groups: p.permission_groups.map((g) => ({ id: g.id })),
      resources: p.resources,
    })),
    condition: token.condition ?? undefined,
    not_before: token.not_before ?? undefined,
    expires_on: token.expires_on ?? undefined,
  };
}

function secretView(title, secret) {
  const input = h("input", { id: "secret", readonly: true, value: secret, spellcheck: "false", autocomplete: "off" });
  const status = h("p", { id: "copy-status", role: "status" });
  const verifyPath = state.owner.family === "user" ? "/user/tokens/verify" : `${state.owner.prefix}/tokens/verify`;
  show(
    h("h1", {}, title),
    h("p", { class: "warning-box" }, h("strong", {}, "Copy this secret now. You will not see this again: latchkey keeps only its hash.")),
    field("Secret", input),
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        {
          type: "button",
          id: "copy",
          onclick: async () => {
            try {
              await navigator.clipboard.writeText(secret);
              status.textContent = "Copied to the clipboard.";
            } catch {
              input.select();
              status.textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
            }
          },
        },
        "Copy secret",
      ),
      h("button", { type: "button", class: "secondary", onclick: () => go(hashOf(state.owner)) }, "Done, I have copied it"),
    ),
    status,
    h("p", {}, "Check it with:"),
    h("pre", {}, `curl ${location.origin}${API}${verifyPath} \\\n  -H "Authorization: Bearer <the secret>"`),
  );
}

// ---------------------------------------------------------------------------------------
// The policy builder: a draft is {name, status, policies: [{effect, groups: [id], resources:
// [{type, account, key, value}]}], ipIn, ipNotIn, notBefore, expiresOn}.

/** The scope (resource kind) each resource choice names. */
const TYPE_SCOPE = {
  user: "com.cloudflare.api.user",
  account: "com.cloudflare.api.account",
  "all-accounts": "com.cloudflare.api.account",
  "account-zones": "com.cloudflare.api.account.zone",
  "all-zones": "com.cloudflare.api.account.zone",
};

/** The kind of a resource key: all but its last part (`com.cloudflare.api.account.zone.*`). */
function scopeOfKey(key) {
  const dot = key.lastIndexOf(".");
  return dot > 0 ? key.slice(0, dot) : key;
}

/** The kinds of resource a row names: for nested keys, the inner ones (what they grant on). */
function rowScopes(row) {
  if (row.type === "nested") return Object.keys(row.value).map(scopeOfKey);
  if (row.type === "key") return [scopeOfKey(row.key.trim())];
  return [TYPE_SCOPE[row.type]];
}

/** The chosen groups of a policy that apply to none of its resources: latchkey refuses
 * such a policy (1008), as Cloudflare does. */
function misfits(policy, groups) {
  const named = new Set(policy.resources.flatMap(rowScopes));
  return policy.groups.filter((id) => {
    const group = groups.find((g) => g.id === id);
    return group && !group.scopes.some((scope) => named.has(scope));
  });
}

/** The resource choices that fit at least one chosen group (all of them before any is
 * chosen); a resource key of your own always fits. */
function fittingTypes(policy, groups) {
  const scopes = new Set(policy.groups.flatMap((id) => groups.find((g) => g.id === id)?.scopes ?? []));
  const types = resourceTypes();
  if (scopes.size === 0) return types;
  return types.filter(([type]) => type === "key" || scopes.has(TYPE_SCOPE[type]));
}

/** Resource choices of a policy row, by family. */
function resourceTypes() {
  const types = [];
  if (state.owner.family === "user") types.push(["user", "This user"]);
  types.push(["account", "An account"], ["account-zones", "All zones of an account"]);
  if (state.owner.family === "user") types.push(["all-accounts", "All my accounts"], ["all-zones", "All zones of all my accounts"]);
  types.push(["key", "A specific resource key"]);
  return types;
}

function defaultAccount() {
  return state.owner.family === "account" ? state.owner.id : (state.accounts[0]?.id ?? "");
}

function resourceEntry(row) {
  switch (row.type) {
    case "user":
      return [KEY.user(state.owner.id), "*"];
    case "account":
      return [KEY.account(row.account), "*"];
    case "account-zones":
      return [KEY.account(row.account), { [KEY.allZones]: "*" }];
    case "all-accounts":
      return [KEY.allAccounts, "*"];
    case "all-zones":
      return [KEY.allZones, "*"];
    case "nested":
      return [row.key, row.value];
    default:
      return [row.key.trim(), "*"];
  }
}

function resourceRow(key, value) {
  const account = key.startsWith("com.cloudflare.api.account.") ? key.slice("com.cloudflare.api.account.".length) : "";
  const isAccount = /^[0-9a-f]{32}$/.test(account);
  if (value === "*") {
    if (state.owner.family === "user" && key === KEY.user(state.owner.id)) return { type: "user" };
    if (key === KEY.allAccounts) return { type: "all-accounts" };
    if (key === KEY.allZones) return { type: "all-zones" };
    if (isAccount) return { type: "account", account };
    return { type: "key", key };
  }
  const inner = Object.entries(value);
  if (isAccount && inner.length === 1 && inner[0][0] === KEY.allZones && inner[0][1] === "*") return { type: "account-zones", account };
  return { type: "nested", key, value };
}

function draftPolicy(policy) {
  return {
    effect: policy.effect,
    groups: policy.permission_groups.map((g) => g.id),
    groupNames: Object.fromEntries(policy.permission_groups.map((g) => [g.id, g.name])),
    resources: Object.entries(policy.resources).map(([k, v]) => resourceRow(k, v)),
  };
}

function emptyPolicy() {
  return { effect: "allow", groups: [], resources: [{ type: state.owner.family === "user" ? "user" : "account", account: defaultAccount(), key: "" }] };
}

function scopeName(scope) {
  const names = {
    "com.cloudflare.api.user": "user",
    "com.cloudflare.api.account": "account",
    "com.cloudflare.api.account.zone": "zone",
    "com.cloudflare.edge.r2.bucket": "R2 bucket",
  };
  return names[scope] ?? scope;
}

function resourceSentence(row) {
  switch (row.type) {
    case "user":
      return "this user";
    case "account":
      return `account ${accountName(row.account)}`;
    case "account-zones":
      return `all zones of account ${accountName(row.account)}`;
    case "all-accounts":
      return "all accounts";
    case "all-zones":
      return "all zones";
    case "nested":
      return `${row.key} limited to ${JSON.stringify(row.value)}`;
    default:
      return row.key || "(no key given)";
  }
}

function groupName(id, policy) {
  const groups = state.groups.get(state.owner.prefix) ?? [];
  return groups.find((g) => g.id === id)?.name ?? policy?.groupNames?.[id] ?? id;
}

function policySentence(policy) {
  const names = policy.groups.map((id) => groupName(id, policy));
  return `${policy.effect === "deny" ? "Deny" : "Allow"} ${names.join(", ") || "no permission groups"} on ${policy.resources.map(resourceSentence).join(", ") || "no resources"}`;
}

function lines(text) {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Address ranges, one per line; a bare address is the range of that address alone. */
function cidrs(text) {
  return lines(text).map((entry) => {
    if (entry.includes("/")) return entry;
    if (entry.includes(":")) return `${entry}/128`;
    if (/^\d{1,3}(\.\d{1,3}){3}$/.test(entry)) return `${entry}/32`;
    return entry; // not an address: the API names the entry
  });
}

/** The create or update body of a draft. */
function draftBody(draft, original) {
  const body = {
    name: draft.name,
    policies: draft.policies.map((p) => ({
      effect: p.effect,
      permission_groups: p.groups.map((id) => ({ id })),
      resources: Object.fromEntries(p.resources.map(resourceEntry)),
    })),
  };
  const ipIn = cidrs(draft.ipIn);
  const ipNotIn = cidrs(draft.ipNotIn);
  if (ipIn.length || ipNotIn.length) {
    body.condition = { request_ip: {} };
    if (ipIn.length) body.condition.request_ip.in = ipIn;
    if (ipNotIn.length) body.condition.request_ip.not_in = ipNotIn;
  }
  // A date left as it was keeps the original instant; a picked date means 00:00 UTC.
  const instant = (date, before) => (!date ? undefined : before && before.slice(0, 10) === date ? before : `${date}T00:00:00Z`);
  body.not_before = instant(draft.notBefore, original?.not_before);
  body.expires_on = instant(draft.expiresOn, original?.expires_on);
  if (original) body.status = draft.status;
  return body;
}

async function loadGroups() {
  if (!state.groups.has(state.owner.prefix)) {
    const groups = (await api("GET", `${state.owner.prefix}/tokens/permission_groups`)).result;
    groups.sort((a, b) => a.category.localeCompare(b.category) || a.name.localeCompare(b.name));
    state.groups.set(state.owner.prefix, groups);
  }
  return state.groups.get(state.owner.prefix);
}

function template(kind, groups) {
  const own = state.owner.family === "user" ? KEY.user(state.owner.id) : KEY.account(state.owner.id);
  if (kind === "create-tokens") {
    const name = state.owner.family === "user" ? "API Tokens Write" : "Account API Tokens Write";
    const group = groups.find((g) => g.name === name);
    return {
      name: "Create additional tokens",
      policies: [{ effect: "allow", groups: [group.id], resources: [resourceRow(own, "*")] }],
    };
  }
  const reads = (scope) => groups.filter((g) => g.name.endsWith(" Read") && g.scopes.includes(scope)).map((g) => g.id);
  const policies = [];
  const add = (scope, resources) => {
    const ids = reads(scope).filter((id) => !policies.some((p) => p.groups.includes(id)));
    if (ids.length) policies.push({ effect: "allow", groups: ids, resources });
  };
  if (state.owner.family === "user") {
    add("com.cloudflare.api.user", [{ type: "user" }]);
    add("com.cloudflare.api.account", [{ type: "all-accounts" }]);
    add("com.cloudflare.api.account.zone", [{ type: "all-zones" }]);
  } else {
    add("com.cloudflare.api.account", [{ type: "account", account: state.owner.id }]);
    add("com.cloudflare.api.account.zone", [{ type: "account-zones", account: state.owner.id }]);
  }
  return { name: "Read all resources", policies };
}

/** The owner's permission groups, or null after showing why they cannot be read. */
async function groupsOrError() {
  try {
    return await loadGroups();
  } catch (e) {
    main().prepend(errorBox(e, "Permission groups cannot be read with this token:"));
    return null;
  }
}

async function createView(current = () => true) {
  const groups = await groupsOrError();
  if (!groups || !current()) return;
  const draft = { name: "", status: "active", policies: [emptyPolicy()], ipIn: "", ipNotIn: "", notBefore: "", expiresOn: "", template: "custom" };
  builderView(draft, groups, null);
}

async function editRoute(id, current) {
  const token = await tokenOrList(id, current);
  if (token) await editView(token, current);
}

async function editView(token, current = () => true) {
  const groups = await groupsOrError();
  if (!groups || !current()) return;
  const ranges = token.condition?.request_ip ?? {};
  const draft = {
    name: token.name,
    status: token.status === "expired" ? "active" : token.status,
    policies: token.policies.map(draftPolicy),
    ipIn: (ranges.in ?? []).join("\n"),
    ipNotIn: (ranges.not_in ?? []).join("\n"),
    notBefore: token.not_before?.slice(0, 10) ?? "",
    expiresOn: token.expires_on?.slice(0, 10) ?? "",
  };
  builderView(draft, groups, token);
}

function builderView(draft, groups, original, error) {
  const form = h("form", { class: "builder", novalidate: true });
  const rerender = () => builderView(draft, groups, original);

  const templates = original
    ? null
    : h(
        "fieldset",
        { class: "templates" },
        h("legend", {}, "Start from a template"),
        [
          ["read-only", "Read all resources", "Every Read permission group on everything this owner holds."],
          ["create-tokens", "Create additional tokens", "Manage this owner's API tokens, nothing else."],
          ["custom", "Custom token", "Start from an empty policy."],
        ].map(([value, label, hint]) =>
          h(
            "div",
            { class: "choice" },
            h("input", {
              type: "radio",
              name: "template",
              id: `template-${value}`,
              value,
              checked: draft.template === value,
              onchange: () => {
                draft.template = value;
                if (value === "custom") Object.assign(draft, { name: "", policies: [emptyPolicy()] });
                else Object.assign(draft, template(value, groups));
                rerender();
                document.getElementById(`template-${value}`).focus();
              },
            }),
            h("label", { for: `template-${value}` }, h("strong", {}, label), h("span", { class: "hint" }, ` ${hint}`)),
          ),
        ),
      );

  const name = h("input", { id: "token-name", value: draft.name, maxlength: 120, oninput: () => (draft.name = name.value) });

  const policies = draft.policies.map((policy, index) => policyFieldset(policy, index, draft, groups, rerender));

  const ipIn = h("textarea", { id: "ip-in", rows: 2, oninput: () => (draft.ipIn = ipIn.value) });
  ipIn.value = draft.ipIn;
  const ipNotIn = h("textarea", { id: "ip-not-in", rows: 2, oninput: () => (draft.ipNotIn = ipNotIn.value) });
  ipNotIn.value = draft.ipNotIn;
  const notBefore = h("input", { id: "not-before", type: "date", value: draft.notBefore, oninput: () => (draft.notBefore = notBefore.value) });
  const expiresOn = h("input", { id: "expires-on", type: "date", value: draft.expiresOn, oninput: () => (draft.expiresOn = expiresOn.value) });

  form.append(
    templates,
    field("Token name", name),
    h("h2", {}, "Policies"),
    ...policies,
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: () => {
          draft.policies.push(emptyPolicy());
          rerender();
          document.getElementById(`policy-${draft.policies.length - 1}-effect`)?.focus();
        },
      },
      "Add policy",
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, "Client addresses (optional)"),
      field("Allow only from", ipIn, "CIDR ranges such as 192.0.2.0/24 or 2001:db8::/32, or single addresses, one per line. Empty: any address."),
      field("Never from", ipNotIn, "CIDR ranges or single addresses refused even when allowed above, one per line."),
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, "Time to live (optional)"),
      field("Start date", notBefore, "The token works from 00:00 UTC on this day. Empty: at once."),
      field("Expiry date", expiresOn, "The token stops working at 00:00 UTC on this day. Empty: never."),
    ),
    h("div", { class: "actions" }, h("button", { type: "submit", id: "to-summary" }, "Continue to summary"), h("button", { type: "button", class: "secondary", onclick: () => go(hashOf(state.owner)) }, "Cancel")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    summaryView(draft, groups, original);
  });

  show(
    h("h1", {}, original ? `Edit ${original.name}` : "Create an API token"),
    h("p", {}, `For ${state.owner.noun}.`),
    error ? errorBox(error, original ? "The token was not saved:" : "The token was not created:") : null,
    form,
  );
  if (error) markFields(error);
}

function policyFieldset(policy, index, draft, groups, rerender) {
  const prefix = `policy-${index}`;
  const effect = h(
    "select",
    { id: `${prefix}-effect`, onchange: () => (policy.effect = effect.value) },
    h("option", { value: "allow", selected: policy.effect === "allow" }, "Allow"),
    h("option", { value: "deny", selected: policy.effect === "deny" }, "Deny"),
  );

  const categories = [...new Set(groups.map((g) => g.category))];
  const search = h("input", { id: `${prefix}-search`, type: "search", oninput: () => renderChoices() });
  const category = h(
    "select",
    { id: `${prefix}-category`, onchange: () => renderChoices() },
    h("option", { value: "" }, "All categories"),
    categories.map((c) => h("option", { value: c }, c.replace(/_/g, " "))),
  );
  const choices = h("ul", { class: "group-choices", id: `${prefix}-groups`, "aria-label": `Permission groups of policy ${index + 1}` });
  const selected = h("p", { class: "selected", id: `${prefix}-selected`, "aria-live": "polite" });
  const renderSelected = () => {
    selected.textContent = policy.groups.length ? `Selected: ${policy.groups.map((id) => groupName(id, policy)).join(", ")}` : "No permission group selected yet.";
  };
  const renderChoices = () => {
    const needle = search.value.trim().toLowerCase();
    const matching = groups.filter((g) => (!category.value || g.category === category.value) && g.name.toLowerCase().includes(needle));
    choices.replaceChildren(
      ...matching.map((g) => {
        const id = `${prefix}-group-${g.id}`;
        return h(
          "li",
          {},
          h("input", {
            type: "checkbox",
            id,
            checked: policy.groups.includes(g.id),
            onchange: (e) => {
              if (e.target.checked) policy.groups.push(g.id);
              else policy.groups = policy.groups.filter((x) => x !== g.id);
              renderSelected();
              renderResources();
            },
          }),
          h("label", { for: id }, g.name, h("span", { class: "hint" }, ` ${g.scopes.map(scopeName).join(", ")}`)),
        );
      }),
    );
    if (!matching.length) choices.append(h("li", {}, "No permission group matches."));
  };
  // Resources offer only what fits the chosen groups; a row that no longer fits moves to
  // the first choice that does.
  const resources = h("div", { class: "resources" });
  const fit = h("p", { class: "hint", id: `${prefix}-fit`, "aria-live": "polite" });
  const renderFit = () => {
    const names = misfits(policy, groups).map((id) => groupName(id, policy));
    fit.textContent = names.length ? `${names.join(", ")} ${names.length === 1 ? "applies" : "apply"} to none of these resources: add one it applies to, or latchkey refuses the policy.` : "";
  };
  const renderResources = () => {
    const types = fittingTypes(policy, groups);
    for (const row of policy.resources) {
      if (row.type !== "nested" && !types.some(([type]) => type === row.type)) {
        row.type = types[0][0];
        row.account ||= defaultAccount();
      }
    }
    resources.replaceChildren(
      ...policy.resources.map((row, r) =>
        resourceControls(row, `${prefix}-resource-${r}`, types, renderFit, () => {
          policy.resources.splice(r, 1);
          rerender();
        }),
      ),
    );
    renderFit();
  };
  renderChoices();
  renderSelected();
  renderResources();

  return h(
    "fieldset",
    { class: "policy", id: prefix },
    h("legend", {}, `Policy ${index + 1}`),
    field("Effect", effect),
    h(
      "div",
      { class: "group-picker" },
      h("div", { class: "toolbar" }, field("Find permission groups", search), field("Category", category)),
      choices,
      selected,
    ),
    h("h3", {}, "Resources"),
    resources,
    fit,
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          onclick: () => {
            policy.resources.push({ type: fittingTypes(policy, groups).find(([type]) => type !== "user")?.[0] ?? "account", account: defaultAccount(), key: "" });
            rerender();
          },
        },
        "Add resource",
      ),
      draft.policies.length > 1
        ? h(
            "button",
            {
              type: "button",
              class: "danger",
              onclick: () => {
                draft.policies.splice(index, 1);
                rerender();
              },
            },
            `Remove policy ${index + 1}`,
          )
        : null,
    ),
  );
}

function resourceControls(row, id, types, onChange, onRemove) {
  if (row.type === "nested") {
    return h("div", { class: "resource" }, h("p", { id }, h("code", {}, `${row.key}: ${JSON.stringify(row.value)}`)), h("button", { type: "button", class: "secondary", onclick: onRemove }, "Remove resource"));
  }
  const type = h(
    "select",
    {
      id,
      onchange: () => {
        row.type = type.value;
        row.account ||= defaultAccount();
        renderDetail();
        onChange();
      },
    },
    types.map(([value, label]) => h("option", { value, selected: row.type === value }, label)),
  );
  const detail = h("div", { class: "resource-detail" });
  const renderDetail = () => {
    if (row.type === "account" || row.type === "account-zones") {
      if (state.owner.family === "account") {
        detail.replaceChildren(h("p", {}, `Account ${accountName(state.owner.id)}`));
        row.account = state.owner.id;
        return;
      }
      const account = h(
        "select",
        { id: `${id}-account`, onchange: () => (row.account = account.value) },
        state.accounts.map((a) => h("option", { value: a.id, selected: a.id === row.account }, a.name)),
      );
      if (!state.accounts.some((a) => a.id === row.account) && row.account) {
        account.append(h("option", { value: row.account, selected: true }, row.account));
      }
      detail.replaceChildren(field("Account", account));
    } else if (row.type === "key") {
      const key = h("input", {
        id: `${id}-key`,
        value: row.key ?? "",
        placeholder: "com.cloudflare.api.account.zone.<zone id>",
        oninput: () => {
          row.key = key.value;
          onChange();
        },
      });
      detail.replaceChildren(field("Resource key", key));
    } else {
      detail.replaceChildren();
    }
  };
  renderDetail();
  return h("div", { class: "resource" }, field("Applies to", type), detail, h("button", { type: "button", class: "secondary", onclick: onRemove }, "Remove resource"));
}

function summaryView(draft, groups, original) {
  const body = draftBody(draft, original);
  const ipIn = cidrs(draft.ipIn);
  const ipNotIn = cidrs(draft.ipNotIn);
  const unfit = draft.policies
    .map((policy, index) => [index, misfits(policy, groups)])
    .filter(([, ids]) => ids.length)
    .map(([index, ids]) => `Policy ${index + 1}: ${ids.map((id) => groupName(id, draft.policies[index])).join(", ")} ${ids.length === 1 ? "applies" : "apply"} to none of its resources, so latchkey will refuse it. Go back and add a resource ${ids.length === 1 ? "it applies" : "they apply"} to.`);
  show(
    h("h1", {}, original ? `Review changes to ${original.name}` : "Review your token"),
    unfit.length ? h("div", { class: "warning-box", id: "summary-warning", role: "alert" }, unfit.map((text) => h("p", {}, text))) : null,
    h(
      "dl",
      { class: "details", id: "summary" },
      [
        ["Name", draft.name || "(no name)"],
        ["Owner", state.owner.noun],
        ["Policies", h("ol", { class: "policies" }, draft.policies.map((p) => h("li", {}, policySentence(p))))],
        ["Allowed client addresses", ipIn.length ? ipIn.join(", ") : "any"],
        ["Refused client addresses", ipNotIn.length ? ipNotIn.join(", ") : "none"],
        ["Starts", body.not_before ? when(body.not_before) : "at once"],
        ["Expires", body.expires_on ? when(body.expires_on) : "never"],
      ].map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
    ),
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        {
          type: "button",
          id: "submit-token",
          onclick: async () => {
            try {
              if (original) {
                await api("PUT", `${state.owner.prefix}/tokens/${original.id}`, body);
                go(hashOf(state.owner, `/${original.id}`), "Changes saved.", true);
              } else {
                const created = (await api("POST", `${state.owner.prefix}/tokens`, body)).result;
                // A reload shows the new token (its secret is shown only here, once).
                history.replaceState(null, "", hashOf(state.owner, `/${created.id}`));
                secretView(`Token "${created.name}" created`, created.value);
              }
            } catch (e) {
              builderView(draft, groups, original, e);
            }
          },
        },
        original ? "Save changes" : "Create token",
      ),
      h("button", { type: "button", class: "secondary", onclick: () => builderView(draft, groups, original) }, "Back to edit"),
    ),
  );
}

// ---------------------------------------------------------------------------------------
// Start

async function start() {
  document.getElementById("sign-out").addEventListener("click", () => signOut());
  const saved = sessionStorage.getItem(SESSION_KEY);
  if (!saved) {
    signInView();
    return;
  }
  try {
    await signIn(saved);
    await route();
  } catch (e) {
    signOut(false);
    signInView(e);
  }
}

start();
