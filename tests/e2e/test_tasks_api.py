# SPDX-License-Identifier: MIT
"""The task API end to end, against the running suite (issue 6 point 6):

- POST /api/tasks/ {name, args, countdown?} (ADMIN) -> 202 {"id"}; the task runs in the caller's
  tenant: sync_meta_example with a META credential (made through /api/platform-credentials/)
  succeeds with its result and records the audit entry sync_triggered; without one it fails with
  "No META credential.". GET /api/tasks/{id}/ shows {id, name, state, result, error, attempt}.
- another tenant's task, an unknown id and a malformed id are all 404 {"detail": "Not found."};
- VIEWER and ANALYST get 403, no token 401, as on the other ADMIN routes;
- bad name, args and countdown are 400 with DRF's shapes (an unknown or non-triggerable task
  name is not a valid choice; args must be an object that the task's args message accepts and
  that names no other tenant);
- countdown > 0 keeps the task PENDING in the delayed set (removed again by the test);
- an Idempotency-Key replay answers the same id, which is derived from the request
  (SHA-256 of "tasks.enqueue:<tenant>/<user>/<request id>" as a version-8 UUID), so a
  redelivered request never makes a second task.

Tenants are made through POST /api/tenants/ with random names, so reruns and other tests never
collide. Task states are read through the API (and, for the tenant and the delayed set, Redis).
"""
import hashlib
import json
import re
import unittest
import uuid

from gw_e2e import Redis, http, mp_unpack, wait_for

PASSWORD = "e2e-password-1"
BASE = "/api/tasks/"
NOT_FOUND = {"detail": "Not found."}
NO_CREDS = {"detail": "Authentication credentials were not provided."}
NOT_ADMIN = {"detail": "You must be a tenant admin to perform this action."}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
KEYS = {"id", "name", "state", "result", "error", "attempt"}
MARK = "tasksapie2etok"  # in every credential token this module stores
TASK_WAIT = 60.0


