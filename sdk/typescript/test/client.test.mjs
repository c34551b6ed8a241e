// The client against a real `signoff-server --dev`, on SQLite and on Postgres.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";

import { ApiError, Denied, Expired, Signoff, SignoffError, TimedOut } from "../dist/index.js";
import { startServer, stores, uniqueName } from "./harness.mjs";

const POLICIES = `
[[policy]]
name = "reads"
[policy.match]
actions = ["db.read"]
[policy.effect]
type = "allow"

[[policy]]
name = "no drops"
[policy.match]
actions = ["db.drop"]
[policy.effect]
type = "deny"
reason = "agents never drop tables"
`;

const deploy = {
  action: "deploy.service",
  resource: "k8s://prod/payments-api",
  title: "Deploy payments-api 1.5.0",
  reason: "Fixes the refund rounding bug",
  payload: { image: "payments-api:1.5.0" },
  labels: { env: "prod" },
};

/** Marks a promise handled now, so it may reject before the test awaits it. */
function later(promise) {
  promise.catch(() => {});
  return promise;
}

for (const store of stores()) {
  describe(`client on ${store.name}`, { skip: store.skip }, () => {
    if (store.fail) {
      it("needs Postgres (SIGNOFF_REQUIRE_POSTGRES=1)", () => assert.fail(store.fail));
      return;
    }
    let server;
    let riley;

    before(async () => {
      server = await startServer(store);
      server.importPolicies(POLICIES);
      riley = await server.reviewer("riley");
    });
    after(async () => {
      await server?.stop();
    });

    function agent(options = {}) {
      const name = uniqueName("ts-agent");
      const key = server.createAgent(name, options.owner);
      return { name, key, signoff: new Signoff({ server: server.url, key, ...options.client }) };
    }

    it("resolves to the approval once a reviewer approves", async () => {
      const { name, signoff } = agent();
      const pending = later(signoff.requestApproval(deploy));
      const request = await riley.pendingOf(name);
      assert.equal(request.title, "Deploy payments-api 1.5.0");
      assert.deepEqual(request.labels, { env: "prod" });
      await riley.approve(request.id, "ship it");
      const approval = await pending;
      assert.equal(approval.id, request.id);
      assert.equal(approval.status, "approved");
      assert.equal(approval.approvers.length, 1);
      assert.equal(approval.approvers[0].email, "riley@example.com");
      assert.equal(approval.approvers[0].comment, "ship it");
      assert.equal(approval.policy.name, "default");
      assert.equal(approval.digest, (await riley.get(request.id)).digest);
      assert.deepEqual(approval.request.payload, { image: "payments-api:1.5.0" });
    });

    it("rejects with Denied carrying the reviewer's comment", async () => {
      const { name, signoff } = agent();
      const pending = later(signoff.requestApproval(deploy));
      const request = await riley.pendingOf(name);
      await riley.deny(request.id, "Not during the freeze; wait for Monday");
      await assert.rejects(pending, (error) => {
        assert.ok(error instanceof Denied, String(error));
        assert.ok(error instanceof SignoffError);
        assert.deepEqual(error.comments, ["Not during the freeze; wait for Monday"]);
        assert.equal(error.requestId, request.id);
        assert.equal(error.denials[0].reviewer, "Riley Reviewer");
        assert.match(error.message, /Not during the freeze/);
        return true;
      });
      assert.equal((await riley.get(request.id)).status, "denied");
    });

    it("times out, cancels the request and rejects with TimedOut", async () => {
      const { name, signoff } = agent();
      const started = Date.now();
      await assert.rejects(signoff.requestApproval({ ...deploy, timeoutMs: 1500 }), (error) => {
        assert.ok(error instanceof TimedOut, String(error));
        assert.equal(error.cancelled, true);
        return true;
      });
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 1400 && elapsed < 10_000, `took ${elapsed} ms`);
      const [request] = await riley.list({ status: "all", agent: name });
      assert.equal(request.status, "cancelled");
      assert.equal((await riley.get(request.id)).status, "cancelled");
    });

    it("cancels on timeout even when the server was down at the deadline", async () => {
      const { name, signoff } = agent();
      const pending = later(signoff.requestApproval({ ...deploy, timeoutMs: 1500 }));
      const request = await riley.pendingOf(name);
      await server.halt();
      await sleep(2000); // past the deadline, the server still down
      await server.start();
      await assert.rejects(pending, (error) => error instanceof TimedOut && error.cancelled === true);
      riley = await server.reviewer("riley");
      assert.equal((await riley.get(request.id)).status, "cancelled");
    });

    it("keeps waiting across a server restart", async () => {
      const { name, signoff } = agent({ client: { pollSeconds: 30 } });
      const pending = later(signoff.requestApproval(deploy));
      const request = await riley.pendingOf(name);
      await sleep(300); // the long-poll is in flight
      await server.restart();
      const reviewer = await server.reviewer("riley");
      await reviewer.approve(request.id);
      const approval = await pending;
      assert.equal(approval.id, request.id);
      assert.equal(approval.status, "approved");
      riley = reviewer;
    });

    it("submits once the server is back when it was down", async () => {
      const { name, signoff } = agent();
      await server.halt();
      const pending = later(signoff.requestApproval({ ...deploy, idempotencyKey: `down-${name}` }));
      await sleep(700);
      await server.start();
      const reviewer = await server.reviewer("riley");
      const request = await reviewer.pendingOf(name);
      await reviewer.approve(request.id);
      assert.equal((await pending).id, request.id);
      riley = reviewer;
    });

    it("resubmitting with the same idempotency key resumes the same request", async () => {
      const { name, signoff } = agent();
      const input = { ...deploy, idempotencyKey: `deploy-${name}` };
      const first = await signoff.submit(input);
      assert.equal(first.replayed, false);
      assert.equal(first.idempotencyKey, input.idempotencyKey);
      const again = await signoff.submit(input);
      assert.equal(again.replayed, true);
      assert.equal(again.id, first.id);
      const pending = later(signoff.requestApproval(input));
      await sleep(200);
      await riley.approve(first.id);
      assert.equal((await pending).id, first.id);
      assert.equal((await riley.list({ status: "all", agent: name })).length, 1);
      await assert.rejects(
        signoff.submit({ ...input, payload: { image: "payments-api:6.6.6" } }),
        (error) => error instanceof ApiError && error.status === 409,
      );
    });

    it("rejects with Expired when nobody decides within the request's lifetime", async () => {
      const { signoff } = agent();
      await assert.rejects(signoff.requestApproval({ ...deploy, ttlS: 1, timeoutMs: 20_000 }), (error) => {
        assert.ok(error instanceof Expired, String(error));
        return true;
      });
    });

    it("follows policies: an allow approves at once, a deny says why", async () => {
      const { signoff } = agent();
      const approval = await signoff.requestApproval({ action: "db.read", resource: "postgres://prod/customers", reason: "report" });
      assert.equal(approval.status, "approved");
      assert.equal(approval.policy.name, "reads");
      assert.deepEqual(approval.approvers, []);
      await assert.rejects(
        signoff.requestApproval({ action: "db.drop", resource: "postgres://prod/customers", reason: "cleanup" }),
        (error) => error instanceof Denied && error.policyReason === "agents never drop tables",
      );
    });

    it("guard runs the action only once approved and reports it", async () => {
      const { name, signoff } = agent();
      let ran = 0;
      const pending = later(
        signoff.guard(deploy, async (approval) => {
          ran += 1;
          return `deployed after ${approval.id}`;
        }),
      );
      const request = await riley.pendingOf(name);
      await sleep(200);
      assert.equal(ran, 0);
      await riley.approve(request.id);
      assert.equal(await pending, `deployed after ${request.id}`);
      assert.equal(ran, 1);
      const view = await signoff.status(request.id);
      assert.equal(view.status, "executed");
      assert.ok(view.started_at);
      await assert.rejects(signoff.start(request.id), (error) => error instanceof ApiError && error.status === 409);
    });

    it("submit, wait, cancel and status for frameworks that pause and resume", async () => {
      const { signoff } = agent();
      const { id } = await signoff.submit(deploy);
      const waited = await signoff.wait(id, { timeoutMs: 1000 });
      assert.equal(waited.status, "pending");
      const cancelled = await signoff.cancel(id);
      assert.equal(cancelled.status, "cancelled");
      assert.equal((await signoff.status(id)).status, "cancelled");
      assert.equal((await signoff.wait(id)).status, "cancelled");
      await assert.rejects(signoff.cancel(id), (error) => error instanceof ApiError && error.status === 409);
    });

    it("an aborted signal cancels the request", async () => {
      const { name, signoff } = agent();
      const controller = new AbortController();
      const pending = later(signoff.requestApproval({ ...deploy, signal: controller.signal }));
      const request = await riley.pendingOf(name);
      controller.abort(new Error("the user pressed Ctrl-C"));
      await assert.rejects(pending, /Ctrl-C/);
      assert.equal((await riley.get(request.id)).status, "cancelled");
    });

    it("a refused key is an ApiError at once", async () => {
      const signoff = new Signoff({ server: server.url, key: "so_agent_not-a-key" });
      await assert.rejects(signoff.requestApproval(deploy), (error) => error instanceof ApiError && error.status === 401);
    });
  });
}

describe("configuration", () => {
  it("reads SIGNOFF_SERVER and SIGNOFF_AGENT_KEY", () => {
    const saved = { server: process.env.SIGNOFF_SERVER, key: process.env.SIGNOFF_AGENT_KEY };
    try {
      process.env.SIGNOFF_SERVER = "http://127.0.0.1:9/";
      process.env.SIGNOFF_AGENT_KEY = "so_agent_x";
      assert.equal(new Signoff().server, "http://127.0.0.1:9");
      delete process.env.SIGNOFF_AGENT_KEY;
      assert.throws(() => new Signoff(), /SIGNOFF_AGENT_KEY/);
    } finally {
      for (const [name, value] of [["SIGNOFF_SERVER", saved.server], ["SIGNOFF_AGENT_KEY", saved.key]]) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it("refuses plain http to another machine unless allowed", () => {
    assert.throws(() => new Signoff({ server: "http://signoff.example.com", key: "k" }), /https/);
    assert.ok(new Signoff({ server: "http://signoff.example.com", key: "k", allowInsecureHttp: true }));
    assert.ok(new Signoff({ server: "https://signoff.example.com", key: "k" }));
  });
});
