/**
 * Microsoft Entra ID's multi-tenant endpoints (`common`, `organizations`) publish
 * `issuer: https://login.microsoftonline.com/{tenantid}/v2.0`: every token's `iss` carries its
 * own tenant. An issuer written with `{tenantid}` stands for one exact `iss` per listed tenant;
 * this is the one place that expands it (config checks, the verifier, `jwt-sidecar verify`).
 */

/** The one issuer placeholder jwt-sidecar knows. */
export const TENANT_PLACEHOLDER = '{tenantid}'

/**
 * The exact `iss` values an issuer accepts, each with its tenant (undefined for a plain issuer).
 *
 * @example
 * issValues({ issuer: 'https://login.microsoftonline.com/{tenantid}/v2.0', tenants: ['t1'] })
 * // [{ iss: 'https://login.microsoftonline.com/t1/v2.0', tenant: 't1' }]
 */
export function issValues(issuer: { readonly issuer: string; readonly tenants: readonly string[] | undefined }): { readonly iss: string; readonly tenant: string | undefined }[] {
  if (issuer.tenants === undefined) return [{ iss: issuer.issuer, tenant: undefined }]
  return issuer.tenants.map((tenant) => ({ iss: issuer.issuer.replace(TENANT_PLACEHOLDER, tenant), tenant }))
}
