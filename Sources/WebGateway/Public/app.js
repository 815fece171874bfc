// The Chorus web client. Everything a message carries is put on the page with textContent,
// never as HTML, so a body like <img onerror=…> shows as the text it is.
import { api, ApiError, Live } from './api.js';

const $ = (id) => document.getElementById(id);
const MAX_BODY_BYTES = 64 * 1024;
const encoder = new TextEncoder();

const state = {
  me: null,
  live: null,
  liveWasUp: false,
  failingOver: false,
  // When the failover banner went up (it stays at least 1.5 s).
  failoverShownAt: 0,
  // The directory page on screen: the pattern, the token of this page and of earlier ones.
  pattern: '*',
  pageTokens: [null],
  pageIndex: 0,
  nextPage: null,
  accounts: new Map(), // name -> online, for the names on screen
  // Conversations by key: an account's name, or '#' and a group's name (no account name has
  // a '#'). Unread counts: messages that arrived while their conversation was closed.
  unreadBy: new Map(),
  groups: new Map(), // group name -> { members, admin }
  peer: null,
  // The open conversation's other side deleted its account: readable, not writable.
  peerDeleted: false,
  members: [], // of the open group, as last loaded
  messages: new Map(), // id -> message, of the open conversation
  older: null, // page token of older messages, or null at the beginning
  selected: new Set(),
  waiting: 0,
  // Sends: this page's client id, the last sequence used, and those whose outcome is not
  // known yet. A message keeps its key until the cluster answers for it.
  sendClient: Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, '0')).join(''),
  sendSequence: 0,
  unanswered: new Set(),
  // Messages to me this page has told the gateway it showed.
  shownSent: new Set(),
};

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// ---------------------------------------------------------------- small helpers

function show(element, visible) {
  element.hidden = !visible;
}

