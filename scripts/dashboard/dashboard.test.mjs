// End-to-end tests of latchkey's dashboard in headless Chromium (run by scripts/dashboard-test).
//
// Environment: LATCHKEY_BASE (http://127.0.0.1:PORT), LATCHKEY_TOKEN (an admin user token),
// LATCHKEY_ACCOUNT_ID, CHROMIUM (the browser binary), SCREENSHOT_DIR (where the pictures go).
// The tests run in order in one browser: each step builds on the previous one, like a person
// working through the page.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const base = need("LATCHKEY_BASE");
const admin = need("LATCHKEY_TOKEN");
const accountId = need("LATCHKEY_ACCOUNT_ID");
const shots = need("SCREENSHOT_DIR");
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set (scripts/dashboard-test sets it)`);
  return value;
}

let browser;
let page;
const foreignRequests = [];
const consoleErrors = [];
const missingAssets = []; // the page's own files (not the API's answers) that failed

before(async () => {
  mkdirSync(shots, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  page = await context.newPage();
  page.setDefaultTimeout(5000);
  page.on("request", (request) => {
    if (!request.url().startsWith(base) && !request.url().startsWith("data:")) foreignRequests.push(request.url());
  });
  page.on("response", (response) => {
    if (response.status() >= 400 && !response.url().includes("/client/v4/")) missingAssets.push(`${response.status()} ${response.url()}`);
  });
  page.on("console", (message) => {
    // The API's own refusals (a bad token, bad input) show up as failed fetches; anything
    // else is a bug in the page.
    if (message.type() === "error" && !/Failed to load resource/.test(message.text())) consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(String(error)));
});

after(async () => {
  await browser?.close();
});

/** Calls the API directly, as a client of the secret would. */
async function call(method, path, secret, body) {
  const response = await fetch(`${base}/client/v4${path}`, {
    method,
    headers: { Authorization: `Bearer ${secret}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, body: await response.json() };
}

/** No WCAG 2.x A or AA violation that axe-core can find on the page as it is now. */
async function assertAccessible(what) {
  await page.evaluate(axeSource); // through DevTools, which the page's CSP rightly does not allow
  const result = await page.evaluate(() => window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] }));
  const problems = result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  assert.deepEqual(problems, [], `accessibility problems on ${what}`);
}

/** A create body for a token that may read its user's tokens. */
function readOnlyBody(name, userId) {
  const apiTokensRead = "0cc3a61731504c89b99ec1be78b77aa0";
  return {
    name,
    policies: [{ effect: "allow", permission_groups: [{ id: apiTokensRead }], resources: { [`com.cloudflare.api.user.${userId}`]: "*" } }],
  };
}

async function shot(name, fullPage = true) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage });
}

async function heading() {
  return (await page.locator("h1").textContent()).trim();
}

async function readSecret() {
  await page.locator("#secret").waitFor();
  const secret = await page.locator("#secret").inputValue();
  assert.match(await page.locator("#main .warning-box").textContent(), /You will not see this again/);
  return secret;
}

async function rowOf(name) {
  return page.locator("tbody tr", { has: page.getByRole("link", { name, exact: true }) });
}

test("the page is served with its own assets and a strict content security policy", async () => {
  const response = await page.goto(base + "/");
  assert.equal(response.status(), 200);
  const csp = response.headers()["content-security-policy"];
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.equal(response.headers()["x-frame-options"], "DENY");
  await page.locator("#token").waitFor();
  assert.equal(await heading(), "Sign in to latchkey");
  // Its icon is its own, so the browser asks for no /favicon.ico.
  const icon = await page.locator("link[rel=icon]").getAttribute("href");
  const iconResponse = await fetch(base + icon);
  assert.equal(iconResponse.status, 200);
  assert.equal(iconResponse.headers.get("content-type"), "image/svg+xml");
  await shot("sign-in");
  await assertAccessible("the sign-in page");
});

