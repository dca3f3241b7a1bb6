/**
 * request/client-cert.ts: the client certificate's RFC 8705 thumbprint, from the TLS
 * handshake or from a trusted ingress's header (Envoy XFCC, nginx's escaped PEM), with
 * certificates made by openssl and thumbprints computed by openssl.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { createClientCertificates } from '../../src/request/client-cert.ts'
import type { CertificateRequest } from '../../src/request/client-cert.ts'
import { makeCa } from '../helpers/certs.ts'

const ca = makeCa()
const alice = ca.issue('alice')
const bob = ca.issue('bob')

const TLS = { tls: { certFile: 'x', keyFile: 'x', clientCaFile: 'ca.pem', minVersion: 'TLSv1.2' as const, http2: false } }

function viaHeader(format: 'xfcc' | 'pem', trustedPeers = ['10.0.0.0/8', '127.0.0.1', 'fd00::/8']): ReturnType<typeof createClientCertificates> {
  return createClientCertificates({ clientCertificateHeader: { name: 'X-Client-Cert', format, trustedPeers } })
}

function req(value: string | string[] | undefined, remoteAddress: string | undefined = '10.1.2.3'): CertificateRequest {
  const rawHeaders = value === undefined ? [] : (Array.isArray(value) ? value : [value]).flatMap((v) => ['X-Client-Cert', v])
  return { headers: value === undefined ? {} : { 'x-client-cert': value }, rawHeaders, connection: { remoteAddress } }
}

void describe('client certificates', () => {
  void it('no source configured: every bound token is refused, saying so', () => {
    const c = createClientCertificates({})
    assert.equal(c.source, 'none')
    const r = c.read(req(alice.pem))
    assert.ok(!r.ok)
    assert.match(r.why, /no client certificate source is configured/)
  })

  void it('the TLS listener: the handshake certificate\'s SHA-256, the thumbprint openssl computes', () => {
    const c = createClientCertificates(TLS)
    assert.equal(c.source, 'tls')
    const cert = new X509Certificate(alice.pem)
    assert.deepEqual(c.read({ headers: {}, rawHeaders: [], connection: { remoteAddress: '1.2.3.4', getPeerX509Certificate: () => cert } }), { ok: true, thumbprint: alice.x5t })
    // A header is no source when the listener checks certificates itself.
    const r = c.read({ ...req(`Hash=${bob.hex}`), connection: { remoteAddress: '10.1.2.3', getPeerX509Certificate: () => undefined } })
    assert.deepEqual(r, { ok: false, why: 'the connection presented no client certificate' })
    // A plain (non-TLS) socket has no getPeerX509Certificate at all.
    assert.equal(c.read({ headers: {}, rawHeaders: [], connection: { remoteAddress: '1.2.3.4' } }).ok, false)
  })

  void it('xfcc: Hash from a one-element header, quoted values with , and ; inside', () => {
    const c = viaHeader('xfcc')
    const value = `By=spiffe://cluster.local/ns/shop/sa/api;Hash=${alice.hex.toUpperCase()};Subject="CN=alice,O=x; y";URI=spiffe://cluster.local/ns/web/sa/web`
    assert.deepEqual(c.read(req(value)), { ok: true, thumbprint: alice.x5t })
    // Cert only (URL-encoded PEM, Envoy's `Cert=`): the thumbprint is computed from it.
    assert.deepEqual(c.read(req(`Cert="${encodeURIComponent(bob.pem)}";Subject="CN=bob"`)), { ok: true, thumbprint: bob.x5t })
  })

  void it('xfcc: two elements (two hops), a hash that is not SHA-256 hex, neither Hash nor Cert: refused', () => {
    const c = viaHeader('xfcc')
    const two = c.read(req(`Hash=${alice.hex},Hash=${bob.hex}`))
    assert.ok(!two.ok)
    assert.match(two.why, /2 elements/)
    const bad = c.read(req('Hash=abc'))
    assert.ok(!bad.ok)
    assert.match(bad.why, /not a hex SHA-256/)
    const twice = c.read(req(`Hash=${alice.hex};hash=${bob.hex}`))
    assert.ok(!twice.ok)
    assert.match(twice.why, /names hash twice/)
    const none = c.read(req('By=spiffe://x;Subject="CN=a"'))
    assert.ok(!none.ok)
    assert.match(none.why, /neither Hash nor Cert/)
  })

  void it('pem: nginx $ssl_client_escaped_cert, a chain (the leaf counts), a bare base64 DER body; garbage refused', () => {
    const c = viaHeader('pem')
    assert.deepEqual(c.read(req(encodeURIComponent(alice.pem))), { ok: true, thumbprint: alice.x5t })
    assert.deepEqual(c.read(req(encodeURIComponent(alice.pem + ca.pem))), { ok: true, thumbprint: alice.x5t })
    const body = bob.pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '')
    assert.deepEqual(c.read(req(encodeURIComponent(body))), { ok: true, thumbprint: bob.x5t })
    const garbage = c.read(req('not-a-certificate'))
    assert.ok(!garbage.ok)
    assert.match(garbage.why, /does not hold a certificate/)
    const badEscape = c.read(req('%E0%A4%A'))
    assert.ok(!badEscape.ok)
    assert.match(badEscape.why, /not URL-encoded/)
  })

  void it('the header counts only from a trusted peer, once; IPv4-mapped and IPv6 peers match their ranges', () => {
    const c = viaHeader('pem')
    const value = encodeURIComponent(alice.pem)
    for (const peer of ['10.200.0.9', '127.0.0.1', '::ffff:127.0.0.1', 'fd00::17']) assert.equal(c.read(req(value, peer)).ok, true, peer)
    for (const peer of ['11.0.0.1', '127.0.0.2', '::1', undefined]) {
      const r = c.read({ ...req(value), connection: { remoteAddress: peer } })
      assert.ok(!r.ok, String(peer))
      assert.match(r.why, /not in clientCertificateHeader.trustedPeers/)
    }
    const twice = c.read(req([value, value]))
    assert.ok(!twice.ok)
    assert.match(twice.why, /more than one x-client-cert header/)
    // Node joins nothing for an unknown header: a repeated one arrives as one string, so rawHeaders decides.
    const joined = c.read({ headers: { 'x-client-cert': value }, rawHeaders: ['X-Client-Cert', value, 'x-client-cert', value], connection: { remoteAddress: '10.0.0.1' } })
    assert.ok(!joined.ok)
    const missing = c.read(req(undefined))
    assert.ok(!missing.ok)
    assert.match(missing.why, /no x-client-cert header/)
  })
})
