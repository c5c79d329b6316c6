"""Conformance tests: drive a running latchkey with the official Cloudflare Python SDK.

Nothing here talks HTTP directly: every request is made by `cloudflare==5.9.0`
through its normal methods, with only the base URL pointed at latchkey.

Run them through scripts/sdk/run, which installs the SDK and passes the target:

    LATCHKEY_URL         base URL including /client/v4, e.g. http://127.0.0.1:8787/client/v4
    LATCHKEY_TOKEN       secret of an admin *user* token
    LATCHKEY_ACCOUNT_ID  32-hex id of an account the admin's user is a member of
    LATCHKEY_USER_ID     id of the admin's user

The two token families (user tokens under /user/tokens and account-owned tokens
under /accounts/{account_id}/tokens) have the same SDK methods; account methods
just take an extra `account_id=` keyword. `Family` below holds that difference,
and every test runs once per family.

Every token a test creates is named with this run's unique prefix and deleted
again, so the tests can be rerun against the same server.
"""

from __future__ import annotations

import math
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Tuple

import cloudflare
import pytest
from cloudflare import Cloudflare

# The SDK reads credentials and the base URL from these variables whenever an
# argument is not given, and it prefers X-Auth-Email/X-Auth-Key over a token.
# Drop them so that only the credentials chosen below are ever sent.
for _name in (
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_API_KEY",
    "CLOUDFLARE_EMAIL",
    "CLOUDFLARE_API_USER_SERVICE_KEY",
    "CLOUDFLARE_BASE_URL",
    "CLOUDFLARE_CUSTOM_HEADERS",
):
    os.environ.pop(_name, None)


def _env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise RuntimeError(f"{name} is not set: run these tests through scripts/sdk/run (see its header)")
    return value


BASE_URL = _env("LATCHKEY_URL")
ADMIN_TOKEN = _env("LATCHKEY_TOKEN")
ACCOUNT_ID = _env("LATCHKEY_ACCOUNT_ID")
USER_ID = _env("LATCHKEY_USER_ID")

# Every token name starts with this, so our tokens can be told apart from others.
RUN = f"latchkey-sdk-py-{uuid.uuid4().hex[:8]}-"

TOKEN_ID = re.compile(r"[0-9a-f]{32}")

# Tests run from the loopback interface, so this condition must let them in.
CONDITION = {"request_ip": {"in": ["127.0.0.0/8", "::1/128"], "not_in": ["10.0.0.0/8"]}}

# A week from now, whole seconds, sent in the documented RFC 3339 "Z" form.
EXPIRES_ON = (datetime.now(timezone.utc) + timedelta(days=7)).replace(microsecond=0)
EXPIRES_ON_TEXT = EXPIRES_ON.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Family:
    """One token family: where its SDK methods live and what its tokens look like."""

    name: str  # "user" or "account"
    secret_prefix: str  # every new secret starts with this
    group_id: str  # the "... API Tokens Read" permission group of this family
    group_name: str
    group_scope: str
    resource_key: str  # the resource a policy grants `group_id` on
    kw: Dict[str, str] = field(default_factory=dict)  # extra keyword every SDK call needs

    def api(self, client: Cloudflare) -> Any:
        """`client.user.tokens` or `client.accounts.tokens`."""
        return client.user.tokens if self.name == "user" else client.accounts.tokens

    def policy(self) -> Dict[str, Any]:
        return {
            "effect": "allow",
            "permission_groups": [{"id": self.group_id}],
            "resources": {self.resource_key: "*"},
        }


USER = Family(
    name="user",
    secret_prefix="cfut_",
    group_id="0cc3a61731504c89b99ec1be78b77aa0",
    group_name="API Tokens Read",
    group_scope="com.cloudflare.api.user",
    resource_key=f"com.cloudflare.api.user.{USER_ID}",
)
ACCOUNT = Family(
    name="account",
    secret_prefix="cfat_",
    group_id="eb56a6953c034b9d97dd838155666f06",
    group_name="Account API Tokens Read",
    group_scope="com.cloudflare.api.account",
    resource_key=f"com.cloudflare.api.account.{ACCOUNT_ID}",
    kw={"account_id": ACCOUNT_ID},
)
FAMILIES = [USER, ACCOUNT]


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def client_for(secret: str, *, strict: bool = False) -> Cloudflare:
    """A fresh SDK client that authenticates with `secret` (Authorization: Bearer)."""
    return Cloudflare(api_token=secret, base_url=BASE_URL, _strict_response_validation=strict)


