'use strict';
// validate.js - the input checks of the legacy routes: the route's JSON Schema from sff's
// schemas/json (read at start, so both servers check the same rules), for the keywords those
// schemas use (type, enum, required, properties, minLength, maxLength, pattern, minimum, maximum),
// with sff's messages and detail order (gateway/schema.c), and sff's coercion of query parameters
// (a query's "2" is the integer 2 where the schema wants an integer and not a string).
// It is not a general validator: a keyword outside that list is refused at start.

const fs = require('node:fs');
const path = require('node:path');

const KNOWN = new Set(['title', 'description', 'type', 'enum', 'required', 'properties', 'minLength', 'maxLength',
  'pattern', 'minimum', 'maximum']);
const NOUNS = [['string', 'a string'], ['number', 'a number'], ['integer', 'an integer'], ['boolean', 'a boolean'],
  ['array', 'an array'], ['object', 'an object'], ['null', 'null']];

function compile(node, where) {
  for (const k of Object.keys(node)) {
    if (!KNOWN.has(k)) throw new Error(`${where}: the keyword "${k}" is not supported by the peer's validator`);
  }
  const c = {
    types: node.type === undefined ? null : new Set(Array.isArray(node.type) ? node.type : [node.type]),
    enum: node.enum,
    required: node.required || [],
    props: [],
    minLength: node.minLength,
    maxLength: node.maxLength,
    pattern: node.pattern !== undefined ? new RegExp(node.pattern, 'u') : null,
    patternSrc: node.pattern,
    minimum: node.minimum,
    maximum: node.maximum,
  };
  for (const [name, sub] of Object.entries(node.properties || {})) c.props.push([name, compile(sub, `${where}/${name}`)]);
  return c;
}

function typeOf(v) {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (typeof v === 'bigint') return 'integer';
  if (typeof v === 'string') return 'string';
  if (Array.isArray(v)) return 'array';
  return 'object';
}

function typeMessage(types) {
  const t = new Set(types);
  if (t.has('number')) t.delete('integer'); // "a number" covers "an integer"
  const nouns = NOUNS.filter(([n]) => t.has(n)).map(([, noun]) => noun);
  let s = 'must be ';
  nouns.forEach((n, i) => {
    if (i !== 0) s += i + 1 === nouns.length ? ' or ' : ', ';
    s += n;
  });
  return s;
}

function numberText(n) {
  return String(n);
}

function pointer(base, key) {
  return `${base}/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

function equal(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a === b;
  return JSON.stringify(a) === JSON.stringify(b);
}

function check(node, v, at, out) {
  if (node.types !== null) {
    const t = typeOf(v);
    const ok = node.types.has(t) || (t === 'integer' && node.types.has('number'));
    if (!ok) {
      out.push({ path: at, message: typeMessage(node.types) });
      return;
    }
  }
  if (node.enum !== undefined && !node.enum.some((e) => equal(e, v))) {
    out.push({ path: at, message: `must be one of: ${node.enum.map((e) => (typeof e === 'number' ? numberText(e) : JSON.stringify(e))).join(', ')}` });
  }
  if (typeof v === 'string') {
    if (node.minLength !== undefined || node.maxLength !== undefined) {
      let chars = 0;
      for (const ignored of v) chars++; // code points, as sff counts UTF-8 characters
      if (node.minLength !== undefined && chars < node.minLength) {
        out.push({ path: at, message: `must be at least ${node.minLength} character${node.minLength === 1 ? '' : 's'}` });
      }
      if (node.maxLength !== undefined && chars > node.maxLength) {
        out.push({ path: at, message: `must be at most ${node.maxLength} character${node.maxLength === 1 ? '' : 's'}` });
      }
    }
    if (node.pattern !== null && (v.includes('\0') || !node.pattern.test(v))) {
      out.push({ path: at, message: `must match pattern ${node.patternSrc}` });
    }
  } else if (typeof v === 'number' || typeof v === 'bigint') {
    if (node.minimum !== undefined && v < node.minimum) out.push({ path: at, message: `must be at least ${numberText(node.minimum)}` });
    if (node.maximum !== undefined && v > node.maximum) out.push({ path: at, message: `must be at most ${numberText(node.maximum)}` });
  } else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const name of node.required) {
      if (!Object.prototype.hasOwnProperty.call(v, name)) out.push({ path: pointer(at, name), message: 'is required' });
    }
    for (const [name, sub] of node.props) {
      if (Object.prototype.hasOwnProperty.call(v, name)) check(sub, v[name], pointer(at, name), out);
    }
  }
}

// A JSON number's text (RFC 8259) as sff coerces it, else undefined.
function coerce(s, types) {
  if (types.has('boolean')) {
    if (s === 'true') return true;
    if (s === 'false') return false;
  }
  if ((types.has('integer') || types.has('number')) && /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(s)) {
    if (/^-?[0-9]+$/.test(s)) {
      const b = BigInt(s); // strtoll: beyond 64 bits it is no integer
      if (b > 9223372036854775807n || b < -9223372036854775808n) return undefined;
      const n = Number(b);
      return Number.isSafeInteger(n) ? n : b; // exact, as sff's int64 is
    }
    const n = Number(s);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

class Schemas {
  constructor(dir) {
    this.dir = dir;
    this.byName = new Map();
  }

  get(name) {
    let s = this.byName.get(name);
    if (s === undefined) {
      const file = path.join(this.dir, 'json', `${name}.json`);
      s = compile(JSON.parse(fs.readFileSync(file, 'utf8')), name);
      this.byName.set(name, s);
    }
    return s;
  }

  // Coerces the query's members in input (those the body did not replace), then checks input.
  // Returns the details of every failure ([] when valid), at most 50 and a summary, as sff does.
  validate(name, input, fromQuery) {
    const root = this.get(name);
    for (const key of fromQuery) {
      const v = input[key];
      if (typeof v !== 'string') continue;
      const prop = root.props.find(([n]) => n === key);
      if (prop === undefined || prop[1].types === null) continue;
      const t = prop[1].types;
      if ((t.has('integer') || t.has('number') || t.has('boolean')) && !t.has('string')) {
        const c = coerce(v, t);
        if (c !== undefined) input[key] = c;
      }
    }
    const out = [];
    check(root, input, '', out);
    if (out.length > 50) {
      const more = out.length - 50;
      out.length = 50;
      out.push({ path: '', message: `and ${more} more failures` });
    }
    return out;
  }
}

module.exports = { Schemas };