test("a wrong token is refused with a sentence, and nothing is kept", async () => {
  await page.fill("#token", "cfut_" + "a".repeat(46));
  await page.click("button[type=submit]");
  const alert = page.getByRole("alert");
  await alert.waitFor();
  assert.match(await alert.textContent(), /This token cannot sign in/);
  assert.match(await alert.textContent(), /code \d+/);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
});

test("signing in with the keyboard keeps the token in session storage only", async () => {
  await page.focus("#token");
  await page.keyboard.type(admin);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "API tokens" }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("latchkey.token")), admin);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.match(await page.locator("#who").textContent(), /Signed in as .+@/);
  assert.equal(await page.locator("tbody tr").count(), 1, "the admin token itself is listed");
  await assertAccessible("the token list");
});

test("a token from the 'Create additional tokens' template works and its secret is shown once", async () => {
  await page.click("#create");
  await page.getByRole("heading", { name: "Create an API token" }).waitFor();
  await page.check("#template-create-tokens");
  assert.equal(await page.inputValue("#token-name"), "Create additional tokens");
  await page.click("#to-summary");
  await page.getByRole("heading", { name: "Review your token" }).waitFor();
  assert.match(await page.locator("#summary").textContent(), /Allow API Tokens Write on this user/);
  await page.click("#submit-token");
  const secret = await readSecret();
  assert.match(secret, /^cfut_/);
  await page.click("#copy");
  await page.getByText("Copied to the clipboard.").waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  const verified = await call("GET", "/user/tokens/verify", secret);
  assert.equal(verified.status, 200);
  assert.equal(verified.body.result.status, "active");
  // It may create tokens itself, as the template says.
  const me = (await call("GET", "/user", admin)).body.result;
  const made = await call("POST", "/user/tokens", secret, readOnlyBody("made by the template token", me.id));
  assert.equal(made.status, 200, JSON.stringify(made.body));
  await page.getByRole("button", { name: "Done, I have copied it" }).click();
  await page.getByRole("heading", { name: "API tokens" }).waitFor();
  assert.ok(!(await page.content()).includes(secret), "the secret is gone from the page");
  assert.ok(!(await page.evaluate(() => JSON.stringify(sessionStorage))).includes(secret));
});

test("the 'Read all resources' template reads everything the user holds, and writes nothing", async () => {
  await page.click("#create");
  await page.check("#template-read-only");
  await page.click("#to-summary");
  const summary = await page.locator("#summary").textContent();
  assert.match(summary, /Allow API Tokens Read.* on this user/);
  assert.match(summary, /Allow .*Account Settings Read.* on all accounts/);
  assert.match(summary, /Allow .*DNS Read.* on all zones/);
  assert.doesNotMatch(summary, /Write/);
  await page.click("#submit-token");
  const secret = await readSecret();
  const id = (await call("GET", "/user/tokens/verify", secret)).body.result.id;
  assert.equal((await call("GET", "/user/tokens", secret)).status, 200, "it reads the user's tokens");
  assert.equal((await call("GET", `/accounts/${accountId}/tokens`, secret)).status, 200, "and the account's");
  const me = (await call("GET", "/user", admin)).body.result;
  assert.equal((await call("POST", "/user/tokens", secret, readOnlyBody("nope", me.id))).status, 403, "but creates nothing");
  assert.equal((await call("DELETE", `/user/tokens/${id}`, admin)).status, 200);
  await page.getByRole("button", { name: "Done, I have copied it" }).click();
});

let built; // {id, secret} of the token made with the builder

