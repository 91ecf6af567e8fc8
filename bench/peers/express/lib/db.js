'use strict';
// db.js - Postgres for the peer: a pg Pool, rows converted the way sff converts them
// (baas/pg_json.c), and every statement run with the caller's claims set for row-level security,
// as sff does.
//
// sff runs each statement as one pipeline segment on a connection:
//   [Parse claims_sql once] Bind/Execute claims_sql, [Parse sql once] Bind/Describe/Execute sql, Sync
// The messages before a Sync form one implicit transaction, so set_config(..., true) holds for the
// statement and ends with it: one round trip, two prepared statements, no BEGIN/COMMIT.
//
// PG_CLAIMS=segment (the default) sends the same messages from node-postgres, through its
// documented extension point for custom queries (an object with submit(), as pg-cursor does).
// PG_CLAIMS=tx is the textbook form, BEGIN; select set_config(...); statement; COMMIT on a client
// from pool.connect(): the same work in Postgres, four round trips instead of one.

const { Pool } = require('pg');

const CLAIMS_SQL =
  "select set_config('request.jwt.claims', $1, true), set_config('request.jwt.claim.sub', $2, true)";

// The session sff sets up on every connection (baas/pg.c).
function setupSql(statementTimeoutMs) {
  return (
    `set statement_timeout = ${statementTimeoutMs}; set TimeZone = 'UTC'; set DateStyle = 'ISO, MDY'; ` +
    "set bytea_output = 'hex'; set extra_float_digits = 1; select set_config('client_connection_check_interval', " +
    "'1000', false) where current_setting('server_version_num')::int >= 140000"
  );
}

// ---- values as sff's JSON ---------------------------------------------------------------------------

const TWO_53 = 9007199254740992n;

function integer(s, mayBeLarge) {
  if (!/^-?\d+$/.test(s)) return s;
  if (s.length < 16) return Number(s); // |v| < 10^15: exact
  const v = BigInt(s);
  if (v > 9223372036854775807n || v < -9223372036854775808n) return s;
  if (mayBeLarge && (v > TWO_53 || v < -TWO_53)) return s; // JavaScript would round it
  return Number(v);
}

function real(s) {
  const v = Number(s);
  return Number.isFinite(v) && s.trim() !== '' ? v : s; // "NaN", "Infinity" have no JSON number
}

// "2026-11-21 06:40:00.123456+00" -> "2026-11-21T06:40:00.123456Z"; another offset as "+05:30".
function timestamp(s, withZone) {
  const sp = s.indexOf(' ');
  if (sp < 0 || s.length >= 60 || s.indexOf(' ', sp + 1) >= 0) return s;
  const date = s.slice(0, sp) + 'T';
  const t = s.slice(sp + 1);
  if (!withZone) return date + t;
  const zone = Math.max(t.lastIndexOf('+'), t.lastIndexOf('-'));
  if (zone < 0) return s;
  const z = t.slice(zone);
  if (z === '+00') return date + t.slice(0, zone) + 'Z';
  return date + t.slice(0, zone) + z + (z.length === 3 ? ':00' : '');
}

function jsonValue(s) {
  try {
    return JSON.parse(s);
  } catch (e) {
    return s;
  }
}

function bytea(s) {
  if (s.length < 2 || s[0] !== '\\' || s[1] !== 'x' || s.length % 2 !== 0) return s;
  return Buffer.from(s.slice(2), 'hex').toString('base64');
}

// One column's text (never SQL NULL) as sff's JSON value, by type OID. Arrays and the rarer types
// stay text: the todolist reads none of them.
function convert(oid, s) {
  switch (oid) {
    case 21: // int2
    case 23: // int4
    case 26: // oid
      return integer(s, false);
    case 20: // int8
      return integer(s, true);
    case 16: // bool
      return s.length > 0 && s[0] === 't';
    case 700: // float4
    case 701: // float8
      return real(s);
    case 114: // json
    case 3802: // jsonb
      return jsonValue(s);
    case 1184: // timestamptz
      return timestamp(s, true);
    case 1114: // timestamp
      return timestamp(s, false);
    case 17: // bytea
      return bytea(s);
    default:
      return s;
  }
}

