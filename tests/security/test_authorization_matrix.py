"""The authorization matrix: every route of every service, called by every role, by a second
patient account with the first one's ids, without a token and with forged tokens.

OWASP API1 (object level: B never reaches A's objects), API3 (property level: nothing of
A's in B's replies, lists included) and API5 (function level: each role only where the
matrix allows it). The rules live in ``matrix.py``; an undeclared route fails the build.
Tests run in file order: the allowed callers' calls, which may change state, come last.
"""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from shared.principal import STAFF_ROLES, Role
from tests.factories import make_national_id, make_phone
from tests.security.calls import bad_tokens, call, is_problem, leaked, stream_ids
from tests.security.conftest import World
from tests.security.matrix import BOLA_EXTRAS, MATRIX, MY_COLLECTIONS
from tests.security.matrix_rules import Public, Rule
from tests.support.patient_codes import add_patient

pytestmark = pytest.mark.integration

Case = tuple[str, Rule]
ROUTES: list[Case] = [(service, rule) for service, rules in MATRIX.items() for rule in rules]
PROTECTED = [(s, r) for s, r in ROUTES if r.public is Public.NO]
PUBLIC = [(s, r) for s, r in ROUTES if r.public is not Public.NO]
OWNED = [(s, r) for s, r in PROTECTED if r.owned]
# what any patient account may call on its own behalf (catalog, "my" lists, inbox, ...)
PATIENT_CALLABLE = [(s, r) for s, r in PROTECTED if Role.PATIENT in r.roles and not r.owned]
ROLES = list(Role)
OTHER_ORG = "matrix-other-org"
# staff confined to one organization (an alliance admin sees every one: shared/scoping.py)
ORG_STAFF = STAFF_ROLES - {Role.ALLIANCE_ADMIN}


def by_route(cases: list[Case]) -> list[object]:
    return [pytest.param(s, r, id=r.label(s)) for s, r in cases]


def by_role(cases: list[Case], *, allowed: bool) -> list[object]:
    return [
        pytest.param(s, r, role, id=f"{r.label(s)}-as-{role.value}")
        for s, r in cases
        for role in ROLES
        if (role in r.roles) is allowed
    ]


@pytest.mark.parametrize("service", list(MATRIX))
def test_every_route_is_declared(world: World, service: str) -> None:
    served = {
        (method, str(context.path))
        # FastAPI keeps included routers nested: walk their effective (prefixed) routes
        for context in iter_route_contexts(world.apps[service].routes)
        if isinstance(context.original_route, APIRoute)
        for method in context.methods or ()
    }
    declared = [rule.key for rule in MATRIX[service]]
    assert len(declared) == len(set(declared)), f"{service}: a route is declared twice"
    undeclared = sorted(served - set(declared))
    assert not undeclared, f"{service} serves routes without a rule in matrix.py: {undeclared}"
    stale = sorted(set(declared) - served)
    assert not stale, f"matrix.py declares routes {service} does not serve: {stale}"


@pytest.mark.parametrize(("service", "rule"), by_route(PROTECTED))
async def test_no_token_gets_401(world: World, service: str, rule: Rule) -> None:
    for headers in ({}, {"authorization": "Basic bWF0cml4OnB3"}, {"authorization": "Bearer"}):
        reply, _ = await call(world, service, rule, headers)
        assert is_problem(reply, 401), f"{headers}: {reply.describe()}"
        assert reply.json()["code"] == "token_missing", reply.describe()


@pytest.mark.parametrize(("service", "rule"), by_route(PROTECTED))
async def test_forged_and_expired_tokens_get_401(
    world: World, jwt_keys: tuple[str, str], service: str, rule: Rule
) -> None:
    wrong = {}
    for name, token in bad_tokens(*jwt_keys).items():
        reply, _ = await call(world, service, rule, {"authorization": f"Bearer {token}"})
        if not is_problem(reply, 401):
            wrong[name] = reply.describe()
    assert not wrong, f"tokens that were not refused with 401: {wrong}"


@pytest.mark.parametrize(("service", "rule"), by_route(PUBLIC))
async def test_public_routes(world: World, service: str, rule: Rule) -> None:
    reply, _ = await call(world, service, rule, {})
    if rule.public is Public.OPEN:
        assert reply.status in ((200, 503) if rule.path == "/readyz" else (200,)), reply.status
    else:  # a provider callback without its token or signature
        assert is_problem(reply, 401), reply.describe()
    assert not leaked(world, reply, ""), reply.describe()