test("the policy builder makes exactly the token it summarises", async () => {
  await page.click("#create");
  await page.check("#template-custom");
  await page.fill("#token-name", "ci-dns");
  await page.fill("#policy-0-search", "dns read");
  await page.getByRole("checkbox", { name: /^DNS Read/ }).check();
  assert.match(await page.locator("#policy-0-selected").textContent(), /Selected: DNS Read/);
  await page.selectOption("#policy-0-resource-0", "account-zones");
  await page.selectOption("#policy-0-resource-0-account", accountId);
  await page.fill("#ip-not-in", "203.0.113.0/24");
  const soon = new Date(Date.now() + 3 * 24 * 3600 * 1000).toISOString().slice(0, 10);
  await page.fill("#expires-on", soon);
  await shot("builder");
  await assertAccessible("the policy builder");
  await page.click("#to-summary");
  const summary = await page.locator("#summary").textContent();
  assert.match(summary, /Allow DNS Read on all zones of account Default account/);
  assert.match(summary, /203\.0\.113\.0\/24/);
  assert.match(summary, new RegExp(`${soon} 00:00 UTC`));
  await shot("summary");
  await assertAccessible("the summary");
  await page.click("#submit-token");
  const secret = await readSecret();
  await shot("secret");
  await assertAccessible("the secret page");
  const verified = await call("GET", "/user/tokens/verify", secret);
  assert.equal(verified.status, 200);
  const token = (await call("GET", `/user/tokens/${verified.body.result.id}`, admin)).body.result;
  assert.equal(token.name, "ci-dns");
  assert.equal(token.expires_on, `${soon}T00:00:00Z`);
  assert.deepEqual(token.condition, { request_ip: { not_in: ["203.0.113.0/24"] } });
  assert.equal(token.policies.length, 1);
  assert.equal(token.policies[0].effect, "allow");
  assert.deepEqual(token.policies[0].permission_groups.map((g) => g.name), ["DNS Read"]);
  assert.deepEqual(token.policies[0].resources, {
    [`com.cloudflare.api.account.${accountId}`]: { "com.cloudflare.api.account.zone.*": "*" },
  });
  built = { id: token.id, secret };
  await page.getByRole("button", { name: "Done, I have copied it" }).click();
  const row = await rowOf("ci-dns");
  assert.match(await row.textContent(), /Expires soon/);
  assert.match(await row.textContent(), /DNS Read/);
  await shot("tokens");
});

test("bad input is refused with a sentence that names the field", async () => {
  await page.click("#create");
  await page.check("#template-custom");
  await page.fill("#token-name", "bad address");
  await page.getByRole("checkbox", { name: /^API Tokens Read/ }).check();
  await page.fill("#ip-in", "192.0.2.0/24\nnot-an-address");
  await page.click("#to-summary");
  await page.click("#submit-token");
  const alert = page.getByRole("alert");
  await alert.waitFor();
  const text = await alert.textContent();
  assert.match(text, /The token was not created/);
  assert.match(text, /Allowed client addresses, entry 2: .+\(code \d+\)/);
  assert.equal(await page.getAttribute("#ip-in", "aria-invalid"), "true");
  assert.equal(await page.evaluate(() => document.activeElement.id), "ip-in");
  assert.equal(await page.inputValue("#token-name"), "bad address", "the draft is kept");
  await shot("error");
  await assertAccessible("the builder with an error");
  // A policy without permission groups is named too.
  await page.fill("#ip-in", "");
  await page.getByRole("checkbox", { name: /^API Tokens Read/ }).uncheck();
  await page.click("#to-summary");
  await page.click("#submit-token");
  await page.getByRole("alert").waitFor();
  assert.match(await page.getByRole("alert").textContent(), /Policy 1, permission groups?/);
  await page.getByRole("button", { name: "Cancel" }).click();
});

