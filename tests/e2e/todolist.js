#!/usr/bin/env node
// Browser tests of the todolist web app (web/todolist) against a running sff:
//   SFF_URL=http://127.0.0.1:PORT node tests/e2e/todolist.js
// Drives Debian's Chromium (/usr/bin/chromium, or $CHROMIUM) headless through playwright-core and
// prints "ok - NAME" / "not ok - NAME" per check; exits non-zero on any failure. A failing check
// saves a screenshot to tests/e2e/screenshots/NAME.png. Within a journey, the checks after a failed
// one are reported as failed (skipped) rather than run against a broken state.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { chromium } = require('playwright-core');

const BASE = (process.env.SFF_URL || '').replace(/\/+$/, '');
const SHOTS = path.join(__dirname, 'screenshots');
const TIMEOUT = +(process.env.E2E_TIMEOUT_MS || 10000); // per waiting assertion
const PAGE_SIZE = 20; // the app's page size
const run = Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
const A = { username: `alice_${run}`, password: 'correct-horse-A1', name: 'Alice Tester' };
const B = { username: `bob_${run}`, password: 'correct-horse-B2', name: 'Bob Tester' };
const shared = {}; // facts one journey hands to the next (A's todo ids)
let failures = 0;

// ---- a small PNG, made here: 8x8, RGB, a blue square ------------------------------------------

function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
function png(size, rgb) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4), crc = Buffer.alloc(4), td = Buffer.concat([Buffer.from(type), data]);
    len.writeUInt32BE(data.length);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8 bits, truecolour, deflate, no filter, no interlace
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array(size).fill(rgb).flat())]);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(Array(size).fill(row)))), chunk('IEND', Buffer.alloc(0))]);
}
const AVATAR = png(8, [11, 83, 148]);
const AVATAR2 = png(16, [164, 38, 44]); // a replacement, told apart by its size

// ---- checks -----------------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const slug = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 80);

// Polls fn until it returns a truthy value; fails with what it last saw.
async function until(what, fn, timeout = TIMEOUT) {
  const end = Date.now() + timeout;
  let last = '';
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = `: ${e.message.split('\n')[0]}`;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last}`);
    await sleep(100);
  }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

async function check(name, page, fn) {
  try {
    await fn();
    console.log(`ok - ${name}`);
    return true;
  } catch (e) {
    failures++;
    console.log(`not ok - ${name}`);
    console.log(String(e && e.stack ? e.message : e).split('\n').slice(0, 8).map((l) => `#   ${l}`).join('\n'));
    if (page && !page.isClosed()) {
      const file = path.join(SHOTS, `${slug(name)}.png`);
      try {
        fs.mkdirSync(SHOTS, { recursive: true });
        await page.screenshot({ path: file, fullPage: true, timeout: 5000 });
        console.log(`#   screenshot: ${file}`);
      } catch (se) {
        console.log(`#   no screenshot: ${se.message.split('\n')[0]}`);
      }
    }
    return false;
  }
}

// steps: [name, () => page, async fn]; after a failure the rest of the journey is skipped.
async function journey(steps) {
  let broken = null;
  for (const [name, page, fn] of steps) {
    if (broken) {
      failures++;
      console.log(`not ok - ${name} # skipped: "${broken}" failed`);
    } else if (!(await check(name, page(), fn))) {
      broken = name;
    }
  }
}

// ---- what the user sees ----------------------------------------------------------------------

const h1 = (page) => page.locator('h1').first().textContent({ timeout: 1000 }).then((t) => t.trim());
const alertText = (page) => page.getByRole('alert').textContent().then((t) => t.trim());
const statusText = (page) => page.getByRole('status').textContent().then((t) => t.trim());
const pathname = (page) => new URL(page.url()).pathname;

// The todo list as shown: [{name, desc, done}] in display order.
const items = (page) => page.locator('main ul.todos > li').evaluateAll((lis) => lis.map((li) => ({
  name: li.querySelector('label').textContent.trim(),
  desc: (li.querySelector('.desc') || { textContent: '' }).textContent.trim(),
  done: li.querySelector('input[type=checkbox]').checked,
})));
const names = async (page) => (await items(page)).map((t) => t.name);

