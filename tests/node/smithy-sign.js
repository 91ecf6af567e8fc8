'use strict';
/*
 * smithy-sign.js - reference S3 signatures from @smithy/signature-v4 (the AWS SDK for JavaScript v3's
 * signer), for tests/unit/baas/sigv4.c to compare with sff's byte for byte.
 *
 * Reads a JSON array of S3 requests on stdin, each:
 *   {scheme, host, port (or null), style: "path"|"virtual", bucket, key (raw, or null for the
 *    bucket), method, query: {name: value} (decoded), region, accessKey, secretKey, sessionToken
 *    (or null), date (ISO 8601), and either payloadHash (header signing) or presign: true with
 *    expires (seconds)}
 * and writes a JSON array: {host, path, authorization, canonicalRequest} for header signing,
 * {url} for presigning. The path is built here from the raw key with smithy's own escaping (what the
 * AWS SDK's S3 client sends), so the comparison also checks sff's S3 URI encoding.
 */
const fs = require('fs');
const { SignatureV4, getCanonicalHeaders } = require('@smithy/signature-v4');
const { Sha256 } = require('@aws-crypto/sha256-js');
const { escapeUri, escapeUriPath, HttpRequest } = require('@smithy/core/protocols');

function build(c) {
  const hostname = c.style === 'virtual' ? `${c.bucket}.${c.host}` : c.host;
  const host = c.port ? `${hostname}:${c.port}` : hostname;
  let path = c.style === 'virtual' ? '' : `/${c.bucket}`;
  if (c.key != null) path += '/' + escapeUriPath(c.key);
  else if (c.style === 'virtual') path = '/';
  const request = new HttpRequest({
    method: c.method,
    protocol: `${c.scheme}:`,
    hostname,
    port: c.port || undefined,
    path,
    query: { ...(c.query || {}) },
    headers: { host },
  });
  return { request, host, path };
}

function canonicalQueryString(query) {
  return Object.keys(query)
    .map((k) => [escapeUri(k), escapeUri(query[k])])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

async function one(c) {
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: c.accessKey,
      secretAccessKey: c.secretKey,
      sessionToken: c.sessionToken || undefined,
    },
    region: c.region,
    service: 's3',
    sha256: Sha256,
    uriEscapePath: false, // S3: the path is signed as sent, encoded once
    applyChecksum: false,
  });
  const signingDate = new Date(c.date);
  const { request, host, path } = build(c);
  if (c.presign) {
    // S3 presigned URLs sign the host header only, with an unsigned payload.
    request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    const only = new Set(['x-amz-content-sha256']);
    const p = await signer.presign(request, {
      signingDate,
      expiresIn: c.expires,
      unsignableHeaders: only,
      unhoistableHeaders: only,
    });
    const { 'X-Amz-Signature': sig, ...rest } = p.query;
    return { url: `${c.scheme}://${host}${path}?${canonicalQueryString(rest)}&X-Amz-Signature=${sig}` };
  }
  request.headers['x-amz-content-sha256'] = c.payloadHash;
  const signed = await signer.sign(request, { signingDate });
  const canonicalRequest = signer.createCanonicalRequest(signed, getCanonicalHeaders(signed), c.payloadHash);
  return { host, path, authorization: signed.headers.authorization, canonicalRequest };
}

async function main() {
  const cases = JSON.parse(fs.readFileSync(0, 'utf8'));
  const out = [];
  for (const c of cases) out.push(await one(c));
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
