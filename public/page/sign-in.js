// Signing in: a development token for a name, or (in production) a pasted access token; and asking
// for a new one when the server refuses the one the page has.
import { ui } from './elements.js';
import { forgetToken, storeToken } from './session.js';

/** Resolves the token a refresh is waiting for (the sign-in form answers it). */
let tokenWanted;

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

export function showSignIn(message) {
  ui.signInMessage.textContent = message ?? '';
  ui.signIn.hidden = false;
  ui.userId.focus();
}

/** Wires the sign-in forms: a token answers a refresh waiting for one, or else `start`s the chat. */
export function listenForSignIn(start) {
  function signedIn(token) {
    storeToken(token);
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
}

/** The server refused the token: ask the person for a new one instead of reconnecting in a loop. */
export function askForNewToken(error) {
  forgetToken();
  ui.chat.hidden = true;
  ui.signOut.hidden = true;
  const why = error.code === 'TOKEN_EXPIRED' ? 'Your session expired.' : 'The server did not accept your sign-in.';
  showSignIn(`${why} Sign in again to continue.`);
  return new Promise((resolve) => {
    tokenWanted = resolve;
  });
}