async function onPage(page, title, where) {
  try {
    await until(`the page "${title}"${where ? ` at ${where}` : ''}`, async () => (await h1(page)) === title && (!where || pathname(page) === where));
  } catch (e) {
    const alert = await alertText(page).catch(() => '');
    throw new Error(`${e.message} (showing "${await h1(page).catch(() => '?')}" at ${pathname(page)}${alert ? `, alert: "${alert}"` : ''})`);
  }
}

// Runs fetch inside the page (same origin, the page's cookies): {status, body}.
function pageFetch(page, method, url, body) {
  return page.evaluate(async ([method, url, body]) => {
    const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      opts.body = JSON.stringify(body);
      opts.headers['Content-Type'] = 'application/json';
    }
    const res = await fetch(url, opts);
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, body: json };
  }, [method, url, body]);
}

// Every todo of the logged-in user, following next_cursor.
async function allTodos(page) {
  const out = [];
  let cursor = null;
  for (let i = 0; i < 50; i++) {
    const q = new URLSearchParams({ limit: '100' });
    if (cursor) q.set('cursor', cursor);
    const r = await pageFetch(page, 'GET', `/api/v1/todos?${q}`);
    assert(r.status === 200, `GET /api/v1/todos answered ${r.status} ${JSON.stringify(r.body)}`);
    out.push(...r.body.items);
    cursor = r.body.next_cursor;
    if (!cursor) return out;
  }
  throw new Error('next_cursor never ends');
}

async function register(page, user) {
  await page.goto(`${BASE}/register`);
  await onPage(page, 'Create an account', '/register');
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Display name (optional)').fill(user.name);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Create account' }).click();
}

