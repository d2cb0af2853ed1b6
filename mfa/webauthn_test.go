package mfa

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// creationOptions is the part of navigator.credentials.create options the
// tests check.
type creationOptions struct {
	PublicKey struct {
		RP struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"user"`
		Attestation            string `json:"attestation"`
		AuthenticatorSelection struct {
			ResidentKey      string `json:"residentKey"`
			UserVerification string `json:"userVerification"`
		} `json:"authenticatorSelection"`
		ExcludeCredentials []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
	} `json:"publicKey"`
}

// TestKeyRegisterAndSignIn: the first key brings ten backup codes and the
// "2FA is on" mail; it signs in with amr hwk and shows when it was last
// used; a second key brings no new codes (the first ones keep working);
// the same key twice is refused.
func TestKeyRegisterAndSignIn(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		f := newKeyFixture(t, b.Open(t))
		if !f.s.KeysAvailable() {
			t.Fatal("keys unavailable with a relying party")
		}
		id, options, err := f.s.BeginKeyRegistration(ctx, f.user, "session:s1")
		if err != nil {
			t.Fatal(err)
		}
		var o creationOptions
		if err := json.Unmarshal(options, &o); err != nil {
			t.Fatal(err)
		}
		pk := o.PublicKey
		handle, _ := base64.RawURLEncoding.DecodeString(pk.User.ID)
		if pk.RP.ID != testRPID || pk.User.Name != f.user.Email || pk.Attestation != "none" ||
			pk.AuthenticatorSelection.UserVerification != "preferred" || pk.AuthenticatorSelection.ResidentKey == "required" ||
			len(handle) < 16 || string(handle) == f.user.ID {
			t.Fatalf("creation options = %s", options)
		}
		first := newSoftKey(virtualwebauthn.AuthenticatorOptions{})
		codes, err := f.s.FinishKeyRegistration(ctx, f.user, id, "session:s1", "  Blue\x07 key ", first.create(t, goodRP, options), Event{ClientAddr: "192.0.2.1"})
		if err != nil || len(codes) != BackupCodeCount {
			t.Fatalf("first key: %d codes, %v", len(codes), err)
		}
		added := f.clock.t
		keys, err := f.s.Keys(ctx, f.user.ID)
		if err != nil || len(keys) != 1 || keys[0].Name != "Blue key" || !keys[0].CreatedAt.Equal(added) || !keys[0].LastUsedAt.IsZero() ||
			keys[0].Passkey || keys[0].ID != base64.RawURLEncoding.EncodeToString(first.cred.ID) {
			t.Fatalf("keys = %+v, %v", keys, err)
		}
		if st, _ := f.s.Status(ctx, f.user.ID); st.BackupCodes != BackupCodeCount || st.TOTP || len(st.Keys) != 1 {
			t.Fatalf("status = %+v", st)
		}
		if got := f.mails(t); !slices.Equal(got, []string{"Two-factor authentication is on"}) {
			t.Fatalf("mails = %q", got)
		}
		if got := f.auditKinds(t); !slices.Equal(got, []string{"factor.enrolled"}) {
			t.Fatalf("audit = %q", got)
		}

		f.clock.advance(time.Minute)
		res, err := f.keyLogin(t, first, "flow:f1")
		if err != nil || res.Method != MethodSecurityKey || !slices.Equal(res.AMR(), []string{"pwd", "hwk", "mfa"}) {
			t.Fatalf("sign in: %+v, %v", res, err)
		}
		keys, _ = f.s.Keys(ctx, f.user.ID)
		if !keys[0].LastUsedAt.Equal(f.clock.t) || !keys[0].CreatedAt.Equal(added) {
			t.Fatalf("after sign-in, keys = %+v", keys)
		}
		if row := f.keyRow(t, first); row.SignCount != 1 {
			t.Fatalf("stored sign count %d, want the key's 1", row.SignCount)
		}

		second := newSoftKey(virtualwebauthn.AuthenticatorOptions{})
		if again := f.addKey(t, second, ""); again != nil {
			t.Fatalf("a second key brought %d new backup codes", len(again))
		}
		if got := f.mails(t); len(got) != 2 || got[1] != "A security key was added to your account" {
			t.Fatalf("mails = %q", got)
		}
		if res, err := f.s.Verify(ctx, f.user, codes[0], Event{}); err != nil || res.Method != MethodBackupCode || res.BackupCodesLeft != 9 {
			t.Fatalf("a first backup code after the second key: %+v, %v", res, err)
		}
		keys, _ = f.s.Keys(ctx, f.user.ID)
		if len(keys) != 2 || keys[1].Name != "Security key" {
			t.Fatalf("keys = %+v", keys)
		}
		if res, err := f.keyLogin(t, second, "flow:f2"); err != nil || res.Method != MethodSecurityKey {
			t.Fatalf("second key: %+v, %v", res, err)
		}

		// Registering a key again: the options exclude both, and a browser
		// ignoring that is refused.
		id, options, _ = f.s.BeginKeyRegistration(ctx, f.user, "session:s1")
		o = creationOptions{}
		_ = json.Unmarshal(options, &o)
		if len(o.PublicKey.ExcludeCredentials) != 2 {
			t.Fatalf("excludeCredentials = %+v", o.PublicKey.ExcludeCredentials)
		}
		if _, err := f.s.FinishKeyRegistration(ctx, f.user, id, "session:s1", "again", first.create(t, goodRP, options), Event{}); !errors.Is(err, ErrKeyExists) {
			t.Fatalf("the same key twice: %v", err)
		}
		if keys, _ := f.s.Keys(ctx, f.user.ID); len(keys) != 2 || keys[0].Name != "Blue key" {
			t.Fatalf("after a duplicate, keys = %+v", keys)
		}
	})
}

// TestKeyAMR: a hardware key, with or without a PIN, signs in with amr
// hwk; a platform passkey or a synced one (backup eligible) with swk.
func TestKeyAMR(t *testing.T) {
	tests := []struct {
		name       string
		opts       virtualwebauthn.AuthenticatorOptions
		attachment string
		method     string
		amr        []string
		keyName    string
	}{
		{"security key with PIN", virtualwebauthn.AuthenticatorOptions{}, "", MethodSecurityKey, []string{"pwd", "hwk", "mfa"}, "Security key"},
		{"security key without PIN", virtualwebauthn.AuthenticatorOptions{UserNotVerified: true}, "cross-platform", MethodSecurityKey, []string{"pwd", "hwk", "mfa"}, "Security key"},
		{"platform passkey", virtualwebauthn.AuthenticatorOptions{}, "platform", MethodPasskey, []string{"pwd", "swk", "mfa"}, "Passkey"},
		{"synced passkey", virtualwebauthn.AuthenticatorOptions{BackupEligible: true, BackupState: true}, "", MethodPasskey, []string{"pwd", "swk", "mfa"}, "Passkey"},
	}
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f := newKeyFixture(t, b.Open(t))
				k := newSoftKey(tt.opts)
				k.attachment = tt.attachment
				f.addKey(t, k, "")
				keys, _ := f.s.Keys(ctx, f.user.ID)
				if len(keys) != 1 || keys[0].Passkey != (tt.method == MethodPasskey) || keys[0].Name != tt.keyName {
					t.Fatalf("keys = %+v", keys)
				}
				res, err := f.keyLogin(t, k, "flow:"+tt.name)
				if err != nil || res.Method != tt.method || !slices.Equal(res.AMR(), tt.amr) {
					t.Fatalf("sign in: %+v (amr %v), %v", res, res.AMR(), err)
				}
			})
		}
	})
}

// TestKeyRegistrationRefused: a registration answered from another
// origin or RP id, to another challenge, too late or from another session
// saves nothing: no key, no backup codes, no mail.
func TestKeyRegistrationRefused(t *testing.T) {
	tests := []struct {
		name    string
		attempt func(t *testing.T, f *fixture, k *softKey) error
	}{
		{"wrong origin", func(t *testing.T, f *fixture, k *softKey) error {
			return f.register(t, k, "session:s", "session:s", virtualwebauthn.RelyingParty{ID: testRPID, Origin: "http://evil.example:8080"}, 0)
		}},
		{"wrong RP id", func(t *testing.T, f *fixture, k *softKey) error {
			return f.register(t, k, "session:s", "session:s", virtualwebauthn.RelyingParty{ID: "evil.example", Origin: testOrigin}, 0)
		}},
		{"expired ceremony", func(t *testing.T, f *fixture, k *softKey) error {
			return f.register(t, k, "session:s", "session:s", goodRP, ceremonyLifespan+time.Second)
		}},
		{"another session", func(t *testing.T, f *fixture, k *softKey) error {
			return f.register(t, k, "session:s", "session:other", goodRP, 0)
		}},
		{"a flow's ceremony from a session", func(t *testing.T, f *fixture, k *softKey) error {
			return f.register(t, k, "flow:f", "session:s", goodRP, 0)
		}},
		{"wrong challenge", func(t *testing.T, f *fixture, k *softKey) error {
			_, optionsA, _ := f.s.BeginKeyRegistration(ctx, f.user, "session:s")
			idB, _, _ := f.s.BeginKeyRegistration(ctx, f.user, "session:s")
			_, err := f.s.FinishKeyRegistration(ctx, f.user, idB, "session:s", "", k.create(t, goodRP, optionsA), Event{})
			return err
		}},
		{"not a registration", func(t *testing.T, f *fixture, k *softKey) error {
			id, _, _ := f.s.BeginKeyRegistration(ctx, f.user, "session:s")
			_, err := f.s.FinishKeyRegistration(ctx, f.user, id, "session:s", "", []byte(`{"id":"x","type":"public-key"}`), Event{})
			return err
		}},
	}
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f := newKeyFixture(t, b.Open(t))
				if err := tt.attempt(t, f, newSoftKey(virtualwebauthn.AuthenticatorOptions{})); !errors.Is(err, ErrKeyRejected) {
					t.Fatalf("err = %v, want ErrKeyRejected", err)
				}
				st, _ := f.s.Status(ctx, f.user.ID)
				if enrolled, _ := f.s.Enrolled(ctx, f.user.ID); enrolled || len(st.Keys) != 0 || st.BackupCodes != 0 {
					t.Fatalf("after a refused registration: enrolled %v, status %+v", enrolled, st)
				}
				if m, a := f.mails(t), f.auditKinds(t); len(m) != 0 || slices.Contains(a, "factor.enrolled") {
					t.Fatalf("mails %q, audit %q", m, a)
				}
			})
		}
	})
}

// register begins a registration bound to begin and finishes it from
// finish, answered by k as a browser at rp, after the clock moves by wait.
func (f *fixture) register(t *testing.T, k *softKey, begin, finish string, rp virtualwebauthn.RelyingParty, wait time.Duration) error {
	t.Helper()
	id, options, err := f.s.BeginKeyRegistration(ctx, f.user, begin)
	if err != nil {
		t.Fatal(err)
	}
	resp := k.create(t, rp, options)
	f.clock.advance(wait)
	_, err = f.s.FinishKeyRegistration(ctx, f.user, id, finish, "", resp, Event{})
	return err
}

// TestKeysUnavailable: without a relying party (an IP-address issuer)
// every ceremony says so.
func TestKeysUnavailable(t *testing.T) {
	f := newFixture(t, storetest.SQLite().Open(t))
	if f.s.KeysAvailable() {
		t.Fatal("keys available without a relying party")
	}
	if _, _, err := f.s.BeginKeyRegistration(ctx, f.user, "session:s"); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("begin registration: %v", err)
	}
	if _, _, err := f.s.BeginKeyLogin(ctx, f.user, "flow:f"); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("begin login: %v", err)
	}
	if _, err := f.s.FinishKeyLogin(ctx, f.user, "c", "flow:f", []byte("{}"), Event{}); !errors.Is(err, ErrKeyRejected) {
		t.Fatalf("finish login: %v", err)
	}
}

// TestKeyRace: twenty goroutines post the same assertion to the same
// ceremony, and twenty answers of a cloned key (the same counter, each to
// its own ceremony) race: each time exactly one signs in.
func TestKeyRace(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		f := newKeyFixture(t, b.Open(t))
		f.s.UserLimit = store.Backoff{Free: 1000, Base: time.Second, Max: time.Second, Forget: time.Hour, Lockout: 10000}
		k := newSoftKey(virtualwebauthn.AuthenticatorOptions{})
		f.addKey(t, k, "")
		const n = 20
		race := func(ids []string, responses [][]byte) int32 {
			var wg sync.WaitGroup
			var ok atomic.Int32
			for i := range n {
				wg.Go(func() {
					_, err := f.s.FinishKeyLogin(ctx, f.user, ids[i], "flow:race", responses[i], Event{})
					switch {
					case err == nil:
						ok.Add(1)
					case !errors.Is(err, ErrKeyRejected):
						t.Errorf("attempt %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			return ok.Load()
		}

		id, options, _ := f.s.BeginKeyLogin(ctx, f.user, "flow:race")
		resp := k.get(t, goodRP, options)
		if got := race(slices.Repeat([]string{id}, n), slices.Repeat([][]byte{resp}, n)); got != 1 {
			t.Fatalf("one ceremony, %d successes, want 1", got)
		}

		k.fixedCounter, k.cred.Counter = true, k.cred.Counter+1
		ids, responses := make([]string, n), make([][]byte, n)
		for i := range n {
			var options []byte
			ids[i], options, _ = f.s.BeginKeyLogin(ctx, f.user, "flow:race")
			responses[i] = k.get(t, goodRP, options)
		}
		if got := race(ids, responses); got != 1 {
			t.Fatalf("twenty ceremonies, one counter: %d successes, want 1", got)
		}
		if row := f.keyRow(t, k); row.SignCount != k.cred.Counter {
			t.Fatalf("sign count %d, want %d", row.SignCount, k.cred.Counter)
		}
	})
}
