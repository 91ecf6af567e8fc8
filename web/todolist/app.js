// The todolist web app: one ES module, no build step, no dependencies. It talks only to /api/v1
// (docs/todolist-api.md). Auth rides on the httpOnly jwtToken cookie the API sets: nothing is kept
// in localStorage. Every user-provided string reaches the page as text, never as HTML.

const PAGE_SIZE = 20;
const state = { user: undefined, cursor: null, avatarVersion: Date.now(), next: '/todos' };
const $ = (sel, root = document) => root.querySelector(sel);

// h('button', {type: 'button', onclick: f}, 'Save') builds an element; children are nodes or text.
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c != null && c !== false) el.append(c);
  return el;
}

// ---- the API --------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body, fallback) {
    const e = body && body.error;
    const details = e && Array.isArray(e.details) ? e.details : [];
    let msg = (e && e.message) || fallback || `The request failed (HTTP ${status}).`;
    if (details.length) msg += ': ' + details.map((d) => `${d.path ? d.path.replace(/^\//, '') + ' ' : ''}${d.message}`).join('; ');
    super(msg);
    this.status = status;
    this.details = details;
  }
}

let refreshing = null;
function refreshSession() { // one refresh at a time: the refresh token is rotated on each use
  refreshing ??= fetch('/api/v1/session/refresh', {
    method: 'POST', credentials: 'same-origin',
    headers: { Accept: 'application/json', 'Content-Type': 'application/json' }, body: '{}',
  }).then(async (res) => {
    if (!res.ok) return false;
    const body = await res.json().catch(() => null);
    if (body && body.user) state.user = body.user;
    return true;
  }, () => false).finally(() => { refreshing = null; });
  return refreshing;
}

// api('PATCH', '/todos/7', {name}) → the decoded JSON (null for 204), or throws ApiError. A 401
// is retried once after refreshing the session; the session endpoints themselves never are.
async function api(method, path, body, retried = false) {
  const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body instanceof Blob) {
    opts.body = body;
    opts.headers['Content-Type'] = body.type;
  } else if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers['Content-Type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch('/api/v1' + path, opts);
  } catch {
    throw new ApiError(0, null, 'The server cannot be reached. Check your connection and try again.');
  }
  if (res.status === 401 && !retried && !path.startsWith('/session') && path !== '/users' &&
      await refreshSession()) {
    return api(method, path, body, true);
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// ---- messages (live regions) and busy forms ---------------------------------------------------

function say(text) { $('#error').textContent = ''; $('#status').textContent = text; }
function clearMessages() { $('#error').textContent = ''; $('#status').textContent = ''; }

// Shows an error; a 401 that the refresh could not cure means the session is over.
function fail(err, form) {
  if (err.status === 401 && state.user) {
    state.user = null;
    state.next = location.pathname;
    go('/login', true).then(() => { $('#error').textContent = 'Your session has ended. Please log in again.'; });
    return;
  }
  $('#status').textContent = '';
  $('#error').textContent = err.message || String(err);
  if (form) {
    for (const d of err.details || []) {
      const input = form.querySelector(`[name="${CSS.escape((d.path || '').replace(/^\//, ''))}"]`);
      if (input) input.setAttribute('aria-invalid', 'true');
    }
  }
}

// Runs an action with its form's buttons disabled; its errors go to the alert region.
async function busy(form, action) {
  clearMessages();
  form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
  const buttons = [...form.querySelectorAll('button')];
  buttons.forEach((b) => { b.disabled = true; });
  form.setAttribute('aria-busy', 'true');
  try {
    await action();
  } catch (err) {
    fail(err, form);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    form.removeAttribute('aria-busy');
  }
}

function field(label, input) {
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input);
}

function submitter(action) {
  return (e) => { e.preventDefault(); busy(e.currentTarget, action); };
}

// ---- routing ----------------------------------------------------------------------------------