async function login(page, user) {
  if (pathname(page) !== '/login') await page.goto(`${BASE}/login`);
  await onPage(page, 'Log in', '/login');
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

async function addTodo(page, name, desc) {
  const before = (await items(page)).length;
  await page.getByLabel('New todo').fill(name);
  if (desc) await page.getByLabel('Details (optional)').fill(desc);
  await page.getByLabel('New todo').press('Enter'); // the keyboard submits the form
  await until(`"${name}" in the list`, async () => (await items(page)).length === before + 1 && (await names(page))[0] === name);
}

// ---- the journeys -----------------------------------------------------------------------------

function journeyA(page) {
  const P = () => page;
  return [
    ['the app is served at / and sends a visitor to the login page', P, async () => {
      const res = await page.goto(`${BASE}/`);
      assert(res && res.status() === 200, `GET / answered ${res && res.status()}`);
      await onPage(page, 'Log in', '/login');
      assert((await page.title()).includes('Log in'), `title is "${await page.title()}"`);
    }],
    ['the page has header, nav and main landmarks and a label for every input', P, async () => {
      for (const role of ['banner', 'navigation', 'main']) {
        assert(await page.getByRole(role).count() === 1, `no single ${role} landmark`);
      }
      const unlabelled = await page.locator('input, select, textarea').evaluateAll((els) =>
        els.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map((e) => e.outerHTML));
      assert(unlabelled.length === 0, `inputs without a label: ${unlabelled.join(' ')}`);
      assert(await page.getByRole('alert').count() === 1 && await page.getByRole('status').count() === 1,
        'no alert and status live regions');
    }],
    ['navigating moves the focus to the new page\'s heading', P, async () => {
      await page.getByRole('navigation').getByRole('link', { name: 'Register', exact: true }).click();
      await onPage(page, 'Create an account', '/register');
      await until('the focus on the h1', () => page.evaluate(() => document.activeElement && document.activeElement.tagName === 'H1'));
      await page.goBack();
      await onPage(page, 'Log in', '/login');
    }],
    ['register user A', P, async () => {
      await register(page, A);
      await onPage(page, 'Log in', '/login');
      await until('the "created" status', async () => /created/i.test(await statusText(page)));
      assert(await page.getByLabel('Username').inputValue() === A.username, 'the username is not filled in on the login page');
    }],
    ['registering a taken username shows the API\'s error message', P, async () => {
      const answer = page.waitForResponse((r) => r.url().endsWith('/api/v1/users') && r.request().method() === 'POST');
      await register(page, A);
      const res = await answer;
      assert(res.status() === 409, `POST /api/v1/users with a taken name answered ${res.status()}`);
      const message = (await res.json()).error.message;
      await until(`the API's message "${message}" in the alert region`, async () => (await alertText(page)).includes(message));
      assert(await h1(page) === 'Create an account', 'left the register page');
    }],
    ['a wrong password shows an error and stays on the login page', P, async () => {
      await login(page, { username: A.username, password: 'not-the-password' });
      await until('an error in the alert region', async () => (await alertText(page)) !== '');
      assert(await h1(page) === 'Log in' && pathname(page) === '/login', 'left the login page');
    }],
    ['log in as A: an empty todo list and A\'s name in the header', P, async () => {
      await login(page, A);
      await onPage(page, 'Your todos', '/todos');
      await until('A\'s name in the header', async () => (await page.getByRole('banner').textContent()).includes(`Signed in as ${A.name}`));
      await until('the empty-list message', () => page.getByText('Nothing to do yet').isVisible());
      assert((await items(page)).length === 0, 'the list is not empty');
      assert(await page.evaluate(() => localStorage.length === 0 && sessionStorage.length === 0), 'something was put in web storage');
      assert(!(await page.evaluate(() => document.cookie)).includes('jwtToken'), 'the jwtToken cookie is readable by scripts');
    }],
    ['add 3 todos (newest first)', P, async () => {
      await addTodo(page, 'Buy milk');
      await addTodo(page, 'Write report', 'quarterly');
      await addTodo(page, 'Call mom');
      assert(same(await names(page), ['Call mom', 'Write report', 'Buy milk']), `the list is ${JSON.stringify(await names(page))}`);
      await until('the "Added" status', async () => (await statusText(page)) === 'Added “Call mom”.');
      assert(await page.getByLabel('New todo').evaluate((e) => e === document.activeElement && e.value === ''), 'the new-todo field is not empty and focused');
    }],
    ['edit a todo', P, async () => {
      await page.getByRole('button', { name: 'Edit “Write report”' }).click();
      const form = page.getByRole('form', { name: 'Edit “Write report”' });
      await form.getByLabel('Name').fill('Write the report');
      await form.getByLabel('Details').fill('by Friday');
      await form.getByRole('button', { name: 'Save' }).click();
      await until('the edited todo', async () => same(await items(page), [
        { name: 'Call mom', desc: '', done: false },
        { name: 'Write the report', desc: 'by Friday', done: false },
        { name: 'Buy milk', desc: '', done: false }]));
      assert(!(await page.getByText('Write report', { exact: true }).count()), 'the old name is still shown');
    }],
    ['toggle a todo done with the keyboard', P, async () => {
      const box = page.getByRole('checkbox', { name: 'Buy milk' });
      await box.focus();
      await page.keyboard.press('Space');
      await until('"Buy milk" checked', async () => (await items(page))[2].done === true && await page.getByRole('checkbox', { name: 'Buy milk' }).isChecked());
      await until('the "marked done" status', async () => (await statusText(page)).includes('marked done'));
    }],
    ['delete a todo', P, async () => {
      await page.getByRole('button', { name: 'Delete “Call mom”' }).click();
      await until('"Call mom" gone', async () => same(await names(page), ['Write the report', 'Buy milk']));
    }],
    ['after a reload the 2 remaining todos and their states are there', P, async () => {
      await page.reload();
      await onPage(page, 'Your todos', '/todos');
      await until('the list after the reload', async () => same(await items(page), [
        { name: 'Write the report', desc: 'by Friday', done: false },
        { name: 'Buy milk', desc: '', done: true }]));
      shared.aTodos = await allTodos(page);
      assert(shared.aTodos.length === 2, `the API lists ${shared.aTodos.length} todos`);
    }],
    ['a lost access token is renewed with the refresh cookie, without leaving the page', P, async () => {
      const context = page.context();
      await context.clearCookies({ name: 'jwtToken' }); // what its expiry after 15 minutes does
      const refreshes = [];
      const onResponse = (r) => { if (r.url().endsWith('/api/v1/session/refresh')) refreshes.push(r.status()); };
      page.on('response', onResponse);
      try {
        await addTodo(page, 'Added after renewal');
      } finally {
        page.off('response', onResponse);
      }
      assert(same(refreshes, [200]), `refreshes answered ${JSON.stringify(refreshes)}`);
      assert((await context.cookies()).some((c) => c.name === 'jwtToken' && c.httpOnly), 'no new httpOnly jwtToken cookie');
      assert(pathname(page) === '/todos', `moved to ${pathname(page)}`);
      await page.getByRole('button', { name: 'Delete “Added after renewal”' }).click();
      await until('"Added after renewal" gone', async () => same(await names(page), ['Write the report', 'Buy milk']));
    }],
    [`more than a page (${PAGE_SIZE}) of todos: "Load more" shows the rest`, P, async () => {
      for (let i = 1; i <= PAGE_SIZE + 2; i++) {
        const r = await pageFetch(page, 'POST', '/api/v1/todos', { name: `Bulk ${String(i).padStart(2, '0')}` });
        assert(r.status === 201, `POST /api/v1/todos answered ${r.status} ${JSON.stringify(r.body)}`);
      }
      await page.reload();
      await onPage(page, 'Your todos', '/todos');
      const more = page.getByRole('button', { name: 'Load more' });
      await until('a first page and "Load more"', async () => (await items(page)).length === PAGE_SIZE && await more.isVisible());
      assert((await names(page))[0] === `Bulk ${PAGE_SIZE + 2}`, `the first item is ${(await names(page))[0]}`);
      await more.click();
      await until('all 24 todos', async () => (await items(page)).length === PAGE_SIZE + 4);
      const shown = await names(page);
      assert(new Set(shown).size === shown.length, 'a todo is shown twice');
      assert(same(shown.slice(-2), ['Write the report', 'Buy milk']), `the last two are ${JSON.stringify(shown.slice(-2))}`);
      await until('"Load more" hidden at the end', async () => !(await more.isVisible()));
    }],
    ['upload an avatar and see it displayed', P, async () => {
      await page.getByRole('link', { name: 'Profile' }).click();
      await onPage(page, 'Your profile', '/profile');
      await until('"No avatar yet"', () => page.getByText('No avatar yet.').isVisible());
      await page.getByLabel('Avatar image').setInputFiles({ name: 'avatar.png', mimeType: 'image/png', buffer: AVATAR });
      await page.getByRole('button', { name: 'Upload avatar' }).click();
      await until('the "Avatar updated." status', async () => (await statusText(page)) === 'Avatar updated.');
      const img = page.getByRole('img', { name: 'Your avatar' });
      await until('the 8x8 avatar decoded', () => img.evaluate((e) => e.complete && e.naturalWidth === 8 && e.naturalHeight === 8));
      assert(await img.isVisible(), 'the avatar is not visible');
      await page.reload();
      await onPage(page, 'Your profile', '/profile');
      await until('the avatar after a reload', () => page.getByRole('img', { name: 'Your avatar' }).evaluate((e) => e.complete && e.naturalWidth === 8));
    }],
    ['replace the avatar: the new one is displayed, not a cached copy', P, async () => {
      await page.getByLabel('Avatar image').setInputFiles({ name: 'avatar2.png', mimeType: 'image/png', buffer: AVATAR2 });
      await page.getByRole('button', { name: 'Upload avatar' }).click();
      await until('the 16x16 avatar decoded', () => page.getByRole('img', { name: 'Your avatar' })
        .evaluate((e) => e.complete && e.naturalWidth === 16));
      await until('the header\'s avatar updated', () => page.getByRole('banner').locator('img')
        .evaluate((e) => e.complete && e.naturalWidth === 16));
    }],
    ['log out', P, async () => {
      await page.getByRole('button', { name: 'Log out' }).click();
      await onPage(page, 'Log in', '/login');
      await until('the "logged out" status', async () => /logged out/i.test(await statusText(page)));
      assert(await page.getByRole('button', { name: 'Log out' }).count() === 0, 'a "Log out" button is still there');
    }],
    ['after logging out /todos shows the login page and the API refuses the list', P, async () => {
      await page.goto(`${BASE}/todos`);
      await onPage(page, 'Log in', '/login');
      assert((await items(page)).length === 0, 'todos are shown');
      const r = await pageFetch(page, 'GET', '/api/v1/todos');
      assert(r.status === 401, `GET /api/v1/todos answered ${r.status}`);
      const refreshed = await pageFetch(page, 'POST', '/api/v1/session/refresh', {});
      assert(refreshed.status === 401, `POST /api/v1/session/refresh after logout answered ${refreshed.status}`);
    }],
  ];
}

function journeyB(pageA, pageB) {
  const PA = () => pageA, PB = () => pageB;
  return [
    ['user B registers and logs in, in a fresh browser context', PB, async () => {
      await register(pageB, B);
      await onPage(pageB, 'Log in', '/login');
      await login(pageB, B);
      await onPage(pageB, 'Your todos', '/todos');
      await until('B\'s name in the header', async () => (await pageB.getByRole('banner').textContent()).includes(`Signed in as ${B.name}`));
    }],
    ['B sees none of A\'s todos', PB, async () => {
      await until('the empty-list message', () => pageB.getByText('Nothing to do yet').isVisible());
      assert((await items(pageB)).length === 0, `B sees ${JSON.stringify(await names(pageB))}`);
      assert((await allTodos(pageB)).length === 0, 'the API lists todos for B');
      await addTodo(pageB, 'Bob private todo');
    }],
    ['B can neither read, change nor delete A\'s todo, nor see A\'s avatar', PB, async () => {
      assert(shared.aTodos && shared.aTodos.length, 'no todo of A known');
      const id = encodeURIComponent(shared.aTodos[0].id);
      for (const [method, body] of [['GET'], ['PATCH', { name: 'hacked' }], ['DELETE']]) {
        const r = await pageFetch(pageB, method, `/api/v1/todos/${id}`, body);
        assert(r.status === 404, `${method} /api/v1/todos/${id} as B answered ${r.status}`);
      }
      const av = await pageFetch(pageB, 'GET', '/api/v1/me/avatar');
      assert(av.status === 404, `GET /api/v1/me/avatar as B answered ${av.status}`);
    }],
    ['A logs in again and sees only A\'s todos, unchanged', PA, async () => {
      await login(pageA, A);
      await onPage(pageA, 'Your todos', '/todos');
      await until('A\'s first page', async () => (await items(pageA)).length === PAGE_SIZE);
      assert(!(await names(pageA)).includes('Bob private todo'), 'A sees B\'s todo');
      const all = await allTodos(pageA);
      assert(all.length === PAGE_SIZE + 4, `A has ${all.length} todos`);
      assert(!all.some((t) => t.name === 'Bob private todo' || t.name === 'hacked'), 'A\'s list holds B\'s doing');
      const first = all.find((t) => String(t.id) === String(shared.aTodos[0].id));
      assert(first && first.name === shared.aTodos[0].name, 'A\'s todo changed');
    }],
  ];
}

async function main() {
  if (!BASE) {
    console.log('not ok - SFF_URL is set (e.g. SFF_URL=http://127.0.0.1:8080)');
    return 1;
  }
  fs.rmSync(SHOTS, { recursive: true, force: true }); // only this run's failures
  let browser;
  const launched = await check('Chromium starts', null, async () => {
    // launch() gives the browser a fresh temporary user-data dir, removed at close.
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      timeout: 60000,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
        '--disable-component-update', '--no-first-run', '--disable-sync'],
    });
  });
  if (!launched) return 1;
  const errors = [];
  const newPage = async (who) => {
    const context = await browser.newContext(); // its own cookies and storage
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (e) => errors.push(`${who}: ${e.message}`));
    return page;
  };
  try {
    const pageA = await newPage('A');
    await journey(journeyA(pageA));
    const pageB = await newPage('B');
    await journey(journeyB(pageA, pageB));
    await check('no uncaught script error in the pages', null, async () => {
      assert(errors.length === 0, errors.join('\n'));
    });
  } finally {
    await browser.close().catch(() => {});
  }
  return failures ? 1 : 0;
}

setTimeout(() => {
  console.log('not ok - the browser tests finish within 5 minutes');
  process.exit(1);
}, 300000).unref();

main().then((code) => process.exit(code), (e) => {
  console.log(`not ok - the browser tests run (${e.message.split('\n')[0]})`);
  process.exit(1);
});