const parsers = new Map();
const types = {
  getTypeParser(oid) {
    let p = parsers.get(oid);
    if (p === undefined) {
      p = (s) => convert(oid, s);
      parsers.set(oid, p);
    }
    return p;
  },
};

// ---- errors ---------------------------------------------------------------------------------------

// A statement's failure, with sff's error kind for it (baas/pg_json.c: sff_pg_error_code).
class DbError extends Error {
  constructor(cause) {
    super(cause && cause.message ? cause.message : String(cause));
    this.cause = cause;
    const c = cause && typeof cause.code === 'string' && cause.severity !== undefined ? cause.code : null;
    if (c === null || c.length !== 5) this.kind = 'UNAVAILABLE';
    else if (c === '23505' || c === '23503' || c === '23P01') this.kind = 'CONFLICT';
    else if (c.startsWith('22') || c === '23502' || c === '23514') this.kind = 'INVALID';
    else if (c === '57014') this.kind = 'TIMEDOUT';
    else if (c === '42501') this.kind = 'FORBIDDEN';
    else if (c.startsWith('08') || c === '57P01' || c === '57P02' || c === '57P03') this.kind = 'UNAVAILABLE';
    else this.kind = 'INTERNAL';
  }
}

// ---- one statement with the claims, one round trip (PG_CLAIMS=segment) ----------------------------

const ROWS = 0;
const ONE = 1;
const EXEC = 2;

// The prepared statements of each connection: sql -> name.
const prepared = new WeakMap();
let statementCounter = 0;

class Segment {
  constructor(sql, values, shape, claims, sub) {
    this.sql = sql;
    this.values = values;
    this.shape = shape;
    this.claims = claims;
    this.sub = sub;
    this.callback = null;
    this.phase = claims !== null ? 0 : 1; // 0: the claims' statement, 1: the statement
    this.fields = null;
    this.rows = [];
    this.command = '';
    this.parsedNow = null; // statements first parsed by this call
    this.done = false;
  }

  // Called by pg's Client when the connection is ours.
  submit(connection) {
    let names = prepared.get(connection);
    if (names === undefined) {
      names = new Map();
      prepared.set(connection, names);
    }
    const stream = connection.stream;
    if (stream.cork) stream.cork();
    try {
      if (this.claims !== null) this.send(connection, names, CLAIMS_SQL, [this.claims, this.sub], false);
      this.send(connection, names, this.sql, this.values, true);
      connection.sync();
    } finally {
      if (stream.uncork) stream.uncork();
    }
    return null;
  }

  send(connection, names, sql, values, describe) {
    let name = names.get(sql);
    if (name === undefined) {
      name = `xp${++statementCounter}`;
      connection.parse({ name, text: sql, types: [] });
      names.set(sql, name);
      (this.parsedNow || (this.parsedNow = [])).push([names, sql]);
    }
    connection.bind({ statement: name, values });
    if (describe) connection.describe({ type: 'P', name: '' });
    connection.execute({ portal: '', rows: 0 });
  }

  handleRowDescription(msg) {
    if (this.phase === 1) this.fields = msg.fields;
  }

  handleDataRow(msg) {
    if (this.phase !== 1 || this.fields === null) return; // the claims' row
    if (this.shape !== ROWS && this.rows.length > 0) return;
    const row = {};
    const values = msg.fields;
    const fields = this.fields;
    for (let i = 0; i < fields.length; i++) {
      const v = values[i];
      row[fields[i].name] = v === null ? null : convert(fields[i].dataTypeID, v);
    }
    this.rows.push(row);
  }

  handleCommandComplete(msg) {
    if (this.phase === 0) this.phase = 1;
    else this.command = msg.text;
  }

