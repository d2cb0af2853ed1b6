package mfa

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/twofold-id/twofold/mail"
	"github.com/twofold-id/twofold/seal"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/templates"
)

func randReader() io.Reader { return rand.Reader }

// clock is a settable fixed clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// fixture is a Service on a real store with the real outbox.
type fixture struct {
	s     *Service
	db    *store.DB
	clock *clock
	user  store.User
}

func newFixture(t testing.TB, db *store.DB) *fixture {
	t.Helper()
	tmpl, err := templates.Load(templates.Brand{}, "")
	if err != nil {
		t.Fatal(err)
	}
	sealer, _ := seal.New(bytes.Repeat([]byte{7}, 32), nil)
	c := &clock{t: time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)}
	u := store.User{ID: "u-mfa", Email: "mfa@example.com", Name: "Mia", PasswordHash: "x", CreatedAt: c.t}
	if err := db.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	u.MFAState = store.MFANone
	s := &Service{Store: db, Sealer: sealer, Mailer: &mail.Mailer{Store: db, Templates: tmpl, Now: c.now},
		Issuer: "twofold", SettingsURL: "http://id.test/settings/security", Now: c.now, Rand: rand.Reader, UserLimit: DefaultUserLimit}
	return &fixture{s: s, db: db, clock: c, user: u}
}

// code is the authenticator app's code for secret at the fixture's time.
func (f *fixture) code(t *testing.T, secret string) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, f.clock.t, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enroll runs BeginTOTP and ConfirmTOTP and returns the secret and codes.
func (f *fixture) enroll(t *testing.T) (string, []string) {
	t.Helper()
	ctx := context.Background()
	e, err := f.s.BeginTOTP(ctx, f.user)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := f.s.ConfirmTOTP(ctx, f.user, f.code(t, e.Secret), Event{ClientAddr: "192.0.2.1"})
	if err != nil {
		t.Fatalf("confirm: %v", err)
	}
	return e.Secret, codes
}

// mails returns the subjects of the outbox, oldest first.
func (f *fixture) mails(t *testing.T) []string {
	t.Helper()
	ms, err := f.db.ListMail(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(ms) - 1; i >= 0; i-- {
		out = append(out, ms[i].Subject)
	}
	return out
}

// auditKinds returns the kinds of the user's audit events, newest first.
func (f *fixture) auditKinds(t *testing.T) []string {
	t.Helper()
	evs, err := f.db.ListAudit(context.Background(), store.AuditFilter{TargetID: f.user.ID})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}
