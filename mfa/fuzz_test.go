package mfa

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/descope/virtualwebauthn"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/pquerna/otp/totp"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// Fuzz targets for what package mfa reads from users: the second-factor
// field, TOTP codes, security-key names and WebAuthn responses. Seeds are
// in testdata/fuzz (the genuine WebAuthn answers, which depend on the run's
// key, are added in code); `make fuzz` runs each target for a few seconds.

// FuzzNormalizeCode: whatever is typed, normalizeCode never panics, and
// what it accepts is canonical (it reads back as itself), made only of the
// ASCII alphabet, six digits or fifteen symbols, and typed in ASCII: no
// Unicode digit or look-alike letter counts as a code character.
func FuzzNormalizeCode(f *testing.F) {
	f.Fuzz(func(t *testing.T, input string) {
		code, isBackup, ok := normalizeCode(input)
		if !ok {
			if code != "" || isBackup {
				t.Fatalf("refused %q but returned %q, %v", input, code, isBackup)
			}
			return
		}
		for i := 0; i < len(input); i++ {
			if input[i] >= utf8.RuneSelf {
				t.Fatalf("accepted non-ASCII input %q as %q", input, code)
			}
		}
		for _, r := range code {
			if !strings.ContainsRune(backupAlphabet, r) {
				t.Fatalf("%q normalized to %q, outside the alphabet", input, code)
			}
		}
		switch {
		case isBackup && len(code) != backupCodeLen:
			t.Fatalf("backup code %q from %q has length %d", code, input, len(code))
		case !isBackup && (len(code) != int(totpDigits) || strings.Trim(code, "0123456789") != ""):
			t.Fatalf("TOTP code %q from %q is not six digits", code, input)
		}
		again, againBackup, againOK := normalizeCode(code)
		if again != code || againBackup != isBackup || !againOK {
			t.Fatalf("%q normalized to %q, which normalizes to %q %v %v", input, code, again, againBackup, againOK)
		}
		if isBackup {
			if shown, _, _ := normalizeCode(formatBackupCode(code)); shown != code {
				t.Fatalf("backup code %q shown as %q reads back as %q", code, formatBackupCode(code), shown)
			}
		}
	})
}

// FuzzMatchStep: matchStep never panics on any secret, code or time; a
// match is a step within one of now whose code is exactly the input; and
// the authenticator's current code always matches.
func FuzzMatchStep(f *testing.F) {
	opts := totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: totpAlg}
	f.Fuzz(func(t *testing.T, secret, code string, unix int64) {
		now := time.Unix(unix, 0)
		matched, ok := matchStep(secret, code, now)
		if ok {
			if d := matched - step(now); d < -totpSkew || d > totpSkew {
				t.Fatalf("matched step %d, %d from now's", matched, d)
			}
			if want, err := totp.GenerateCodeCustom(secret, time.Unix(matched*totpPeriod, 0), opts); err != nil || want != code {
				t.Fatalf("matched step %d whose code is %q (%v), not %q", matched, want, err, code)
			}
		} else if matched != 0 {
			t.Fatalf("no match but step %d", matched)
		}
		if unix < 0 || unix > math.MaxInt64/2 {
			return // outside any clock; only "no panic" holds there
		}
		current, err := totp.GenerateCodeCustom(secret, now, opts)
		if err != nil {
			return
		}
		if s, ok := matchStep(secret, current, now); !ok || s < step(now) {
			t.Fatalf("the current code %q of %q at %d: step %d, %v", current, secret, unix, s, ok)
		}
	})
}

// FuzzKeyName: a security key's name, as typed, is stored without control
// characters, as valid UTF-8, at most maxKeyName characters, never empty.
func FuzzKeyName(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string) {
		got := keyName(name, &webauthn.Credential{})
		if got == "" || !utf8.ValidString(got) || utf8.RuneCountInString(got) > maxKeyName {
			t.Fatalf("keyName(%q) = %q", name, got)
		}
		for _, r := range got {
			if r < ' ' || r == 0x7f {
				t.Fatalf("keyName(%q) = %q keeps control character %U", name, got, r)
			}
		}
	})
}

// keyFuzz is a user with one security key, and a ceremony of each kind
// whose session data (and so whose challenge) every fuzz input is checked
// against anew, with a genuine response to it as the first seed. The key
// is registered through the real store; the inputs then run against an
// in-memory copy (memKeys), so that coverage guidance follows the WebAuthn
// parsing and checks, not SQLite's B-tree.
type keyFuzz struct {
	*fixture
	mem                             *memKeys
	login, register                 store.WebAuthnCeremony
	loginResponse, registerResponse []byte
}

const fuzzBinding = "flow:fuzz"

