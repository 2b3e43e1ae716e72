// The signed-in person's token (kept for the tab's lifetime) and the gateway client that uses it.

const TOKEN_KEY = 'agent-gateway-token';

/** The gateway client while someone is signed in, undefined otherwise. Only this module replaces it. */
export let client;
let unsubscribeState;

export const storedToken = () => sessionStorage.getItem(TOKEN_KEY);

export function storeToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Makes `gatewayClient` the page's client, shows its states with `onState`, and connects it. */
export function connect(gatewayClient, onState) {
  client = gatewayClient;
  unsubscribeState = client.onState(onState);
  void client.connect().catch(() => undefined);
}

/** Closes the client quietly: the closed client's last state is not this page's any more. */
export function disconnect() {
  unsubscribeState?.();
  client?.close();
  client = undefined;
}