test("the builder offers only resources that fit the chosen groups, and the summary warns", async () => {
  await page.click("#create");
  await page.check("#template-custom");
  await page.fill("#token-name", "scoped");
  const options = () => page.locator("#policy-0-resource-0 option").evaluateAll((all) => all.map((o) => o.value));
  assert.equal(await page.inputValue("#policy-0-resource-0"), "user", "the default resource");
  await page.fill("#policy-0-search", "account settings read");
  await page.getByRole("checkbox", { name: /^Account Settings Read/ }).check();
  assert.equal(await page.inputValue("#policy-0-resource-0"), "account", "'This user' does not fit an account group");
  assert.ok(!(await options()).includes("user"), `offered: ${await options()}`);
  assert.ok((await options()).includes("all-accounts") && (await options()).includes("key"));
  await page.fill("#policy-0-search", "api tokens read");
  await page.getByRole("checkbox", { name: /^API Tokens Read/ }).check();
  assert.ok((await options()).includes("user"), "a user group makes 'This user' fit again");
  assert.match(await page.locator("#policy-0-fit").textContent(), /API Tokens Read applies to none of these resources/);
  // A bare address is that address alone.
  await page.fill("#ip-in", "127.0.0.1\n::1");
  await page.click("#to-summary");
  assert.match(await page.locator("#summary-warning").textContent(), /Policy 1: API Tokens Read applies to none of its resources/);
  assert.match(await page.locator("#summary").textContent(), /127\.0\.0\.1\/32, ::1\/128/);
  await page.getByRole("button", { name: "Back to edit" }).click();
  await page.getByRole("button", { name: "Add resource" }).click();
  await page.selectOption("#policy-0-resource-1", "user");
  assert.equal(await page.locator("#policy-0-fit").textContent(), "");
  await page.click("#to-summary");
  assert.equal(await page.locator("#summary-warning").count(), 0);
  await page.click("#submit-token");
  const secret = await readSecret();
  const verified = await call("GET", "/user/tokens/verify", secret);
  assert.equal(verified.status, 200, "the test's requests come from 127.0.0.1");
  const token = (await call("GET", `/user/tokens/${verified.body.result.id}`, admin)).body.result;
  assert.deepEqual(token.condition, { request_ip: { in: ["127.0.0.1/32", "::1/128"] } });
  const me = (await call("GET", "/user", admin)).body.result;
  assert.deepEqual(Object.keys(token.policies[0].resources).sort(), [`com.cloudflare.api.account.${accountId}`, `com.cloudflare.api.user.${me.id}`].sort());
  assert.equal((await call("DELETE", `/user/tokens/${token.id}`, admin)).status, 200);
  await page.getByRole("button", { name: "Done, I have copied it" }).click();
  await page.getByRole("heading", { name: "API tokens" }).waitFor();
});

test("roll shows the new secret once; the old one stops working", async () => {
  const row = await rowOf("ci-dns");
  await row.getByRole("button", { name: "Roll ci-dns" }).click();
  await page.locator("#confirm[open]").waitFor();
  await page.keyboard.press("Escape"); // the dialog is keyboard-operable; Escape cancels
  assert.equal(await heading(), "API tokens");
  assert.equal((await call("GET", "/user/tokens/verify", built.secret)).status, 200, "cancel rolled nothing");
  await row.getByRole("button", { name: "Roll ci-dns" }).click();
  await page.getByRole("button", { name: "Roll secret" }).click();
  const rolled = await readSecret();
  assert.notEqual(rolled, built.secret);
  assert.notEqual((await call("GET", "/user/tokens/verify", built.secret)).status, 200);
  assert.equal((await call("GET", "/user/tokens/verify", rolled)).status, 200);
  built.secret = rolled;
  await page.getByRole("button", { name: "Done, I have copied it" }).click();
});

test("disable asks first (in red, as the row's Delete), and enable changes what the secret can do", async () => {
  // Every button of a row stays on one line at this width.
  await (await rowOf("ci-dns")).getByRole("button", { name: "Delete ci-dns" }).waitFor();
  const tops = await (await rowOf("ci-dns")).locator("button").evaluateAll((all) => all.map((b) => b.getBoundingClientRect().top));
  assert.equal(new Set(tops).size, 1, `the row's buttons sit on ${new Set(tops).size} lines`);
  await (await rowOf("ci-dns")).getByRole("button", { name: "Disable ci-dns" }).click();
  await page.locator("#confirm[open]").waitFor();
  assert.ok(await page.locator("#confirm-warning").isHidden(), "no warning: it is not the signed-in token");
  const colour = (selector) => page.locator(selector).evaluate((b) => getComputedStyle(b).backgroundColor);
  assert.equal(await colour("#confirm-ok"), await colour("tbody tr:first-child button.danger"));
  await page.getByRole("button", { name: "Cancel" }).click();
  assert.equal((await call("GET", "/user/tokens/verify", built.secret)).status, 200, "cancel disabled nothing");
  await (await rowOf("ci-dns")).getByRole("button", { name: "Disable ci-dns" }).click();
  await page.getByRole("button", { name: "Disable token" }).click();
  await page.getByText("ci-dns is now disabled.").waitFor();
  assert.match(await (await rowOf("ci-dns")).textContent(), /disabled/);
  assert.notEqual((await call("GET", "/user/tokens/verify", built.secret)).status, 200);
  await (await rowOf("ci-dns")).getByRole("button", { name: "Enable ci-dns" }).click();
  await page.getByText("ci-dns is now enabled.").waitFor();
  assert.equal((await call("GET", "/user/tokens/verify", built.secret)).status, 200);
  const token = (await call("GET", `/user/tokens/${built.id}`, admin)).body.result;
  assert.deepEqual(token.condition, { request_ip: { not_in: ["203.0.113.0/24"] } }, "a status change keeps the rest");
});

