'use strict';
// The Express peer of sff's benchmark: the legacy todolist contract of functions/todolist
// (/api/login/account, /user/register, /api/currentUser, /api/rule, /api/notices, /api/users) on
// Express 4, pg, ioredis, jsonwebtoken and argon2id, over the same schema, with the same SQL, the
// same Redis list cache and the same response bodies. See README.md; the fairness rules are in
// docs/decisions/0070-express-peer.md.

const cluster = require('node:cluster');
const crypto = require('node:crypto');
const os = require('node:os');
const path = require('node:path');

// ---- configuration ------------------------------------------------------------------------------

function env(name, def) {
  const v = process.env[name];
  return v === undefined || v === '' ? def : v;
}

function intEnv(name, def) {
  const v = parseInt(env(name, String(def)), 10);
  return Number.isFinite(v) ? v : def;
}

const config = {
  host: env('HOST', '127.0.0.1'),
  port: intEnv('PORT', 8081),
  workers: Math.max(1, intEnv('WORKERS', os.availableParallelism ? os.availableParallelism() : os.cpus().length)),
  pgUrl: env('PG_URL', ''),
  pgPool: Math.max(1, intEnv('PG_POOL', 4)),
  pgClaims: env('PG_CLAIMS', 'segment'),
  pgStatementTimeoutMs: intEnv('PG_STATEMENT_TIMEOUT_MS', 30000),
  redisUrl: env('REDIS_URL', ''),
  cache: env('CACHE', 'on') !== 'off',
  cachePrefix: env('CACHE_PREFIX', 'xp:'),
  cacheTagPrefix: env('CACHE_TAG_PREFIX', 'sff:'),
  jwtSecret: env('JWT_SECRET', ''),
  jwtCookie: env('JWT_COOKIE', 'jwtToken'),
  jwtLeewayS: intEnv('JWT_LEEWAY_S', 30),
  staticDir: env('STATIC_DIR', ''),
  schemasDir: env('SCHEMAS_DIR', path.join(__dirname, '..', '..', '..', 'schemas')),
  maxBody: env('MAX_BODY', '1mb'),
  argon2MemoryKib: intEnv('ARGON2_MEMORY_KIB', 65536), // libsodium's interactive limits, sff's default
  argon2Time: intEnv('ARGON2_TIME', 2),
};

if (cluster.isPrimary && config.workers > 1) {
  primary();
} else {
  worker().catch((e) => {
    console.error(`peer: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
  });
}

// ---- the primary: Node's cluster, one worker per core by default --------------------------------

function primary() {
  let listening = 0;
  let stopping = false;
  const fork = () => cluster.fork();
  for (let i = 0; i < config.workers; i++) fork();
  cluster.on('listening', () => {
    if (++listening === config.workers) {
      console.log(`peer: listening on http://${config.host}:${config.port} (${config.workers} workers, cluster)`);
    }
  });
  cluster.on('exit', (w, code, signal) => {
    if (stopping) return;
    console.error(`peer: worker ${w.process.pid} died (${signal || code}); starting another`);
    setTimeout(fork, 100);
  });
  const stop = () => {
    stopping = true;
    for (const id in cluster.workers) cluster.workers[id].process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 2000).unref();
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers).length === 0) process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// ---- a worker: the Express app ------------------------------------------------------------------

