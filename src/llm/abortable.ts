/**
 * `promise`, or a rejection with the signal's reason as soon as it aborts: for waits that do not
 * take a signal themselves (a run's place in the queue, a tool that ignores its signal, the model
 * SDK sleeping between retries).
 */
export async function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    // Nobody will await it any more; its failure must not become an unhandled rejection.
    promise.catch(() => undefined);
    throw signal.reason as Error;
  }
  let onAbort: () => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
