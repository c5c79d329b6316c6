// Conformance tests: drive a running latchkey with the official Cloudflare
// TypeScript SDK (npm `cloudflare` 7.3.0) and Node's built-in test runner.
//
// Nothing here talks HTTP directly: every request is made by the SDK through
// its normal methods, with only the base URL pointed at latchkey.
//
// Run them through scripts/sdk/run, which installs the SDK and passes the target:
//   LATCHKEY_URL         base URL including /client/v4, e.g. http://127.0.0.1:8787/client/v4
//   LATCHKEY_TOKEN       secret of an admin *user* token
//   LATCHKEY_ACCOUNT_ID  32-hex id of an account the admin's user is a member of
//   LATCHKEY_USER_ID     id of the admin's user
//
// The two token families (user tokens under /user/tokens, account-owned tokens
// under /accounts/{account_id}/tokens) take their arguments slightly
// differently, so each family below lists its exact SDK calls in `sdk`; the
// tests are written once and run for both.
//
// Every token a test creates is named with this run's unique prefix and
// deleted again, so the tests can be rerun against the same server.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import Cloudflare, { AuthenticationError, NotFoundError, PermissionDeniedError } from 'cloudflare';
import { VERSION } from 'cloudflare/version';

function env(name) {
  const value = (process.env[name] ?? '').trim();
  if (!value) throw new Error(`${name} is not set: run these tests through scripts/sdk/run (see its header)`);
  return value;
}

const BASE_URL = env('LATCHKEY_URL');
const ADMIN_TOKEN = env('LATCHKEY_TOKEN');
const ACCOUNT_ID = env('LATCHKEY_ACCOUNT_ID');
const USER_ID = env('LATCHKEY_USER_ID');

// Every token name starts with this, so our tokens can be told apart from others.
const RUN = `latchkey-sdk-node-${randomBytes(4).toString('hex')}-`;

const TOKEN_ID = /^[0-9a-f]{32}$/;
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

// Tests run from the loopback interface, so this condition must let them in.
const CONDITION = { request_ip: { in: ['127.0.0.0/8', '::1/128'], not_in: ['10.0.0.0/8'] } };

// A week from now, whole seconds, in the documented RFC 3339 "Z" form.
const EXPIRES_ON = new Date(Math.floor(Date.now() / 1000) * 1000 + 7 * 24 * 3600 * 1000)
  .toISOString()
  .replace('.000Z', 'Z');

// A fresh SDK client that authenticates with `secret` (Authorization: Bearer).
// The null credentials stop the SDK from adding CLOUDFLARE_API_KEY /
// CLOUDFLARE_EMAIL etc. from the environment next to the token.
function clientFor(secret) {
  return new Cloudflare({ apiToken: secret, apiKey: null, apiEmail: null, userServiceKey: null, baseURL: BASE_URL });
}

const admin = clientFor(ADMIN_TOKEN);

const account = { account_id: ACCOUNT_ID };

const FAMILIES = [
  {
    name: 'user',
    secretPrefix: 'cfut_',
    group: { id: '0cc3a61731504c89b99ec1be78b77aa0', name: 'API Tokens Read', scope: 'com.cloudflare.api.user' },
    resourceKey: `com.cloudflare.api.user.${USER_ID}`,
    sdk: {
      permissionGroups: (client, query) => client.user.tokens.permissionGroups.list(query),
      create: (client, body) => client.user.tokens.create(body),
      get: (client, id) => client.user.tokens.get(id),
      update: (client, id, body) => client.user.tokens.update(id, body),
      roll: (client, id) => client.user.tokens.value.update(id),
      delete: (client, id) => client.user.tokens.delete(id),
      verify: (client) => client.user.tokens.verify(),
      list: (client, query) => client.user.tokens.list(query),
    },
  },
  {
    name: 'account',
    secretPrefix: 'cfat_',
    group: {
      id: 'eb56a6953c034b9d97dd838155666f06',
      name: 'Account API Tokens Read',
      scope: 'com.cloudflare.api.account',
    },
    resourceKey: `com.cloudflare.api.account.${ACCOUNT_ID}`,
    sdk: {
      permissionGroups: (client, query) => client.accounts.tokens.permissionGroups.list({ ...account, ...query }),
      create: (client, body) => client.accounts.tokens.create({ ...account, ...body }),
      get: (client, id) => client.accounts.tokens.get(id, account),
      update: (client, id, body) => client.accounts.tokens.update(id, { ...account, ...body }),
      roll: (client, id) => client.accounts.tokens.value.update(id, account),
      delete: (client, id) => client.accounts.tokens.delete(id, account),
      verify: (client) => client.accounts.tokens.verify(account),
      list: (client, query) => client.accounts.tokens.list({ ...account, ...query }),
    },
  },
];

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

