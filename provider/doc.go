// Package provider is twofold's OAuth 2.0 and OpenID Connect side, built on
// fosite: discovery, JWKS, authorize, token, userinfo, revocation (RFC
// 7009), introspection (RFC 7662) and RP-initiated logout, plus the signing
// keys and their rotation.
//
// Only the flows twofold stands behind are composed: authorization code
// with PKCE, refresh tokens, OpenID Connect explicit flow (and its refresh),
// client credentials, revocation and introspection. No implicit, hybrid or
// password grants exist to be misconfigured.
//
// The authorize endpoint hands the browser to an Interaction (package
// consent) and gets back a finished login flow:
//
//	GET /oauth2/auth?client_id…  ──validate──▶ Interaction.Authorize
//	    ├─ live session + consent covered ──▶ code ──▶ redirect_uri
//	    └─ otherwise: the sign-in form, then the browser walks /login…;
//	       the step that finishes the flow consumes it and calls Finish
//	GET /oauth2/auth?flow=ID ──▶ Interaction.Resume (consumes the flow once)
//	    ──▶ Finish
//	Finish: the stored request is validated again ──▶ code ──▶ redirect_uri
package provider
