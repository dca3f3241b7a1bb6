// The reference the bench measures against: fastify 5 + @fastify/http-proxy with defaults
// only and no authentication, registered exactly as ../shared/bench/peers/bare-fastify-proxy.mjs
// does. PORT and UPSTREAM_URL come from the environment.
import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'

const app = Fastify({ logger: false })
await app.register(proxy, { upstream: process.env.UPSTREAM_URL })
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => void app.close().then(() => process.exit(0)))
