/**
 * docs/reference/reasons.md from REASONS (src/verify/reasons.ts) and the answers the sidecar
 * really sends for them (src/request/denials.ts): status, `error`, challenge scheme, metric
 * outcome, log level and when each reason is given. The examples of the response format are
 * the precomputed denials themselves, so they cannot drift from what a client receives.
 */
import { REASONS } from '../../src/verify/reasons.ts'
import type { Reason } from '../../src/verify/reasons.ts'
import { denial, forbidden, missingToken } from '../../src/request/denials.ts'
import { cell, code, fromReference, generatedNotice, table } from './markdown.ts'

/** The challenge's scheme (`Bearer`, `DPoP`), or a dash when the answer carries none. */
function scheme(challenge: string | undefined): string {
  if (challenge === undefined) return '—'
  const name = challenge.slice(0, challenge.indexOf(' '))
  return challenge.includes(' error=') ? code(name) : `${code(name)}, no \`error\``
}

function reasonRow(reason: Reason): string[] {
  const spec = REASONS[reason]
  const answer = denial(reason)
  const body = JSON.parse(answer.body) as { error: string }
  return [
    code(reason),
    String(spec.status),
    code(body.error),
    scheme(answer.headers['www-authenticate']),
    code(spec.outcome),
    code(spec.log),
    cell(fromReference(spec.meaning), reason),
  ]
}

/**
 * @example
 * writeFileSync('docs/reference/reasons.md', reasonsReference())
 */
export function reasonsReference(): string {
  const reasons = Object.keys(REASONS) as Reason[]
  const expired = denial('expired')
  const header = (name: string) => code(`${name}: ${expired.headers[name]!}`)
  const challenge = (d: { readonly headers: Readonly<Record<string, string>> }) => code(`WWW-Authenticate: ${d.headers['www-authenticate']!}`)
  return [
    generatedNotice('src/verify/reasons.ts and src/request/denials.ts'),
    '',
    '# Reasons',
    '',
    [
      'A request that is not forwarded gets one of these reasons. The same code appears in the response',
      'body, in `error_description`, in the access log and in the `reason` label of',
      '`jwt_sidecar_requests_total` ([metrics](metrics.md)), whose `outcome` label is the Outcome column.',
      'The Log column is the level of the line the sidecar writes for it: `auth.denied` (rate-limited per',
      'reason and route), `request.timeout` for `request_timeout`, `upstream.error` for the upstream reasons.',
      '`error` is the body\'s `error`; the challenge is the `WWW-Authenticate` scheme of the answer.',
    ].join('\n'),
    '',
    table(['Reason', 'HTTP', '`error`', 'Challenge', 'Outcome', 'Log', 'When'], reasons.map(reasonRow)),
    '',
    '## Response format',
    '',
    `- The body is \`${expired.body.trimEnd()}\` and a newline (for \`expired\`), with ${header('content-type')} and ${header('cache-control')}. The token is never echoed.`,
    `- \`401\` and \`400\` carry an RFC 6750 challenge: ${challenge(expired)}.`,
    `  For \`missing_token\`, the challenge is just ${challenge(denial('missing_token'))}, because RFC 6750 §3.1`,
    '  gives no `error` attribute to a request that carried no token. When one of the route\'s issuers',
    '  accepts DPoP (`dpop.mode: allowed` or `required`), the same field also carries the DPoP',
    `  challenge, ${challenge(missingToken('allowed'))} (RFC 9449`,
    '  §7.1; RFC 9110 §11.6.1 allows several challenges in one field); when every one of them requires',
    `  DPoP, only ${challenge(missingToken('required'))}. The DPoP reasons answer with the \`DPoP\` challenge alone,`,
    `  like ${challenge(denial('invalid_dpop_proof'))}.`,
    `- \`403\` for a route requirement carries ${challenge(forbidden('insufficient_scope', ['orders:read']))}`,
    '  (RFC 6750 §3; `scope` lists the route\'s required scopes, and is left out when the route requires none).',
    `- \`503 keys_unavailable\` carries ${code(`Retry-After: ${denial('keys_unavailable').headers['retry-after']!}`)}. Other statuses carry no challenge.`,
    '- When a token is rejected, the checks stop at the first failure, in the order of',
    '  [How a request is handled](../how-it-works.md#how-a-request-is-handled).',
    '',
  ].join('\n')
}