def tag(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def bearer(access):
    return {"Authorization": f"Bearer {access}"}


class Account:
    """A logged-in user: its auth header, user id and tenant id."""

    def __init__(self, login_json):
        self.hdr = bearer(login_json["access"])
        self.user_id = login_json["user"]["id"]
        self.tenant_id = login_json["tenant_id"]


def login(email):
    r = http("POST", "/api/auth/login/", {"username": email, "password": PASSWORD})
    assert r.status == 200, r
    return Account(r.json())


def signup():
    body = {"name": tag("TasksApi"), "admin_email": f"{tag('admin')}@e2e.example",
            "admin_password": PASSWORD}
    r = http("POST", "/api/tenants/", body)
    assert r.status == 201, r
    return login(body["admin_email"])


def member_of(admin, role):
    email = f"{tag(role.lower())}@e2e.example"
    r = http("POST", "/api/users/invite/", {"email": email, "role": role}, headers=admin.hdr)
    assert r.status == 201, r
    r = http("POST", "/api/users/accept-invite/", {"token": r.json()["token"], "password": PASSWORD})
    assert r.status == 201, r
    return login(email)


def derived_id(seed):
    """adi_tasks_derive_id: SHA-256 of the seed, first 16 bytes, version 4, RFC variant."""
    d = bytearray(hashlib.sha256(seed.encode()).digest()[:16])
    d[6] = (d[6] & 0x0F) | 0x40
    d[8] = (d[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(d)))


def post(acct, body, headers=None):
    return http("POST", BASE, body, headers={**(acct.hdr if acct else {}), **(headers or {})})


def get(acct, task_id):
    return http("GET", f"{BASE}{task_id}/", headers=acct.hdr)


def finished(acct, task_id):
    """Polls GET /api/tasks/{id}/ until SUCCESS or FAILURE; returns the body."""
    def done():
        r = get(acct, task_id)
        assert r.status == 200, r
        return r.json() if r.json()["state"] in ("SUCCESS", "FAILURE") else None
    return wait_for(done, f"task {task_id} to finish", timeout=TASK_WAIT)


def redis_state(task_id):
    with Redis() as r:
        flat = r.command("HGETALL", f"task:{task_id}") or []
    return {flat[i].decode(): flat[i + 1].decode("utf-8", "replace")
            for i in range(0, len(flat), 2)}


def drop_delayed(task_id, queue="default"):
    """Removes a delayed task from its queue's delayed set and its state; True when it was there."""
    found = False
    with Redis() as r:
        key = f"tasks:{queue}:delayed"
        for member in r.command("ZRANGE", key, "0", "-1") or []:
            if mp_unpack(member).get("id") == task_id:
                found = r.command("ZREM", key, member) == 1 or found
        r.command("DEL", f"task:{task_id}")
    return found


def setUpModule():
    # Each gateway thread learns a service's stream on its own poll: wait for the tenant routes,
    # then (with a tenant admin) for the task runner's.
    wait_for(lambda: all(http("POST", "/api/users/accept-invite/", {}).status == 400
                         for _ in range(4)), "the gateway to route to the tenant service")


class TasksApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = signup()
        cls.b = signup()
        wait_for(lambda: all(get(cls.a, uuid.uuid4()).status == 404 for _ in range(4)),
                 "the gateway to route to the task runner")
        wait_for(lambda: all(http("GET", "/api/platform-credentials/", headers=cls.a.hdr).status
                             == 200 for _ in range(4)), "the gateway to route to the vault")
        body = {"provider": "META", "account_id": tag("act"),
                "access_token": f"{MARK}-{uuid.uuid4().hex}"}
        r = http("POST", "/api/platform-credentials/", body, headers=cls.a.hdr)
        assert r.status == 201, r
        cls.meta = r.json()

    def enqueue(self, acct, body, status=202, headers=None):
        r = post(acct, body, headers)
        self.assertEqual(r.status, status, r)
        return r

    def audit(self, acct, provider):
        r = http("GET", "/api/audit-logs/?action=sync_triggered", headers=acct.hdr)
        self.assertEqual(r.status, 200, r)
        return [e for e in r.json() if e["resource_id"] == provider]

    def test_sync_succeeds_in_callers_tenant(self):
        before = len(self.audit(self.a, "META"))
        r = self.enqueue(self.a, {"name": "sync_meta_example", "args": {}})
        self.assertEqual(set(r.json()), {"id"})
        task_id = r.json()["id"]
        self.assertRegex(task_id, UUID_RE)
        self.assertEqual(redis_state(task_id)["tenant_id"], self.a.tenant_id)

        t = finished(self.a, task_id)
        self.assertEqual(set(t), KEYS)
        self.assertEqual(t["id"], task_id)
        self.assertEqual(t["name"], "sync_meta_example")
        self.assertEqual(t["state"], "SUCCESS", t)
        self.assertEqual(t["result"], {"provider": "META", "credential_id": self.meta["id"]})
        self.assertIsNone(t["error"])
        self.assertEqual(t["attempt"], 0)

        entries = wait_for(lambda: len(self.audit(self.a, "META")) == before + 1
                           and self.audit(self.a, "META"), "the sync_triggered audit entry")
        e = entries[0]
        self.assertEqual((e["action"], e["resource_type"], e["resource_id"]),
                         ("sync_triggered", "sync", "META"))
        self.assertEqual(e["metadata"], {"provider": "META"})
        self.assertEqual(e["tenant"], self.a.tenant_id)
        # Nothing of it in the other tenant's log.
        self.assertEqual(self.audit(self.b, "META"), [])

    def test_args_naming_own_tenant_are_accepted(self):
        r = self.enqueue(self.a, {"name": "sync_meta_example",
                                  "args": {"tenant_id": self.a.tenant_id.upper()}})
        self.assertEqual(finished(self.a, r.json()["id"])["state"], "SUCCESS")

    def test_sync_without_credential_fails(self):
        r = self.enqueue(self.b, {"name": "sync_meta_example", "args": {}, "countdown": 0})
        t = finished(self.b, r.json()["id"])
        self.assertEqual(t["state"], "FAILURE", t)
        self.assertEqual(t["error"], "No META credential.")
        self.assertIsNone(t["result"])
        self.assertEqual(t["attempt"], 0)  # permanent: not retried

    def test_other_tenants_task_is_not_found(self):
        task_id = self.enqueue(self.a, {"name": "sync_google_example", "args": {}}).json()["id"]
        r = get(self.b, task_id)
        self.assertEqual((r.status, r.json()), (404, NOT_FOUND))
        r = get(self.a, task_id)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(get(self.a, task_id.upper()).json()["id"], task_id)
        for bad in (uuid.uuid4(), "not-a-uuid", "x" * 80, task_id.upper()[:-1] + "Z"):
            r = get(self.a, bad)
            self.assertEqual((r.status, r.json()), (404, NOT_FOUND), bad)
        finished(self.a, task_id)  # fails (no GOOGLE credential): let it end before the stack does

    def test_roles_and_authentication(self):
        task_id = self.enqueue(self.a, {"name": "sync_google_example", "args": {}}).json()["id"]
        body = {"name": "sync_meta_example", "args": {}}
        for role in ("VIEWER", "ANALYST"):
            m = member_of(self.a, role)
            r = post(m, body)
            self.assertEqual((r.status, r.json()), (403, NOT_ADMIN), role)
            r = get(m, task_id)
            self.assertEqual((r.status, r.json()), (403, NOT_ADMIN), role)
        r = post(None, body)
        self.assertEqual((r.status, r.json()), (401, NO_CREDS))
        r = http("GET", f"{BASE}{task_id}/")
        self.assertEqual((r.status, r.json()), (401, NO_CREDS))
        finished(self.a, task_id)

    def test_validation(self):
        ok = {"name": "sync_meta_example", "args": {}}
        cases = [
            ({"args": {}}, {"name": ["This field is required."]}),
            ({"name": "foo", "args": {}}, {"name": ["\"foo\" is not a valid choice."]}),
            ({"name": "rotate_deks", "args": {}},
             {"name": ["\"rotate_deks\" is not a valid choice."]}),
            ({"name": "send_invitation_email", "args": {}},
             {"name": ["\"send_invitation_email\" is not a valid choice."]}),
            ({"name": "", "args": {}}, {"name": ["This field may not be blank."]}),
            ({"name": 5, "args": {}}, {"name": ["\"5\" is not a valid choice."]}),  # as DRF
            ({"name": ["x"], "args": {}}, {"name": ["Not a valid string."]}),
            ({"name": "sync_meta_example"}, {"args": ["This field is required."]}),
            ({**ok, "args": None}, {"args": ["This field may not be null."]}),
            ({**ok, "args": [1]},
             {"args": ["Expected a dictionary of items but got type \"list\"."]}),
            ({**ok, "args": "x"},
             {"args": ["Expected a dictionary of items but got type \"str\"."]}),
            ({**ok, "args": {"tenant_id": "nope"}}, {"args.tenant_id": ["Must be a valid UUID."]}),
            ({**ok, "args": {"tenant_id": self.b.tenant_id}},
             {"args.tenant_id": ["Must be the tenant you belong to."]}),
            ({**ok, "args": {"pad": "p" * 17000}},
             {"args": ["Ensure this field has no more than 16384 bytes."]}),
            ({"name": "foo", "args": 3}, {
                "name": ["\"foo\" is not a valid choice."],
                "args": ["Expected a dictionary of items but got type \"int\"."]}),
            ({**ok, "countdown": -1},
             {"countdown": ["Ensure this value is greater than or equal to 0."]}),
            ({**ok, "countdown": 86401},
             {"countdown": ["Ensure this value is less than or equal to 86400."]}),
            ({**ok, "countdown": "soon"}, {"countdown": ["A valid integer is required."]}),
            ({**ok, "countdown": 1.5}, {"countdown": ["A valid integer is required."]}),
            ({**ok, "countdown": None}, {"countdown": ["This field may not be null."]}),
        ]
        for body, want in cases:
            r = post(self.a, body)
            self.assertEqual((r.status, r.json()), (400, want), body)
        r = http("POST", BASE, "[]", headers={**self.a.hdr, "Content-Type": "application/json"})
        self.assertEqual(r.status, 400, r)

    def test_countdown_keeps_task_pending(self):
        for countdown in (3600, 86400):
            task_id = self.enqueue(self.a, {"name": "sync_meta_example", "args": {},
                                            "countdown": countdown}).json()["id"]
            try:
                r = get(self.a, task_id)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json(), {"id": task_id, "name": "sync_meta_example",
                                            "state": "PENDING", "result": None, "error": None,
                                            "attempt": 0})
                self.assertIn("due_at_ms", redis_state(task_id))
            finally:
                self.assertTrue(drop_delayed(task_id), "the task was not in the delayed set")

    def test_idempotency_key_replay_same_id(self):
        key = str(uuid.uuid4())
        body = {"name": "sync_google_example", "args": {}}
        first = self.enqueue(self.a, body, headers={"Idempotency-Key": key})
        task_id = first.json()["id"]
        self.assertEqual(task_id,
                         derived_id(f"tasks.enqueue:{self.a.tenant_id}/{self.a.user_id}/{key}"))

        def replay():
            r = post(self.a, body, headers={"Idempotency-Key": key})
            self.assertIn(r.status, (202, 409), r)  # 409: the first is still being stored
            return r if r.status == 202 else None
        again = wait_for(replay, "the replayed response")
        self.assertEqual(again.json(), {"id": task_id})
        self.assertEqual(again.header("idempotent-replayed"), "true")

        # The same key from another tenant is another request, hence another task.
        other = self.enqueue(self.b, body, headers={"Idempotency-Key": key}).json()["id"]
        self.assertNotEqual(other, task_id)
        self.assertEqual(get(self.b, task_id).status, 404)
        # Without a key every request is a new task.
        fresh = self.enqueue(self.a, body).json()["id"]
        self.assertNotEqual(fresh, task_id)
        for acct, tid in ((self.a, task_id), (self.b, other), (self.a, fresh)):
            self.assertEqual(finished(acct, tid)["error"], "No GOOGLE credential.")


if __name__ == "__main__":
    unittest.main()