# (family, token id) of every token created and not yet deleted; the session
# fixture `cleanup` deletes whatever is left here at the end.
_created: List[Tuple[Family, str]] = []


def create_token(client: Cloudflare, family: Family, name: str) -> Any:
    """Create a token with this family's policy, the IP condition and an expiry."""
    token = family.api(client).create(
        name=name,
        policies=[family.policy()],
        condition=CONDITION,
        expires_on=EXPIRES_ON_TEXT,
        **family.kw,
    )
    assert token is not None and token.id, f"create returned no token id: {token!r}"
    _created.append((family, token.id))
    return token


def forget_token(family: Family, token_id: str) -> None:
    """Stop tracking a token that has been deleted."""
    if (family, token_id) in _created:
        _created.remove((family, token_id))


def delete_token(client: Cloudflare, family: Family, token_id: str) -> None:
    """Delete a token we created; a token that is already gone is fine."""
    try:
        family.api(client).delete(token_id, **family.kw)
    except cloudflare.NotFoundError:
        pass
    forget_token(family, token_id)


def expect_api_error(error_class: type, status: int, call: Callable[[], Any], code: int | None = None) -> None:
    """`call()` must raise the SDK's `error_class` for HTTP `status` (and carry error `code`, if given)."""
    with pytest.raises(error_class) as caught:
        call()
    error = caught.value
    assert error.status_code == status, f"expected HTTP {status}, got {error.status_code}"
    if code is not None:
        codes = [e.code for e in error.errors]
        assert code in codes, f"expected error code {code}, got {codes}"


def assert_matches_request(token: Any, family: Family, name: str) -> None:
    """`token` (a create/get/update/list result) holds what create_token sent."""
    assert TOKEN_ID.fullmatch(token.id or ""), f"id is not 32 lowercase hex: {token.id!r}"
    assert token.name == name
    assert token.expires_on == EXPIRES_ON, f"expires_on {token.expires_on!r} != {EXPIRES_ON_TEXT}"
    assert token.issued_on is not None, "issued_on is missing"
    assert token.issued_on.utcoffset() == timedelta(0), f"issued_on is not UTC: {token.issued_on!r}"

    assert token.policies is not None and len(token.policies) == 1, f"expected one policy: {token.policies!r}"
    policy = token.policies[0]
    assert policy.effect == "allow"
    assert [group.id for group in policy.permission_groups] == [family.group_id]
    assert policy.resources == {family.resource_key: "*"}

    assert token.condition is not None and token.condition.request_ip is not None, "condition is missing"
    request_ip = token.condition.request_ip
    assert sorted(request_ip.in_ or []) == sorted(CONDITION["request_ip"]["in"])
    assert sorted(request_ip.not_in or []) == sorted(CONDITION["request_ip"]["not_in"])


def assert_is_secret(secret: Any, family: Family) -> None:
    assert isinstance(secret, str), f"secret is not a string: {secret!r}"
    assert secret.startswith(family.secret_prefix), f"secret does not start with {family.secret_prefix}"
    assert 40 <= len(secret) <= 80, f"secret is {len(secret)} characters long, not 40..80"


def list_all(client: Cloudflare, family: Family, per_page: int) -> List[Any]:
    """Every token the SDK's auto-pager yields (it requests page=1, 2, ... until one is empty).

    A repeated id fails at once; that also stops a pager that would never end
    because the server keeps answering pages past the end with data.
    """
    tokens: List[Any] = []
    ids = set()
    for listed in family.api(client).list(per_page=per_page, **family.kw):
        assert listed.id not in ids, f"the pager yielded {listed.id} twice"
        ids.add(listed.id)
        tokens.append(listed)
    return tokens


def verify(secret: str, family: Family) -> Any:
    """Call the family's verify endpoint authenticated as `secret`."""
    return family.api(client_for(secret)).verify(**family.kw)


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def admin() -> Cloudflare:
    """The admin client, in the SDK's default (non-strict) mode."""
    return client_for(ADMIN_TOKEN)


@pytest.fixture(scope="session", autouse=True)
def cleanup(admin: Cloudflare):
    """After all tests: delete every token of this run that is left, and check they are gone.

    Leftovers are found both in `_created` and by name prefix, which also catches
    a token whose create call raised in the SDK after the server had stored it.
    """
    yield

    def ours(family: Family) -> List[str]:
        return [t.id for t in list_all(admin, family, per_page=50) if (t.name or "").startswith(RUN)]

    for family, token_id in list(_created):
        delete_token(admin, family, token_id)
    for family in FAMILIES:
        for token_id in ours(family):
            delete_token(admin, family, token_id)
        assert ours(family) == [], f"{family.name} tokens of this run survived their deletion"