function say(element, text) {
  element.textContent = text || '';
  show(element, Boolean(text));
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function time(ms) {
  const date = new Date(Number(ms));
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  return sameDay ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : date.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** Whether a conversation key names a group ('#team'), and the group's name. */
const isGroup = (key) => typeof key === 'string' && key.startsWith('#');
const groupOf = (key) => key.slice(1);

/** The conversation a message belongs to: its group's, or the other side's. */
function conversationOf(message) {
  if (message.group) return `#${message.group}`;
  return message.from === state.me ? message.to : message.from;
}

/** A change to a group as a sentence: "alice added bob, carol". */
function changeSentence(message) {
  const change = message.change;
  const who = message.from === state.me ? 'You' : message.from;
  const names = (change.members || []).map((n) => (n === state.me ? 'you' : n)).join(', ');
  let text;
  switch (change.kind) {
    case 'created': text = names ? `${who} created the group with ${names}` : `${who} created the group`; break;
    case 'added': text = `${who} added ${names}`; break;
    case 'removed': text = `${who} removed ${names}`; break;
    case 'left': text = change.accountDeleted ? `${message.from} left (account deleted)` : `${who} left`; break;
    case 'renamed': text = `${who} renamed the group from #${change.previousName} to #${message.group}`; break;
    case 'madeAdmin': text = `${who} made ${names} an admin`; break;
    case 'noLongerAdmin': text = `${who} made ${names} no longer an admin`; break;
    default: text = `${who} changed the group`;
  }
  if (change.newAdmins && change.newAdmins.length) text += `; ${change.newAdmins.map((n) => (n === state.me ? 'you' : n)).join(', ')} became admin`;
  return text;
}

function byID(a, b) {
  const x = BigInt(a.id);
  const y = BigInt(b.id);
  return x < y ? -1 : x > y ? 1 : 0;
}

let bannerTimer = null;
function banner(kind, text, seconds) {
  const node = $('banner');
  clearTimeout(bannerTimer);
  if (!text) {
    show(node, false);
    return;
  }
  node.className = `banner ${kind}`;
  node.textContent = text;
  show(node, true);
  if (seconds) bannerTimer = setTimeout(() => show(node, false), seconds * 1000);
}

/** Shows a failed call where the user looks, and handles the ones that need more. */
function failed(error, where) {
  if (error instanceof ApiError && error.status === 401 && state.me) {
    leave('Your session ended; log in again.');
    return;
  }
  if (error instanceof ApiError && (error.status === 503 || error.status === 0)) {
    banner('warn', error.message);
  }
  if (where) say(where, error.message);
}

function updateTitle() {
  let total = 0;
  for (const count of state.unreadBy.values()) total += count;
  document.title = total > 0 ? `(${total}) Chorus` : 'Chorus';
}

// ---------------------------------------------------------------- log in, register, leave

function showAuth(tab, notice) {
  show($('chat'), false);
  show($('auth'), true);
  const registering = tab === 'register';
  $('tab-login').classList.toggle('active', !registering);
  $('tab-register').classList.toggle('active', registering);
  show($('login-form'), !registering);
  show($('register-form'), registering);
  say($('auth-notice'), notice);
  (registering ? $('register-name') : $('login-name')).focus();
}

function enter(name, unread) {
  state.me = name;
  state.unreadBy.clear();
  state.peer = null;
  $('me').textContent = name;
  setWaiting(unread ?? 0);
  show($('auth'), false);
  show($('chat'), true);
  show($('conversation'), false);
  show($('inbox-view'), false);
  show($('empty'), true);
  $('login-password').value = '';
  $('register-password').value = '';
  state.pattern = $('search').value.trim() || '*';
  loadAccounts(0, true);
  loadGroups();
  state.liveWasUp = false;
  state.live = new Live(onLiveEvent, onLiveState);
  state.live.start();
  refreshClusterStatus();
}

function leave(notice) {
  if (state.live) state.live.stop();
  state.live = null;
  state.me = null;
  state.messages.clear();
  state.selected.clear();
  state.groups.clear();
  $('messages').replaceChildren();
  $('inbox-messages').replaceChildren();
  $('groups').replaceChildren();
  banner(null, null);
  document.title = 'Chorus';
  history.replaceState(null, '', location.pathname);
  showAuth('login', notice);
}

async function login(event) {
  event.preventDefault();
  const button = $('login-submit');
  button.disabled = true;
  say($('login-error'), '');
  try {
    const session = await api.login($('login-name').value.trim(), $('login-password').value);
    enter(session.name, session.unread);
  } catch (error) {
    failed(error, $('login-error'));
  } finally {
    button.disabled = false;
  }
}

/**
 * A name the cluster would refuse for its length, said in words. The input is not cut at the
 * limit: a name cut without a word would create an account under a name nobody typed.
 */
const longestName = 32;
function nameTooLong(name) {
  const length = [...name].length;
  return length > longestName ? `A name has at most ${longestName} characters; this one has ${length}.` : null;
}

async function register(event) {
  event.preventDefault();
  const button = $('register-submit');
  const tooLong = nameTooLong($('register-name').value.trim());
  if (tooLong) {
    say($('register-error'), tooLong);
    return;
  }
  button.disabled = true;
  say($('register-error'), '');
  try {
    const session = await api.register($('register-name').value.trim(), $('register-password').value);
    enter(session.name, session.unread);
  } catch (error) {
    failed(error, $('register-error'));
  } finally {
    button.disabled = false;
  }
}

/** Tells whether the name is free while it is typed, asking at most every 250 ms. */
let nameTimer = null;
let nameAsked = '';
function nameTyped() {
  clearTimeout(nameTimer);
  const status = $('name-status');
  const name = $('register-name').value.trim();
  if (!name) {
    status.className = 'hint';
    status.textContent = "Letters, digits, '_', '.' and '-'; up to 32.";
    return;
  }
  const tooLong = nameTooLong(name);
  if (tooLong) {
    nameAsked = '';
    status.className = 'hint bad';
    status.textContent = `✗ ${tooLong}`;
    return;
  }
  nameTimer = setTimeout(async () => {
    nameAsked = name;
    try {
      const answer = await api.checkName(name);
      if (nameAsked !== name) return;
      status.className = answer.available ? 'hint good' : 'hint bad';
      status.textContent = answer.available ? `✓ ${name} is available` : `✗ ${answer.reason}`;
    } catch (error) {
      if (nameAsked !== name) return;
      status.className = 'hint bad';
      status.textContent = error.message;
    }
  }, 250);
}

async function logout() {
  try {
    await api.logout();
  } catch (error) {
    // The cookie is cleared either way.
  }
  leave('You are logged out.');
}

async function deleteAccount(event) {
  event.preventDefault();
  say($('delete-error'), '');
  const button = $('delete-confirm');
  button.disabled = true;
  try {
    await api.deleteAccount($('delete-password').value);
    $('delete-dialog').close();
    leave('Your account was deleted.');
  } catch (error) {
    failed(error, $('delete-error'));
  } finally {
    $('delete-password').value = '';
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- the directory

async function loadAccounts(index, reset) {
  if (reset) {
    state.pageTokens = [null];
    index = 0;
  }
  try {
    const page = await api.accounts(state.pattern, state.pageTokens[index]);
    state.pageIndex = index;
    state.nextPage = page.next || null;
    if (page.next) state.pageTokens[index + 1] = page.next;
    renderAccounts(page.accounts);
  } catch (error) {
    failed(error);
    if (error instanceof ApiError && error.status === 400) {
      $('accounts').replaceChildren(el('li', 'hint', error.message));
    }
  }
}

function renderAccounts(accounts) {
  const list = $('accounts');
  state.accounts.clear();
  const items = accounts.filter((a) => a.name !== state.me).map((account) => {
    state.accounts.set(account.name, account.online);
    const item = el('li', 'account');
    item.dataset.name = account.name;
    const dot = el('span', account.online ? 'dot online' : 'dot');
    dot.title = account.online ? 'online' : 'offline';
    const badge = el('span', 'badge');
    item.append(dot, el('span', 'name', account.name), badge);
    item.classList.toggle('open', account.name === state.peer);
    item.addEventListener('click', () => openConversation(account.name));
    return item;
  });
  if (items.length === 0) items.push(el('li', 'hint', 'Nobody matches.'));
  list.replaceChildren(...items);
  renderBadges();
  $('accounts-prev').disabled = state.pageIndex === 0;
  $('accounts-next').disabled = !state.nextPage;
}

function renderBadges() {
  for (const item of document.querySelectorAll('#accounts li.account, #groups li.account')) {
    const count = state.unreadBy.get(item.dataset.name) || 0;
    const badge = item.querySelector('.badge');
    badge.textContent = count > 0 ? String(count) : '';
    show(badge, count > 0);
  }
  updateTitle();
}

function setPresence(name, online) {
  if (state.accounts.has(name)) {
    state.accounts.set(name, online);
    const item = $('accounts').querySelector(`li.account[data-name="${CSS.escape(name)}"]`);
    if (item) {
      const dot = item.querySelector('.dot');
      dot.className = online ? 'dot online' : 'dot';
      dot.title = online ? 'online' : 'offline';
    }
  }
  if (name === state.peer) $('peer-dot').className = online ? 'dot online' : 'dot';
  const member = state.members.find((m) => m.name === name);
  if (member && member.online !== online) {
    member.online = online;
    renderMembers();
  }
}

// ---------------------------------------------------------------- groups

async function loadGroups() {
  try {
    const answer = await api.groups();
    state.groups.clear();
    // Counts of groups it is no longer in (left, removed, renamed) go.
    const current = new Set(answer.groups.map((g) => `#${g.name}`));
    for (const key of [...state.unreadBy.keys()]) if (isGroup(key) && !current.has(key)) state.unreadBy.delete(key);
    for (const group of answer.groups) {
      state.groups.set(group.name, group);
      const key = `#${group.name}`;
      // The cluster's count of what waits, unless the conversation is open (shown there).
      if (key !== state.peer) {
        if (Number(group.unread) > 0) state.unreadBy.set(key, Number(group.unread));
        else state.unreadBy.delete(key);
      }
    }
    renderGroups();
  } catch (error) {
    failed(error);
  }
}

function renderGroups() {
  const items = [...state.groups.values()].map((group) => {
    const key = `#${group.name}`;
    const item = el('li', 'account group');
    item.dataset.name = key;
    const badge = el('span', 'badge');
    item.append(el('span', 'group-mark', '#'), el('span', 'name', group.name), badge);
    item.title = `${group.members} members`;
    item.classList.toggle('open', key === state.peer);
    item.addEventListener('click', () => openConversation(key));
    return item;
  });
  if (items.length === 0) items.push(el('li', 'hint', 'No groups yet.'));
  $('groups').replaceChildren(...items);
  renderBadges();
}

function groupNameTyped() {
  const status = $('group-name-status');
  const name = $('group-name').value.trim();
  const length = [...name].length;
  if (length > longestName) {
    status.className = 'hint bad';
    status.textContent = `✗ A group's name has at most ${longestName} characters; this one has ${length}.`;
  } else if (name && !/^[A-Za-z0-9_.-]+$/.test(name)) {
    status.className = 'hint bad';
    status.textContent = "✗ Only letters, digits, '_', '.' and '-'.";
  } else {
    status.className = 'hint';
    status.textContent = "Letters, digits, '_', '.' and '-'; up to 32.";
  }
}

async function createGroup(event) {
  event.preventDefault();
  const name = $('group-name').value.trim();
  const members = $('group-members').value.split(/[\s,]+/).filter(Boolean);
  const length = [...name].length;
  if (length > longestName) {
    say($('group-error'), `A group's name has at most ${longestName} characters; this one has ${length}.`);
    return;
  }
  const button = $('group-create');
  button.disabled = true;
  say($('group-error'), '');
  try {
    await api.createGroup(name, members);
    $('group-dialog').close();
    $('group-name').value = '';
    $('group-members').value = '';
    await loadGroups();
    openConversation(`#${name}`);
  } catch (error) {
    failed(error, $('group-error'));
  } finally {
    button.disabled = false;
  }
}

async function loadMembers() {
  if (!isGroup(state.peer)) return;
  const key = state.peer;
  try {
    const answer = await api.groupMembers(groupOf(key));
    if (state.peer !== key) return;
    state.members = answer.members;
    renderMembers();
  } catch (error) {
    failed(error, $('members-error'));
  }
}

function renderMembers() {
  if (!isGroup(state.peer)) return;
  const group = groupOf(state.peer);
  const meAdmin = state.members.some((m) => m.name === state.me && m.admin);
  for (const form of $('members-panel').querySelectorAll('.admin-only')) show(form, meAdmin);
  $('members').replaceChildren(...state.members.map((member) => {
    const item = el('li', 'member');
    item.dataset.name = member.name;
    const dot = el('span', member.online ? 'dot online' : 'dot');
    dot.title = member.online ? 'online' : 'offline';
    item.append(dot, el('span', 'name', member.name === state.me ? `${member.name} (you)` : member.name));
    if (member.admin) item.append(el('span', 'admin-mark', '★ admin'));
    if (meAdmin && member.name !== state.me) {
      const toggle = el('button', 'small', member.admin ? 'Remove admin' : 'Make admin');
      toggle.type = 'button';
      toggle.addEventListener('click', () => memberAction(() => api.setAdmin(group, member.name, !member.admin)));
      const remove = el('button', 'small danger-link', 'Remove');
      remove.type = 'button';
      remove.setAttribute('aria-label', `remove ${member.name}`);
      remove.addEventListener('click', () => memberAction(() => api.removeMembers(group, [member.name])));
      item.append(toggle, remove);
    }
    return item;
  }));
}

/** An admin's change to the group; the member list follows from its answer. */
async function memberAction(action) {
  say($('members-error'), '');
  try {
    await action();
    await loadMembers();
  } catch (error) {
    failed(error, $('members-error'));
  }
}

async function addMember(event) {
  event.preventDefault();
  const names = $('add-member').value.split(/[\s,]+/).filter(Boolean);
  if (names.length === 0) return;
  await memberAction(async () => {
    await api.addMembers(groupOf(state.peer), names);
    $('add-member').value = '';
  });
}

async function renameGroup(event) {
  event.preventDefault();
  const name = $('rename-name').value.trim();
  if (!name) return;
  const old = state.peer;
  say($('members-error'), '');
  try {
    await api.renameGroup(groupOf(old), name);
    $('rename-name').value = '';
    if (state.peer === old) renamed(old, `#${name}`);
    loadGroups();
  } catch (error) {
    failed(error, $('members-error'));
  }
}

/** The open group got a new name: the conversation follows it. */
function renamed(oldKey, newKey) {
  if (state.peer !== oldKey) return;
  state.peer = newKey;
  $('peer-name').textContent = newKey;
  history.replaceState(null, '', `#c=${encodeURIComponent(newKey)}`);
}

async function leaveGroup() {
  const key = state.peer;
  if (!isGroup(key)) return;
  say($('members-error'), '');
  try {
    await api.leaveGroup(groupOf(key));
    closeConversation();
    loadGroups();
  } catch (error) {
    failed(error, $('members-error'));
  }
}

/**
 * The other side of the open conversation deleted its account: what it wrote stays, under the
 * name it had, marked so; no online dot, and nothing more can be sent.
 */
function markDeleted(deleted) {
  state.peerDeleted = deleted;
  $('peer-name').textContent = deleted ? `${state.peer} (deleted account)` : (state.peer || '');
  if (deleted) show($('peer-dot'), false);
  $('composer').disabled = deleted;
  $('send').disabled = deleted;
  $('composer').placeholder = deleted ? 'This account was deleted; what it wrote stays here.' : 'Write a message (Enter sends, Shift+Enter starts a new line)';
}

function closeConversation() {
  history.replaceState(null, '', location.pathname);
  state.peer = null;
  state.members = [];
  state.messages.clear();
  show($('conversation'), false);
  show($('empty'), true);
  for (const item of document.querySelectorAll('#accounts li.account, #groups li.account')) item.classList.remove('open');
}

/** A change to a group, live: the list, the open conversation and its member panel follow. */
function groupChanged(message) {
  const key = `#${message.group}`;
  const change = message.change || {};
  if (change.kind === 'renamed') renamed(`#${change.previousName}`, key);
  const removedMe = (change.kind === 'removed' && (change.members || []).includes(state.me))
    || (change.kind === 'left' && message.from === state.me);
  if (state.peer === key) {
    if (removedMe) {
      closeConversation();
      banner('ok', change.kind === 'left' ? `You left #${message.group}.` : `${message.from} removed you from #${message.group}.`, 5);
    } else {
      const follow = nearEnd();
      state.messages.set(message.id, message);
      renderMessages();
      if (follow) scrollToEnd();
      if (!$('members-panel').hidden) loadMembers();
    }
  }
  loadGroups();
}

let searchTimer = null;
function searchTyped() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    state.pattern = $('search').value.trim() || '*';
    loadAccounts(0, true);
  }, 250);
}

// ---------------------------------------------------------------- a conversation

async function openConversation(name) {
  state.peer = name;
  state.messages.clear();
  state.selected.clear();
  state.older = null;
  state.unreadBy.delete(name);
  renderBadges();
  for (const item of document.querySelectorAll('#accounts li.account, #groups li.account')) item.classList.toggle('open', item.dataset.name === name);
  $('peer-name').textContent = name;
  $('peer-dot').className = state.accounts.get(name) ? 'dot online' : 'dot';
  show($('peer-dot'), !isGroup(name));
  markDeleted(false);
  // The address names the open conversation, so a reload opens it again.
  history.replaceState(null, '', `#c=${encodeURIComponent(name)}`);
  show($('members-toggle'), isGroup(name));
  show($('members-panel'), false);
  say($('members-error'), '');
  state.members = [];
  $('messages').replaceChildren();
  say($('composer-error'), '');
  show($('empty'), false);
  show($('inbox-view'), false);
  show($('conversation'), true);
  updateSelection();
  await loadLatest();
  scrollToEnd();
  $('composer').focus();
}

/** The newest page, merged with what is on screen (also used to catch up after a failover). */
async function loadLatest() {
  const peer = state.peer;
  if (!peer) return;
  try {
    const page = await fetchPage(peer);
    if (state.peer !== peer) return;
    if (page.deletedAccount) markDeleted(true);
    if (state.messages.size === 0) state.older = page.next || null;
    for (const message of page.messages) state.messages.set(message.id, message);
    renderMessages();
    markShown(page.messages);
  } catch (error) {
    failed(error, $('composer-error'));
  }
}

/** A page of a conversation: a group's or one with an account. */
function fetchPage(peer, page) {
  return isGroup(peer) ? api.groupHistory(groupOf(peer), page) : api.history(peer, page);
}

async function loadEarlier() {
  const peer = state.peer;
  if (!peer || !state.older) return;
  const scroller = $('scroller');
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  $('load-earlier').disabled = true;
  try {
    const page = await fetchPage(peer, state.older);
    if (state.peer !== peer) return;
    state.older = page.next || null;
    for (const message of page.messages) state.messages.set(message.id, message);
    renderMessages();
    markShown(page.messages);
    scroller.scrollTop = scroller.scrollHeight - fromBottom;
  } catch (error) {
    failed(error, $('composer-error'));
  } finally {
    $('load-earlier').disabled = false;
  }
}

function messageItem(message, withSelection) {
  if (message.change) {
    const line = el('li', 'msg system');
    line.dataset.id = message.id;
    line.append(el('span', 'line', `${changeSentence(message)} · ${time(message.sentUnixMs)}`));
    return line;
  }
  const mine = message.from === state.me;
  const item = el('li', mine ? 'msg mine' : 'msg theirs');
  item.dataset.id = message.id;
  if (withSelection) {
    const box = el('input', 'select');
    box.type = 'checkbox';
    box.checked = state.selected.has(message.id);
    box.setAttribute('aria-label', 'select message');
    box.addEventListener('change', () => {
      if (box.checked) state.selected.add(message.id);
      else state.selected.delete(message.id);
      item.classList.toggle('selected', box.checked);
      updateSelection();
    });
    item.append(box);
    item.classList.toggle('selected', box.checked);
  }
  const bubble = el('div', 'bubble');
  if (!withSelection) bubble.append(el('div', 'sender', (mine ? 'you' : message.from) + (message.group ? ` in #${message.group}` : '')));
  else if (message.group && !mine) bubble.append(el('div', 'sender', message.from));
  const stamp = el('div', 'time', time(message.sentUnixMs) + (message.editedUnixMs ? ` · edited ${time(message.editedUnixMs)}` : ''));
  if (mine && withSelection) {
    const button = el('button', 'edit', 'Edit');
    button.type = 'button';
    button.setAttribute('aria-label', 'edit message');
    button.addEventListener('click', () => openEdit(message));
    stamp.append(button);
  }
  bubble.append(el('div', 'body', message.body), stamp);
  item.append(bubble);
  return item;
}

// ---------------------------------------------------------------- editing

function openEdit(message) {
  state.editing = message.id;
  $('edit-body').value = message.body;
  say($('edit-error'), '');
  $('edit-dialog').showModal();
  $('edit-body').focus();
}

async function saveEdit(event) {
  event.preventDefault();
  const id = state.editing;
  const body = $('edit-body').value;
  if (!id || body.trim() === '') return;
  const button = $('edit-save');
  button.disabled = true;
  try {
    const answer = await api.editMessage(id, body);
    edited({ ...state.messages.get(id), id, body, editedUnixMs: answer.editedUnixMs });
    $('edit-dialog').close();
  } catch (error) {
    failed(error, $('edit-error'));
  } finally {
    button.disabled = false;
  }
}

/** A message's new body, from this page or the live channel: shown where it is on screen. */
function edited(message) {
  if (!message || !message.id) return;
  if (state.messages.has(message.id)) {
    state.messages.set(message.id, { ...state.messages.get(message.id), body: message.body, editedUnixMs: message.editedUnixMs });
    renderMessages();
  }
  for (const item of $('inbox-messages').querySelectorAll(`li.msg[data-id="${CSS.escape(message.id)}"]`)) {
    const body = item.querySelector('.body');
    if (body) body.textContent = message.body;
  }
}

function renderMessages() {
  const sorted = [...state.messages.values()].sort(byID);
  $('messages').replaceChildren(...sorted.map((m) => messageItem(m, true)));
  show($('load-earlier'), Boolean(state.older));
  show($('conversation-start'), !state.older);
}

function nearEnd() {
  const scroller = $('scroller');
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
}

function scrollToEnd() {
  const scroller = $('scroller');
  scroller.scrollTop = scroller.scrollHeight;
}

function updateSelection() {
  for (const id of [...state.selected]) if (!state.messages.has(id)) state.selected.delete(id);
  const count = state.selected.size;
  $('delete-selected').disabled = count === 0;
  $('selection-count').textContent = count > 0 ? `${count} selected` : '';
}

function composerChanged() {
  const bytes = encoder.encode($('composer').value).length;
  const counter = $('composer-count');
  counter.textContent = bytes > MAX_BODY_BYTES - 1024 ? `${bytes} / ${MAX_BODY_BYTES} bytes` : '';
  counter.className = bytes > MAX_BODY_BYTES ? 'hint bad' : 'hint';
}

/**
 * Tells the gateway which messages to me are on the screen: only then are they delivered.
 * One that never gets here (a dropped connection, a closed tab) stays waiting.
 */
async function markShown(messages) {
  const toMe = (m) => m.to === state.me || (m.group && !m.change && m.from !== state.me);
  const ids = messages.filter((m) => toMe(m) && !m.delivered && !state.shownSent.has(m.id)).map((m) => m.id);
  if (ids.length === 0) return 0;
  for (const id of ids) state.shownSent.add(id);
  try {
    const answer = await api.shown(ids);
    for (const message of messages) if (ids.includes(message.id)) message.delivered = true;
    return answer.deleted;
  } catch (error) {
    for (const id of ids) state.shownSent.delete(id);
    return 0;
  }
}

/**
 * Sends under `key` until the cluster's answer is known. A 504 (the gateway could not learn
 * the outcome) or a lost connection may mean it was stored: the same key goes again, so it
 * is stored once. Any other failure means it was not stored, and is thrown.
 */
async function sendUntilKnown(peer, body, key, pending) {
  let pause = 500;
  let mayBeStored = false;
  for (;;) {
    try {
      const waitingFrom = Math.min(...state.unanswered);
      const sent = { ...key, waitingFrom };
      return await (isGroup(peer) ? api.sendToGroup(groupOf(peer), body, sent) : api.send(peer, body, sent));
    } catch (error) {
      const unknown = error instanceof ApiError && (error.status === 504 || error.status === 502 || error.status === 0);
      // Once a try may have stored it, "nothing reached the cluster" (503) says nothing of
      // that earlier try: keep asking under the same key until the cluster answers for it.
      const stillUnknown = mayBeStored && error instanceof ApiError && error.status === 503;
      if (!unknown && !stillUnknown) throw error;
      mayBeStored = true;
      pending.classList.add('unknown');
      pending.querySelector('.time').textContent = 'not confirmed yet; still trying…';
      await sleep(pause);
      pause = Math.min(5000, pause * 2);
    }
  }
}

async function send(event) {
  event.preventDefault();
  const peer = state.peer;
  const box = $('composer');
  const body = box.value;
  if (!peer || body.trim() === '') return;
  say($('composer-error'), '');
  if (encoder.encode(body).length > MAX_BODY_BYTES) {
    say($('composer-error'), `This message is too long: at most ${MAX_BODY_BYTES / 1024} KiB.`);
    return;
  }
  box.value = '';
  composerChanged();
  const pending = messageItem({ id: 'pending', from: state.me, to: peer, body, sentUnixMs: Date.now() }, false);
  pending.classList.add('pending');
  pending.querySelector('.time').textContent = 'sending…';
  $('messages').append(pending);
  scrollToEnd();
  state.sendSequence += 1;
  const key = { client: state.sendClient, sequence: state.sendSequence };
  state.unanswered.add(key.sequence);
  try {
    const message = await sendUntilKnown(peer, body, key, pending);
    pending.remove();
    if (state.peer === peer) {
      state.messages.set(message.id, message);
      renderMessages();
      scrollToEnd();
    }
  } catch (error) {
    pending.remove();
    // It was not stored: give the text back, so nothing typed is lost.
    if (state.peer === peer && box.value === '') box.value = body;
    composerChanged();
    failed(error, $('composer-error'));
  } finally {
    state.unanswered.delete(key.sequence);
  }
}

async function deleteSelected() {
  const ids = [...state.selected];
  if (ids.length === 0) return;
  $('delete-selected').disabled = true;
  try {
    await api.deleteMessages(ids);
    removeMessages(ids);
  } catch (error) {
    failed(error, $('composer-error'));
    updateSelection();
  }
}

function removeMessages(ids) {
  let changed = false;
  for (const id of ids) {
    if (state.messages.delete(id)) changed = true;
    state.selected.delete(id);
    for (const item of $('inbox-messages').querySelectorAll(`li.msg[data-id="${CSS.escape(id)}"]`)) item.remove();
  }
  if (changed) renderMessages();
  updateSelection();
}

// ---------------------------------------------------------------- messages that waited

function setWaiting(count) {
  state.waiting = Number(count);
  $('unread-count').textContent = String(state.waiting);
  $('unread-label').textContent = state.waiting === 1 ? 'message waiting' : 'messages waiting';
  $('read-next').disabled = state.waiting === 0;
}

async function readNext() {
  const limit = Math.max(1, Math.min(200, Number($('read-n').value) || 1));
  $('read-n').value = String(limit);
  $('read-next').disabled = true;
  try {
    const answer = await api.readWaiting(limit);
    setWaiting(answer.unread);
    const list = $('inbox-messages');
    list.replaceChildren(...answer.messages.map((message) => {
      const item = messageItem(message, false);
      item.classList.add('clickable');
      const key = conversationOf(message);
      item.title = isGroup(key) ? `Open ${key}` : `Open the conversation with ${message.from}`;
      item.addEventListener('click', () => openConversation(key));
      return item;
    }));
    if (answer.messages.length === 0) list.append(el('li', 'hint', 'Nothing was waiting.'));
    show($('empty'), false);
    show($('conversation'), false);
    show($('inbox-view'), true);
    state.peer = null;
    state.members = [];
    for (const item of document.querySelectorAll('#accounts li.account, #groups li.account')) item.classList.remove('open');
    // On the screen now: delivered, and no longer waiting.
    const delivered = await markShown(answer.messages);
    setWaiting(Math.max(0, Number(answer.unread) - delivered));
  } catch (error) {
    failed(error);
    setWaiting(state.waiting);
  }
}

// ---------------------------------------------------------------- live events

function onLiveEvent(event) {
  switch (event.type) {
    case 'attached':
      $('live-state').textContent = 'live';
      $('live-state').className = 'live-state up';
      // What waits for this user as the cluster counts it now (messages that came while the
      // page was away wait too; only what arrives from here on is pushed).
      setWaiting(event.unread);
      if (state.liveWasUp) {
        // Back after a failover or a lost connection: catch up with what may have changed.
        loadAccounts(state.pageIndex, false);
        loadGroups();
        loadLatest();
      }
      if (state.failingOver) {
        // The failover banner stays at least 1.5 s, long enough to read, unless the live
        // channel drops again meanwhile.
        const wait = Math.max(0, state.failoverShownAt + 1500 - Date.now());
        setTimeout(() => {
          if (!state.failingOver) banner('ok', 'Back online: the cluster has a new leader. Nothing was lost.', 5);
        }, wait);
      }
      state.failingOver = false;
      state.liveWasUp = true;
      refreshClusterStatus();
      break;
    case 'reconnecting':
      if (!state.failingOver) state.failoverShownAt = Date.now();
      state.failingOver = true;
      $('live-state').textContent = 'failing over…';
      $('live-state').className = 'live-state down';
      banner('warn', 'The cluster is failing over to a new leader… Messages you send will go through once it is back.');
      break;
    case 'message': {
      const message = event.message;
      const other = conversationOf(message);
      if (other === state.peer) {
        const follow = nearEnd();
        state.messages.set(message.id, message);
        renderMessages();
        if (follow) scrollToEnd();
        markShown([message]);
      } else {
        state.unreadBy.set(other, (state.unreadBy.get(other) || 0) + 1);
        renderBadges();
      }
      break;
    }
    case 'deleted':
      removeMessages(event.ids);
      break;
    case 'edited':
      edited(event.message);
      break;
    case 'groupChanged':
      groupChanged(event.message);
      break;
    case 'presence':
      setPresence(event.name, event.online);
      break;
    case 'account':
      if (state.pageIndex === 0) loadAccounts(0, false);
      break;
    case 'accountDeleted':
      if (state.accounts.has(event.name)) loadAccounts(state.pageIndex, false);
      if (event.name === state.peer) {
        say($('composer-error'), `${event.name} deleted their account.`);
        markDeleted(true);
      }
      if (state.members.some((m) => m.name === event.name)) loadMembers();
      break;
    default:
      break;
  }
}

async function onLiveState(what, reason) {
  if (what === 'ended') {
    leave(`Your session ended: ${reason}`);
    return;
  }
  if (what === 'closed') {
    $('live-state').textContent = 'reconnecting…';
    $('live-state').className = 'live-state down';
    if (state.liveWasUp) state.failingOver = true;
    banner('warn', 'Lost the live connection to the web gateway; reconnecting…');
    // A refused upgrade looks like a closed socket: find out whether the session is over.
    try {
      await api.session();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) leave('Your session ended; log in again.');
    }
  }
}

