package mfa

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net/url"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/pquerna/otp"

	"github.com/twofold-id/twofold/seal"
	"github.com/twofold-id/twofold/store"
)

// Errors of the factor operations. ErrInvalidCode covers a wrong code, a
// replayed one and a malformed one alike, so the user (and an attacker)
// learns nothing from which.
var (
	ErrInvalidCode = errors.New("mfa: invalid code")
	ErrThrottled   = errors.New("mfa: too many attempts")
	ErrNoFactor    = errors.New("mfa: no second factor enrolled")
	ErrRequired    = errors.New("mfa: an organization requires a second factor")
	ErrNoPending   = errors.New("mfa: no enrollment in progress")
)

// Store is what the factor operations need of the store.
type Store interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	PutTOTPEnrollment(ctx context.Context, e store.TOTPEnrollment) error
	GetTOTPEnrollment(ctx context.Context, userID string, now time.Time) (store.TOTPEnrollment, error)
	ConfirmTOTP(ctx context.Context, cred store.TOTPCredential, backupHashes [][]byte) error
	GetTOTPCredential(ctx context.Context, userID string) (store.TOTPCredential, error)
	AcceptTOTPStep(ctx context.Context, userID string, step int64) error
	ReplaceBackupCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error
	UseBackupCode(ctx context.Context, userID string, hash []byte, now time.Time) error
	CountBackupCodes(ctx context.Context, userID string) (int, error)
	DeleteSecondFactors(ctx context.Context, userID string) (int64, error)
	UserRequires2FA(ctx context.Context, userID string) (bool, error)
	HasSecondFactor(ctx context.Context, userID string) (bool, error)
	GetFactorSummary(ctx context.Context, userID string) (store.FactorSummary, error)
	SetMFAState(ctx context.Context, userID string, state store.MFAState) error
	RateLimitAttempt(ctx context.Context, key string, b store.Backoff, now time.Time) error
	ResetRateLimit(ctx context.Context, key string) error
	AppendAudit(ctx context.Context, e store.AuditEvent) error
	resetStore
	keyStore
}

// keyStore is what security keys need of the store; part of Store.
type keyStore interface {
	CreateWebAuthnCredential(ctx context.Context, c store.WebAuthnCredential) error
	ListWebAuthnCredentials(ctx context.Context, userID string) ([]store.WebAuthnCredential, error)
	UseWebAuthnCredential(ctx context.Context, c store.WebAuthnCredential, oldCount uint32) error
	RenameWebAuthnCredential(ctx context.Context, userID string, id []byte, name string) error
	DeleteWebAuthnCredential(ctx context.Context, userID string, id []byte) error
	CreateWebAuthnCeremony(ctx context.Context, c store.WebAuthnCeremony) error
	ConsumeWebAuthnCeremony(ctx context.Context, id, kind, userID, binding string, now time.Time) (store.WebAuthnCeremony, error)
}

// Mailer queues an email (package mail); in a transaction, with it. It
// returns the outbox id of the message.
type Mailer interface {
	Send(ctx context.Context, to, templateName string, data any) (int64, error)
}

// DefaultUserLimit is the per-user second-factor throttle: 3 free failures,
// then 30 s doubling to 1 h, and locked after 100 consecutive failures
// until an owner resets the user's factors.
var DefaultUserLimit = store.Backoff{Free: 3, Base: 30 * time.Second, Max: time.Hour, Forget: 24 * time.Hour, Lockout: 100}

// Service enrolls and verifies second factors.
type Service struct {
	Store  Store
	Sealer *seal.Sealer
	Mailer Mailer
	// Issuer is the name authenticator apps show ("twofold" or the brand).
	Issuer string
	// SettingsURL is the absolute URL of Security Settings, for emails.
	SettingsURL string
	Now         func() time.Time
	Rand        io.Reader
	UserLimit   store.Backoff
	// Delivered is called after a transaction that queued mail commits
	// (mail.Worker.Nudge); may be nil.
	Delivered func()
	// ResetURLBase is the re-enrollment link without its token
	// ("https://id.example.com/reset/").
	ResetURLBase string
	// ResetLinkLifespan is how long a link works (default 24 h).
	ResetLinkLifespan time.Duration
	// WebAuthn is the relying party for security keys (NewWebAuthn).
	WebAuthn *webauthn.WebAuthn
}

// Event says who did something from where, for the audit log and emails.
type Event struct {
	ActorID    string
	ClientAddr string
}

