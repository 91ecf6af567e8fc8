'use strict';
// json.js - JSON text as sff writes it (jansson's json_dumps with JSON_COMPACT): JSON.stringify
// writes the same bytes for the values the todolist sends (keys in insertion order, no spaces,
// UTF-8 unescaped, "/" unescaped), except for the control characters it must escape as \u00XX:
// jansson writes their hex digits in upper case, JSON.stringify in lower case.

// An escaped backslash is matched first, so a literal "\u001f" typed by a user stays as it is.
const ESCAPES = /\\\\|\\u00[01][0-9a-f]/g;

function upper(m) {
  return m.length === 2 ? m : m.slice(0, 4) + m.slice(4).toUpperCase();
}

function dumps(value) {
  const s = JSON.stringify(value);
  return s.indexOf('\\u') === -1 ? s : s.replace(ESCAPES, upper);
}

module.exports = { dumps };
