// The chat page: plain DOM and the gateway's own client SDK, no framework and no build step.
// Everything the model or a user wrote is put in the page as text (textContent), never as HTML.
import { GatewayClient } from '/sdk/client/index.js';

const TOKEN_KEY = 'agent-gateway-token';
const $ = (selector) => document.querySelector(selector);

const ui = {
  state: $('#connection-state'),
  signOut: $('#sign-out'),
  signIn: $('#sign-in'),
  signInMessage: $('#sign-in-message'),
  devForm: $('#dev-sign-in'),
  tokenForm: $('#token-sign-in'),
  chat: $('#chat'),
  threadList: $('#thread-list'),
  newThread: $('#new-thread'),
  messages: $('#messages'),
  composer: $('#composer'),
  input: $('#message'),
  send: $('#send'),
  cancel: $('#cancel'),
};

let client;
let currentThreadId;
let activeRun;
let countdown;
/** Resolves the token a refresh is waiting for (the sign-in form answers it). */
let tokenWanted;

// ------------------------------------------------------------------ sign-in

async function devToken(userId) {
  const response = await fetch('/dev/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ userId }),
  });
  if (response.status === 404) return undefined; // production: no development tokens
  const body = await response.json();
  if (!response.ok) throw new Error(body.message ?? `sign-in failed (${response.status})`);
  return body.token;
}

function showSignIn(message) {
  ui.signInMessage.textContent = message ?? '';
  ui.signIn.hidden = false;
  $('#user-id').focus();
}

function signedIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  ui.signIn.hidden = true;
  ui.signInMessage.textContent = '';
  ui.signOut.hidden = false;
  if (tokenWanted !== undefined) {
    ui.chat.hidden = false;
    const resolve = tokenWanted;
    tokenWanted = undefined;
    resolve(token);
  } else {
    start();
  }
}

ui.devForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const userId = new FormData(ui.devForm).get('userId');
  try {
    const token = await devToken(String(userId));
    if (token === undefined) {
      ui.devForm.hidden = true;
      ui.tokenForm.hidden = false;
      ui.signInMessage.textContent = 'This server issues no development tokens: paste an access token.';
      return;
    }
    signedIn(token);
  } catch (error) {
    ui.signInMessage.textContent = error.message;
  }
});

ui.tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  signedIn(String(new FormData(ui.tokenForm).get('token')).trim());
});

ui.signOut.addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  client?.close();
  client = undefined;
  ui.chat.hidden = true;
  ui.signOut.hidden = true;
  showSignIn();
});

/** The server refused the token: ask the person for a new one instead of reconnecting in a loop. */
function askForNewToken(error) {
  sessionStorage.removeItem(TOKEN_KEY);
  ui.chat.hidden = true;
  ui.signOut.hidden = true;
  const why = error.code === 'TOKEN_EXPIRED' ? 'Your session expired.' : 'The server did not accept your sign-in.';
  showSignIn(`${why} Sign in again to continue.`);
  return new Promise((resolve) => {
    tokenWanted = resolve;
  });
}

// ------------------------------------------------------------------ connection state

function describe(state) {
  switch (state.status) {
    case 'idle':
      return 'Not connected';
    case 'connecting':
      return state.attempt > 1 ? `Connecting (attempt ${state.attempt})…` : 'Connecting…';
    case 'waiting_for_service':
      return 'Service starting — waiting for it to be ready…';
    case 'open':
      return `Connected as ${state.userId}`;
    case 'refreshing_token':
      return 'Signed out — sign in again to reconnect';
    case 'reconnecting': {
      const seconds = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
      const code = state.lastClose.code;
      const what = code === 1013 ? 'Service starting' : code === 1012 ? 'Service restarting' : 'Connection lost';
      return `${what} — connecting in ${seconds} s…`;
    }
    case 'closed':
      return `Disconnected: ${state.reason.message}`;
    default:
      return state.status;
  }
}

function renderState(state) {
  clearInterval(countdown);
  ui.state.dataset.state = state.status;
  ui.state.textContent = describe(state);
  if (state.status === 'reconnecting') {
    countdown = setInterval(() => {
      ui.state.textContent = describe(state);
    }, 250);
  }
  ui.send.disabled = state.status === 'closed';
  if (state.status === 'open') void loadThreads();
}

