/**
 * The schema of `tls` (HTTPS on the proxy port) and `clientCertificateHeader` (the client
 * certificate from an ingress that terminates TLS). Part of src/config/schema.ts; the
 * descriptions are the reference's "Meaning" column (docs/reference/configuration.md,
 * scripts/gen-docs.ts).
 */
import { EXPECTED, oneOf, boolean, doc, HEADER_NAME } from '../schema-nodes.ts'
import type { SchemaNode } from '../schema-nodes.ts'

// RFC 6750 §5.3: bearer tokens only over TLS. Absent: the listener is plain HTTP (TLS
// terminated in front of the pod). The pair is reloaded when its files change (proxy/tls.ts).
export const tls = {
  type: 'object',
  additionalProperties: false,
  required: ['certFile', 'keyFile'],
  properties: {
    certFile: doc(
      "PEM certificate chain for `listen`, leaf first (cert-manager's `tls.crt`). Relative to the config file.",
      { type: 'string', minLength: 1, [EXPECTED]: 'a PEM certificate file (the chain, leaf first), like /etc/jwt-sidecar-tls/tls.crt' },
    ),
    keyFile: doc(
      'PEM private key of the leaf, unencrypted (`tls.key`). It must match the leaf, or the start fails and a reload is refused.',
      { type: 'string', minLength: 1, [EXPECTED]: 'a PEM private key file, like /etc/jwt-sidecar-tls/tls.key' },
    ),
    clientCaFile: doc(
      'PEM CA certificates. When set, every client must present a certificate that chains to one of them (mutual TLS); the handshake fails otherwise. Reloaded with the pair.',
      { type: 'string', minLength: 1, [EXPECTED]: 'a PEM file of CA certificates that client certificates must chain to' },
    ),
    minVersion: doc('`TLSv1.2` or `TLSv1.3`.', oneOf(['TLSv1.2', 'TLSv1.3'], 'TLSv1.2')),
    // ALPN h2 next to http/1.1 (RFC 9113 §3.2); the upstream stays HTTP/1.1 (proxy/listener.ts).
    http2: doc(
      '`true`: ALPN offers `h2` as well as `http/1.1`, so HTTP/2 clients are served on the same port with the same header handling; the app still receives HTTP/1.1. See [HTTP/2](docs/how-it-works.md#http2).',
      boolean(false),
    ),
  },
  [EXPECTED]: 'a map with certFile, keyFile, clientCaFile, minVersion and http2',
} as const satisfies SchemaNode

// RFC 8705 certificate-bound tokens when TLS ends at a trusted ingress in front of the pod:
// the client certificate arrives in a header, trusted only from the listed peer addresses
// (request/client-cert.ts).
export const clientCertificateHeader = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'trustedPeers'],
  properties: {
    name: doc('The header the ingress sets, e.g. `x-forwarded-client-cert`. Never forwarded to the app.', HEADER_NAME),
    format: doc(
      "`xfcc`: Envoy's `x-forwarded-client-cert` (`Hash=` hex SHA-256, else `Cert=` URL-encoded PEM), one element only. `pem`: a URL-encoded PEM certificate (nginx `$ssl_client_escaped_cert`), or its base64 body without the PEM lines.",
      oneOf(['xfcc', 'pem'], 'xfcc'),
    ),
    trustedPeers: doc(
      'IP addresses or CIDR ranges (`10.0.0.0/8`, `fd00::/8`) of the ingress. From any other peer the header counts as no certificate. `0.0.0.0/0` and `::/0` are refused.',
      {
        type: 'array',
        minItems: 1,
        items: { type: 'string', minLength: 1, [EXPECTED]: 'an IP address or CIDR range, like 10.0.0.0/8 or 127.0.0.1' },
        [EXPECTED]: 'a non-empty list of IP addresses or CIDR ranges of the ingress',
      },
    ),
  },
  [EXPECTED]: 'a map with name, format and trustedPeers, like {name: x-forwarded-client-cert, format: xfcc, trustedPeers: [10.0.0.0/8]}',
} as const satisfies SchemaNode
