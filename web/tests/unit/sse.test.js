import { describe, it, expect } from 'vitest';
import { createSseParser, readSse } from '../../src/lib/sse.js';

describe('SSE parser', () => {
  it('splits events across chunks and keeps the last id', () => {
    const got = [];
    const p = createSseParser((e) => got.push(e));
    p.push('retry: 2000\nevent: hello\ndata: {"app":"a"}\n\n: ping\n\nid: 7\nevent: ev');
    p.push('ent\ndata: {"x":1}\r\n\r\nid: 8\ndata: a\ndata: b\n');
    expect(got).toEqual([
      { event: 'hello', data: '{"app":"a"}', id: null },
      { event: 'event', data: '{"x":1}', id: '7' },
    ]);
    p.push('\n');
    expect(got[2]).toEqual({ event: 'message', data: 'a\nb', id: '8' });
    expect(p.lastEventId).toBe('8');
  });
  it('waits for the LF of a CRLF split across chunks', () => {
    const got = [];
    const p = createSseParser((e) => got.push(e));
    p.push('data: x\r');
    p.push('\n\r\n');
    expect(got).toEqual([{ event: 'message', data: 'x', id: null }]);
  });
  it('reads a fetch stream and sends Last-Event-ID', async () => {
    let headers;
    const enc = new TextEncoder();
    const body = new ReadableStream({
      start(c) {
        c.enqueue(enc.encode('id: 3\nevent: decision\ndata: {"outcome":"install"}\n\n'));
        c.close();
      },
    });
    const got = [];
    const last = await readSse(async (url, o) => ((headers = o.headers), { body }), '/v1/live?app=a', (e) => got.push(e), undefined, 2);
    expect(headers['Last-Event-ID']).toBe('2');
    expect(got[0].event).toBe('decision');
    expect(last).toBe('3');
  });
});
