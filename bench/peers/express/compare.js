#!/usr/bin/env node
'use strict';
// compare.js - sends the same requests to two servers of the legacy todolist contract (sff and the
// Express peer) and compares the answers: status and the sha256 of the body, byte for byte. Exits 0
// when every pair matches, 1 when one differs, 2 on a usage or connection error.
//
//   node compare.js --a http://127.0.0.1:8080 --b http://127.0.0.1:8081 --token JWT [--token JWT ...]
//                   [--login NAME:PASSWORD ...] [--writes] [--quiet]
//
// --token    a user's access token (sff token --sub ID, or the jwtToken cookie of a login); both
//            servers must accept it (the same JWT_SECRET). Each one's reads are compared.
// --login    credentials of an existing user: logins (right and wrong password) and a registration
//            of a taken name are compared.
// --writes   also creates, updates and deletes rules, and registers a user, on both servers (the
//            created rows' key, callNo and timestamps differ by nature and are normalised; the
//            rows are deleted again; the registered users stay). Registrations, even refused ones,
//            count against both servers' limit of 20 an hour per address: --writes uses one, each
//            --login one.
// Both servers must use the same database. Every request carries the same x-request-id on both
// sides, so that error envelopes compare too. Lines: sha256(a) sha256(b) status verdict label.

const crypto = require('node:crypto');

function usage(msg) {
  if (msg) console.error(`compare: ${msg}`);
  console.error('usage: compare.js --a URL --b URL --token JWT [--token JWT ...] [--login NAME:PASSWORD ...] [--writes] [--quiet]');
  process.exit(2);
}

const opts = { a: null, b: null, tokens: [], logins: [], writes: false, quiet: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i];
  const next = () => {
    if (i + 1 >= argv.length) usage(`${arg} needs a value`);
    return argv[++i];
  };
  if (arg === '--a') opts.a = next();
  else if (arg === '--b') opts.b = next();
  else if (arg === '--token') opts.tokens.push(next());
  else if (arg === '--login') opts.logins.push(next());
  else if (arg === '--writes') opts.writes = true;
  else if (arg === '--quiet') opts.quiet = true;
  else if (arg === '-h' || arg === '--help') usage();
  else usage(`unknown argument ${arg}`);
}
if (opts.a === null || opts.b === null) usage('--a and --b are required');
if (opts.tokens.length === 0 && opts.logins.length === 0) usage('give at least one --token or --login');
opts.a = opts.a.replace(/\/+$/, '');
opts.b = opts.b.replace(/\/+$/, '');

const nonce = crypto.randomBytes(4).toString('hex');
let seq = 0;
let compared = 0;
let differ = 0;

function sha(s) {
  return crypto.createHash('sha256').update(s).digest('hex');
}

async function fetchOne(base, method, path, { token, body, rid, raw } = {}) {
  const headers = { 'x-request-id': rid, 'accept-encoding': 'identity' };
  if (token) headers.authorization = `Bearer ${token}`;
  let payload;
  if (raw !== undefined) {
    headers['content-type'] = 'application/json';
    payload = raw;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(base + path, { method, headers, body: payload, redirect: 'manual' });
  } catch (e) {
    console.error(`compare: ${method} ${base}${path}: ${e.cause ? e.cause.message : e.message}`);
    process.exit(2);
  }
  const text = Buffer.from(await res.arrayBuffer()).toString('utf8');
  return { status: res.status, text };
}

// Sends the request to both (a first, then b) and compares; normalise(text) may rewrite what
// differs by nature. Returns both answers.
async function pair(label, method, path, o = {}) {
  const rid = `compare-${nonce}-${++seq}`;
  const ra = await fetchOne(opts.a, method, path, { ...o, rid, token: o.tokenA || o.token, body: o.bodyA || o.body });
  const rb = await fetchOne(opts.b, method, path, { ...o, rid, token: o.tokenB || o.token, body: o.bodyB || o.body });
  const na = o.normalise ? o.normalise(ra.text, 'a') : ra.text;
  const nb = o.normalise ? o.normalise(rb.text, 'b') : rb.text;
  const same = ra.status === rb.status && na === nb;
  compared++;
  if (!same) differ++;
  if (!same || !opts.quiet) {
    const st = ra.status === rb.status ? String(ra.status) : `${ra.status}/${rb.status}`;
    console.log(`${sha(na)} ${sha(nb)} ${st} ${same ? 'ok  ' : 'DIFF'} ${label}${o.normalise ? ' (normalised)' : ''}`);
  }
  if (!same) {
    console.log(`  a: ${na.length > 600 ? `${na.slice(0, 600)}...` : na}`);
    console.log(`  b: ${nb.length > 600 ? `${nb.slice(0, 600)}...` : nb}`);
  }
  return [ra, rb];
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    return null;
  }
}

