package mfa

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/descope/virtualwebauthn"

	"github.com/twofold-id/twofold/mfa/mfatest"
	"github.com/twofold-id/twofold/store"
)

// The relying party of the WebAuthn tests: what twofold is configured
// with, and what a browser on its pages reports (goodRP).
const (
	testRPID   = "localhost"
	testOrigin = "http://localhost:8080"
)

var goodRP = virtualwebauthn.RelyingParty{Name: "twofold", ID: testRPID, Origin: testOrigin}

// newKeyFixture is newFixture with security keys on.
func newKeyFixture(t testing.TB, db *store.DB) *fixture {
	t.Helper()
	f := newFixture(t, db)
	wa, err := NewWebAuthn("twofold", testRPID, []string{testOrigin})
	if err != nil {
		t.Fatal(err)
	}
	f.s.WebAuthn = wa
	return f
}

// softKey is a software authenticator (descope/virtualwebauthn) holding
// one credential. Like a real key it counts up its signature counter on
// every assertion; a test sets counter to make it jump or go back.
type softKey struct {
	auth virtualwebauthn.Authenticator
	cred virtualwebauthn.Credential
	// attachment, when set, is reported as the response's
	// authenticatorAttachment at registration ("platform" for a passkey).
	attachment string
	// fixedCounter keeps the counter at its value (keys without one send 0).
	fixedCounter bool
}

func newSoftKey(opts virtualwebauthn.AuthenticatorOptions) *softKey {
	k := &softKey{auth: virtualwebauthn.NewAuthenticatorWithOptions(opts), cred: mfatest.NewCredential()}
	k.auth.AddCredential(k.cred)
	return k
}

// create answers navigator.credentials.create options as a browser on rp's
// origin would, and returns the response JSON.
func (k *softKey) create(t testing.TB, rp virtualwebauthn.RelyingParty, options []byte) []byte {
	t.Helper()
	opts, err := virtualwebauthn.ParseAttestationOptions(string(options))
	if err != nil {
		t.Fatalf("attestation options %s: %v", options, err)
	}
	// The key keeps the user handle, as a resident key does, and returns
	// it when signing in.
	k.auth.Options.UserHandle = []byte(opts.UserID)
	resp := []byte(virtualwebauthn.CreateAttestationResponse(rp, k.auth, k.cred, *opts))
	if k.attachment == "" {
		return resp
	}
	var m map[string]any
	if err := json.Unmarshal(resp, &m); err != nil {
		t.Fatal(err)
	}
	m["authenticatorAttachment"] = k.attachment
	out, _ := json.Marshal(m)
	return out
}

// get answers navigator.credentials.get options and returns the response
// JSON, with the counter advanced first.
func (k *softKey) get(t testing.TB, rp virtualwebauthn.RelyingParty, options []byte) []byte {
	t.Helper()
	opts, err := virtualwebauthn.ParseAssertionOptions(string(options))
	if err != nil {
		t.Fatalf("assertion options %s: %v", options, err)
	}
	if !k.cred.IsAllowedForAssertion(*opts) {
		t.Fatalf("the options do not allow this key: %s", options)
	}
	if !k.fixedCounter {
		k.cred.Counter++
	}
	return []byte(virtualwebauthn.CreateAssertionResponse(rp, k.auth, k.cred, *opts))
}

// addKey registers k for the fixture's user from a session and returns
// the backup codes that came with it.
func (f *fixture) addKey(t testing.TB, k *softKey, name string) []string {
	t.Helper()
	return f.addKeyFor(t, f.user, k, name)
}

func (f *fixture) addKeyFor(t testing.TB, user store.User, k *softKey, name string) []string {
	t.Helper()
	binding := "session:settings-" + user.ID
	id, options, err := f.s.BeginKeyRegistration(ctx, user, binding)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := f.s.FinishKeyRegistration(ctx, user, id, binding, name, k.create(t, goodRP, options), Event{ClientAddr: "192.0.2.1"})
	if err != nil {
		t.Fatalf("register key: %v", err)
	}
	return codes
}

// keyLogin signs the fixture's user in with k from flow binding.
func (f *fixture) keyLogin(t *testing.T, k *softKey, binding string) (Result, error) {
	t.Helper()
	id, options, err := f.s.BeginKeyLogin(ctx, f.user, binding)
	if err != nil {
		t.Fatal(err)
	}
	return f.s.FinishKeyLogin(ctx, f.user, id, binding, k.get(t, goodRP, options), Event{ClientAddr: "192.0.2.1"})
}

// keyRow is the stored record of k.
func (f *fixture) keyRow(t *testing.T, k *softKey) store.WebAuthnCredential {
	t.Helper()
	rows, err := f.db.ListWebAuthnCredentials(ctx, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if bytes.Equal(r.ID, k.cred.ID) {
			return r
		}
	}
	t.Fatalf("key %x is not stored", k.cred.ID)
	return store.WebAuthnCredential{}
}

// count returns how many times s occurs in list.
func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}