@pytest.fixture(params=FAMILIES, ids=lambda family: family.name)
def family(request: pytest.FixtureRequest) -> Family:
    return request.param


@pytest.fixture
def token(admin: Cloudflare, family: Family, request: pytest.FixtureRequest) -> Any:
    """A fresh token (create result, including `value`), deleted after the test."""
    created = create_token(admin, family, f"{RUN}{family.name}-{request.function.__name__}")
    yield created
    delete_token(admin, family, created.id)


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_sdk_is_the_pinned_version() -> None:
    assert cloudflare.__version__ == "5.9.0"


def test_permission_groups(admin: Cloudflare, family: Family) -> None:
    groups = family.api(admin).permission_groups

    catalog = list(groups.list(**family.kw))
    assert len(catalog) > 1, "the unfiltered catalog should hold more than one group"
    by_id = {group.id: group for group in catalog}
    assert family.group_id in by_id, f"{family.group_name} is not in the catalog"
    group = by_id[family.group_id]
    assert group.name == family.group_name
    assert family.group_scope in (group.scopes or [])

    # `name=` is an exact match: the full name finds just that group ...
    filtered = list(groups.list(name=family.group_name, **family.kw))
    assert [g.id for g in filtered] == [family.group_id]
    assert filtered[0].name == family.group_name
    # ... and a prefix of it ("API Tokens" / "Account API Tokens") finds none.
    assert list(groups.list(name=family.group_name.removesuffix(" Read"), **family.kw)) == []


def test_create_returns_token_and_secret(admin: Cloudflare, family: Family) -> None:
    name = f"{RUN}{family.name}-create"
    created = family.api(admin).create(
        name=name,
        policies=[family.policy()],
        condition=CONDITION,
        expires_on=EXPIRES_ON_TEXT,
        **family.kw,
    )
    assert created is not None
    _created.append((family, created.id))

    assert_matches_request(created, family, name)
    assert created.status == "active"
    assert_is_secret(created.value, family)


def test_verify_with_the_new_secret(token: Any, family: Family) -> None:
    result = verify(token.value, family)
    assert result is not None
    assert result.id == token.id
    assert result.status == "active"
    assert result.expires_on in (None, EXPIRES_ON)  # optional in verify, but must be right if sent


def test_get_matches_and_hides_the_secret(admin: Cloudflare, family: Family, token: Any) -> None:
    got = family.api(admin).get(token.id, **family.kw)
    assert got is not None
    assert_matches_request(got, family, token.name)
    assert got.status == "active"
    assert "value" not in got.to_dict(), "get must not return the secret"


def test_update_disables_then_enables(admin: Cloudflare, family: Family, token: Any) -> None:
    api = family.api(admin)
    new_name = f"{token.name}-renamed"

    def put(status: str) -> Any:
        # PUT is a full replacement, so send everything the token should keep.
        return api.update(
            token.id,
            name=new_name,
            policies=[family.policy()],
            condition=CONDITION,
            expires_on=EXPIRES_ON_TEXT,
            status=status,
            **family.kw,
        )

    updated = put("disabled")
    assert updated is not None
    assert updated.id == token.id
    assert updated.name == new_name
    assert updated.status == "disabled"
    assert "value" not in updated.to_dict(), "update must not return the secret"

    got = api.get(token.id, **family.kw)
    assert_matches_request(got, family, new_name)
    assert got.status == "disabled"

    # A disabled token no longer verifies.
    expect_api_error(cloudflare.AuthenticationError, 401, lambda: verify(token.value, family), code=1000)

    # Enabling it again brings the same secret back to life.
    assert put("active").status == "active"
    assert api.get(token.id, **family.kw).status == "active"
    assert verify(token.value, family).status == "active"