test("each view has its own address: Back, Forward and reload work", async () => {
  assert.equal(new URL(page.url()).hash, "#/user/tokens");
  await page.getByRole("link", { name: "ci-dns", exact: true }).click();
  await page.getByRole("heading", { name: "ci-dns", exact: true }).waitFor();
  assert.equal(new URL(page.url()).hash, `#/user/tokens/${built.id}`);
  await page.goBack();
  await page.getByRole("heading", { name: "API tokens" }).waitFor();
  await page.goForward();
  await page.getByRole("heading", { name: "ci-dns", exact: true }).waitFor();
  await page.reload();
  await page.getByRole("heading", { name: "ci-dns", exact: true }).waitFor();
  await page.getByRole("button", { name: "Edit" }).click();
  await page.getByRole("heading", { name: "Edit ci-dns", exact: true }).waitFor();
  assert.equal(new URL(page.url()).hash, `#/user/tokens/${built.id}/edit`);
  await page.reload();
  await page.getByRole("heading", { name: "Edit ci-dns", exact: true }).waitFor();
  await page.goBack();
  await page.getByRole("heading", { name: "ci-dns", exact: true }).waitFor();
  await page.getByRole("link", { name: "← All tokens" }).click();
  await page.getByRole("heading", { name: "API tokens" }).waitFor();
  assert.equal(new URL(page.url()).hash, "#/user/tokens");
  // The account's list has its own address too.
  await page.goto(`${base}/#/accounts/${accountId}/tokens`);
  await page.locator("caption, p").filter({ hasText: /account Default account|No tokens yet/ }).first().waitFor();
  assert.equal(await page.inputValue("#owner"), "1");
  await page.goBack();
  await page.locator("caption").filter({ hasText: "tokens of your user" }).waitFor();
  assert.equal(await page.inputValue("#owner"), "0");
});

test("view and edit a token with the same builder", async () => {
  await page.getByRole("link", { name: "ci-dns", exact: true }).click();
  await page.getByRole("heading", { name: "ci-dns" }).waitFor();
  assert.match(await page.locator(".policies").textContent(), /Allow DNS Read on all zones of account Default account/);
  await shot("token");
  await assertAccessible("the token page");
  await page.getByRole("button", { name: "Edit" }).click();
  await page.getByRole("heading", { name: "Edit ci-dns" }).waitFor();
  assert.equal(await page.inputValue("#policy-0-resource-0"), "account-zones", "the builder reads the token back");
  await page.fill("#token-name", "ci-dns-renamed");
  await page.click("#to-summary");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByText("Changes saved.").waitFor();
  assert.equal(await heading(), "ci-dns-renamed");
  const token = (await call("GET", `/user/tokens/${built.id}`, admin)).body.result;
  assert.equal(token.name, "ci-dns-renamed");
  assert.deepEqual(token.policies[0].resources, {
    [`com.cloudflare.api.account.${accountId}`]: { "com.cloudflare.api.account.zone.*": "*" },
  });
  await page.getByRole("link", { name: "← All tokens" }).click();
});

