// Tests of the client: a few without a server (a fake fetch), then the
// real thing against a `plugboard serve` started from the binary named by
// PLUGBOARD_BIN (built beforehand; see ../test.sh).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { createClient, PlugboardError } from '../index.js';

describe('createClient without a server', () => {
  // fakeFetch records calls and answers with status and body.
  function fakeFetch(status, body, contentType = 'application/json') {
    const calls = [];
    const f = async (url, init) => {
      calls.push({ url, init });
      return new Response(body, { status, headers: { 'Content-Type': contentType } });
    };
    f.calls = calls;
    return f;
  }

  test('sends the event name encoded, the token and the data as JSON', async () => {
    const f = fakeFetch(202, '{"flows":1,"correlationIds":["c1"]}');
    const pb = createClient({ baseUrl: 'http://pb.test/', token: 't.s', fetch: f });
    const ans = await pb.sendAppEvent('contact created/v2', { email: 'ada@example.com' }, { userId: 'u 1' });
    assert.deepEqual(ans, { flows: 1, correlationIds: ['c1'] });
    assert.equal(f.calls.length, 1);
    const { url, init } = f.calls[0];
    assert.equal(url, 'http://pb.test/api/v1/app-events/contact%20created%2Fv2?userId=u%201');
    assert.equal(init.method, 'POST');
    assert.equal(init.headers.Authorization, 'Bearer t.s');
    assert.equal(init.body, '{"email":"ada@example.com"}');
  });

  test('undefined data sends no body; null sends null', async () => {
    const f = fakeFetch(202, '{"flows":0,"correlationIds":[]}');
    const pb = createClient({ baseUrl: 'http://pb.test', token: 't.s', fetch: f });
    await pb.sendAppEvent('e');
    await pb.sendAppEvent('e', null);
    assert.equal(f.calls[0].init.body, undefined);
    assert.equal(f.calls[1].init.body, 'null');
    assert.equal(f.calls[0].url, 'http://pb.test/api/v1/app-events/e');
  });

  test('a problem document becomes a PlugboardError', async () => {
    const problem = { type: 'about:blank', title: 'Forbidden', status: 403, detail: 'no', instance: '/api/v1/app-events/e' };
    const pb = createClient({ baseUrl: 'http://pb.test', token: 't.s', fetch: fakeFetch(403, JSON.stringify(problem), 'application/problem+json') });
    await assert.rejects(pb.sendAppEvent('e', {}), (err) => {
      assert.ok(err instanceof PlugboardError);
      assert.ok(err instanceof Error);
      assert.equal(err.status, 403);
      assert.equal(err.title, 'Forbidden');
      assert.equal(err.detail, 'no');
      assert.equal(err.message, 'no');
      assert.deepEqual(err.problem, problem);
      return true;
    });
  });

  test('an answer that is not a problem document still becomes a PlugboardError', async () => {
    const pb = createClient({ baseUrl: 'http://pb.test', token: 't.s', fetch: fakeFetch(502, 'Bad gateway', 'text/plain') });
    await assert.rejects(pb.sendAppEvent('e', {}), (err) => {
      assert.ok(err instanceof PlugboardError);
      assert.equal(err.status, 502);
      assert.equal(err.type, 'about:blank');
      assert.equal(err.detail, 'Bad gateway');
      return true;
    });
  });

  test('bad arguments are refused before any request', async () => {
    assert.throws(() => createClient({ token: 't' }), TypeError);
    assert.throws(() => createClient({ baseUrl: 'http://pb.test' }), TypeError);
    const f = fakeFetch(202, '{}');
    const pb = createClient({ baseUrl: 'http://pb.test', token: 't.s', fetch: f });
    await assert.rejects(pb.sendAppEvent(''), TypeError);
    await assert.rejects(pb.sendAppEvent('e', { n: 1n }), TypeError); // not JSON
    assert.equal(f.calls.length, 0);
  });
});

const BIN = process.env.PLUGBOARD_BIN;