const routes = {
  '/': { view: () => go(state.user ? '/todos' : '/login', true) },
  '/login': { title: 'Log in', view: loginView, guest: true },
  '/register': { title: 'Create an account', view: registerView, guest: true },
  '/todos': { title: 'Your todos', view: todosView, auth: true },
  '/profile': { title: 'Your profile', view: profileView, auth: true },
};
routes['/index.html'] = routes['/'];

function go(path, replace = false) {
  history[replace ? 'replaceState' : 'pushState'](null, '', path);
  return render(true);
}

async function render(moveFocus) {
  const path = location.pathname.replace(/(.)\/+$/, '$1');
  const route = routes[path] || { title: 'Page not found', view: notFoundView };
  if (state.user === undefined) {
    try {
      state.user = await api('GET', '/me');
    } catch (err) {
      state.user = null;
      if (err.status !== 401) fail(err);
    }
  }
  if (route.auth && !state.user) {
    state.next = path;
    return go('/login', true);
  }
  if (route.guest && state.user) return go('/todos', true);
  renderNav(path);
  if (!route.title) return route.view();
  document.title = `${route.title} · Todos`;
  const heading = h('h1', { tabindex: '-1', id: 'page-title' }, route.title);
  $('#view').replaceChildren(heading);
  $('#view').append(...[await route.view()].flat().filter(Boolean));
  if (moveFocus) heading.focus();
}

function renderNav(path) {
  const link = (href, text) => h('a', { href, 'aria-current': path === href ? 'page' : null }, text);
  const nav = $('#nav');
  if (!state.user) {
    nav.replaceChildren(h('ul', {}, h('li', {}, link('/login', 'Log in')), h('li', {}, link('/register', 'Register'))));
    return;
  }
  const who = state.user.name || state.user.username;
  nav.replaceChildren(h('ul', {},
    h('li', {}, link('/todos', 'Todos')),
    h('li', {}, link('/profile', 'Profile')),
    h('li', { class: 'who' }, avatar('avatar-small', ''), h('span', {}, 'Signed in as ', h('strong', {}, who))),
    h('li', {}, h('button', { type: 'button', class: 'link', onclick: logout }, 'Log out'))));
}

function avatar(cls, alt) {
  if (!state.user || !state.user.avatar_url) return null;
  return h('img', { class: cls, alt, src: `/api/v1/me/avatar?v=${state.avatarVersion}`,
    width: cls === 'avatar-small' ? 32 : 96, height: cls === 'avatar-small' ? 32 : 96 });
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href^="/"]');
  if (!a || a.target || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey ||
      a.getAttribute('href').startsWith('/api/')) return;
  e.preventDefault();
  clearMessages();
  go(a.getAttribute('href'));
});
window.addEventListener('popstate', () => { clearMessages(); render(true); });

// ---- accounts ---------------------------------------------------------------------------------

function loginView() {
  const username = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true, value: state.lastUsername || '' });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'card', onsubmit: submitter(async () => {
    const res = await api('POST', '/session', { username: username.value.trim(), password: password.value });
    state.user = res.user;
    const next = state.next && state.next !== '/login' && state.next !== '/register' ? state.next : '/todos';
    state.next = '/todos';
    await go(next);
  }) }, field('Username', username), field('Password', password), h('button', { type: 'submit' }, 'Log in'));
  return [form, h('p', {}, 'No account yet? ', h('a', { href: '/register' }, 'Create one'))];
}

function registerView() {
  const username = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true, minlength: 3, maxlength: 64 });
  const name = h('input', { id: 'name', name: 'name', autocomplete: 'name' });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'new-password', required: true });
  const form = h('form', { class: 'card', onsubmit: submitter(async () => {
    const body = { username: username.value.trim(), password: password.value };
    if (name.value.trim()) body.name = name.value.trim();
    await api('POST', '/users', body);
    state.lastUsername = body.username;
    await go('/login');
    say(`Account ${body.username} created. You can log in now.`);
    $('#password').focus();
  }) }, field('Username', username), field('Display name (optional)', name), field('Password', password),
  h('button', { type: 'submit' }, 'Create account'));
  return [form, h('p', {}, 'Already registered? ', h('a', { href: '/login' }, 'Log in'))];
}