  handleReadyForQuery() {
    if (this.done) return;
    this.done = true;
    let result;
    if (this.shape === ROWS) result = this.rows;
    else if (this.shape === ONE) result = this.rows.length > 0 ? this.rows[0] : null;
    else {
      const n = /(\d+)$/.exec(this.command);
      result = n ? Number(n[1]) : 0;
    }
    this.callback(null, result);
  }

  handleError(err) {
    if (this.parsedNow !== null) {
      // An error at Bind or Execute (a constraint, a bad number) leaves the Parses before it done;
      // any other may have been the Parse itself: prepare again, under a new name, next time.
      const c = err && typeof err.code === 'string' ? err.code : '';
      if (!(c.startsWith('22') || c.startsWith('23') || c === '57014')) {
        for (const [names, sql] of this.parsedNow) names.delete(sql);
      }
    }
    if (this.done) return;
    this.done = true;
    this.callback(err);
  }

  handleEmptyQuery() {}
  handlePortalSuspended() {}
  handleCopyInResponse() {}
  handleCopyData() {}
}

// ---- the pool -------------------------------------------------------------------------------------

class Db {
  constructor({ url, size, mode, statementTimeoutMs }) {
    this.mode = mode === 'tx' ? 'tx' : 'segment';
    this.size = size;
    const setup = setupSql(statementTimeoutMs);
    this.pool = new Pool({
      connectionString: url,
      max: size,
      idleTimeoutMillis: 0, // keep every connection, as sff does
      connectionTimeoutMillis: 2000, // sff's queue_timeout_ms: a call waits that long for a connection
      types,
    });
    this.pool.on('connect', (client) => {
      client.query(setup).catch(() => {});
    });
    this.pool.on('error', () => {}); // an idle client's lost connection: the pool replaces it
    this.names = new Map(); // sql -> statement name (PG_CLAIMS=tx)
  }

  // Opens every connection now, as sff does at start.
  async warm() {
    const clients = [];
    try {
      for (let i = 0; i < this.size; i++) clients.push(await this.pool.connect());
    } finally {
      for (const c of clients) c.release();
    }
  }

  name(sql) {
    let n = this.names.get(sql);
    if (n === undefined) {
      n = `xq${this.names.size + 1}`;
      this.names.set(sql, n);
    }
    return n;
  }

  // Runs sql with values (strings or null) and the caller's claims (JSON text, or null for none);
  // resolves to rows (ROWS), the first row or null (ONE), or the affected count (EXEC).
  async query(shape, sql, values, claims, sub) {
    let client;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw new DbError(e);
    }
    let broken;
    try {
      if (this.mode === 'segment') {
        return await new Promise((resolve, reject) => {
          const s = new Segment(sql, values, shape, claims, sub === undefined || sub === null ? '' : sub);
          s.callback = (err, res) => (err ? reject(err) : resolve(res));
          client.query(s);
        });
      }
      return await this.inTransaction(client, shape, sql, values, claims, sub);
    } catch (e) {
      // a statement's error leaves the connection usable; a lost connection does not
      broken = e && e.severity === undefined ? e : undefined;
      throw new DbError(e);
    } finally {
      client.release(broken);
    }
  }

  async inTransaction(client, shape, sql, values, claims, sub) {
    if (claims === null) {
      // no claims: one statement in its own implicit transaction, as sff sends it
      const r = await client.query({ name: this.name(sql), text: sql, values });
      return shape === ROWS ? r.rows : shape === ONE ? (r.rows.length > 0 ? r.rows[0] : null) : r.rowCount;
    }
    await client.query('begin');
    try {
      await client.query({ name: this.name(CLAIMS_SQL), text: CLAIMS_SQL, values: [claims, sub || ''] });
      const r = await client.query({ name: this.name(sql), text: sql, values });
      await client.query('commit');
      return shape === ROWS ? r.rows : shape === ONE ? (r.rows.length > 0 ? r.rows[0] : null) : r.rowCount;
    } catch (e) {
      await client.query('rollback').catch(() => {});
      throw e;
    }
  }

  end() {
    return this.pool.end();
  }
}

module.exports = { Db, DbError, ROWS, ONE, EXEC, CLAIMS_SQL, convert };