describe('against a real server', { skip: BIN ? false : 'PLUGBOARD_BIN is not set (see sdk/js/test.sh)' }, () => {
  const adminEmail = 'admin@example.com';
  const adminPassword = 'admin-password-for-tests';
  let server; // the plugboard process
  let stderr = '';
  let dataDir;
  let base;
  let adminToken;
  let sink; // the HTTP API the flows call
  const received = [];

  before(async () => {
    sink = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk) => { body += chunk; });
      req.on('end', () => {
        received.push({ key: req.headers['idempotency-key'], body: JSON.parse(body) });
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"ok":true}');
      });
    });
    await new Promise((resolve) => sink.listen(0, '127.0.0.1', resolve));

    dataDir = await mkdtemp(path.join(os.tmpdir(), 'plugboard-js-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = spawn(BIN, ['serve'], {
      env: {
        ...process.env,
        PLUGBOARD_ADDR: `127.0.0.1:${port}`,
        PLUGBOARD_DATA_DIR: dataDir,
        PLUGBOARD_DATABASE_URL: '',
        PLUGBOARD_ADMIN_EMAIL: adminEmail,
        PLUGBOARD_ADMIN_PASSWORD: adminPassword,
        PLUGBOARD_ALLOW_PRIVATE_NETWORKS: 'true',
        PLUGBOARD_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    server.stderr.setEncoding('utf8');
    server.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-8192); });
    await waitFor('the server to be ready', 30_000, async () => {
      if (server.exitCode !== null) {
        throw new Error(`plugboard serve exited with ${server.exitCode}: ${stderr}`);
      }
      try {
        const res = await fetch(`${base}/readyz`);
        await res.arrayBuffer();
        return res.status === 200;
      } catch {
        return false; // not listening yet
      }
    });
    ({ token: adminToken } = await api('POST', '/api/v1/auth/sign-in', '', { email: adminEmail, password: adminPassword }, 200));
  });

  after(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      const timer = setTimeout(() => server.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    if (sink) {
      await new Promise((resolve) => sink.close(resolve));
    }
    if (dataDir) {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  // api calls the REST API directly and checks the status.
  async function api(method, p, token, body, wantStatus) {
    const res = await fetch(base + p, {
      method,
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    assert.equal(res.status, wantStatus, `${method} ${p}: ${text}`);
    return text ? JSON.parse(text) : undefined;
  }

  // newUser creates a virtual user and returns its id and a token.
  async function newUser(email) {
    const u = await api('POST', '/api/v1/users', adminToken, { email, role: 'user', virtual: true }, 201);
    const { token } = await api('POST', `/api/v1/users/${u.id}/tokens`, adminToken, undefined, 201);
    return { id: u.id, token };
  }

  // startFlow creates and starts "app event -> call the sink" for the user.
  async function startFlow(token, event, tag) {
    const flow = await api('POST', '/api/v1/flows', token, {
      name: `${event} to the CRM`,
      components: {
        ev: { type: 'core.OnAppEvent', properties: { event, sample: { email: 'ada@example.com' } } },
        call: {
          type: 'core.HttpRequest',
          properties: { method: 'POST', url: `http://127.0.0.1:${sink.address().port}/contacts`, body: { tag, ev: '{{ $.ev }}' } },
        },
      },
      links: [{ from: 'ev', to: 'call' }],
    }, 201);
    await api('POST', `/api/v1/flows/${flow.id}`, token, { command: 'start' }, 200);
    return flow.id;
  }

  function receivedBy(tag) {
    return received.filter((r) => r.body.tag === tag).map((r) => r.body.ev);
  }

  test('sendAppEvent starts the user\'s flow and the data arrives', async () => {
    const user = await newUser('js-user@example.com');
    const flowId = await startFlow(user.token, 'contact-created', 'user-flow');
    const pb = createClient({ baseUrl: base, token: user.token });

    const data = { email: 'ada@example.com', name: 'Ada Lovelace', tags: ['vip'] };
    const ans = await pb.sendAppEvent('contact-created', data);
    assert.equal(ans.flows, 1);
    assert.equal(ans.correlationIds.length, 1);

    await waitFor('the sink to receive the event', 20_000, () => receivedBy('user-flow').length === 1);
    const ev = receivedBy('user-flow')[0];
    assert.equal(ev.event, 'contact-created');
    assert.equal(ev.userId, user.id);
    assert.deepEqual(ev.data, data);
    assert.match(ev.receivedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    // The correlation id follows the run in the flow's logs.
    const logs = await api('GET', `/api/v1/flows/${flowId}/logs?correlationId=${ans.correlationIds[0]}`, user.token, undefined, 200);
    assert.ok(logs.items.length >= 1);

    // An event no flow takes is still accepted, starting nothing.
    assert.deepEqual(await pb.sendAppEvent('nobody-listens', { x: 1 }), { flows: 0, correlationIds: [] });

    // An admin may send on behalf of the user.
    const admin = createClient({ baseUrl: base, token: adminToken });
    const onBehalf = await admin.sendAppEvent('contact-created', { email: 'grace@example.com' }, { userId: user.id });
    assert.equal(onBehalf.flows, 1);
    await waitFor('the event sent on behalf of the user', 20_000, () => receivedBy('user-flow').length === 2);
    assert.deepEqual(receivedBy('user-flow').map((e) => e.data.email).sort(), ['ada@example.com', 'grace@example.com']);
  });

  test('a bad token is a PlugboardError 401', async () => {
    const pb = createClient({ baseUrl: base, token: 'not-a-token' });
    await assert.rejects(pb.sendAppEvent('contact-created', {}), (err) => {
      assert.ok(err instanceof PlugboardError);
      assert.equal(err.status, 401);
      assert.equal(err.title, 'Unauthorized');
      assert.equal(err.type, 'about:blank');
      assert.equal(err.problem.status, 401);
      assert.ok(err.detail.length > 0);
      return true;
    });
  });

  test('userId from a user who is not an admin is a PlugboardError 403', async () => {
    const user = await newUser('js-other@example.com');
    const pb = createClient({ baseUrl: base, token: user.token });
    await assert.rejects(pb.sendAppEvent('contact-created', {}, { userId: user.id }), (err) => {
      assert.ok(err instanceof PlugboardError);
      assert.equal(err.status, 403);
      assert.equal(err.title, 'Forbidden');
      assert.equal(err.instance, '/api/v1/app-events/contact-created');
      return true;
    });
  });

  test('an event name that is too long is a PlugboardError 422', async () => {
    const pb = createClient({ baseUrl: base, token: adminToken });
    await assert.rejects(pb.sendAppEvent('x'.repeat(201), {}), (err) => err instanceof PlugboardError && err.status === 422);
  });
});

// freePort finds a TCP port nobody listens on.
async function freePort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

// waitFor polls cond until it holds or the deadline passes.
async function waitFor(what, timeoutMs, cond) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