// Status is a user's second-factor state for the settings page.
type Status struct {
	TOTP        bool
	TOTPSince   time.Time
	Keys        []Key
	BackupCodes int
	// Required is true when an organization of the user requires 2FA.
	Required bool
}

// Enrolled reports whether the user has a second factor: an authenticator
// app or a security key.
func (s *Service) Enrolled(ctx context.Context, userID string) (bool, error) {
	return s.Store.HasSecondFactor(ctx, userID)
}

// Summary returns the user's second factors and 2FA policy at a glance, in
// one query: what the sign-in steps decide on.
func (s *Service) Summary(ctx context.Context, userID string) (store.FactorSummary, error) {
	return s.Store.GetFactorSummary(ctx, userID)
}

// Status returns the user's second-factor state: one query, and one more
// for the list of security keys when there are any.
func (s *Service) Status(ctx context.Context, userID string) (Status, error) {
	fs, err := s.Store.GetFactorSummary(ctx, userID)
	if err != nil {
		return Status{}, err
	}
	st := Status{TOTP: fs.TOTP, TOTPSince: fs.TOTPSince, BackupCodes: fs.BackupCodes, Required: fs.Required}
	if fs.Keys > 0 {
		if st.Keys, err = s.Keys(ctx, userID); err != nil {
			return st, err
		}
	}
	return st, nil
}

// Enrollment is an authenticator app being set up, as the page shows it.
type Enrollment struct {
	Secret string // base32, to type in by hand
	URL    string // otpauth://totp/…
	QR     string // data:image/png;base64,… of URL
}

// sealAD binds a sealed TOTP secret to its user and purpose.
func sealAD(userID string) []byte { return []byte("totp\x00" + userID) }

// BeginTOTP starts enrolling an authenticator app for user, replacing any
// enrollment in progress. The secret is kept server-side, sealed, until
// ConfirmTOTP; nothing changes for the user until then.
func (s *Service) BeginTOTP(ctx context.Context, user store.User) (Enrollment, error) {
	key, err := newTOTPKey(s.Issuer, user.Email, s.Rand)
	if err != nil {
		return Enrollment{}, fmt.Errorf("generate totp secret: %w", err)
	}
	sealed, err := s.Sealer.Seal("totp", []byte(key.Secret()), sealAD(user.ID))
	if err != nil {
		return Enrollment{}, err
	}
	now := s.Now()
	if err := s.Store.PutTOTPEnrollment(ctx, store.TOTPEnrollment{UserID: user.ID, SealedSecret: sealed,
		CreatedAt: now, ExpiresAt: now.Add(30 * time.Minute)}); err != nil {
		return Enrollment{}, err
	}
	return enrollment(s.Issuer, user.Email, key.Secret())
}

// PendingTOTP shows the enrollment in progress again (after a wrong code).
func (s *Service) PendingTOTP(ctx context.Context, user store.User) (Enrollment, error) {
	secret, _, err := s.pending(ctx, user)
	if err != nil {
		return Enrollment{}, err
	}
	return enrollment(s.Issuer, user.Email, secret)
}

func (s *Service) pending(ctx context.Context, user store.User) (string, []byte, error) {
	e, err := s.Store.GetTOTPEnrollment(ctx, user.ID, s.Now())
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, ErrNoPending
	}
	if err != nil {
		return "", nil, err
	}
	secret, err := s.Sealer.Open("totp", e.SealedSecret, sealAD(user.ID))
	if err != nil {
		return "", nil, err
	}
	return string(secret), e.SealedSecret, nil
}

func enrollment(issuer, account, secret string) (Enrollment, error) {
	key, err := otp.NewKeyFromURL(otpauthURL(issuer, account, secret))
	if err != nil {
		return Enrollment{}, err
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return Enrollment{}, fmt.Errorf("qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Enrollment{}, err
	}
	return Enrollment{Secret: secret, URL: key.URL(),
		QR: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// otpauthURL is the Key URI authenticator apps read from the QR code:
// otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=ISSUER&algorithm=SHA1&digits=6&period=30.
func otpauthURL(issuer, account, secret string) string {
	q := url.Values{"secret": {secret}, "issuer": {issuer}, "algorithm": {"SHA1"}, "digits": {"6"}, "period": {"30"}}
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + issuer + ":" + account, RawQuery: q.Encode()}
	return u.String()
}
