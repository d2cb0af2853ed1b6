// Package consent is the browser flow an authorize request walks: sign-in,
// (later) the second-factor step and forced enrollment, consent, and
// sign-out. It implements provider.Interaction.
//
// A login flow is a server-side record that holds the original authorize
// request and which steps are done; the browser carries only its id, and
// the flow is bound to the browser that started it by a device cookie, so a
// leaked flow id is useless elsewhere. One dispatcher, /login/continue,
// decides the next step from the record; every step only ever sends the
// browser back to it:
//
//	/oauth2/auth ──▶ Authorize ── live session, consent covered ──▶ code
//	                    │ otherwise: new flow
//	                    ▼
//	      ┌──────▶ /login/continue?flow=ID ───────────────────────────┐
//	      │            │ no user yet        │ consent needed          │ done
//	      │            ▼                    ▼                         ▼
//	      └──── /login (password)     /consent (allow/deny)   /oauth2/auth?flow=ID
//	                                                          (Resume consumes it)
//
// A flow without a client is a sign-in to twofold itself (to reach the
// settings pages); it ends at its local return path.
package consent