def test_roll_replaces_the_secret(admin: Cloudflare, family: Family, token: Any) -> None:
    api = family.api(admin)
    old_secret = token.value

    # PUT .../value; this SDK version takes no body argument for it.
    new_secret = api.value.update(token.id, **family.kw)
    assert_is_secret(new_secret, family)
    assert new_secret != old_secret

    assert verify(new_secret, family).id == token.id
    expect_api_error(cloudflare.AuthenticationError, 401, lambda: verify(old_secret, family), code=1000)

    # Rolling changes only the secret.
    got = api.get(token.id, **family.kw)
    assert_matches_request(got, family, token.name)
    assert got.status == "active"

    # The token's own policy ("... API Tokens Read") lets the new secret read it;
    # the old secret is refused on a normal endpoint with 403 / 9109.
    assert family.api(client_for(new_secret)).get(token.id, **family.kw).id == token.id
    expect_api_error(
        cloudflare.PermissionDeniedError,
        403,
        lambda: family.api(client_for(old_secret)).get(token.id, **family.kw),
        code=9109,
    )


def test_delete(admin: Cloudflare, family: Family, token: Any) -> None:
    api = family.api(admin)

    deleted = api.delete(token.id, **family.kw)
    assert deleted is not None
    assert deleted.id == token.id
    forget_token(family, token.id)

    expect_api_error(cloudflare.NotFoundError, 404, lambda: api.get(token.id, **family.kw))
    expect_api_error(cloudflare.AuthenticationError, 401, lambda: verify(token.value, family), code=1000)


PAGED_TOKENS = 60  # more than the largest page (per_page maximum is 50)
PER_PAGE = 20


def test_list_auto_paging(admin: Cloudflare, family: Family) -> None:
    api = family.api(admin)
    prefix = f"{RUN}{family.name}-paged-"
    created_ids = {create_token(admin, family, f"{prefix}{i:02d}").id for i in range(PAGED_TOKENS)}
    assert len(created_ids) == PAGED_TOKENS, "create returned duplicate ids"
    try:
        # Auto-paging: `for token in api.list(per_page=20)` inside list_all.
        listed = list_all(admin, family, per_page=PER_PAGE)
        ours = [t.id for t in listed if (t.name or "").startswith(prefix)]
        assert len(ours) == PAGED_TOKENS
        assert set(ours) == created_ids
        assert all("value" not in t.to_dict() for t in listed), "list must not return secrets"

        # One page holds exactly per_page tokens when more exist ...
        assert len(api.list(per_page=PER_PAGE, **family.kw).result) == PER_PAGE
        # ... the last page holds the rest, and the page after it is empty.
        last_page = math.ceil(len(listed) / PER_PAGE)
        last = api.list(per_page=PER_PAGE, page=last_page, **family.kw)
        assert len(last.result) == len(listed) - (last_page - 1) * PER_PAGE
        past_the_end = api.list(per_page=PER_PAGE, page=last_page + 1, **family.kw)
        assert past_the_end.result == []
    finally:
        for token_id in created_ids:
            delete_token(admin, family, token_id)


def test_strict_response_validation(family: Family) -> None:
    """Every operation once more with the SDK checking each response against its types."""
    strict = client_for(ADMIN_TOKEN, strict=True)
    api = family.api(strict)

    groups = list(api.permission_groups.list(name=family.group_name, **family.kw))
    assert [g.id for g in groups] == [family.group_id]

    name = f"{RUN}{family.name}-strict"
    created = create_token(strict, family, name)
    assert_matches_request(created, family, name)
    assert_is_secret(created.value, family)

    verified = family.api(client_for(created.value, strict=True)).verify(**family.kw)
    assert verified is not None and verified.id == created.id

    got = api.get(created.id, **family.kw)
    assert got is not None
    assert_matches_request(got, family, name)

    listed = [t for t in list_all(strict, family, per_page=50) if t.id == created.id]
    assert len(listed) == 1
    assert_matches_request(listed[0], family, name)

    updated = api.update(
        created.id,
        name=name,
        policies=[family.policy()],
        condition=CONDITION,
        expires_on=EXPIRES_ON_TEXT,
        status="disabled",
        **family.kw,
    )
    assert updated is not None and updated.status == "disabled"

    rolled = api.value.update(created.id, **family.kw)
    assert_is_secret(rolled, family)

    deleted = api.delete(created.id, **family.kw)
    assert deleted is not None and deleted.id == created.id
    forget_token(family, created.id)


def test_user_and_accounts_name_who_the_token_acts_for() -> None:
    """`user.get()` and `accounts.list()`, which the dashboard uses, in strict mode."""
    strict = client_for(ADMIN_TOKEN, strict=True)
    user = strict.user.get()
    assert user is not None
    assert user.id == USER_ID and "@" in user.email
    accounts = list(strict.accounts.list())
    assert [a.id for a in accounts] == [ACCOUNT_ID]
    assert accounts[0].name and accounts[0].type == "standard"
