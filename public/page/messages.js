// The conversation's list of messages and tool steps (the same live and in history), and its notice line.
// Everything the model or a user wrote is put in the page as text (textContent), never as HTML.
import { ui } from './elements.js';

export function messageItem(role, content) {
  const item = document.createElement('li');
  item.className = `message-${role}`;
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = content;
  item.append(text);
  return item;
}

/** A stored message, with the tool steps of the run that wrote it before it, as the live view showed them. */
export function historyItems(message) {
  if (message.role === 'user') return [messageItem('user', message.content)];
  return [...(message.steps ?? []).map(toolItem), messageItem('assistant', message.content)];
}

/** One tool step, the same live and in history: `⚙ calculator({"expression":"2+3"}) → {…}`. */
export function toolText(step) {
  const call = `⚙ ${step.tool}(${JSON.stringify(step.args)})`;
  if (step.error !== undefined) return `${call} → failed: ${step.error.message}`;
  if (step.result !== undefined) return `${call} → ${JSON.stringify(step.result)}`;
  return `${call} …`;
}

export function toolItem(step) {
  const item = document.createElement('li');
  item.className = 'tool';
  item.dataset.callId = step.callId;
  item.textContent = toolText(step);
  return item;
}

/**
 * A block of the model's reasoning (one step's), muted and collapsible: open while it streams,
 * closed once the reply has ended (replies.js). Live only: history keeps the answer alone.
 */
export function reasoningItem() {
  const item = document.createElement('li');
  item.className = 'reasoning';
  const details = document.createElement('details');
  details.open = true;
  const summary = document.createElement('summary');
  summary.textContent = 'Reasoning';
  const text = document.createElement('span');
  text.className = 'reasoning-text';
  details.append(summary, text);
  item.append(details);
  return item;
}

export function scrollToEnd() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

export function report(error) {
  if (error?.code === 'CLIENT_CLOSED') return; // signed out meanwhile
  ui.notice.textContent = error instanceof Error ? error.message : String(error);
}
