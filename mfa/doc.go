// Package mfa owns second factors: authenticator apps (TOTP, RFC 6238) and
// single-use backup codes; their enrollment, their verification with rate
// limits and replay rules; and the Security Settings pages.
//
// Service is the domain API the sign-in flow (package consent) and the
// settings pages share. Every security rule lives there:
//
//   - TOTP secrets are sealed at rest (AES-GCM, bound to the user) and a
//     pending secret stays server-side until a code proves it.
//   - A TOTP time step, once accepted, is never accepted again for that
//     user: the store burns it with one conditional write.
//   - Backup codes are stored as keyed hashes salted with the user id and
//     spent with one conditional write, so each works exactly once.
//   - Attempts are counted before the code is checked, per user, with
//     growing delays (30 s doubling to 1 h) and a lockout at 100
//     consecutive failures; a successful second factor resets the count.
//   - Every change and every use is audited and mailed to the user.
//
// Handler serves the Security Settings pages under /settings/security.
package mfa
