// A Server-Sent Events reader over fetch(), so the live feed is requested with the user's
// Authorization header like every other endpoint (EventSource cannot send headers).

/**
 * Incremental SSE parser (the WHATWG event-stream format): feed it text chunks; it calls
 * onEvent({event, data, id}) for every complete event and keeps the rest.
 */
export function createSseParser(onEvent) {
  let buf = '';
  let data = [];
  let event = '';
  let id = null;
  let lastId = null;
  function line(l) {
    if (l === '') {
      if (data.length > 0) {
        if (id !== null) lastId = id;
        onEvent({ event: event || 'message', data: data.join('\n'), id: lastId });
      }
      data = [];
      event = '';
      id = null;
      return;
    }
    if (l[0] === ':') return;
    const c = l.indexOf(':');
    const field = c < 0 ? l : l.slice(0, c);
    let value = c < 0 ? '' : l.slice(c + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    else if (field === 'id') id = value;
  }
  return {
    push(chunk) {
      buf += chunk;
      for (;;) {
        const m = /\r\n|\r|\n/.exec(buf);
        if (!m) break;
        // A lone CR at the very end may be the first half of CRLF: wait for more.
        if (m[0] === '\r' && m.index === buf.length - 1) break;
        line(buf.slice(0, m.index));
        buf = buf.slice(m.index + m[0].length);
      }
    },
    get lastEventId() {
      return lastId;
    },
  };
}

/**
 * Opens url with fetchFn (authorized) and streams events to onEvent until signal aborts.
 * Resolves when the stream ends; rejects with the Response's error for a non-2xx answer.
 */
export async function readSse(fetchFn, url, onEvent, signal, lastEventId) {
  const headers = { Accept: 'text/event-stream' };
  if (lastEventId != null) headers['Last-Event-ID'] = String(lastEventId);
  const res = await fetchFn(url, { headers, signal });
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  const parser = createSseParser(onEvent);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.push(dec.decode(value, { stream: true }));
  }
  return parser.lastEventId;
}
