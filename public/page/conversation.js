// The conversation on screen: opening a thread (or a new chat) with its history, and sending messages.
import { rememberThread, replaceView, view } from './current-conversation.js';
import { ui } from './elements.js';
import { historyItems, messageItem, report, scrollToEnd } from './messages.js';
import { follow, followedReply, showCancel, startReply } from './replies.js';
import { client } from './session.js';
import { loadThreads, markCurrentThread, showThreadList } from './thread-list.js';

/** Puts a thread (or, without an id, a new chat) on screen, empty until its history arrives. */
export function showConversation(threadId) {
  const shown = replaceView(threadId);
  ui.messages.replaceChildren();
  ui.notice.textContent = '';
  markCurrentThread();
  showCancel();
  showThreadList(false);
  return shown;
}

export async function openThread(threadId) {
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
    const followed = followedReply(active.runId);
    if (followed !== undefined) {
      ui.messages.append(...followed.above, followed.item);
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

// The thread list's buttons (thread-list.js) each open their thread.
ui.threadList.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-thread-id]');
  if (button !== null) void openThread(button.dataset.threadId);
});

ui.newThread.addEventListener('click', () => {
  showConversation(undefined);
  ui.input.focus();
});

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
    rememberThread(startedIn);
    void loadThreads();
  });
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