async function logout() {
  clearMessages();
  try {
    await api('DELETE', '/session');
  } catch { /* the session is gone either way */ }
  state.user = null;
  state.next = '/todos';
  await go('/login');
  say('You are logged out.');
}

// ---- todos ------------------------------------------------------------------------------------

function todosView() {
  const name = h('input', { id: 'new-name', name: 'name', required: true, maxlength: 500, autocomplete: 'off' });
  const desc = h('input', { id: 'new-desc', name: 'desc', autocomplete: 'off' });
  const add = h('form', { class: 'card add', 'aria-label': 'Add a todo', onsubmit: submitter(async () => {
    const body = { name: name.value.trim() };
    if (desc.value.trim()) body.desc = desc.value.trim();
    const t = await api('POST', '/todos', body);
    $('#list').prepend(todoItem(t));
    add.reset();
    name.focus();
    updateList();
    say(`Added “${t.name}”.`);
  }) }, field('New todo', name), field('Details (optional)', desc), h('button', { type: 'submit' }, 'Add'));
  const more = h('button', { type: 'button', id: 'more', hidden: true, onclick: () => loadPage(false) }, 'Load more');
  const section = h('section', { 'aria-labelledby': 'list-title' },
    h('h2', { id: 'list-title', tabindex: '-1' }, 'List'),
    h('p', { id: 'count', class: 'muted' }),
    h('p', { id: 'empty', class: 'muted', hidden: true }, 'Nothing to do yet. Add your first todo above.'),
    h('ul', { id: 'list', class: 'todos' }), more);
  state.cursor = null;
  loadPage(true);
  return [add, section];
}

async function loadPage(first) {
  const more = $('#more');
  if (more) more.disabled = true;
  try {
    const q = new URLSearchParams({ limit: PAGE_SIZE });
    if (!first && state.cursor) q.set('cursor', state.cursor);
    const page = await api('GET', `/todos?${q}`);
    const list = $('#list');
    if (!list) return; // navigated away meanwhile
    const fresh = page.items.filter((t) => !list.querySelector(`[data-id="${CSS.escape(String(t.id))}"]`)).map(todoItem);
    list.append(...fresh);
    state.cursor = page.next_cursor || null;
    updateList();
    if (!first && fresh.length) {
      fresh[0].querySelector('input').focus();
      say(`Loaded ${fresh.length} more.`);
    }
  } catch (err) {
    fail(err);
  } finally {
    if ($('#more')) $('#more').disabled = false;
  }
}

function updateList() {
  const n = $('#list').children.length;
  $('#empty').hidden = n > 0 || !!state.cursor;
  $('#count').textContent = n ? `${n} shown${state.cursor ? ', more to load' : ''}.` : '';
  $('#more').hidden = !state.cursor;
}

function todoItem(t) {
  const id = String(t.id);
  const done = t.status === 'done';
  const li = h('li', { class: done ? 'todo done' : 'todo', 'data-id': id });
  const box = h('input', { type: 'checkbox', id: `done-${id}`, checked: done, 'aria-describedby': t.desc ? `desc-${id}` : null,
    onchange: () => toggle(li, t, box) });
  li.append(box,
    h('div', { class: 'text' },
      h('label', { for: box.id, class: 'name' }, t.name),
      t.desc ? h('p', { id: `desc-${id}`, class: 'desc' }, t.desc) : null),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'edit', onclick: () => editTodo(li, t) }, 'Edit', h('span', { class: 'vh' }, ` “${t.name}”`)),
      h('button', { type: 'button', class: 'danger', onclick: () => deleteTodo(li, t) }, 'Delete', h('span', { class: 'vh' }, ` “${t.name}”`))));
  return li;
}

