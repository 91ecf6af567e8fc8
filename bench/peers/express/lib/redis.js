'use strict';
// redis.js - Redis for the peer (ioredis): the JSON list cache with tag versions, the fixed-window
// rate limiter and plain commands, with the same scripts, keys and round trips as sff's
// (baas/redis_helpers.c, docs/decisions/0034 and 0035):
//  - a cache get is one EVALSHA that reads the epoch and the tag's version and returns the entry
//    when its stamp is current, else the current stamp; a miss sets with that stamp, and the set is
//    skipped when a version moved in between (a write raced the read);
//  - a write INCRs the tag's version (one EVALSHA), so the next read of any cached page misses;
//  - a rate limit is one EVALSHA: INCR, and PEXPIRE on the first hit of a window.
// Entries and rate-limit counters live under CACHE_PREFIX ("xp:"), apart from sff's; the tag
// versions and the epoch under CACHE_TAG_PREFIX ("sff:", sff's own), so that a write through either
// server invalidates the lists both have cached over the same database.

const Redis = require('ioredis');

const GET_SCRIPT =
  'local s = {}\n' +
  "for i = 2, #KEYS do s[#s + 1] = redis.call('GET', KEYS[i]) or '0' end\n" +
  "local stamp = table.concat(s, ',')\n" +
  "local v = redis.call('GET', KEYS[1])\n" +
  'if v then\n' +
  "  local n = string.find(v, '\\n', 1, true)\n" +
  '  if n and string.sub(v, 1, n - 1) == stamp then return {1, string.sub(v, n + 1)} end\n' +
  'end\n' +
  'return {0, stamp}\n';

const SET_SCRIPT =
  'local s = {}\n' +
  "for i = 2, #KEYS do s[#s + 1] = redis.call('GET', KEYS[i]) or '0' end\n" +
  "local stamp = table.concat(s, ',')\n" +
  "if ARGV[3] ~= '' and ARGV[3] ~= stamp then return 0 end\n" +
  "redis.call('SET', KEYS[1], stamp .. '\\n' .. ARGV[1], 'EX', ARGV[2])\n" +
  'return 1\n';

const INVALIDATE_SCRIPT = "for i = 1, #KEYS do redis.call('INCR', KEYS[i]) end\n" + 'return #KEYS\n';

const LIMIT_SCRIPT =
  "local n = redis.call('INCR', KEYS[1])\n" +
  "local ttl = redis.call('PTTL', KEYS[1])\n" +
  'if ttl < 0 then\n' +
  "  redis.call('PEXPIRE', KEYS[1], ARGV[1])\n" +
  '  ttl = tonumber(ARGV[1])\n' +
  'end\n' +
  'return {n, ttl}\n';

class Cache {
  constructor({ url, prefix, tagPrefix }) {
    this.prefix = prefix;
    this.tagPrefix = tagPrefix;
    this.epochKey = `${tagPrefix}epoch`;
    this.lostInvalidation = false;
    this.redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: false });
    this.redis.on('error', () => {}); // ioredis reconnects by itself; calls fail meanwhile
    // An invalidation whose outcome is unknown may leave stale entries: every entry misses once.
    this.redis.on('ready', () => {
      if (this.lostInvalidation) {
        this.lostInvalidation = false;
        this.redis.incr(this.epochKey).catch(() => {
          this.lostInvalidation = true;
        });
      }
    });
    this.redis.defineCommand('xpCacheGet', { numberOfKeys: 3, lua: GET_SCRIPT });
    this.redis.defineCommand('xpCacheSet', { numberOfKeys: 3, lua: SET_SCRIPT });
    this.redis.defineCommand('xpInvalidate', { numberOfKeys: 1, lua: INVALIDATE_SCRIPT });
    this.redis.defineCommand('xpLimit', { numberOfKeys: 1, lua: LIMIT_SCRIPT });
  }

  // The entry of key under tag: {hit: json text} or {stamp} (a miss; a failure is a miss too).
  async get(key, tag) {
    try {
      const r = await this.redis.xpCacheGet(`${this.prefix}c:${key}`, this.epochKey, `${this.tagPrefix}t:${tag}`);
      return r[0] === 1 ? { hit: r[1] } : { stamp: r[1] };
    } catch (e) {
      return { stamp: null };
    }
  }

  // Stores json (text) unless the stamp of the get moved; failures are not the caller's problem.
  async set(key, tag, stamp, json, ttlS) {
    try {
      await this.redis.xpCacheSet(`${this.prefix}c:${key}`, this.epochKey, `${this.tagPrefix}t:${tag}`, json, String(ttlS),
        stamp !== null && stamp !== undefined ? stamp : '');
    } catch (e) {
      // the next read misses
    }
  }

  async invalidate(tag) {
    try {
      await this.redis.xpInvalidate(`${this.tagPrefix}t:${tag}`);
    } catch (e) {
      this.lostInvalidation = true;
    }
  }

  // Counts a hit of key in a window: {allowed, retryAfterS}; Redis down: allowed (fails open).
  async limit(key, limit, windowS) {
    try {
      const [n, ttl] = await this.redis.xpLimit(Buffer.isBuffer(key) ? Buffer.concat([Buffer.from(`${this.prefix}rl:`), key])
        : `${this.prefix}rl:${key}`, String(windowS * 1000));
      if (n <= limit) return { allowed: true };
      return { allowed: false, retryAfterS: ttl > 0 ? Math.floor((ttl + 999) / 1000) : 1 };
    } catch (e) {
      return { allowed: true };
    }
  }

  // A plain command, best effort (the activity feed).
  command(name, ...args) {
    return this.redis.call(name, ...args);
  }

  end() {
    this.redis.disconnect();
  }
}

module.exports = { Cache };