test("filter and paging", async () => {
  const me = (await call("GET", "/user", admin)).body.result;
  for (let i = 0; i < 21; i++) {
    const made = await call("POST", "/user/tokens", admin, readOnlyBody(`bulk-${String(i).padStart(2, "0")}`, me.id));
    assert.equal(made.status, 200);
  }
  await page.selectOption("#owner", { index: 0 }); // reloads the list
  await page.getByText("Page 1 of 2").waitFor();
  assert.equal(await page.locator("tbody tr").count(), 20);
  await page.getByRole("button", { name: "Next page" }).click();
  await page.getByText("Page 2 of 2").waitFor();
  // admin, "Create additional tokens", the one it made, ci-dns-renamed, 21 bulk: 25.
  assert.equal(await page.locator("tbody tr").count(), 5);
  await page.fill("#filter", "bulk-1");
  await page.getByText("Page 1 of 1").waitFor();
  assert.equal(await page.locator("tbody tr").count(), 10);
  await page.fill("#filter", "");
  await page.selectOption("#status-filter", "active");
  await page.getByText("Page 1 of 2").waitFor();
  await page.selectOption("#status-filter", "all");
});

test("delete asks first, then the token is gone", async () => {
  const row = await rowOf("ci-dns-renamed");
  await row.getByRole("button", { name: "Delete ci-dns-renamed" }).click();
  await page.getByRole("button", { name: "Cancel" }).click();
  assert.equal((await call("GET", `/user/tokens/${built.id}`, admin)).status, 200);
  await row.getByRole("button", { name: "Delete ci-dns-renamed" }).click();
  await page.getByRole("button", { name: "Delete token" }).click();
  await page.getByText("ci-dns-renamed was deleted.").waitFor();
  assert.equal((await call("GET", `/user/tokens/${built.id}`, admin)).status, 404);
  assert.notEqual((await call("GET", "/user/tokens/verify", built.secret)).status, 200);
});

test("account tokens: the same page under the account", async () => {
  await page.selectOption("#owner", { label: "Account: Default account" });
  await page.getByText("No tokens yet.", { exact: false }).waitFor();
  await page.click("#create");
  await page.check("#template-read-only");
  await page.click("#to-summary");
  assert.match(await page.locator("#summary").textContent(), /Allow .*Account API Tokens Read.* on account Default account/);
  await page.click("#submit-token");
  const secret = await readSecret();
  assert.match(secret, /^cfat_/);
  assert.equal((await call("GET", `/accounts/${accountId}/tokens/verify`, secret)).status, 200);
  await page.getByRole("button", { name: "Done, I have copied it" }).click();
  await page.locator("caption").getByText("1 of 1 tokens of account Default account").waitFor();
  assert.equal(await page.locator("tbody tr").count(), 1);
});

test("a narrow screen gets cards, without sideways scrolling", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.selectOption("#owner", { index: 0 });
  await page.getByText("Page 1 of 2").waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
  await shot("tokens-narrow", false);
  await assertAccessible("the narrow token list");
  await page.setViewportSize({ width: 1280, height: 860 });
});

test("an expired token offers no Disable", async () => {
  const me = (await call("GET", "/user", admin)).body.result;
  const made = await call("POST", "/user/tokens", admin, { ...readOnlyBody("long gone", me.id), expires_on: "2020-01-01T00:00:00Z" });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  await page.selectOption("#owner", { index: 0 });
  await page.fill("#filter", "long gone");
  const row = await rowOf("long gone");
  await row.waitFor();
  assert.match(await row.textContent(), /expired/);
  assert.equal(await row.getByRole("button", { name: /^(Disable|Enable) / }).count(), 0);
  assert.equal(await row.getByRole("button", { name: "Delete long gone" }).count(), 1);
  assert.equal((await call("DELETE", `/user/tokens/${made.body.result.id}`, admin)).status, 200);
  await page.fill("#filter", "");
});

