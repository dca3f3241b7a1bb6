/**
 * Config for certificate-bound tokens (RFC 8705) and the binding header: every mistake is
 * named with its file, line and path (config/checks/server.ts, config/checks/identity.ts).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfig } from '../../src/config/load.ts'
import { MINIMAL, configLines as lines } from '../helpers/config-text.ts'

void describe('clientCertificateHeader and identity.bindingHeader', () => {
  void it('a valid header source converts as written; format defaults to xfcc', () => {
    const c = parseConfig(`${MINIMAL}clientCertificateHeader:\n  name: X-Forwarded-Client-Cert\n  trustedPeers: [10.0.0.0/8, 127.0.0.1, "fd00::/8"]\nidentity:\n  bindingHeader: X-Auth-Binding\n`, 'test.yaml', {})
    assert.deepEqual(c.clientCertificateHeader, { name: 'X-Forwarded-Client-Cert', format: 'xfcc', trustedPeers: ['10.0.0.0/8', '127.0.0.1', 'fd00::/8'] })
    assert.equal(c.identity.bindingHeader, 'X-Auth-Binding')
    assert.equal(parseConfig(MINIMAL, 'test.yaml', {}).clientCertificateHeader, undefined)
  })

  void it('names each bad peer, a trust-everything range, and the missing list', () => {
    assert.deepEqual(lines(`${MINIMAL}clientCertificateHeader:\n  name: x-client-cert\n  format: pem\n  trustedPeers: [10.0.0.0/33, ingress.local, 0.0.0.0/0, "::/0", 10.1.2.3/8/1]\n`), [
      'test.yaml:14 clientCertificateHeader.trustedPeers[0]: "10.0.0.0/33" is not an IP address or CIDR range (like 10.0.0.0/8, 10.1.2.3 or fd00::/8)',
      'test.yaml:14 clientCertificateHeader.trustedPeers[1]: "ingress.local" is not an IP address or CIDR range (like 10.0.0.0/8, 10.1.2.3 or fd00::/8)',
      'test.yaml:14 clientCertificateHeader.trustedPeers[2]: "0.0.0.0/0" trusts every address: any client could name its own certificate',
      'test.yaml:14 clientCertificateHeader.trustedPeers[3]: "::/0" trusts every address: any client could name its own certificate',
      'test.yaml:14 clientCertificateHeader.trustedPeers[4]: "10.1.2.3/8/1" is not an IP address or CIDR range (like 10.0.0.0/8, 10.1.2.3 or fd00::/8)',
    ])
    assert.match(lines(`${MINIMAL}clientCertificateHeader:\n  name: x-client-cert\n`)[0]!, /^test\.yaml:11 clientCertificateHeader\.trustedPeers: required key is missing \(expected a non-empty list of IP addresses or CIDR ranges of the ingress\)$/)
    assert.match(lines(`${MINIMAL}clientCertificateHeader:\n  name: x-client-cert\n  format: der\n  trustedPeers: [10.0.0.1]\n`)[0]!, /^test\.yaml:13 clientCertificateHeader\.format: expected one of xfcc, pem/)
  })

  void it('refuses two certificate sources, and a header name the sidecar reads or sets for something else', () => {
    const tls = 'tls:\n  certFile: a.crt\n  keyFile: a.key\n  clientCaFile: ca.crt\n'
    assert.deepEqual(lines(`${MINIMAL}${tls}clientCertificateHeader:\n  name: x-client-cert\n  trustedPeers: [10.0.0.1]\n`).slice(0, 1), [
      'test.yaml:15 clientCertificateHeader: cannot be used with tls.clientCaFile: client certificates come either from the TLS handshake or from a trusted ingress, not both',
    ])
    assert.deepEqual(lines(`${MINIMAL}clientCertificateHeader:\n  name: Authorization\n  trustedPeers: [10.0.0.1]\n`)[0], 'test.yaml:12 clientCertificateHeader.name: "Authorization" is where a token or DPoP proof is read')
    assert.deepEqual(lines(`${MINIMAL}identity:\n  headers:\n    X-Client-Cert: sub\nclientCertificateHeader:\n  name: x-client-cert\n  trustedPeers: [10.0.0.1]\n`)[0], 'test.yaml:15 clientCertificateHeader.name: "x-client-cert" is an identity header the sidecar sets')
    assert.deepEqual(lines(`${MINIMAL}identity:\n  strip: ["X-Client-*"]\nclientCertificateHeader:\n  name: x-client-cert\n  trustedPeers: [10.0.0.1]\n`)[0], 'test.yaml:12 identity.strip[0]: "X-Client-*" would remove clientCertificateHeader x-client-cert before it is read')
  })

  void it('identity.bindingHeader: a header the sidecar can own, not another identity header, the token or the proof', () => {
    assert.deepEqual(lines(`${MINIMAL}identity:\n  claimsHeader: X-Auth\n  bindingHeader: x-auth\n`)[0], 'test.yaml:13 identity.bindingHeader: "x-auth" is also identity.claimsHeader')
    assert.deepEqual(lines(`${MINIMAL}identity:\n  bindingHeader: DPoP\n`)[0], 'test.yaml:12 identity.bindingHeader: "DPoP" is the DPoP proof header (RFC 9449), which is never forwarded')
    assert.deepEqual(lines(`${MINIMAL}identity:\n  bindingHeader: Host\n`)[0]!.slice(0, 52), 'test.yaml:12 identity.bindingHeader: "Host" cannot b')
    assert.deepEqual(lines(`${MINIMAL}identity:\n  headers:\n    X-Cnf: sub\n  bindingHeader: x-cnf\n`)[0], 'test.yaml:14 identity.bindingHeader: "x-cnf" is also in identity.headers')
  })
})