// ------------------------------------------------------------------ threads and messages

async function loadThreads() {
  const { threads } = await client.request('thread_list', { limit: 50 });
  ui.threadList.replaceChildren(
    ...threads.map((thread) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = thread.title;
      button.dataset.threadId = thread.id;
      if (thread.id === currentThreadId) button.setAttribute('aria-current', 'true');
      button.addEventListener('click', () => void openThread(thread.id));
      item.append(button);
      return item;
    }),
  );
}

async function openThread(threadId) {
  currentThreadId = threadId;
  const { messages } = await client.request('thread_history', { threadId, limit: 200 });
  ui.messages.replaceChildren(...messages.map((message) => messageItem(message.role, message.content)));
  for (const button of ui.threadList.querySelectorAll('button')) {
    if (button.dataset.threadId === threadId) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
  ui.input.focus();
}

function messageItem(role, content) {
  const item = document.createElement('li');
  item.className = `message-${role}`;
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = content;
  item.append(text);
  return item;
}

function toolItem(frame) {
  const item = document.createElement('li');
  item.className = 'tool';
  item.dataset.callId = frame.data.callId;
  item.textContent = `⚙ ${frame.data.tool}(${JSON.stringify(frame.data.args)}) …`;
  return item;
}

ui.newThread.addEventListener('click', () => {
  currentThreadId = undefined;
  ui.messages.replaceChildren();
  for (const button of ui.threadList.querySelectorAll('button')) button.removeAttribute('aria-current');
  ui.input.focus();
});

// ------------------------------------------------------------------ a run

async function send(text) {
  ui.messages.append(messageItem('user', text));
  const reply = messageItem('assistant', '');
  reply.classList.add('streaming');
  const status = document.createElement('span');
  status.className = 'run-status';
  reply.append(status);
  ui.messages.append(reply);
  const run = client.run(text, currentThreadId === undefined ? {} : { threadId: currentThreadId });
  activeRun = run;
  ui.cancel.hidden = false;
  const replyText = reply.querySelector('.text');
  for await (const frame of run) {
    switch (frame.event) {
      case 'agent_started':
        currentThreadId = frame.data.threadId;
        break;
      case 'agent_queued':
        status.textContent = `queued (position ${frame.data.position})`;
        break;
      case 'agent_thinking':
        status.textContent = 'thinking…';
        break;
      case 'tool_executing':
        reply.before(toolItem(frame));
        break;
      case 'tool_completed':
      case 'tool_failed': {
        const item = ui.messages.querySelector(`[data-call-id="${CSS.escape(frame.data.callId)}"]`);
        const outcome =
          frame.event === 'tool_completed' ? JSON.stringify(frame.data.result) : `failed: ${frame.data.error.message}`;
        if (item !== null) item.textContent = item.textContent.replace(/…$/u, `→ ${outcome}`);
        break;
      }
      case 'agent_message_delta':
        status.textContent = '';
        replyText.textContent += frame.data.text;
        break;
      default:
        break;
    }
  }
  const result = await run.result;
  reply.classList.remove('streaming');
  reply.dataset.status = result.status;
  if (result.status === 'completed') {
    replyText.textContent = result.message.content;
    status.textContent = '';
  } else if (result.status === 'cancelled') {
    status.textContent = 'cancelled';
  } else {
    status.textContent = `${result.error.code}: ${result.error.message}`;
  }
  if (activeRun === run) {
    activeRun = undefined;
    ui.cancel.hidden = true;
  }
  void loadThreads();
}

ui.composer.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.input.value.trim();
  if (text === '') return;
  ui.input.value = '';
  void send(text);
});

ui.input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    ui.composer.requestSubmit();
  }
});

ui.cancel.addEventListener('click', () => activeRun?.cancel());

// ------------------------------------------------------------------ start

function start() {
  ui.chat.hidden = false;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  client = new GatewayClient({
    url: `${scheme}://${location.host}/ws`,
    token: () => sessionStorage.getItem(TOKEN_KEY) ?? '',
    refreshToken: askForNewToken,
  });
  client.onState(renderState);
  void client.connect().catch(() => undefined);
  ui.input.focus();
}

if (sessionStorage.getItem(TOKEN_KEY) === null) showSignIn();
else start();
