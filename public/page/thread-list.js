// The thread list, the conversation's title from it, and (on a small screen) the panel that holds it.
// Choosing a thread is conversation.js's: it listens for clicks on the list.
import { view } from './current-conversation.js';
import { ui } from './elements.js';
import { report } from './messages.js';
import { client } from './session.js';

const NEW_CHAT_TITLE = 'New chat';
/** A thread's heading until the thread list, which has its title, arrives. */
const UNKNOWN_TITLE = 'Conversation';

/** Thread titles from the last thread list, by id. */
const titles = new Map();
/** Only the answer to the latest `thread_list` is shown (an older one may arrive after it). */
let listRequests = 0;

export async function loadThreads() {
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
  item.append(button);
  return item;
}

export function markCurrentThread() {
  for (const button of ui.threadList.querySelectorAll('button')) {
    if (button.dataset.threadId === view.threadId) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
  ui.title.textContent = view.threadId === undefined ? NEW_CHAT_TITLE : (titles.get(view.threadId) ?? UNKNOWN_TITLE);
}

/** Signed out: no one's threads. */
export function clearThreads() {
  titles.clear();
  ui.threadList.replaceChildren();
}

// On a small screen the thread list is a panel over the conversation, opened with "Threads".
export function showThreadList(open) {
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