// A created or updated rule: what differs between two rows made the same way.
function normaliseRule(text) {
  return text
    .replace(/"key":\d+/g, '"key":0')
    .replace(/"callNo":\d+/g, '"callNo":0')
    .replace(/"(createdAt|updatedAt)":"[^"]*"/g, '"$1":"T"');
}

const q = (o) => `?${new URLSearchParams(o).toString()}`;

async function reads(token, who) {
  const t = { token };
  await pair(`${who} GET /api/currentUser`, 'GET', '/api/currentUser', t);
  const lists = [
    {},
    { current: '1', pageSize: '5' },
    { current: '2', pageSize: '5' },
    { current: '3', pageSize: '5' },
    { current: '100', pageSize: '20' },
    { pageSize: '1000' },
    { sorter: '{"name":"ascend"}' },
    { sorter: '{"name":"descend"}', pageSize: '7' },
    { sorter: '{"progress":"descend"}' },
    { sorter: '{"createdAt":"ascend"}', current: '2', pageSize: '3' },
    { sorter: '{"updatedAt":"descend"}' },
    { sorter: '{"callNo":"ascend"}' },
    { sorter: '{"status":"ascend"}' },
    { sorter: '{"key":"ascend"}' },
    { sorter: '{"desc":"ascend"}' },
    { sorter: '{"bogus":"ascend"}' },
    { sorter: 'not json' },
    { sorter: '' },
    { name: 'a' },
    { name: 'E' },
    { name: 'no such name at all' },
    { status: '0' },
    { status: '1' },
    { status: '2' },
    { status: '0,2' },
    { status: '1,3' },
    // not { status: '' }: sff caches it under the key of no status at all, so its answer depends on
    // which of the two was cached first (an empty filter matches nothing, no filter everything)
    { name: 'e', status: '0,1,2,3', sorter: '{"name":"descend"}', current: '2', pageSize: '3' },
    { current: '2.0', pageSize: '4' },
    { current: '1' }, // a second read of the same page: from the cache where there is one
    { current: '1' },
    // refused
    { status: '9' },
    { status: 'open' },
    { current: '0' },
    { current: 'abc' },
    { pageSize: '1001' },
    { pageSize: '-1' },
    { name: 'x'.repeat(201) },
  ];
  for (const l of lists) await pair(`${who} GET /api/rule${q(l)}`, 'GET', `/api/rule${q(l)}`, t);
  await pair(`${who} GET /api/rule (again, cached)`, 'GET', '/api/rule', t);
  await pair(`${who} PATCH /api/rule (405)`, 'PATCH', '/api/rule', t);
  await pair(`${who} POST /api/rule bad JSON`, 'POST', '/api/rule', { ...t, raw: '[1,2]' });
  await pair(`${who} POST /api/rule method=bogus`, 'POST', '/api/rule', { ...t, body: { method: 'bogus' } });
  await pair(`${who} POST /api/rule name too long`, 'POST', '/api/rule', { ...t, body: { name: 'x'.repeat(501), status: true } });
  await pair(`${who} GET /api/users`, 'GET', '/api/users', t);
}

async function accounts(login) {
  const i = login.indexOf(':');
  if (i < 0) usage('--login takes NAME:PASSWORD');
  const name = login.slice(0, i);
  const password = login.slice(i + 1);
  const path = '/api/login/account';
  await pair(`POST ${path} ${name} (right password)`, 'POST', path, { body: { userName: name, password } });
  await pair(`POST ${path} ${name} type=mobile`, 'POST', path, { body: { userName: name, password, type: 'mobile' } });
  await pair(`POST ${path} ${name} (wrong password)`, 'POST', path, { body: { userName: name, password: `${password}-wrong` } });
  await pair(`POST ${path} (unknown user)`, 'POST', path, { body: { userName: `nobody-${nonce}`, password } });
  await pair(`POST ${path} (no password)`, 'POST', path, { body: { userName: name } });
  await pair('POST /user/register (taken name)', 'POST', '/user/register', { body: { userName: name, password: 'some-password' } });
  await pair('POST /user/register (short password)', 'POST', '/user/register', { body: { userName: `x${nonce}`, password: '12345' } });
  await pair('POST /user/register (bad name)', 'POST', '/user/register', { body: { userName: 'a b', password: '123456' } });
}

