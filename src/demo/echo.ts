/**
 * The demo's upstream: answers every request with the method, path and headers it received,
 * so you can see exactly what the legacy app behind the sidecar would see.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface EchoUpstream {
  readonly url: string
  close(): Promise<void>
}

export async function startEchoUpstream(): Promise<EchoUpstream> {
  const server = createServer((req, res) => {
    let bytes = 0
    req.on('data', (chunk: Buffer) => { bytes += chunk.length })
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodyBytes: bytes }, null, 2)
      res.writeHead(200, { 'content-type': 'application/json' }).end(body + '\n')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }),
  }
}
