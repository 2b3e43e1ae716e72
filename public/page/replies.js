// Replies being written: the streamed text, the run's progress, its reasoning and tool steps, and the cancel button.
import { waitingFor } from './connection-status.js';
import { ui } from './elements.js';
import { messageItem, reasoningItem, scrollToEnd, toolItem, toolText } from './messages.js';
import { client } from './session.js';
import { loadThreads } from './thread-list.js';

/** Replies in progress (sent from this page or attached to after a reload): see `startReply`. */
const replies = new Set();

/**
 * The bubble of a reply being written and the tool steps and reasoning shown before it. It outlives navigation:
 * reopening its thread puts the same elements back (they kept up meanwhile) instead of attaching again.
 */
export function startReply(progress) {
  const item = messageItem('assistant', '');
  item.classList.add('streaming');
  item.setAttribute('aria-busy', 'true');
  const status = document.createElement('span');
  status.className = 'run-status';
  item.append(status);
  const reply = {
    item,
    text: item.querySelector('.text'),
    status,
    progress,
    steps: [],
    /** The model's reasoning, a block per step: `{step, element, text}`. */
    reasoning: [],
    /** Everything shown above the bubble (tool steps, reasoning), in the order it came. */
    above: [],
    run: undefined,
    approval: undefined,
  };
  replies.add(reply);
  showProgress(reply);
  return reply;
}

/** The reply in progress that follows run `runId`, if this page follows it. */
export function followedReply(runId) {
  return [...replies].find((reply) => reply.runId === runId);
}

/** Signed out: the replies in progress are no one's now. */
export function forgetReplies() {
  replies.clear();
}

/** Every reply in progress says again what it waits for (the connection changed). */
export function showRepliesProgress() {
  for (const reply of replies) showProgress(reply);
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
      if (frame.data.text !== undefined) showReasoning(reply, frame.data.step, frame.data.text);
      break;
    case 'tool_approval_required':
      showApproval(reply, frame.data);
      reply.progress = 'waiting for your approval';
      break;
    case 'tool_executing': {
      closeApproval(reply, frame.data.callId);
      const step = { callId: frame.data.callId, tool: frame.data.tool, args: frame.data.args };
      const element = toolItem(step);
      reply.steps.push({ step, element });
      showAbove(reply, element);
      break;
    }
    case 'tool_completed':
    case 'tool_failed': {
      const asked = reply.approval?.toolCallId === frame.data.callId ? reply.approval.request : undefined;
      closeApproval(reply, frame.data.callId);
      // A refused call never ran: its step is shown from the approval request.
      if (asked !== undefined && !reply.steps.some((entry) => entry.step.callId === asked.toolCallId)) {
        const step = { callId: asked.toolCallId, tool: asked.name, args: asked.arguments };
        const element = toolItem(step);
        reply.steps.push({ step, element });
        showAbove(reply, element);
      }
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

function showAbove(reply, element) {
  reply.above.push(element);
  reply.item.before(element);
}

/**
 * A piece of the model's reasoning, added to its step's block (opened when the step's first piece
 * comes). Never part of the answer: the answer is the deltas alone.
 */
function showReasoning(reply, step, text) {
  let shown = reply.reasoning.at(-1);
  if (shown?.step !== step) {
    const element = reasoningItem();
    shown = { step, element, text: element.querySelector('.reasoning-text') };
    reply.reasoning.push(shown);
    showAbove(reply, element);
  }
  shown.text.append(text);
}

/**
 * A tool call waiting for a person: what it would do, and Approve / Reject. Answered from here or
 * from any other connection of the user, the call's `tool_executing` or `tool_failed` removes it.
 */
function showApproval(reply, request) {
  closeApproval(reply, reply.approval?.toolCallId);
  const item = document.createElement('li');
  item.className = 'approval';
  item.dataset.callId = request.toolCallId;
  const text = document.createElement('span');
  text.textContent = `⚙ ${request.name}(${JSON.stringify(request.arguments)}) needs your approval`;
  const approve = document.createElement('button');
  approve.type = 'button';
  approve.className = 'approve';
  approve.textContent = 'Approve';
  const reject = document.createElement('button');
  reject.type = 'button';
  reject.className = 'reject';
  reject.textContent = 'Reject';
  const answer = (approved) => {
    approve.disabled = true;
    reject.disabled = true;
    if (approved) reply.run?.approve(request.toolCallId);
    else reply.run?.reject(undefined, request.toolCallId);
  };
  approve.addEventListener('click', () => answer(true));
  reject.addEventListener('click', () => answer(false));
  item.append(text, approve, reject);
  reply.item.before(item);
  reply.approval = { toolCallId: request.toolCallId, request, element: item };
}

function closeApproval(reply, toolCallId) {
  if (reply.approval === undefined || reply.approval.toolCallId !== toolCallId) return;
  reply.approval.element.remove();
  reply.approval = undefined;
}

function finishReply(reply, result) {
  closeApproval(reply, reply.approval?.toolCallId);
  replies.delete(reply);
  reply.item.classList.remove('streaming', 'waiting');
  reply.item.removeAttribute('aria-busy');
  // Kept, out of the way: the answer is what the person came for.
  for (const { element } of reply.reasoning) element.querySelector('details').open = false;
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
export async function follow(run, reply, onStarted) {
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

/** The cancel button stops the reply in progress on screen, if there is one. */
function replyOnScreen() {
  return [...replies].find((reply) => reply.run !== undefined && reply.item.isConnected);
}

export function showCancel() {
  ui.cancel.hidden = replyOnScreen() === undefined;
}

ui.cancel.addEventListener('click', () => replyOnScreen()?.run.cancel());