async function refreshClusterStatus() {
  try {
    const cluster = await api.cluster();
    const up = cluster.nodes.filter((n) => n.reachable).length;
    const leader = cluster.nodes.find((n) => n.role === 'leader');
    $('cluster-status').textContent = `· ${up} of ${cluster.nodes.length} nodes reachable` + (leader ? ` · leader: node ${leader.id} (term ${leader.term})` : ' · no leader');
  } catch (error) {
    $('cluster-status').textContent = '';
  }
}

// ---------------------------------------------------------------- wiring

function wire() {
  $('tab-login').addEventListener('click', () => showAuth('login'));
  $('tab-register').addEventListener('click', () => showAuth('register'));
  $('login-form').addEventListener('submit', login);
  $('register-form').addEventListener('submit', register);
  $('register-name').addEventListener('input', nameTyped);
  $('logout').addEventListener('click', logout);
  $('delete-account-open').addEventListener('click', () => {
    say($('delete-error'), '');
    $('delete-dialog').showModal();
    $('delete-password').focus();
  });
  $('delete-cancel').addEventListener('click', () => $('delete-dialog').close());
  $('delete-form').addEventListener('submit', deleteAccount);
  $('search').addEventListener('input', searchTyped);
  $('accounts-prev').addEventListener('click', () => loadAccounts(Math.max(0, state.pageIndex - 1), false));
  $('accounts-next').addEventListener('click', () => loadAccounts(state.pageIndex + 1, false));
  $('read-next').addEventListener('click', readNext);
  $('inbox-close').addEventListener('click', () => {
    show($('inbox-view'), false);
    show($('empty'), true);
  });
  $('load-earlier').addEventListener('click', loadEarlier);
  $('scroller').addEventListener('scroll', () => {
    if ($('scroller').scrollTop === 0 && state.older && !$('load-earlier').disabled) loadEarlier();
  });
  $('delete-selected').addEventListener('click', deleteSelected);
  $('edit-form').addEventListener('submit', saveEdit);
  $('edit-cancel').addEventListener('click', () => $('edit-dialog').close());
  $('composer-form').addEventListener('submit', send);
  $('group-new').addEventListener('click', () => {
    say($('group-error'), '');
    $('group-dialog').showModal();
    $('group-name').focus();
  });
  $('group-cancel').addEventListener('click', () => $('group-dialog').close());
  $('group-form').addEventListener('submit', createGroup);
  $('group-name').addEventListener('input', groupNameTyped);
  $('members-toggle').addEventListener('click', () => {
    const open = $('members-panel').hidden;
    show($('members-panel'), open);
    if (open) loadMembers();
  });
  $('add-member-form').addEventListener('submit', addMember);
  $('rename-form').addEventListener('submit', renameGroup);
  $('leave-group').addEventListener('click', leaveGroup);
  $('composer').addEventListener('input', composerChanged);
  $('composer').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) send(event);
  });
  setInterval(() => {
    if (state.me) refreshClusterStatus();
  }, 15000);
}

async function start() {
  wire();
  try {
    const session = await api.session();
    enter(session.name, 0);
    // Back where the page was: the conversation its address names (an address that does not
    // decode names none).
    const open = /^#c=(.+)$/.exec(location.hash);
    let key = null;
    try {
      key = open ? decodeURIComponent(open[1]) : null;
    } catch {
      history.replaceState(null, '', location.pathname);
    }
    if (key) openConversation(key);
  } catch {
    showAuth('login');
  }
}

start();