@pytest.mark.parametrize(("service", "rule", "role"), by_role(PROTECTED, allowed=False))
async def test_a_role_not_allowed_gets_403(
    world: World, service: str, rule: Rule, role: Role
) -> None:
    reply, sent = await call(world, service, rule, world.headers(role))
    assert is_problem(reply, 403), f"{role.value}: {reply.describe()}"
    assert not leaked(world, reply, sent), reply.describe()


@pytest.mark.parametrize(("service", "rule"), by_route(OWNED))
async def test_another_patient_cannot_reach_the_owners_objects(
    world: World, service: str, rule: Rule
) -> None:
    body = rule.bola_body if rule.bola_body is not None else rule.body
    reply, sent = await call(world, service, rule, world.b, body=body)
    assert reply.status in (403, 404), f"B with A's ids: {reply.describe()}"
    assert is_problem(reply, reply.status), reply.describe()
    assert not leaked(world, reply, sent), f"A's data in B's reply: {reply.describe()}"


def by_staff_role(cases: list[Case]) -> list[object]:
    """Each owned route with each staff role it admits that is confined to one organization."""
    return [
        pytest.param(s, r, role, id=f"{r.label(s)}-as-{role.value}")
        for s, r in cases
        for role in sorted(r.roles & ORG_STAFF)
    ]


# what A's organization holds: A's objects, and the organization's own policy
ORG_HELD = OWNED + [
    (s, r) for s, r in PROTECTED if "{org_id}" in r.path and not r.owned and r.org_walled
]


@pytest.mark.parametrize(("service", "rule", "role"), by_staff_role(ORG_HELD))
async def test_staff_of_another_organization_cannot_reach_the_owners_objects(
    world: World, service: str, rule: Rule, role: Role
) -> None:
    """The owner's objects are held by A's organization: staff of another organization of
    the alliance, in a role the route admits, are refused and see none of them."""
    body = rule.bola_body if rule.bola_body is not None else rule.body
    reply, sent = await call(world, service, rule, world.headers(role, org=OTHER_ORG), body=body)
    assert reply.status in (403, 404), f"{role.value} of {OTHER_ORG}: {reply.describe()}"
    assert is_problem(reply, reply.status), reply.describe()
    assert not leaked(world, reply, sent), f"A's data in another org's reply: {reply.describe()}"


@pytest.mark.parametrize(
    ("service", "method", "path", "query"),
    [
        pytest.param(*extra, id=f"{extra[0]}:{extra[1]} {extra[2]}?{extra[3]}")
        for extra in BOLA_EXTRAS
    ],
)
async def test_staff_of_another_organization_cannot_query_the_owners_patient(
    world: World, service: str, method: str, path: str, query: dict[str, str]
) -> None:
    headers = {**world.headers(Role.AGENT, org=OTHER_ORG), "x-access-reason": "matrix"}
    reply, sent = await call(world, service, Rule(method, path), headers, query=query)
    assert reply.status in (403, 404), reply.describe()
    assert not leaked(world, reply, sent), reply.describe()


@pytest.mark.parametrize(("service", "rule"), by_route(PATIENT_CALLABLE))
async def test_another_patients_own_calls_show_nothing_of_the_owners(
    world: World, service: str, rule: Rule
) -> None:
    """B's catalog searches, lists and inbox calls (with A's ids where the path takes
    one, e.g. A's session's slots) carry none of A's data."""
    reply, sent = await call(world, service, rule, world.b)
    assert reply.status < 500, reply.describe()
    assert not leaked(world, reply, sent), f"A's data in B's reply: {reply.describe()}"


@pytest.mark.parametrize(
    ("service", "method", "path", "query"),
    [
        pytest.param(*extra, id=f"{extra[0]}:{extra[1]} {extra[2]}?{extra[3]}")
        for extra in BOLA_EXTRAS
    ],
)
async def test_another_patient_cannot_query_the_owners_patient(
    world: World, service: str, method: str, path: str, query: dict[str, str]
) -> None:
    rule = Rule(method, path)
    reply, sent = await call(world, service, rule, world.b, query=query)
    assert reply.status in (403, 404), reply.describe()
    assert not leaked(world, reply, sent), reply.describe()


