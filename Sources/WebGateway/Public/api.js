// The gateway's JSON API and its live channel. Every call is same-origin; the session is an
// HttpOnly cookie this script never sees.

/** An answer that was not a success, with the gateway's sentence for it. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'Cannot reach the web gateway. Check your connection; it will be retried when you try again.');
  }
  if (response.status === 204) return null;
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const message = payload && payload.error && payload.error.message ? payload.error.message : `The gateway answered ${response.status}.`;
    throw new ApiError(response.status, message);
  }
  return payload;
}

const enc = encodeURIComponent;

export const api = {
  session: () => call('GET', '/api/session'),
  login: (name, password) => call('POST', '/api/session', { name, password }),
  logout: () => call('POST', '/api/session/end', {}),
  checkName: (name) => call('GET', `/api/names/${enc(name)}`),
  register: (name, password) => call('POST', '/api/accounts', { name, password }),
  deleteAccount: (password) => call('POST', '/api/account/delete', { password }),
  accounts: (pattern, page) => call('GET', `/api/accounts?pattern=${enc(pattern)}${page ? `&page=${enc(page)}` : ''}`),
  history: (name, page) => call('GET', `/api/conversations/${enc(name)}${page ? `?page=${enc(page)}` : ''}`),
  send: (name, body, key) => call('POST', `/api/conversations/${enc(name)}`, { body, key }),
  readWaiting: (limit) => call('POST', '/api/inbox/read', { limit }),
  deleteMessages: (ids) => call('POST', '/api/messages/delete', { ids }),
  editMessage: (id, body) => call('POST', '/api/messages/edit', { id, body }),
  shown: (ids) => call('POST', '/api/messages/shown', { ids }),
  cluster: () => call('GET', '/api/cluster'),
  groups: () => call('GET', '/api/groups'),
  createGroup: (name, members) => call('POST', '/api/groups', { name, members }),
  groupHistory: (group, page) => call('GET', `/api/groups/${enc(group)}/messages${page ? `?page=${enc(page)}` : ''}`),
  sendToGroup: (group, body, key) => call('POST', `/api/groups/${enc(group)}/messages`, { body, key }),
  groupMembers: (group) => call('GET', `/api/groups/${enc(group)}/members`),
  addMembers: (group, names) => call('POST', `/api/groups/${enc(group)}/members`, { names }),
  removeMembers: (group, names) => call('POST', `/api/groups/${enc(group)}/members/remove`, { names }),
  setAdmin: (group, name, admin) => call('POST', `/api/groups/${enc(group)}/admins`, { name, admin }),
  renameGroup: (group, name) => call('POST', `/api/groups/${enc(group)}/rename`, { name }),
  leaveGroup: (group) => call('POST', `/api/groups/${enc(group)}/leave`, {}),
};

/**
 * The live channel: reconnects by itself (with growing pauses) until closed, and hands each
 * event to `onEvent`. `onState` hears 'open', 'closed' and 'ended' (the session is over).
 */
export class Live {
  constructor(onEvent, onState) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.socket = null;
    this.stopped = false;
    this.failures = 0;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/api/events`);
    this.socket = socket;
    let ended = false;
    socket.onopen = () => {
      this.failures = 0;
      this.onState('open');
    };
    socket.onmessage = (frame) => {
      let event;
      try {
        event = JSON.parse(frame.data);
      } catch {
        return;
      }
      if (event.type === 'ended') {
        ended = true;
        this.stopped = true;
        this.onState('ended', event.reason);
        return;
      }
      this.onEvent(event);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped || ended) return;
      this.onState('closed');
      this.failures += 1;
      const pause = Math.min(5000, 250 * 2 ** Math.min(this.failures, 5));
      this.timer = setTimeout(() => this.connect(), pause);
    };
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close();
    }
  }
}