func newKeyFuzz(f *testing.F) *keyFuzz {
	db := storetest.SQLite().Open(f)
	fx := newKeyFixture(f, db)
	key := newSoftKey(virtualwebauthn.AuthenticatorOptions{})
	key.fixedCounter = true // a key without a counter: a genuine answer stays good
	fx.addKey(f, key, "Fuzz key")
	kf := &keyFuzz{fixture: fx}

	id, options, err := fx.s.BeginKeyLogin(ctx, fx.user, fuzzBinding)
	if err != nil {
		f.Fatal(err)
	}
	kf.loginResponse = key.get(f, goodRP, options)
	if kf.login, err = db.ConsumeWebAuthnCeremony(ctx, id, "login", fx.user.ID, fuzzBinding, fx.clock.t); err != nil {
		f.Fatal(err)
	}
	id, options, err = fx.s.BeginKeyRegistration(ctx, fx.user, fuzzBinding)
	if err != nil {
		f.Fatal(err)
	}
	kf.registerResponse = newSoftKey(virtualwebauthn.AuthenticatorOptions{}).create(f, goodRP, options)
	if kf.register, err = db.ConsumeWebAuthnCeremony(ctx, id, "register", fx.user.ID, fuzzBinding, fx.clock.t); err != nil {
		f.Fatal(err)
	}
	creds, err := db.ListWebAuthnCredentials(ctx, fx.user.ID)
	if err != nil {
		f.Fatal(err)
	}
	kf.mem = &memKeys{creds: creds, ceremonies: map[string]store.WebAuthnCeremony{}}
	fx.s.Store, fx.s.Mailer = kf.mem, nopMailer{}
	// The genuine answer passes against a copy of its ceremony: the
	// targets reach every check, not only the challenge's.
	if res, err := fx.s.FinishKeyLogin(ctx, fx.user, kf.again(kf.login), fuzzBinding, kf.loginResponse, Event{}); err != nil || res.Method != MethodSecurityKey {
		f.Fatalf("genuine sign-in: %+v, %v", res, err)
	}
	return kf
}

// again stores ceremony c under a new id and returns the id.
func (kf *keyFuzz) again(c store.WebAuthnCeremony) string {
	c.ID = rand.Text()
	kf.mem.ceremonies[c.ID] = c
	return c.ID
}

// memKeys is the part of the store security keys use, in memory, for one
// user; a method the key operations do not use panics (nil Store).
type memKeys struct {
	Store
	creds      []store.WebAuthnCredential
	ceremonies map[string]store.WebAuthnCeremony
}

func (m *memKeys) InTx(ctx context.Context, fn func(context.Context) error) error { return fn(ctx) }
func (m *memKeys) RateLimitAttempt(context.Context, string, store.Backoff, time.Time) error {
	return nil
}
func (m *memKeys) ResetRateLimit(context.Context, string) error        { return nil }
func (m *memKeys) AppendAudit(context.Context, store.AuditEvent) error { return nil }
func (m *memKeys) HasSecondFactor(context.Context, string) (bool, error) {
	return len(m.creds) > 0, nil
}
func (m *memKeys) ReplaceBackupCodes(context.Context, string, [][]byte, time.Time) error { return nil }
func (m *memKeys) SetMFAState(context.Context, string, store.MFAState) error             { return nil }
func (m *memKeys) ListWebAuthnCredentials(context.Context, string) ([]store.WebAuthnCredential, error) {
	return slices.Clone(m.creds), nil
}

func (m *memKeys) CreateWebAuthnCredential(_ context.Context, c store.WebAuthnCredential) error {
	for _, old := range m.creds {
		if bytes.Equal(old.ID, c.ID) {
			return store.ErrConflict
		}
	}
	m.creds = append(m.creds, c)
	return nil
}

func (m *memKeys) UseWebAuthnCredential(_ context.Context, c store.WebAuthnCredential, oldCount uint32) error {
	for i, old := range m.creds {
		if bytes.Equal(old.ID, c.ID) && old.SignCount == oldCount {
			m.creds[i] = c
			return nil
		}
	}
	return store.ErrNotFound
}

func (m *memKeys) ConsumeWebAuthnCeremony(_ context.Context, id, kind, userID, binding string, now time.Time) (store.WebAuthnCeremony, error) {
	c, ok := m.ceremonies[id]
	delete(m.ceremonies, id)
	if !ok || c.Kind != kind || c.UserID != userID || c.Binding != binding || !now.Before(c.ExpiresAt) {
		return store.WebAuthnCeremony{}, store.ErrNotFound
	}
	return c, nil
}

type nopMailer struct{}

func (nopMailer) Send(context.Context, string, string, any) (int64, error) { return 0, nil }

// FuzzFinishKeyLogin: any bytes posted as a security key's answer are
// refused with ErrKeyRejected, never a panic or another error; only an
// answer the key really signed is accepted.
func FuzzFinishKeyLogin(f *testing.F) {
	kf := newKeyFuzz(f)
	f.Add(kf.loginResponse)
	f.Fuzz(func(t *testing.T, response []byte) {
		res, err := kf.s.FinishKeyLogin(ctx, kf.user, kf.again(kf.login), fuzzBinding, response, Event{})
		switch {
		case err == nil && res.Method != MethodSecurityKey:
			t.Fatalf("accepted as %+v", res)
		case err != nil && !errors.Is(err, ErrKeyRejected):
			t.Fatalf("FinishKeyLogin(%q): %v, want ErrKeyRejected", response, err)
		}
	})
}

// FuzzFinishKeyRegistration: any bytes posted as a new key's answer are
// refused with ErrKeyRejected (or ErrKeyExists for the genuine answer
// once it is registered), never a panic or another error.
func FuzzFinishKeyRegistration(f *testing.F) {
	kf := newKeyFuzz(f)
	f.Add(kf.registerResponse, "Fuzz key 2")
	f.Fuzz(func(t *testing.T, response []byte, name string) {
		_, err := kf.s.FinishKeyRegistration(ctx, kf.user, kf.again(kf.register), fuzzBinding, name, response, Event{})
		if err != nil && !errors.Is(err, ErrKeyRejected) && !errors.Is(err, ErrKeyExists) {
			t.Fatalf("FinishKeyRegistration(%q, %q): %v, want ErrKeyRejected", response, name, err)
		}
	})
}
