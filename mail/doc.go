// Package mail sends twofold's transactional email through an outbox.
//
// A handler never talks to an SMTP server. It calls Mailer.Send, which
// renders an email template and writes the message to the store's outbox in
// the handler's own transaction: the mail exists if and only if the event
// that caused it (a 2FA reset, a backup code used) was committed. A Worker
// then delivers the outbox over SMTP (go-mail), and DevOutbox shows it in the
// browser in development mode, when no SMTP server is configured.
//
// Each message moves through the outbox like this (store/outbox.go holds the
// protocol and why it is one):
//
//	Mailer.Send ──▶ pending ──claim (lease, attempts+1)──▶ leased
//	                  ▲                                      │ SMTP conversation,
//	                  │                                      │ no transaction open
//	                  ├──────── failed: retry after ◀────────┤
//	                  │         30 s, 1 m, … 1 h             ├──accepted──▶ sent
//	                  └──────── worker died: lease ends      └──given up──▶ failed
//
// Delivery is at least once. A message is sent twice only if its worker
// dies (or loses the database) after the SMTP server accepted it and before
// the outbox recorded that; every retry of a message carries the same
// Message-ID, so receivers can drop such a duplicate.
//
// Bodies are never logged: they carry reset links.
package mail