test("an exposed token says where its secret was found and offers Roll now", async () => {
  const me = (await call("GET", "/user", admin)).body.result;
  const made = await call("POST", "/user/tokens", admin, readOnlyBody("leaky", me.id));
  assert.equal(made.status, 200);
  const leak = await fetch(`${base}/latchkey/v1/leaks`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ secrets: [made.body.result.value], source: "gitleaks", url: "https://ci.example.com/job/42" }),
  });
  assert.equal(leak.status, 200);
  await page.selectOption("#owner", { index: 0 });
  await page.fill("#filter", "leaky");
  const row = await rowOf("leaky");
  await row.waitFor();
  assert.match(await row.textContent(), /exposed/);
  assert.equal(await row.getByRole("button", { name: /^(Disable|Enable) / }).count(), 0, "an exposed token is not enabled again");
  await row.getByRole("link", { name: "leaky", exact: true }).click();
  await page.locator("#exposure").waitFor();
  const box = await page.locator("#exposure").textContent();
  assert.match(box, /a leak report/);
  assert.match(box, /gitleaks/);
  assert.match(box, /https:\/\/ci\.example\.com\/job\/42/);
  await shot("exposed", false);
  await assertAccessible("an exposed token");
  await page.locator("#exposure").getByRole("button", { name: "Roll now" }).click();
  await page.getByRole("button", { name: "Roll secret" }).click();
  const rolled = await readSecret();
  assert.equal((await call("GET", "/user/tokens/verify", rolled)).status, 200);
  const token = (await call("GET", `/user/tokens/${made.body.result.id}`, admin)).body.result;
  assert.equal(token.status, "active");
  assert.equal(token.exposure, undefined);
  assert.equal((await call("DELETE", `/user/tokens/${token.id}`, admin)).status, 200);
  await page.getByRole("button", { name: "Done, I have copied it" }).click();
  await page.fill("#filter", "");
});

test("sign-out forgets the token", async () => {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to latchkey" }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await page.reload();
  await page.getByRole("heading", { name: "Sign in to latchkey" }).waitFor();
});

test("the token you are signed in with: each destructive step warns, and a roll keeps you in", async () => {
  const me = (await call("GET", "/user/tokens/verify", admin)).body.result;
  const name = (await call("GET", `/user/tokens/${me.id}`, admin)).body.result.name;
  await page.fill("#token", admin);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "API tokens" }).waitFor();
  for (const verb of ["Disable", "Delete", "Roll"]) {
    await page.fill("#filter", name);
    await (await rowOf(name)).getByRole("button", { name: `${verb} ${name}` }).click();
    await page.locator("#confirm[open]").waitFor();
    assert.match(await page.locator("#confirm-warning").textContent(), /This is the token you are signed in with/, verb);
    await shot(`own-token-${verb.toLowerCase()}`, false);
    await page.getByRole("button", { name: "Cancel" }).click();
  }
  assert.equal((await call("GET", "/user/tokens/verify", admin)).status, 200, "nothing happened on Cancel");
  await (await rowOf(name)).getByRole("button", { name: `Roll ${name}` }).click();
  await page.getByRole("button", { name: "Roll secret" }).click();
  const rolled = await readSecret();
  assert.notEqual((await call("GET", "/user/tokens/verify", admin)).status, 200, "the old secret is dead");
  await page.getByRole("button", { name: "Done, I have copied it" }).click();
  await page.getByRole("heading", { name: "API tokens" }).waitFor();
  await page.fill("#filter", "");
  await page.locator("caption").waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("latchkey.token")), rolled, "the page moved to the new secret");
  // Disabling it signs the page out, and says why.
  await page.fill("#filter", name);
  await (await rowOf(name)).getByRole("button", { name: `Disable ${name}` }).click();
  await page.getByRole("button", { name: "Disable token" }).click();
  await page.getByRole("heading", { name: "Sign in to latchkey" }).waitFor();
  assert.match(await page.getByRole("status").textContent(), /It was the token you were signed in with/);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assert.notEqual((await call("GET", "/user/tokens/verify", rolled)).status, 200);
});

test("nothing was fetched from anywhere else, no file of the page was missing, and the page logged no errors", () => {
  assert.deepEqual(foreignRequests, []);
  assert.deepEqual(missingAssets, []);
  assert.deepEqual(consoleErrors, []);
});