@pytest.mark.parametrize(
    ("service", "path", "item"), MY_COLLECTIONS, ids=[p for _, p, _ in MY_COLLECTIONS]
)
async def test_my_collections_show_only_my_items(
    world: World, service: str, path: str, item: str
) -> None:
    client = world.clients[service]
    mine = await client.get(path, headers=world.a)
    assert mine.status_code == 200, mine.text
    assert world.ids[item] in mine.text, f"A's own {path} does not show A's {item}"
    theirs = await client.get(path, headers=world.b)
    assert theirs.status_code == 200, theirs.text
    found = {s for s in world.secrets if s in theirs.text}
    assert not found, f"B's {path} shows A's {found}: {theirs.text[:300]}"


async def test_another_account_cannot_mark_the_owners_inbox_read(world: World) -> None:
    client = world.clients["notifications"]
    item = world.ids["inbox_id"]
    marked = await client.post(
        "/v1/notifications/inbox/read", headers=world.b, json={"ids": [item]}
    )
    assert marked.status_code == 200, marked.text
    assert marked.json()["marked"] == 0
    page = await client.get("/v1/notifications/inbox", headers=world.a)
    assert next(i for i in page.json()["items"] if i["id"] == item)["read_at"] is None


async def test_another_accounts_inbox_stream_replays_nothing_of_the_owners(world: World) -> None:
    client = world.clients["notifications"]
    own = await stream_ids(client, world.a, 10.0, until=world.ids["inbox_id"])
    assert world.ids["inbox_id"] in own, "A's own stream does not replay A's items"
    other = await stream_ids(client, world.b, 3.0)
    assert not {s for s in world.secrets if s in other}, other[:300]


async def test_another_account_cannot_claim_the_owners_patient_by_name_and_national_id(
    world: World,
) -> None:
    """Name and national ID are no proof: the answer is the one an unknown ID gets, and B
    sees nothing of A's patient until a code texted to the phone on record is confirmed."""
    client, url = world.clients["appointments"], "/v1/appointments/patients"
    answers = []
    for name, national_id in (
        (world.ids["patient_name"], world.ids["national_id"]),  # right name: still no link
        ("冒名顶替", world.ids["national_id"]),
        ("路人乙", make_national_id()),
    ):
        body = {"name": name, "national_id": national_id, "phone": make_phone()}
        reply = await client.post(url, headers=world.b, json=body)
        assert reply.status_code == 202, reply.text
        assert not {s for s in world.secrets if s in reply.text}, reply.text
        answers.append((sorted(reply.json()), reply.json()["detail"]))
    assert answers[0] == answers[1] == answers[2]
    assert world.ids["patient_id"] not in (await client.get(url, headers=world.b)).text
    status = f"/v1/appointments/patients/{world.ids['patient_id']}/booking-status"
    assert (await client.get(status, headers=world.b)).status_code == 403


async def test_mass_assignment_cannot_take_over_the_owners_patient(world: World) -> None:
    """Extra fields naming A's patient or account are ignored (OWASP API3)."""
    client, url = world.clients["appointments"], "/v1/appointments/patients"
    patient_id = world.ids["patient_id"]
    body = {
        "name": "新就诊人",
        "national_id": make_national_id(),
        "phone": make_phone(),
        **{"id": patient_id, "_id": patient_id, "account_ids": [world.account_a]},
        "relations": {world.account_a: "self"},
    }
    reply = await add_patient(client, world.settings["appointments"], world.b, body)
    assert reply.status_code == 201, reply.text
    created = reply.json()["id"]
    assert created != patient_id
    assert created not in (await client.get(url, headers=world.a)).text
    mine = (await client.get(url, headers=world.b)).json()
    assert patient_id not in {p["id"] for p in mine}


@pytest.mark.parametrize(("service", "rule", "role"), by_role(PROTECTED, allowed=True))
async def test_an_allowed_role_is_let_through(
    world: World, service: str, rule: Rule, role: Role
) -> None:
    ids = {**world.ids, **{k: world.ids[v] for k, v in rule.allowed_ids.items()}}
    reply, _ = await call(world, service, rule, world.headers(role), ids=ids)
    assert reply.status not in (401, 403), f"{role.value}: {reply.describe()}"
    assert reply.status < 500, f"{role.value}: {reply.describe()}"
