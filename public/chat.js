// The chat page: plain DOM and the gateway's own client SDK, no framework and no build step.
// Everything the model or a user wrote is put in the page as text (textContent), never as HTML.
// This module wires the page's modules in page/, which the server serves one by one as /page/<file>
// (src/page/chat-page.controller.ts): signing in and out, the connection, the thread list, the conversation.
import { GatewayClient } from '/sdk/client/index.js';
import { showConnectionState } from './page/connection-status.js';
import { openThread, showConversation } from './page/conversation.js';
import { forgetThread, rememberedThread } from './page/current-conversation.js';
import { ui } from './page/elements.js';
import { forgetReplies, showRepliesProgress } from './page/replies.js';
import { connect, disconnect, forgetToken, storedToken } from './page/session.js';
import { askForNewToken, listenForSignIn, showSignIn } from './page/sign-in.js';
import { clearThreads, loadThreads } from './page/thread-list.js';

function renderState(state) {
  showConnectionState(state);
  ui.send.disabled = state.status === 'closed';
  showRepliesProgress();
  if (state.status === 'open') void loadThreads();
}

function start() {
  ui.chat.hidden = false;
  ui.signOut.hidden = false;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const gatewayClient = new GatewayClient({
    url: `${scheme}://${location.host}/ws`,
    token: () => storedToken() ?? '',
    refreshToken: askForNewToken,
  });
  connect(gatewayClient, renderState);
  const lastOpen = rememberedThread();
  if (lastOpen !== null) void openThread(lastOpen);
  ui.input.focus();
}

listenForSignIn(start);

ui.signOut.addEventListener('click', () => {
  forgetToken();
  forgetThread();
  disconnect();
  forgetReplies();
  clearThreads();
  showConversation(undefined);
  renderState({ status: 'idle' });
  ui.chat.hidden = true;
  ui.signOut.hidden = true;
  showSignIn();
});

if (storedToken() === null) showSignIn();
else start();
