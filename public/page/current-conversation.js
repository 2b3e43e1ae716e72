// Which conversation is on screen, and the thread a reload reopens.

/** The thread on screen: a reload reopens it, and re-attaches to its reply if one is still streaming. */
const THREAD_KEY = 'agent-gateway-thread';

/**
 * The conversation on screen: a thread, or a new chat (no `threadId`) whose first message may be
 * creating one (`starting` resolves to its id, or to undefined if it started none). Every
 * navigation puts a new object here, so work that ends later can tell whether its conversation is
 * still the one on screen (`view === mine`).
 */
export let view = { threadId: undefined, starting: undefined };

/** A new conversation on screen (a thread, or without an id a new chat), remembered for a reload. */
export function replaceView(threadId) {
  view = { threadId, starting: undefined };
  if (threadId === undefined) forgetThread();
  else rememberThread(threadId);
  return view;
}

export const rememberedThread = () => sessionStorage.getItem(THREAD_KEY);

export function rememberThread(threadId) {
  sessionStorage.setItem(THREAD_KEY, threadId);
}

export function forgetThread() {
  sessionStorage.removeItem(THREAD_KEY);
}
