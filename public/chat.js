// The chat page: plain DOM and the gateway's own client SDK, no framework and no build step.
// Everything the model or a user wrote is put in the page as text (textContent), never as HTML.
// One file on purpose: the server serves the page's files by name (src/page/chat-page.controller.ts).
import { GatewayClient } from '/sdk/client/index.js';

const TOKEN_KEY = 'agent-gateway-token';
/** The thread on screen: a reload reopens it, and re-attaches to its reply if one is still streaming. */
const THREAD_KEY = 'agent-gateway-thread';
const NEW_CHAT_TITLE = 'New chat';
/** A thread's heading until the thread list, which has its title, arrives. */
const UNKNOWN_TITLE = 'Conversation';
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
  showThreads: $('#show-threads'),
  title: $('#conversation-title'),
  notice: $('#chat-notice'),
  messages: $('#messages'),
  composer: $('#composer'),
  input: $('#message'),
  send: $('#send'),
  cancel: $('#cancel'),
};

let client;
let unsubscribeState;
/**
 * The conversation on screen: a thread, or a new chat (no `threadId`) whose first message may be
 * creating one (`starting` resolves to its id, or to undefined if it started none). Every
 * navigation puts a new object here, so work that ends later can tell whether its conversation is
 * still the one on screen (`view === mine`).
 */
let view = { threadId: undefined, starting: undefined };
/** Replies in progress (sent from this page or attached to after a reload): see `startReply`. */
const replies = new Set();
/** Thread titles from the last thread list, by id. */
const titles = new Map();
/** Only the answer to the latest `thread_list` is shown (an older one may arrive after it). */
let listRequests = 0;
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
  if (tokenWanted !== undefined) {
    ui.signOut.hidden = false;
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
  sessionStorage.removeItem(THREAD_KEY);
  // Quietly: the closed client's last state is not this page's any more.
  unsubscribeState?.();
  client?.close();
  client = undefined;
  replies.clear();
  titles.clear();
  ui.threadList.replaceChildren();
  showConversation(undefined);
  renderState({ status: 'idle' });
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

/** Why a reconnecting client lost its connection: a draining server closes with 1012, a starting one refuses with 1013. */
function closeReason(state) {
  if (state.status !== 'reconnecting') return undefined;
  switch (state.lastClose.code) {
    case 1012:
      return 'service_restarting';
    case 1013:
      return 'service_starting';
    default:
      return 'connection_lost';
  }
}

const CLOSE_REASONS = {
  service_restarting: 'Service restarting',
  service_starting: 'Service starting',
  connection_lost: 'Connection lost',
};

function describe(state) {
  switch (state.status) {
    case 'idle':
      return 'Not connected';
    case 'connecting':
      return state.attempt > 1 ? `Connecting (attempt ${state.attempt})…` : 'Connecting…';
    case 'establishing':
      return 'Connecting — opening the session…';
    case 'waiting_for_service':
      return 'Service starting — waiting for it to be ready…';
    case 'open':
      return `Connected as ${state.userId}`;
    case 'refreshing_token':
      return 'Signed out — sign in again to reconnect';
    case 'reconnecting': {
      const seconds = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
      return `${CLOSE_REASONS[closeReason(state)]} — connecting in ${seconds} s…`;
    }
    case 'closed':
      return `Disconnected: ${state.reason.message}`;
    default:
      return state.status;
  }
}

/** What a reply in progress is waiting for while there is no connection; undefined when open (or closed for good). */
function waitingFor(state) {
  switch (state.status) {
    case 'open':
    case 'closed':
      return undefined;
    case 'waiting_for_service':
      return 'waiting for the service to start…';
    case 'refreshing_token':
      return 'waiting for you to sign in again…';
    case 'reconnecting':
      switch (closeReason(state)) {
        case 'service_restarting':
          return 'the service is restarting — this continues once it is back…';
        case 'service_starting':
          return 'waiting for the service to start…';
        default:
          return 'connection lost — reconnecting…';
      }
    default:
      return 'waiting for the connection…';
  }
}

function renderState(state) {
  clearInterval(countdown);
  ui.state.dataset.state = state.status;
  const reason = closeReason(state);
  if (reason === undefined) delete ui.state.dataset.reason;
  else ui.state.dataset.reason = reason;
  ui.state.textContent = describe(state);
  if (state.status === 'reconnecting') {
    countdown = setInterval(() => {
      ui.state.textContent = describe(state);
    }, 250);
  }
  ui.send.disabled = state.status === 'closed';
  for (const reply of replies) showProgress(reply);
  if (state.status === 'open') void loadThreads();
}

// ------------------------------------------------------------------ threads

async function loadThreads() {
  const own = client;
  listRequests += 1;
  const asked = listRequests;
  let threads;
  try {
    ({ threads } = await own.request('thread_list', { limit: 50 }));
  } catch (error) {
    report(error);
    return;
  }
  if (client !== own || asked !== listRequests) return;
  titles.clear();
  for (const thread of threads) titles.set(thread.id, thread.title);
  ui.threadList.replaceChildren(...threads.map(threadItem));
  markCurrentThread();
}

function threadItem(thread) {
  const item = document.createElement('li');
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = thread.title;
  button.dataset.threadId = thread.id;
  button.addEventListener('click', () => void openThread(thread.id));
  item.append(button);
  return item;
}

function markCurrentThread() {
  for (const button of ui.threadList.querySelectorAll('button')) {
    if (button.dataset.threadId === view.threadId) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
  ui.title.textContent = view.threadId === undefined ? NEW_CHAT_TITLE : (titles.get(view.threadId) ?? UNKNOWN_TITLE);
}

/** Puts a thread (or, without an id, a new chat) on screen, empty until its history arrives. */
function showConversation(threadId) {
  view = { threadId, starting: undefined };
  if (threadId === undefined) sessionStorage.removeItem(THREAD_KEY);
  else sessionStorage.setItem(THREAD_KEY, threadId);
  ui.messages.replaceChildren();
  ui.notice.textContent = '';
  markCurrentThread();
  showCancel();
  showThreadList(false);
  return view;
}

async function openThread(threadId) {
  const mine = showConversation(threadId);
  ui.input.focus();
  let history;
  try {
    history = await client.request('thread_history', { threadId, limit: 200 });
  } catch (error) {
    if (view !== mine) return;
    // A thread remembered from before the reload that is gone (or another user's): start afresh.
    if (error.code === 'THREAD_NOT_FOUND') showConversation(undefined);
    else report(error);
    return;
  }
  if (view !== mine) return;
  ui.messages.replaceChildren(...history.messages.flatMap(historyItems));
  const active = history.activeRun;
  if (active !== undefined) {
    // Its user message is in the history; its reply is still being written.
    const followed = [...replies].find((reply) => reply.runId === active.runId);
    if (followed !== undefined) {
      ui.messages.append(...followed.steps.map((step) => step.element), followed.item);
    } else {
      const reply = startReply('continuing the reply…');
      reply.runId = active.runId;
      ui.messages.append(reply.item);
      void follow(client.attach(active.runId, { afterSeq: active.afterSeq }), reply);
    }
  }
  showCancel();
  scrollToEnd();
}

ui.newThread.addEventListener('click', () => {
  showConversation(undefined);
  ui.input.focus();
});

// On a small screen the thread list is a panel over the conversation, opened with "Threads".
function showThreadList(open) {
  ui.chat.dataset.threads = open ? 'open' : 'closed';
  ui.showThreads.setAttribute('aria-expanded', String(open));
}

ui.showThreads.addEventListener('click', () => {
  const open = ui.chat.dataset.threads !== 'open';
  showThreadList(open);
  if (open) (ui.threadList.querySelector('[aria-current]') ?? ui.newThread).focus();
});

ui.chat.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape' || ui.chat.dataset.threads !== 'open') return;
  showThreadList(false);
  ui.showThreads.focus();
});