function replaceItem(li, t, focusSel) {
  const fresh = todoItem(t);
  li.replaceWith(fresh);
  fresh.querySelector(focusSel).focus();
}

async function toggle(li, t, box) {
  clearMessages();
  box.disabled = true;
  try {
    const updated = await api('PATCH', `/todos/${encodeURIComponent(t.id)}`, { status: box.checked ? 'done' : 'open' });
    replaceItem(li, updated, 'input[type=checkbox]');
    say(`“${updated.name}” marked ${updated.status === 'done' ? 'done' : 'not done'}.`);
  } catch (err) {
    box.checked = !box.checked;
    box.disabled = false;
    fail(err);
  }
}

function editTodo(li, t) {
  const id = String(t.id);
  const name = h('input', { id: `edit-name-${id}`, name: 'name', required: true, maxlength: 500, value: t.name, autocomplete: 'off' });
  const desc = h('input', { id: `edit-desc-${id}`, name: 'desc', value: t.desc || '', autocomplete: 'off' });
  const cancel = () => { clearMessages(); replaceItem(li, t, '.edit'); };
  const form = h('form', { class: 'edit-form', 'aria-label': `Edit “${t.name}”`,
    onkeydown: (e) => { if (e.key === 'Escape') cancel(); },
    onsubmit: submitter(async () => {
      const updated = await api('PATCH', `/todos/${encodeURIComponent(t.id)}`, { name: name.value.trim(), desc: desc.value.trim() });
      replaceItem(li, updated, '.edit');
      say(`Saved “${updated.name}”.`);
    }) },
  field('Name', name), field('Details', desc),
  h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save'), h('button', { type: 'button', class: 'secondary', onclick: cancel }, 'Cancel')));
  li.replaceChildren(form);
  name.focus();
  name.select();
}

async function deleteTodo(li, t) {
  clearMessages();
  try {
    await api('DELETE', `/todos/${encodeURIComponent(t.id)}`);
    const neighbour = li.nextElementSibling || li.previousElementSibling;
    li.remove();
    updateList();
    (neighbour ? neighbour.querySelector('input') : $('#list-title')).focus();
    say(`Deleted “${t.name}”.`);
  } catch (err) {
    fail(err);
  }
}

// ---- profile and avatar -----------------------------------------------------------------------

function profileView() {
  const u = state.user;
  const picture = h('div', { id: 'avatar-box', class: 'avatar-box' });
  const showAvatar = () => picture.replaceChildren(avatar('avatar-large', 'Your avatar') || h('p', { class: 'muted' }, 'No avatar yet.'));
  showAvatar();
  const file = h('input', { id: 'avatar-file', name: 'avatar', type: 'file', accept: 'image/*', required: true });
  const form = h('form', { class: 'card', onsubmit: submitter(async () => {
    const f = file.files[0];
    if (!f || !f.type.startsWith('image/')) throw new ApiError(0, null, 'Choose an image file (PNG, JPEG, WebP or GIF).');
    state.user = await api('PUT', '/me/avatar', f);
    state.avatarVersion = Date.now();
    showAvatar();
    renderNav(location.pathname);
    form.reset();
    say('Avatar updated.');
  }) }, field('Avatar image', file), h('button', { type: 'submit' }, 'Upload avatar'));
  return [
    h('dl', { class: 'card profile' }, h('dt', {}, 'Username'), h('dd', {}, u.username), h('dt', {}, 'Name'), h('dd', {}, u.name || '—')),
    h('section', { 'aria-labelledby': 'avatar-title' }, h('h2', { id: 'avatar-title' }, 'Avatar'), picture, form),
  ];
}

function notFoundView() {
  return h('p', {}, 'There is nothing at this address. ', h('a', { href: '/' }, 'Go to the start page'));
}

render(false);