async function worker() {
  const express = require('express');
  const cookieParser = require('cookie-parser');
  const jwt = require('jsonwebtoken');
  const argon2 = require('@node-rs/argon2');
  const { Db, DbError, ROWS, ONE, EXEC } = require('./lib/db');
  const { Cache } = require('./lib/redis');
  const { Schemas } = require('./lib/validate');
  const { dumps } = require('./lib/json');

  if (config.pgUrl === '') throw new Error('PG_URL is required');
  if (config.jwtSecret === '') throw new Error('JWT_SECRET is required');

  const db = new Db({ url: config.pgUrl, size: config.pgPool, mode: config.pgClaims, statementTimeoutMs: config.pgStatementTimeoutMs });
  const redis = config.redisUrl !== '' ? new Cache({ url: config.redisUrl, prefix: config.cachePrefix, tagPrefix: config.cacheTagPrefix }) : null;
  const schemas = new Schemas(config.schemasDir);
  for (const s of ['todolist-legacy-login', 'todolist-legacy-register', 'todolist-legacy-rule-list', 'todolist-legacy-rule']) schemas.get(s);

  const HASH_OPTIONS = {
    algorithm: argon2.Algorithm.Argon2id,
    memoryCost: config.argon2MemoryKib,
    timeCost: config.argon2Time,
    parallelism: 1,
    outputLen: 32,
  };
  // An unknown name costs a verification too, so timing does not tell which names exist.
  const dummyHash = await argon2.hash(crypto.randomBytes(32).toString('hex'), HASH_OPTIONS);

  // A KeyObject made once: given the string, jsonwebtoken 9 first tries it as a PEM public key on
  // every call, a failed OpenSSL parse that costs ~0.45 ms here (auth0/node-jsonwebtoken#966, #1046).
  const jwtKey = crypto.createSecretKey(Buffer.from(config.jwtSecret, 'utf8'));

  const ACCESS_TTL_S = 900;
  const LIST_TTL_S = 300;
  const JSON_TYPE = 'application/json; charset=utf-8';
  const TODO_COLUMNS = 'id, owner, name, "desc", status, progress, call_no, href, avatar, created_at, updated_at';
  const USER_COLUMNS =
    'id, username, name, email, signature, title, "group", country, address, phone, tags, avatar_key, role, created_at, updated_at';

  // ---- errors: sff's envelope ----

  const KINDS = {
    BADREQ: [400, 'bad_request', 'the request is malformed'],
    INVALID: [400, 'validation_failed', 'the input failed validation'],
    BADJSON: [400, 'invalid_json', 'the body is not valid JSON'],
    UNAUTHORIZED: [401, 'unauthorized', 'a valid token is required'],
    FORBIDDEN: [403, 'forbidden', 'the token does not allow this'],
    NOTFOUND: [404, 'not_found', 'no such resource'],
    METHOD: [405, 'method_not_allowed', 'the method is not allowed on this path'],
    CONFLICT: [409, 'conflict', 'the resource already exists or changed'],
    TOOLARGE: [413, 'payload_too_large', 'the body is larger than allowed'],
    MEDIATYPE: [415, 'unsupported_media_type', 'the body must be JSON or a form'],
    RATELIMIT: [429, 'rate_limited', 'too many requests'],
    INTERNAL: [500, 'internal_error', 'internal error'],
    UNAVAILABLE: [503, 'backend_unavailable', 'a backend is unavailable'],
    TIMEDOUT: [504, 'timeout', 'the function did not finish in time'],
  };

  class ApiError extends Error {
    constructor(kind, message, details) {
      super(message || KINDS[kind][2]);
      this.kind = kind;
      this.details = details || [];
    }
  }

  function send(res, status, body) {
    res.status(status).set('Content-Type', JSON_TYPE).send(typeof body === 'string' ? body : dumps(body));
  }

  function sendError(req, res, kind, message, details) {
    const [status, code, text] = KINDS[kind];
    send(res, status, { error: { code, message: message || text, details: details || [], request_id: req.id } });
  }

  // ---- input: sff's merged input (query, then the body over it) ----

  const MALFORMED = Symbol('malformed');

  // What is wrong with a query string or form body for sff (null: nothing): it must decode to
  // UTF-8 text without NUL.
  function formProblem(text) {
    if (/%(?![0-9A-Fa-f]{2})|%00/.test(text)) return /%00/.test(text) ? 'NUL in form data' : 'malformed percent escape in form data';
    for (const part of text.split(/[&=]/)) {
      if (part.includes('%')) {
        try {
          decodeURIComponent(part);
        } catch (e) {
          return 'invalid UTF-8 in form data';
        }
      }
    }
    return null;
  }

  // name=value pairs (application/x-www-form-urlencoded) into an object; the last of a name wins.
  function parseForm(text) {
    const o = Object.create(null); // "__proto__" is a name like any other
    if (typeof text !== 'string' || text === '') return o; // Express passes null for no query
    if (text.includes('%')) {
      const problem = formProblem(text);
      if (problem !== null) {
        o[MALFORMED] = problem;
        return o;
      }
    }
    for (const [k, v] of new URLSearchParams(text)) o[k] = v;
    return o;
  }

  function str(v) {
    return typeof v === 'string' ? v : null;
  }

  function getStr(input, key) {
    return typeof input[key] === 'string' ? input[key] : '';
  }

  const INT64 = (v) => BigInt.asIntN(64, v);

  function strtoll(s) {
    const m = /^[ \t\n\v\f\r]*([+-]?[0-9]+)/.exec(s);
    if (m === null) return 0n;
    const v = BigInt(m[1]);
    return v > 9223372036854775807n ? 9223372036854775807n : v < -9223372036854775808n ? -9223372036854775808n : v;
  }

  // A JSON value as sff_json_int_value reads it: integers, reals truncated, anything else 0.
  function intValue(v) {
    if (typeof v === 'bigint') return v;
    return typeof v === 'number' && Number.isFinite(v) ? INT64(BigInt(Math.trunc(v))) : 0n;
  }

  // todos.c's int_of(): a string's leading integer ("" for the default), a number, or the default.
  function intOf(input, key, def) {
    const v = input[key];
    if (typeof v === 'string') return v !== '' ? strtoll(v) : def;
    return v === undefined ? def : intValue(v);
  }

  function uid(req) {
    return req.claims && typeof req.claims.sub === 'string' ? req.claims.sub : '';
  }

  function claimName(req) {
    return req.claims && typeof req.claims.name === 'string' ? req.claims.name : null;
  }

  function clientIp(req) {
    const a = req.socket.remoteAddress || '';
    return a.startsWith('::ffff:') ? a.slice(7) : a;
  }

  // Every statement carries the caller's claims, as sff's do.
  function q(req, shape, sql, values) {
    if (req.claims === null) return db.query(shape, sql, values, null, null);
    if (req.claimsText === undefined) req.claimsText = JSON.stringify(req.claims);
    return db.query(shape, sql, values, req.claimsText, uid(req));
  }

  async function rateLimit(key, limit, windowS) {
    if (redis === null) return;
    const r = await redis.limit(key, limit, windowS);
    if (!r.allowed) {
      const e = new ApiError('RATELIMIT', `too many requests, retry in ${r.retryAfterS} s`);
      e.retryAfter = r.retryAfterS;
      throw e;
    }
  }

  // ---- shapes (functions/todolist/common.c) ----

  function ruleJson(row, ownerName) {
    return {
      key: row.id,
      name: row.name,
      desc: row.desc,
      owner: ownerName !== null ? ownerName : '',
      status: row.status,
      progress: row.progress,
      callNo: row.call_no,
      href: row.href,
      avatar: row.avatar,
      disabled: false,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }

  function avatarUrl(user) {
    return user.avatar_key !== null && user.avatar_key !== undefined ? `/api/v1/me/avatar?v=${user.updated_at}` : null;
  }

  function loadUser(req, id) {
    return q(req, ONE, `select ${USER_COLUMNS} from users where id = $1::bigint`, [id]);
  }

  function tag(req) {
    return `todos:${uid(req)}`;
  }

  // After a write: the caller's cached lists are invalidated, and a line goes to the activity feed.
  async function afterWrite(req, what, todo) {
    if (redis === null) return;
    await redis.invalidate(tag(req));
    const line = { what };
    if (todo !== null) {
      line.id = todo.id;
      line.name = todo.name;
    }
    const key = `todolist:activity:${uid(req)}`;
    // the feed is best-effort: a failure is not the write's
    await Promise.all([redis.command('LPUSH', key, dumps(line)), redis.command('LTRIM', key, '0', '19')]).catch(() => {});
  }

  // ---- accounts (functions/todolist/accounts.c, common.c) ----

  async function checkLogin(req, username, password) {
    // 10 attempts a minute per username (lowercased, as sff's 72-byte buffer keeps it), 30 per address
    const name = Buffer.from(username, 'utf8');
    const n = Math.min(name.length, 71);
    const lower = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) lower[i] = name[i] >= 0x41 && name[i] <= 0x5a ? name[i] + 32 : name[i];
    await rateLimit(Buffer.concat([Buffer.from('login:user:'), lower]), 10, 60);
    await rateLimit(`login:ip:${clientIp(req)}`, 30, 60);
    const hashRow = await q(req, ONE, 'select id, password_hash from users where lower(username) = lower($1)', [username]);
    let match;
    try {
      match = await argon2.verify(hashRow !== null ? hashRow.password_hash : dummyHash, password);
    } catch (e) {
      throw new ApiError('INTERNAL', 'the stored password hash cannot be read');
    }
    if (hashRow === null || !match) return null;
    return loadUser(req, String(hashRow.id));
  }

  function issueSession(req, res, user) {
    const now = Math.floor(Date.now() / 1000);
    // the members in the order sff's tokens carry them (libjwt sorts them)
    const claims = { exp: now + ACCESS_TTL_S, iat: now, name: user.username, role: user.role, sub: String(user.id) };
    const token = jwt.sign(claims, jwtKey, { algorithm: 'HS256', keyid: 'default' });
    res.cookie(config.jwtCookie, token, { path: '/', maxAge: ACCESS_TTL_S * 1000, httpOnly: true, sameSite: 'lax', secure: req.secure });
    return token;
  }

  async function createUser(req, username, password, name) {
    const hash = await argon2.hash(password, HASH_OPTIONS);
    try {
      return await q(req, ONE, `insert into users (username, password_hash, name) values ($1, $2, $3) returning ${USER_COLUMNS}`,
        [username, hash, name !== null ? name : username]);
    } catch (e) {
      if (e instanceof DbError && e.kind === 'CONFLICT') throw new ApiError('CONFLICT', `the username "${username}" is taken`);
      throw e;
    }
  }

  async function login(req, res) {
    const input = req.input;
    const type = getStr(input, 'type');
    const user = await checkLogin(req, getStr(input, 'userName'), getStr(input, 'password'));
    const out = { type: type !== '' ? type : 'account' };
    if (user === null) {
      // the frontend reads "status", not the HTTP status
      out.status = 'error';
      out.currentAuthority = 'guest';
      return send(res, 200, out);
    }
    issueSession(req, res, user);
    out.status = 'ok';
    out.currentAuthority = user.role;
    send(res, 200, out);
  }

  async function register(req, res) {
    const row = await createUser(req, getStr(req.input, 'userName'), getStr(req.input, 'password'), null);
    send(res, 200, { status: 'ok', currentAuthority: row.username });
  }

  async function currentUser(req, res) {
    const user = await loadUser(req, uid(req));
    if (user === null) throw new ApiError('UNAUTHORIZED', 'the user is gone');
    const avatar = avatarUrl(user);
    send(res, 200, {
      name: user.name !== '' ? user.name : user.username,
      avatar: avatar !== null ? avatar : '',
      userid: String(user.id),
      email: user.email,
      signature: user.signature,
      title: user.title,
      group: user.group,
      country: user.country,
      address: user.address,
      phone: user.phone,
      tags: user.tags,
      notifyCount: 0,
      unreadCount: 0,
      geographic: { province: { label: '', key: '' }, city: { label: '', key: '' } },
    });
  }

  async function users(req, res) {
    const rows = await q(req, ROWS, 'select username from users order by id', []);
    send(res, 200, rows.map((r) => r.username));
  }

  // ---- /api/rule (functions/todolist/todos.c) ----

  // The ORDER BY of a sorter {"field": "ascend"|"descend"}, from an allowlist; never user text.
  const SORTABLE = new Map([['key', 'id'], ['name', 'name'], ['desc', '"desc"'], ['status', 'status'], ['progress', 'progress'],
    ['callNo', 'call_no'], ['updatedAt', 'updated_at'], ['createdAt', 'created_at']]);

  function orderBy(sorter) {
    if (sorter === null || sorter === '') return 'id desc';
    let s;
    try {
      s = JSON.parse(sorter);
    } catch (e) {
      return 'id desc';
    }
    if (s === null || typeof s !== 'object' || Array.isArray(s)) return 'id desc';
    const field = Object.keys(s)[0];
    const dir = field !== undefined ? s[field] : undefined;
    if (typeof dir !== 'string' || !SORTABLE.has(field)) return 'id desc';
    return `${SORTABLE.get(field)} ${dir === 'ascend' ? 'asc' : 'desc'}, id desc`;
  }

  const COUNT_SQL =
    'select count(*) as total from todos where owner = $1::bigint and ($2::text is null or strpos(lower(name), lower($2)) > 0) ' +
    "and ($3::text is null or status = any (string_to_array($3, ',')::smallint[]))";

  // One page of the caller's rules as the legacy frontend wants it: the page and the count at once.
  async function rulePage(req, current, pageSize, sorter, name, status) {
    if (current < 1n) current = 1n;
    if (pageSize < 1n || pageSize > 1000n) pageSize = 20n;
    const off = String(INT64((current - 1n) * pageSize));
    const lim = String(pageSize);
    const sql =
      `select ${TODO_COLUMNS} from todos where owner = $1::bigint and ($2::text is null or strpos(lower(name), lower($2)) > 0) ` +
      `and ($3::text is null or status = any (string_to_array($3, ',')::smallint[])) order by ${orderBy(sorter)} ` +
      'limit $4::int offset $5::int';
    const [rows, count] = await Promise.all([
      q(req, ROWS, sql, [uid(req), name, status, lim, off]),
      q(req, ONE, COUNT_SQL, [uid(req), name, status]),
    ]);
    const owner = claimName(req);
    return { data: rows.map((r) => ruleJson(r, owner)), total: count.total, success: true, pageSize: Number(pageSize), current: Number(current) };
  }

  async function ruleList(req, res) {
    const input = req.input;
    const current = intOf(input, 'current', 1n);
    const size = intOf(input, 'pageSize', 20n);
    const sorter = str(input.sorter);
    const name = str(input.name);
    const status = str(input.status);
    if (status !== null && !/^[0123,]*$/.test(status)) throw new ApiError('INVALID', 'status is a comma-separated list of 0 to 3');
    const key = `todos:${uid(req)}:rule:${current}:${size}:${sorter !== null ? sorter : ''}:${name !== null ? name : ''}:${status !== null ? status : ''}`;
    let stamp = null;
    if (redis !== null && config.cache) {
      const c = await redis.get(key, tag(req));
      if (c.hit !== undefined) return send(res, 200, c.hit);
      stamp = c.stamp;
    }
    const body = dumps(await rulePage(req, current, size, sorter, name, status));
    if (redis !== null && config.cache && stamp !== null) await redis.set(key, tag(req), stamp, body, LIST_TTL_S);
    send(res, 200, body);
  }

  async function ruleCreate(req, res, input) {
    const name = getStr(input, 'name');
    if (name === '') throw new ApiError('INVALID', 'name is required');
    const row = await q(req, ONE,
      `insert into todos (owner, name, "desc", call_no, href) values ($1::bigint, $2, $3, floor(random() * 1000)::int, '') returning ${TODO_COLUMNS}`,
      [uid(req), name, getStr(input, 'desc')]);
    await afterWrite(req, 'created', row);
    send(res, 200, ruleJson(row, claimName(req)));
  }

  async function ruleUpdate(req, res, input) {
    const hasStatus = Object.prototype.hasOwnProperty.call(input, 'status');
    const row = await q(req, ONE,
      'update todos set name = coalesce($3, name), "desc" = coalesce($4, "desc"), status = coalesce($5::smallint, status), ' +
        `updated_at = now() where id = $1::bigint and owner = $2::bigint returning ${TODO_COLUMNS}`,
      [String(intOf(input, 'key', 0n)), uid(req), str(input.name), str(input.desc), hasStatus ? String(intOf(input, 'status', 0n)) : null]);
    if (row === null) throw new ApiError('NOTFOUND', 'no such rule');
    await afterWrite(req, 'updated', row);
    send(res, 200, ruleJson(row, claimName(req)));
  }

  async function ruleDelete(req, res, input) {
    let keys = input.key;
    if (!Array.isArray(keys)) keys = keys === undefined ? [] : [keys];
    const ids = keys.map((k) => (typeof k === 'string' ? strtoll(k) : intValue(k)));
    await q(req, EXEC, 'delete from todos where owner = $1::bigint and id = any (array(select jsonb_array_elements_text($2::jsonb)::bigint))',
      [uid(req), `[${ids.join(',')}]`]);
    await afterWrite(req, 'deleted', null);
    const page = await rulePage(req, 1n, 10n, null, null, null);
    send(res, 200, { list: page.data, pagination: { total: page.total, current: 1, pageSize: 10 } });
  }

  async function rulePost(req, res) {
    const method = getStr(req.input, 'method');
    if (method === '' || method === 'post') return ruleCreate(req, res, req.input);
    if (method === 'update') return ruleUpdate(req, res, req.input);
    if (method === 'delete') return ruleDelete(req, res, req.input);
    throw new ApiError('INVALID', 'method must be post, update or delete');
  }

  // ---- middleware ----

  const RID_OK = /^[A-Za-z0-9._:-]{1,64}$/;
  let ridCounter = 0;
  function requestId(req, res, next) {
    const h = req.headers['x-request-id'];
    req.id = typeof h === 'string' && RID_OK.test(h) ? h
      : crypto.randomBytes(8).toString('hex') + ((++ridCounter) & 0xffffff).toString(16).padStart(6, '0');
    res.setHeader('x-request-id', req.id);
    req.claims = null;
    next();
  }

  // The token: "Authorization: Bearer", else the jwtToken cookie (whose mutations must come from
  // this origin).
  function findToken(req) {
    const h = req.headers.authorization;
    if (typeof h === 'string' && h.length > 7 && h.slice(0, 7).toLowerCase() === 'bearer ') {
      const t = h.slice(7).trim();
      if (t !== '') return [t, false];
    }
    const c = req.cookies[config.jwtCookie];
    return typeof c === 'string' && c !== '' ? [c, true] : [null, false];
  }

  function sameOrigin(req) {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return true;
    let origin = req.headers.origin;
    if (origin === undefined) {
      const referer = req.headers.referer;
      if (referer === undefined) return true;
      const m = /^([^:]*:\/\/[^/]*)/.exec(referer);
      if (m === null) return false;
      origin = m[1];
    }
    return origin.toLowerCase() === `${req.secure ? 'https' : 'http'}://${req.headers.host || ''}`.toLowerCase();
  }

  // policy: "public" (a bad token counts as none), "user" or "role:NAME".
  function auth(policy) {
    return (req, res, next) => {
      const [token, fromCookie] = findToken(req);
      if (token !== null && fromCookie && !sameOrigin(req)) return sendError(req, res, 'FORBIDDEN', 'cross-site request refused');
      if (token !== null) {
        try {
          const t = jwt.verify(token, jwtKey, { algorithms: ['HS256'], clockTolerance: config.jwtLeewayS, complete: true });
          if (t.header.kid !== undefined && t.header.kid !== 'default') throw new jwt.JsonWebTokenError('unknown key');
          if (t.payload === null || typeof t.payload !== 'object') throw new jwt.JsonWebTokenError('claims not an object');
          req.claims = t.payload;
        } catch (e) {
          if (policy !== 'public') {
            const why = e.name === 'TokenExpiredError' ? 'expired' : e.message === 'invalid signature' ? 'bad signature' : 'malformed token';
            res.set('WWW-Authenticate', `Bearer realm="sff", error="invalid_token", error_description="${why}"`);
            return sendError(req, res, 'UNAUTHORIZED', 'the token is not valid');
          }
        }
      }
      if (policy !== 'public' && req.claims === null) {
        res.set('WWW-Authenticate', 'Bearer realm="sff"');
        return sendError(req, res, 'UNAUTHORIZED', 'a valid token is required');
      }
      if (policy.startsWith('role:')) {
        const role = policy.slice(5);
        const roles = req.claims.roles;
        const has = req.claims.role === role || (Array.isArray(roles) && roles.includes(role)) ||
          (typeof roles === 'string' && roles.split(' ').includes(role));
        if (!has) return sendError(req, res, 'FORBIDDEN', 'the token lacks the role this route requires');
      }
      next();
    };
  }

  const jsonBody = express.json({
    limit: config.maxBody,
    strict: false,
    type: (req) => {
      const t = String(req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
      return t === 'application/json' || (t.startsWith('application/') && t.endsWith('+json'));
    },
  });
  // forms are parsed by parseForm (querystring's arrays for repeated names are not sff's forms)
  const formBody = express.text({ type: 'application/x-www-form-urlencoded', limit: config.maxBody, defaultCharset: 'utf-8' });

  function hasBody(req) {
    return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length']) > 0;
  }

  // The merged input of sff: the query, then the body's members over it, checked against a schema.
  function input(schema) {
    return (req, res, next) => {
      let body = {};
      if (req.query[MALFORMED]) return sendError(req, res, 'BADREQ', 'the query string is not valid percent-encoded UTF-8');
      if (req._body && typeof req.body === 'string') {
        body = parseForm(req.body);
        if (body[MALFORMED]) return sendError(req, res, 'BADREQ', body[MALFORMED]);
      } else if (req._body) {
        if (req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
          return sendError(req, res, 'BADJSON', 'the body must be a JSON object');
        }
        body = req.body;
      } else if (hasBody(req)) {
        return sendError(req, res, 'MEDIATYPE', 'the body must be application/json or application/x-www-form-urlencoded');
      }
      const merged = Object.assign(Object.create(null), req.query, body); // "__proto__" is a member like any other
      if (schema !== null) {
        const fromQuery = Object.keys(req.query).filter((k) => !Object.prototype.hasOwnProperty.call(body, k));
        const details = schemas.validate(schema, merged, fromQuery);
        if (details.length > 0) return sendError(req, res, 'INVALID', null, details);
      }
      req.input = merged;
      next();
    };
  }

  // A route's own rate limit, per caller: the token's subject, else the client's address.
  function routeLimit(label, limit, windowS) {
    return (req, res, next) => {
      rateLimit(`route:${label}:${req.claims !== null && typeof req.claims.sub === 'string' ? req.claims.sub : clientIp(req)}`, limit, windowS)
        .then(() => next(), next);
    };
  }

  const wrap = (fn) => (req, res, next) => fn(req, res).catch(next);

  // ---- the app ----

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false); // sff sends no ETag on JSON (static files keep theirs)
  app.set('trust proxy', false);
  // sff's query strings: flat, the last of a repeated name wins, refused unless valid
  // percent-encoded UTF-8 (the flag is read by input())
  app.set('query parser', parseForm);
  app.use(requestId);
  app.use(cookieParser());

  let ready = false;
  app.get('/_health', (req, res) => send(res, 200, { status: 'ok' }));
  app.get('/_ready', (req, res) => send(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready' }));

  const body = [jsonBody, formBody];
  app.post('/api/login/account', auth('public'), body, input('todolist-legacy-login'), wrap(login));
  app.post('/user/register', auth('public'), body, input('todolist-legacy-register'), routeLimit('POST /user/register', 20, 3600),
    wrap(register));
  app.get('/api/currentUser', auth('user'), body, input(null), wrap(currentUser));
  app.get('/api/rule', auth('user'), body, input('todolist-legacy-rule-list'), wrap(ruleList));
  app.post('/api/rule', auth('user'), body, input('todolist-legacy-rule'), wrap(rulePost));
  app.put('/api/rule', auth('user'), body, input('todolist-legacy-rule'), wrap((req, res) => ruleUpdate(req, res, req.input)));
  app.delete('/api/rule', auth('user'), body, input('todolist-legacy-rule'), wrap((req, res) => ruleDelete(req, res, req.input)));
  app.get('/api/notices', auth('public'), (req, res) => send(res, 200, []));
  app.get('/api/users', auth('role:admin'), body, input(null), wrap(users));

  // Another method on a route's path: 405 with Allow (a page of the single-page app may share the
  // path of a POST route: a GET that accepts HTML goes on to the static files).
  const ALLOW = {
    '/api/login/account': 'POST, OPTIONS',
    '/user/register': 'POST, OPTIONS',
    '/api/currentUser': 'GET, HEAD, OPTIONS',
    '/api/rule': 'GET, HEAD, POST, PUT, DELETE, OPTIONS',
    '/api/notices': 'GET, HEAD, OPTIONS',
    '/api/users': 'GET, HEAD, OPTIONS',
  };
  for (const [p, allow] of Object.entries(ALLOW)) {
    app.all(p, (req, res, next) => {
      res.set('Allow', allow);
      if (req.method === 'OPTIONS') return res.status(204).end();
      if (config.staticDir !== '' && (req.method === 'GET' || req.method === 'HEAD') && !allow.startsWith('GET') &&
          String(req.headers.accept || '').includes('text/html')) {
        res.removeHeader('Allow');
        return next();
      }
      sendError(req, res, 'METHOD');
    });
  }

  if (config.staticDir !== '') {
    app.use(express.static(config.staticDir));
    // the single-page app's history routing: index.html for any other GET that accepts HTML
    app.get('*', (req, res, next) => {
      if (!String(req.headers.accept || '').includes('text/html')) return next();
      res.set('Cache-Control', 'no-cache');
      res.sendFile(path.resolve(config.staticDir, 'index.html'), (err) => err && next());
    });
  }

  app.use((req, res) => sendError(req, res, 'NOTFOUND'));

  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    if (res.headersSent) return res.end();
    if (err instanceof ApiError) {
      if (err.retryAfter !== undefined) res.set('Retry-After', String(err.retryAfter));
      return sendError(req, res, err.kind, err.message, err.details);
    }
    if (err instanceof DbError) {
      if (err.kind === 'INTERNAL' || err.kind === 'UNAVAILABLE') console.error(`peer: ${req.method} ${req.path}: ${err.message}`);
      return sendError(req, res, err.kind);
    }
    switch (err.type) {
      case 'entity.parse.failed':
        return sendError(req, res, 'BADJSON');
      case 'entity.too.large':
        return sendError(req, res, 'TOOLARGE');
      case 'encoding.unsupported':
      case 'charset.unsupported':
        return sendError(req, res, 'MEDIATYPE');
      case 'request.aborted':
        return res.end();
    }
    if (typeof err.status === 'number' && err.status >= 400 && err.status < 500) return sendError(req, res, 'BADREQ');
    console.error(`peer: ${req.method} ${req.path}: ${err && err.stack ? err.stack : err}`);
    sendError(req, res, 'INTERNAL');
  });

  await db.warm();
  ready = true;
  const server = app.listen(config.port, config.host, () => {
    if (!cluster.isWorker) console.log(`peer: listening on http://${config.host}:${config.port} (1 worker, no cluster)`);
  });
  server.keepAliveTimeout = 60000; // SFF_IDLE_TIMEOUT_MS
  server.headersTimeout = 65000;
  const stop = () => {
    server.close();
    setTimeout(() => process.exit(0), 1000).unref();
    Promise.allSettled([db.end()]).then(() => {
      if (redis !== null) redis.end();
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