// ------------------------------------------------------------------ messages

function messageItem(role, content) {
  const item = document.createElement('li');
  item.className = `message-${role}`;
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = content;
  item.append(text);
  return item;
}

/** A stored message, with the tool steps of the run that wrote it before it, as the live view showed them. */
function historyItems(message) {
  if (message.role === 'user') return [messageItem('user', message.content)];
  return [...(message.steps ?? []).map(toolItem), messageItem('assistant', message.content)];
}

/** One tool step, the same live and in history: `⚙ calculator({"expression":"2+3"}) → {…}`. */
function toolText(step) {
  const call = `⚙ ${step.tool}(${JSON.stringify(step.args)})`;
  if (step.error !== undefined) return `${call} → failed: ${step.error.message}`;
  if (step.result !== undefined) return `${call} → ${JSON.stringify(step.result)}`;
  return `${call} …`;
}

function toolItem(step) {
  const item = document.createElement('li');
  item.className = 'tool';
  item.dataset.callId = step.callId;
  item.textContent = toolText(step);
  return item;
}

function scrollToEnd() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function report(error) {
  if (error?.code === 'CLIENT_CLOSED') return; // signed out meanwhile
  ui.notice.textContent = error instanceof Error ? error.message : String(error);
}

// ------------------------------------------------------------------ a reply in progress

/**
 * The bubble of a reply being written and the tool steps shown before it. It outlives navigation:
 * reopening its thread puts the same elements back (they kept up meanwhile) instead of attaching again.
 */
function startReply(progress) {
  const item = messageItem('assistant', '');
  item.classList.add('streaming');
  item.setAttribute('aria-busy', 'true');
  const status = document.createElement('span');
  status.className = 'run-status';
  item.append(status);
  const reply = { item, text: item.querySelector('.text'), status, progress, steps: [], run: undefined };
  replies.add(reply);
  showProgress(reply);
  return reply;
}

