// The page's elements (public/index.html), looked up once: module scripts run after the document is parsed.
const $ = (selector) => document.querySelector(selector);

export const ui = {
  state: $('#connection-state'),
  signOut: $('#sign-out'),
  signIn: $('#sign-in'),
  signInMessage: $('#sign-in-message'),
  devForm: $('#dev-sign-in'),
  userId: $('#user-id'),
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