async function writes(token, who) {
  const t = { token };
  const made = { a: null, b: null };
  const remember = (text, side) => {
    const v = parse(text);
    if (v && typeof v.key === 'number' && made[side] === null) made[side] = v.key;
    return normaliseRule(text);
  };
  await pair(`${who} POST /api/rule create`, 'POST', '/api/rule', { ...t, body: { name: `compare ${nonce} Ünïcode \u0001 "q"`, desc: 'made by compare.js' }, normalise: remember });
  if (made.a === null || made.b === null) {
    console.log(`  (${who}: no rule was created on both sides: the write checks stop here)`);
    return;
  }
  await pair(`${who} POST /api/rule create (method post, no desc)`, 'POST', '/api/rule', { ...t, body: { method: 'post', name: `compare ${nonce} second` },
    normalise: (text, side) => {
      const v = parse(text);
      if (v && typeof v.key === 'number') made[`${side}2`] = v.key;
      return normaliseRule(text);
    } });
  await pair(`${who} POST /api/rule create (empty name)`, 'POST', '/api/rule', { ...t, body: { name: '' } });
  await pair(`${who} POST /api/rule update`, 'POST', '/api/rule', { ...t, bodyA: { method: 'update', key: made.a, name: `compare ${nonce} renamed`, status: 2 },
    bodyB: { method: 'update', key: made.b, name: `compare ${nonce} renamed`, status: 2 }, normalise: normaliseRule });
  await pair(`${who} PUT /api/rule (string key and status)`, 'PUT', '/api/rule', { ...t, bodyA: { key: String(made.a), desc: 'changed', status: '1' },
    bodyB: { key: String(made.b), desc: 'changed', status: '1' }, normalise: normaliseRule });
  await pair(`${who} PUT /api/rule (no such key)`, 'PUT', '/api/rule', { ...t, body: { key: 0, name: 'x' } });
  // both servers see both new rows now: the lists must match exactly (and no cache may be stale)
  await pair(`${who} GET /api/rule after writes`, 'GET', '/api/rule', t);
  await pair(`${who} GET /api/rule?name=compare after writes`, 'GET', `/api/rule${q({ name: `compare ${nonce}` })}`, t);
  await pair(`${who} GET /api/rule?status=1 after writes`, 'GET', `/api/rule${q({ status: '1' })}`, t);
  const keys = [made.a, made.b, made.a2, made.b2].filter((k) => typeof k === 'number');
  // a deletes them all; b then deletes nothing: both answer the page without them
  await pair(`${who} POST /api/rule delete`, 'POST', '/api/rule', { ...t, body: { method: 'delete', key: keys } });
  await pair(`${who} DELETE /api/rule (gone keys, as strings)`, 'DELETE', '/api/rule', { ...t, body: { key: keys.map(String) } });
  await pair(`${who} DELETE /api/rule (one key)`, 'DELETE', '/api/rule', { ...t, body: { key: 0 } });
  await pair(`${who} GET /api/rule after delete`, 'GET', '/api/rule', t);
}

async function register() {
  const name = (side) => `cmp_${nonce}_${side}`;
  await pair('POST /user/register (new user)', 'POST', '/user/register', {
    bodyA: { userName: name('a'), password: 'compare-password' },
    bodyB: { userName: name('b'), password: 'compare-password' },
    normalise: (text, side) => text.split(name(side)).join('NAME'),
  });
  await pair('POST /api/login/account (the new user)', 'POST', '/api/login/account', {
    bodyA: { userName: name('a'), password: 'compare-password' },
    bodyB: { userName: name('b'), password: 'compare-password' },
  });
}

(async () => {
  console.log(`compare: a=${opts.a} b=${opts.b}`);
  await pair('GET /api/notices', 'GET', '/api/notices');
  await pair('GET /api/currentUser (no token)', 'GET', '/api/currentUser');
  await pair('GET /api/rule (bad token)', 'GET', '/api/rule', { token: 'not.a.token' });
  await pair('GET /api/rule (foreign signature)', 'GET', '/api/rule', {
    token: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.vy-FCQ_sUEy8eAw5RDjZjPEbFQCJP9W5sdRYz8KVRyU',
  });
  await pair('GET /no/such/path', 'GET', '/no/such/path');
  for (const [i, token] of opts.tokens.entries()) await reads(token, `user#${i + 1}`);
  for (const login of opts.logins) await accounts(login);
  if (opts.writes) {
    for (const [i, token] of opts.tokens.entries()) await writes(token, `user#${i + 1}`);
    await register();
  }
  console.log(`compare: ${compared} requests, ${differ} differ${differ === 0 ? ': the bodies match' : ''}`);
  process.exit(differ === 0 ? 0 : 1);
})();