function policyFor(family) {
  return { effect: 'allow', permission_groups: [{ id: family.group.id }], resources: { [family.resourceKey]: '*' } };
}

// [family, token id] of every token created and not yet deleted; the `after`
// hook at the bottom deletes whatever is left.
const created = [];

function forgetToken(family, id) {
  const index = created.findIndex(([f, tokenId]) => f === family && tokenId === id);
  if (index >= 0) created.splice(index, 1);
}

// Create a token with this family's policy, the IP condition and an expiry.
async function createToken(family, name) {
  const token = await family.sdk.create(admin, {
    name,
    policies: [policyFor(family)],
    condition: CONDITION,
    expires_on: EXPIRES_ON,
  });
  assert.ok(token?.id, `create returned no token id: ${JSON.stringify(token)}`);
  created.push([family, token.id]);
  return token;
}

// Delete a token we created; a token that is already gone is fine.
async function deleteToken(family, id) {
  try {
    await family.sdk.delete(admin, id);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  forgetToken(family, id);
}

// Everything an SDK pager yields (a token list fetches page=1, 2, ... until one
// is empty). A repeated id fails at once; that also stops a pager that would
// never end because the server keeps answering pages past the end with data.
async function collect(pager) {
  const items = [];
  const ids = new Set();
  for await (const item of pager) {
    assert.ok(!ids.has(item.id), `the pager yielded ${item.id} twice`);
    ids.add(item.id);
    items.push(item);
  }
  return items;
}

// `promise` must reject with the SDK's `ErrorClass` for HTTP `status`
// (and carry error `code`, if given).
async function expectApiError(promise, ErrorClass, status, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof ErrorClass, `expected ${ErrorClass.name}, got ${err?.constructor?.name}: ${err?.message}`);
    assert.equal(err.status, status);
    if (code !== undefined) {
      const codes = (err.errors ?? []).map((e) => e.code);
      assert.ok(codes.includes(code), `expected error code ${code}, got ${JSON.stringify(codes)}`);
    }
    return true;
  });
}

const sorted = (list) => [...(list ?? [])].sort();

// `token` (a create/get/update/list result) holds what createToken sent.
function assertMatchesRequest(token, family, name) {
  assert.match(token.id ?? '', TOKEN_ID, `id is not 32 lowercase hex: ${token.id}`);
  assert.equal(token.name, name);
  assert.match(token.expires_on ?? '', RFC3339_UTC);
  assert.equal(Date.parse(token.expires_on), Date.parse(EXPIRES_ON), `expires_on ${token.expires_on} != ${EXPIRES_ON}`);
  assert.match(token.issued_on ?? '', RFC3339_UTC, `issued_on is not RFC 3339 UTC: ${token.issued_on}`);

  assert.equal(token.policies?.length, 1, `expected one policy: ${JSON.stringify(token.policies)}`);
  const [policy] = token.policies;
  assert.equal(policy.effect, 'allow');
  assert.deepEqual(
    policy.permission_groups.map((group) => group.id),
    [family.group.id],
  );
  assert.deepEqual(policy.resources, { [family.resourceKey]: '*' });

  const requestIp = token.condition?.request_ip;
  assert.ok(requestIp, `condition is missing: ${JSON.stringify(token.condition)}`);
  assert.deepEqual(sorted(requestIp.in), sorted(CONDITION.request_ip.in));
  assert.deepEqual(sorted(requestIp.not_in), sorted(CONDITION.request_ip.not_in));
}