/** The run's own progress, unless the connection is what it waits for (then that is what the person needs to know). */
function showProgress(reply) {
  const waiting = client === undefined ? undefined : waitingFor(client.state);
  reply.status.textContent = waiting ?? reply.progress;
  reply.item.classList.toggle('waiting', waiting !== undefined);
}

function showFrame(reply, frame) {
  switch (frame.event) {
    case 'agent_queued':
      reply.progress = `queued (position ${frame.data.position})`;
      break;
    case 'agent_thinking':
      reply.progress = 'thinking…';
      break;
    case 'tool_executing': {
      const step = { callId: frame.data.callId, tool: frame.data.tool, args: frame.data.args };
      const element = toolItem(step);
      reply.steps.push({ step, element });
      reply.item.before(element);
      break;
    }
    case 'tool_completed':
    case 'tool_failed': {
      const shown = reply.steps.find((entry) => entry.step.callId === frame.data.callId);
      if (shown === undefined) break;
      shown.step =
        frame.event === 'tool_completed'
          ? { ...shown.step, result: frame.data.result }
          : { ...shown.step, error: frame.data.error };
      shown.element.textContent = toolText(shown.step);
      break;
    }
    case 'agent_message_delta':
      reply.progress = '';
      reply.text.append(frame.data.text);
      break;
    default:
      break;
  }
  showProgress(reply);
}

function finishReply(reply, result) {
  replies.delete(reply);
  reply.item.classList.remove('streaming', 'waiting');
  reply.item.removeAttribute('aria-busy');
  if (result.status === 'completed') {
    const { content, steps = [] } = result.message;
    // The deltas add up to the message; it is only missing when the run's events could not be
    // replayed (it ended while the connection was down), and then the stored message is all there is.
    if (reply.text.textContent !== content) reply.text.textContent = content;
    if (reply.steps.length === 0 && steps.length > 0) reply.item.before(...steps.map(toolItem));
    reply.status.textContent = '';
  } else if (result.status === 'cancelled') {
    reply.status.textContent = 'cancelled';
  } else {
    reply.status.textContent = `${result.error.code}: ${result.error.message}`;
  }
  // Last: tests and scripts wait for `data-status` as "the reply has ended".
  reply.item.dataset.status = result.status;
}

/** Shows a run's events in `reply` as they come (a new run, or one attached to: the same view). */
async function follow(run, reply, onStarted) {
  const own = client;
  reply.run = run;
  showCancel();
  for await (const frame of run) {
    if (frame.event === 'agent_started') {
      reply.runId = frame.data.runId;
      onStarted?.(frame.data.threadId);
    }
    showFrame(reply, frame);
    if (reply.item.isConnected) scrollToEnd();
  }
  finishReply(reply, await run.result);
  showCancel();
  if (client === own) void loadThreads();
}

async function send(text) {
  const own = client;
  const mine = view;
  ui.messages.append(messageItem('user', text));
  const reply = startReply('sending…');
  ui.messages.append(reply.item);
  scrollToEnd();
  // A second message of a new chat goes to the thread its first one is creating; without the wait
  // each would start a thread of its own.
  const threadId = mine.threadId ?? (await mine.starting);
  if (client !== own) return; // signed out meanwhile
  const run = client.run(text, threadId === undefined ? {} : { threadId });
  let started;
  if (threadId === undefined) {
    mine.starting = new Promise((resolve) => (started = resolve));
    void run.result.then(() => started(undefined)); // no-op once started: a promise settles once
  }
  await follow(run, reply, (startedIn) => {
    if (started === undefined) return;
    started(startedIn);
    mine.threadId = startedIn;
    // Still on screen: this is now that thread (a reload reopens it, the list marks it).
    if (view !== mine) return;
    sessionStorage.setItem(THREAD_KEY, startedIn);
    void loadThreads();
  });
}

/** The cancel button stops the reply in progress on screen, if there is one. */
function replyOnScreen() {
  return [...replies].find((reply) => reply.run !== undefined && reply.item.isConnected);
}

function showCancel() {
  ui.cancel.hidden = replyOnScreen() === undefined;
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

ui.cancel.addEventListener('click', () => replyOnScreen()?.run.cancel());

// ------------------------------------------------------------------ start

function start() {
  ui.chat.hidden = false;
  ui.signOut.hidden = false;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  client = new GatewayClient({
    url: `${scheme}://${location.host}/ws`,
    token: () => sessionStorage.getItem(TOKEN_KEY) ?? '',
    refreshToken: askForNewToken,
  });
  unsubscribeState = client.onState(renderState);
  void client.connect().catch(() => undefined);
  const lastOpen = sessionStorage.getItem(THREAD_KEY);
  if (lastOpen !== null) void openThread(lastOpen);
  ui.input.focus();
}

if (sessionStorage.getItem(TOKEN_KEY) === null) showSignIn();
else start();
