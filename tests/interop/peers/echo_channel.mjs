// The responder half of an echo channel for the rsocket-js 1.0.0-alpha.3 test peers
// (js_echo_server.mjs, pt_backend.mjs): every element received goes back, in order, as the
// requester's credit allows; it completes when the requester's half has completed and all is
// sent. It asks for `window` elements first, then `batch` more after each `batch` received.
// `onCancel` (optional) runs when the requester cancels.
export function echoChannel(payload, initialN, isCompleted, subscriber, opts = {}) {
  const window = opts.window ?? 64;
  const batch = opts.batch ?? 32;
  let credit = initialN;
  const queue = [payload];
  let inboundDone = isCompleted;
  let done = false;
  const flush = () => {
    while (!done && credit > 0 && queue.length > 0) {
      credit--;
      const p = queue.shift();
      const last = inboundDone && queue.length === 0;
      subscriber.onNext({ data: p.data, metadata: p.metadata }, last);
      if (last) done = true;
    }
    if (!done && inboundDone && queue.length === 0) {
      done = true;
      subscriber.onComplete();
    }
  };
  if (!isCompleted) subscriber.request(window);
  let received = 0;
  setImmediate(flush);
  return {
    onNext(p, isComplete) {
      queue.push(p);
      if (isComplete) inboundDone = true;
      if (++received % batch === 0) subscriber.request(batch);
      flush();
    },
    onComplete() {
      inboundDone = true;
      flush();
    },
    onError() {
      done = true;
    },
    onExtension() {},
    request(n) {
      credit += n;
      flush();
    },
    cancel() {
      done = true;
      if (opts.onCancel) opts.onCancel();
    },
  };
}