function assertIsSecret(secret, family) {
  assert.equal(typeof secret, 'string', `secret is not a string: ${JSON.stringify(secret)}`);
  assert.ok(secret.startsWith(family.secretPrefix), `secret does not start with ${family.secretPrefix}`);
  assert.ok(secret.length >= 40 && secret.length <= 80, `secret is ${secret.length} characters long, not 40..80`);
}

// Call the family's verify endpoint authenticated as `secret`.
const verify = (family, secret) => family.sdk.verify(clientFor(secret));

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

test('the SDK is the pinned version', () => {
  assert.equal(VERSION, '7.3.0');
});

const PAGED_TOKENS = 60; // more than the largest page (per_page maximum is 50)
const PER_PAGE = 20;

for (const family of FAMILIES) {
  describe(`${family.name} tokens`, () => {
    const { sdk } = family;

    test('permission groups: catalog and exact name filter', async () => {
      const catalog = await collect(sdk.permissionGroups(admin, {}));
      assert.ok(catalog.length > 1, 'the unfiltered catalog should hold more than one group');
      const group = catalog.find((g) => g.id === family.group.id);
      assert.ok(group, `${family.group.name} is not in the catalog`);
      assert.equal(group.name, family.group.name);
      assert.ok(group.scopes?.includes(family.group.scope), `scopes ${JSON.stringify(group.scopes)}`);

      // `name` is an exact match: the full name finds just that group ...
      const filtered = await collect(sdk.permissionGroups(admin, { name: family.group.name }));
      assert.deepEqual(
        filtered.map((g) => [g.id, g.name]),
        [[family.group.id, family.group.name]],
      );
      // ... and a prefix of it ("API Tokens" / "Account API Tokens") finds none.
      const prefix = family.group.name.replace(/ Read$/, '');
      assert.deepEqual(await collect(sdk.permissionGroups(admin, { name: prefix })), []);
    });

    test('create returns the token and its secret', async () => {
      const name = `${RUN}${family.name}-create`;
      const token = await sdk.create(admin, {
        name,
        policies: [policyFor(family)],
        condition: CONDITION,
        expires_on: EXPIRES_ON,
      });
      created.push([family, token.id]);

      assertMatchesRequest(token, family, name);
      assert.equal(token.status, 'active');
      assertIsSecret(token.value, family);
    });

    test('verify with the new secret', async () => {
      const token = await createToken(family, `${RUN}${family.name}-verify`);
      const result = await verify(family, token.value);
      assert.equal(result.id, token.id);
      assert.equal(result.status, 'active');
      if (result.expires_on !== undefined) {
        // optional in verify, but must be right if sent
        assert.equal(Date.parse(result.expires_on), Date.parse(EXPIRES_ON));
      }
    });

    test('get matches and hides the secret', async () => {
      const token = await createToken(family, `${RUN}${family.name}-get`);
      const got = await sdk.get(admin, token.id);
      assertMatchesRequest(got, family, token.name);
      assert.equal(got.status, 'active');
      assert.ok(!('value' in got), 'get must not return the secret');
    });

    test('update disables, then enables again', async () => {
      const token = await createToken(family, `${RUN}${family.name}-update`);
      const newName = `${token.name}-renamed`;
      // PUT is a full replacement, so send everything the token should keep.
      const put = (status) =>
        sdk.update(admin, token.id, {
          name: newName,
          policies: [policyFor(family)],
          condition: CONDITION,
          expires_on: EXPIRES_ON,
          status,
        });

      const updated = await put('disabled');
      assert.equal(updated.id, token.id);
      assert.equal(updated.name, newName);
      assert.equal(updated.status, 'disabled');
      assert.ok(!('value' in updated), 'update must not return the secret');

      const got = await sdk.get(admin, token.id);
      assertMatchesRequest(got, family, newName);
      assert.equal(got.status, 'disabled');

      // A disabled token no longer verifies.
      await expectApiError(verify(family, token.value), AuthenticationError, 401, 1000);

      // Enabling it again brings the same secret back to life.
      assert.equal((await put('active')).status, 'active');
      assert.equal((await sdk.get(admin, token.id)).status, 'active');
      assert.equal((await verify(family, token.value)).status, 'active');
    });

    test('roll replaces the secret', async () => {
      const token = await createToken(family, `${RUN}${family.name}-roll`);
      const oldSecret = token.value;

      // PUT .../value; the SDK sends no request body for it.
      const newSecret = await sdk.roll(admin, token.id);
      assertIsSecret(newSecret, family);
      assert.notEqual(newSecret, oldSecret);

      assert.equal((await verify(family, newSecret)).id, token.id);
      await expectApiError(verify(family, oldSecret), AuthenticationError, 401, 1000);

      // Rolling changes only the secret.
      const got = await sdk.get(admin, token.id);
      assertMatchesRequest(got, family, token.name);
      assert.equal(got.status, 'active');

      // The token's own policy ("... API Tokens Read") lets the new secret read
      // it; the old secret is refused on a normal endpoint with 403 / 9109.
      assert.equal((await sdk.get(clientFor(newSecret), token.id)).id, token.id);
      await expectApiError(sdk.get(clientFor(oldSecret), token.id), PermissionDeniedError, 403, 9109);
    });

    test('delete', async () => {
      const token = await createToken(family, `${RUN}${family.name}-delete`);

      const deleted = await sdk.delete(admin, token.id);
      assert.deepEqual(deleted, { id: token.id });
      forgetToken(family, token.id);

      await expectApiError(sdk.get(admin, token.id), NotFoundError, 404);
      await expectApiError(verify(family, token.value), AuthenticationError, 401, 1000);
    });

    test(`list auto-pages over ${PAGED_TOKENS} tokens`, async () => {
      const prefix = `${RUN}${family.name}-paged-`;
      const createdIds = new Set();
      try {
        for (let i = 0; i < PAGED_TOKENS; i++) {
          createdIds.add((await createToken(family, `${prefix}${String(i).padStart(2, '0')}`)).id);
        }
        assert.equal(createdIds.size, PAGED_TOKENS, 'create returned duplicate ids');

        // Auto-paging: `for await (const token of sdk.list(...))` inside collect.
        const listed = await collect(sdk.list(admin, { per_page: PER_PAGE }));
        const ours = listed.filter((t) => (t.name ?? '').startsWith(prefix)).map((t) => t.id);
        assert.equal(ours.length, PAGED_TOKENS);
        assert.deepEqual(new Set(ours), createdIds);
        assert.ok(listed.every((t) => !('value' in t)), 'list must not return secrets');

        // One page holds exactly per_page tokens when more exist ...
        const first = await sdk.list(admin, { per_page: PER_PAGE });
        assert.equal(first.result.length, PER_PAGE);
        // ... the last page holds the rest, and the page after it is empty.
        const lastPage = Math.ceil(listed.length / PER_PAGE);
        const last = await sdk.list(admin, { per_page: PER_PAGE, page: lastPage });
        assert.equal(last.result.length, listed.length - (lastPage - 1) * PER_PAGE);
        const pastTheEnd = await sdk.list(admin, { per_page: PER_PAGE, page: lastPage + 1 });
        assert.deepEqual(pastTheEnd.result, []);
        assert.equal(pastTheEnd.hasNextPage(), false);
      } finally {
        for (const id of createdIds) await deleteToken(family, id);
      }
    });
  });
}

// After all tests: delete every token of this run that is left, and check
// they are gone. Leftovers are found both in `created` and by name prefix,
// which also catches a token whose create call failed after the server had
// stored it.
after(async () => {
  const ours = async (family) =>
    (await collect(family.sdk.list(admin, { per_page: 50 })))
      .filter((t) => (t.name ?? '').startsWith(RUN))
      .map((t) => t.id);

  for (const [family, id] of [...created]) await deleteToken(family, id);
  for (const family of FAMILIES) {
    for (const id of await ours(family)) await deleteToken(family, id);
    assert.deepEqual(await ours(family), [], `${family.name} tokens of this run survived their deletion`);
  }
});

test('user.get and accounts.list name who the token acts for', async () => {
  const user = await admin.user.get();
  assert.equal(user.id, USER_ID);
  assert.match(user.email, /@/);
  const accounts = [];
  for await (const item of admin.accounts.list()) accounts.push(item);
  assert.deepEqual(accounts.map((a) => a.id), [ACCOUNT_ID]);
  assert.equal(accounts[0].type, 'standard');
  assert.ok(accounts[0].name);
});
