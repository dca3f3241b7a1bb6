/**
 * "https unless loopback": the one rule for every URL keys are fetched from (configured
 * jwksUri, discovery issuer, a discovered jwks_uri, a redirect target). The key set decides
 * which tokens are accepted; fetched over plain http, anyone on the path could substitute
 * their own keys (RFC 8725 §3.10). Traffic that never leaves the machine is exempt.
 */

const IPV4_LOOPBACK = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/

/**
 * True for hosts that cannot leave the machine: `localhost` (RFC 6761 §6.3), 127.0.0.0/8 and
 * ::1, as a WHATWG URL's `hostname` spells them (lower case, IPv6 in brackets, IPv4
 * normalised: `http://127.1/` has hostname `127.0.0.1`); `::1` without brackets is accepted too.
 *
 * @example
 * isLoopbackHost(new URL('http://[::1]:8080/').hostname) // true
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase()
  return host === 'localhost' || host === '[::1]' || host === '::1' || IPV4_LOOPBACK.test(host)
}

/**
 * True when `url` is plain http: to a host that is not loopback and the operator did not
 * opt out with `allowInsecureHttp`: such a URL is never fetched.
 */
export function refusesPlainHttp(url: URL, allowInsecureHttp: boolean): boolean {
  return url.protocol === 'http:' && !allowInsecureHttp && !isLoopbackHost(url.hostname)
}
