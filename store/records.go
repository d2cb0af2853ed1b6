package store

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// MFAState is where a user stands with their second factor.
type MFAState string

// MFA states.
const (
	// MFANone: no factor required by a reset; the user may or may not have factors.
	MFANone MFAState = "none"
	// MFAResetPending: an owner reset the user's factors; until the emailed
	// link is used, a password alone never yields a session.
	MFAResetPending MFAState = "reset_pending"
	// MFAMustEnroll: the reset link was used; the next sign-in enrolls a factor.
	MFAMustEnroll MFAState = "must_enroll"
)

// User is a person who signs in.
type User struct {
	ID            string
	Email         string // lower case
	EmailVerified bool
	Name          string
	PasswordHash  string // argon2id, PHC string format
	MFAState      MFAState
	CreatedAt     time.Time
	LastLoginAt   time.Time // zero if never
}

// Role is a member's role in an organization.
type Role string

// Roles.
const (
	RoleOwner  Role = "owner"
	RoleMember Role = "member"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleOwner || r == RoleMember }

// Organization groups members under owners and a 2FA policy.
type Organization struct {
	ID         string
	Name       string
	Require2FA bool
	CreatedAt  time.Time
}

// Membership places a user in an organization with a role.
type Membership struct {
	OrgID     string
	UserID    string
	Role      Role
	CreatedAt time.Time
}

// Client is a registered OAuth 2.0 client (relying party). It implements
// fosite.Client.
type Client struct {
	ID string
	// SecretHash is a keyed hash of the client secret; nil for public clients.
	SecretHash             []byte
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string
	Scopes                 []string
	Public                 bool
	// SkipConsent marks first-party clients whose users are never asked.
	SkipConsent bool
	// RequirePKCE demands S256 PKCE from this confidential client (public
	// clients always need it). Only legacy apps turn it off.
	RequirePKCE bool
	// Require2FA sends users without a second factor through enrollment.
	Require2FA bool
	// IDTokenAlg is how its ID tokens are signed (OpenID Connect Dynamic
	// Client Registration's id_token_signed_response_alg): RS256 (the
	// default, "" on write) or ES256.
	IDTokenAlg string
	CreatedAt  time.Time
}

// The ID token signing algorithms a client may register.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
)

// LoginFlow is the server-side record of one authorize request's walk
// through the browser steps. The browser carries only ID; BindingHash ties
// the flow to the browser that started it.
type LoginFlow struct {
	ID          string
	BindingHash []byte
	// ClientID is empty for a sign-in to twofold itself (settings pages).
	ClientID string
	// Query is the original authorize request's query string; the request
	// is re-read from here, never from the browser, when the flow finishes.
	Query       string
	RequestedAt time.Time
	ExpiresAt   time.Time
	// UserID is set once the user has proved their password in this flow,
	// or carried over from a session that was good enough.
	UserID   string
	AMR      []string
	AuthTime time.Time
	// GrantedScopes is nil until the consent step is done.
	GrantedScopes []string
	// Denied records that the user refused consent; the client gets
	// access_denied.
	Denied bool
	// MFAFailures counts second-factor attempts spent in this flow.
	MFAFailures int
}

// BrowserSession is a signed-in browser. Only a hash of its id is stored.
type BrowserSession struct {
	IDHash     []byte
	UserID     string
	AMR        []string
	AuthTime   time.Time
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// ConsentGrant remembers the scopes a user granted a client.
type ConsentGrant struct {
	UserID    string
	ClientID  string
	Scopes    []string
	GrantedAt time.Time
}

// SigningKey is a token-signing key, sealed at rest.
type SigningKey struct {
	KID       string
	Alg       string
	Sealed    []byte
	CreatedAt time.Time
	// RetiredAt is zero for the active key; a retired key stays published
	// until its tokens have expired.
	RetiredAt time.Time
}

// AuditEvent records a security-relevant event.
type AuditEvent struct {
	ID         int64
	At         time.Time
	Kind       string
	ActorID    string // user id, "operator", or empty
	TargetID   string
	OrgID      string
	ClientAddr string
	Details    map[string]string
}

// Mail is one message in the transactional outbox.
type Mail struct {
	ID            int64
	Recipient     string
	Subject       string
	Text          string
	HTML          string
	CreatedAt     time.Time
	NextAttemptAt time.Time
	Attempts      int
	SentAt        time.Time // zero while pending
	FailedAt      time.Time // set when delivery was given up
	LastError     string
}

// LogValue keeps a message's bodies and recipient out of logs: they carry
// reset links and personal data.
func (m Mail) LogValue() slog.Value {
	return slog.GroupValue(slog.Int64("id", m.ID), slog.Int("attempts", m.Attempts))
}

// String is LogValue for fmt: printing a Mail never prints its bodies.
func (m Mail) String() string { return fmt.Sprintf("mail %d (attempt %d)", m.ID, m.Attempts) }

// Backoff is a growing-delay schedule for a rate-limit key: the first Free
// failures cost nothing, then each further failure blocks the key for Base,
// doubling up to Max. A key whose last failure is older than Forget starts
// over. With Lockout set, a key with that many consecutive failures is
// blocked until it is reset, however long it stays quiet.
type Backoff struct {
	Free    int
	Base    time.Duration
	Max     time.Duration
	Forget  time.Duration
	Lockout int
}

// Delay is how long the key is blocked after its nth consecutive failure.
func (b Backoff) Delay(failures int) time.Duration {
	if failures <= b.Free {
		return 0
	}
	d := b.Base
	for i := b.Free + 1; i < failures && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// jsonList encodes a list for a TEXT column; nil becomes [].
func jsonList(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l) // a []string always marshals
	return string(b)
}

// parseList decodes a list written by jsonList.
func parseList(s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	return l, nil
}
