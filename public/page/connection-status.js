// The status line that always says where the connection is, and what a reply waits for meanwhile.
import { ui } from './elements.js';

let countdown;

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
export function waitingFor(state) {
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

/** Puts `state` in the status line; while reconnecting, it counts down to the next attempt. */
export function showConnectionState(state) {
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
}
