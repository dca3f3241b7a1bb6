// The bare proxy of bench/bare-proxy.mjs with one change: jwt-sidecar's HTTP forward
// (dist/src/proxy/forward.js, undici's dispatch API straight onto the response) as
// @fastify/http-proxy's `handler`, in place of reply-from's `reply.from()`. No authentication.
// It measures the forward alone against the default one (issue #10's stretch). Needs `npm run
// build`. PORT and UPSTREAM_URL come from the environment.
import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'
import { createForward } from '../dist/src/proxy/forward.js'
import { createUpstreamDispatcher } from '../dist/src/proxy/upstream.js'

const upstream = process.env.UPSTREAM_URL
const dispatcher = createUpstreamDispatcher({ url: upstream, drainsBodies: false })
const forward = createForward({
  dispatcher,
  upstream,
  timeout: 30_000,
  requestHeaders() {},
  onError(reply) {
    void reply.code(502).send()
  },
  onTruncated() {},
})
const app = Fastify({ logger: false })
await app.register(proxy, { upstream, undici: dispatcher, handler: forward })
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => void app.close().then(() => process.exit(0)))
