/**
 * An HTTP/2 client that writes its frames by hand (RFC 9113 §4, HPACK literals of RFC 7541
 * §6.2.2), for requests that node:http2's client refuses to send: upper-case field names,
 * connection-specific fields, a repeated Authorization, a pseudo-header after a field. What the
 * server does with them is the subject (nghttp2's checks, then the sidecar's).
 *
 * It decodes no HPACK: a response's `:status` is read only when it is one of the static table's
 * (RFC 7541 Appendix A, an indexed field, one byte), which covers 200, 400 and 404.
 */
import { connect } from 'node:tls'

const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7 } as const
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

export interface RawH2Result {
  /** 200, 400 or 404 from the static table; 'other' for any other status; undefined without a response. */
  readonly status: number | 'other' | undefined
  /** RST_STREAM's error code for the stream (1 = PROTOCOL_ERROR), or GOAWAY's. */
  readonly reset: number | undefined
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(stream, 5)
  return Buffer.concat([head, payload])
}

/** RFC 7541 §5.1 integer with a 7-bit prefix (H = 0: no Huffman). */
function length(n: number): Buffer {
  if (n < 127) return Buffer.from([n])
  const out = [127]
  n -= 127
  while (n >= 128) {
    out.push((n % 128) + 128)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return Buffer.from(out)
}

/** §6.2.2 literal header field without indexing, new name: bytes exactly as given. */
function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'latin1')
  const v = Buffer.from(value, 'latin1')
  return Buffer.concat([Buffer.from([0]), length(n.length), n, length(v.length), v])
}

const STATIC_STATUS: Readonly<Record<number, number>> = { 0x88: 200, 0x89: 204, 0x8a: 206, 0x8b: 304, 0x8c: 400, 0x8d: 404, 0x8e: 500 }

/**
 * Sends one request (stream 1, END_STREAM) with exactly `fields`, in order, and waits for its
 * response headers, a reset or GOAWAY (or `timeoutMs`).
 *
 * @example
 * const r = await rawH2Request(port, [[':method', 'GET'], [':scheme', 'https'], [':path', '/'], [':authority', `127.0.0.1:${port}`], ['X-Upper', '1']])
 * assert.equal(r.reset, 1) // PROTOCOL_ERROR
 */
export function rawH2Request(port: number, fields: ReadonlyArray<readonly [string, string]>, timeoutMs = 3000): Promise<RawH2Result> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ALPNProtocols: ['h2'], rejectUnauthorized: false }, () => {
      if (socket.alpnProtocol !== 'h2') {
        socket.destroy()
        reject(new Error(`ALPN chose ${String(socket.alpnProtocol)}, not h2`))
        return
      }
      const block = Buffer.concat(fields.map(([n, v]) => literal(n, v)))
      // END_STREAM (0x1) | END_HEADERS (0x4)
      socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0)), frame(FRAME.HEADERS, 0x5, 1, block)]))
    })
    let buf = Buffer.alloc(0)
    let status: number | 'other' | undefined
    const finish = (reset: number | undefined): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ status, reset })
    }
    const timer = setTimeout(() => finish(undefined), timeoutMs)
    socket.on('error', (err: Error) => {
      clearTimeout(timer)
      reject(err)
    })
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3)
        if (buf.length < 9 + len) break
        const type = buf[3]!
        const flags = buf[4]!
        const stream = buf.readUInt32BE(5) & 0x7fffffff
        const payload = buf.subarray(9, 9 + len)
        buf = buf.subarray(9 + len)
        if (type === FRAME.SETTINGS && (flags & 0x1) === 0) socket.write(frame(FRAME.SETTINGS, 0x1, 0, Buffer.alloc(0)))
        if (type === FRAME.GOAWAY) return finish(payload.readUInt32BE(4))
        if (stream !== 1) continue
        if (type === FRAME.RST_STREAM) return finish(payload.readUInt32BE(0))
        if (type === FRAME.HEADERS && status === undefined) {
          // PADDED (0x8) and PRIORITY (0x20) move the block's start.
          let at = (flags & 0x8) !== 0 ? 1 : 0
          if ((flags & 0x20) !== 0) at += 5
          status = STATIC_STATUS[payload[at]!] ?? 'other'
        }
        if ((type === FRAME.HEADERS || type === FRAME.DATA) && (flags & 0x1) !== 0) return finish(undefined)
      }
    })
  })
}
