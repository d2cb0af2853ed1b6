package main

import (
	"context"
	"testing"

	"golang.org/x/oauth2"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// TestKeyRotationSeenByRelyingParty: after a rotation, new ID tokens carry
// the new kid and verify (the relying party refetches the JWKS), and ID
// tokens signed before it still verify.
func TestKeyRotationSeenByRelyingParty(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("keys@example.com")
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
	b := s.newBrowser()
	before := rp.signIn(b, u)
	oldKID := s.srv.keys.ActiveKID(store.AlgRS256)

	kids, err := s.srv.keys.Rotate(context.Background())
	newKID := kids[store.AlgRS256]
	if err != nil || newKID == oldKID {
		t.Fatalf("rotate: %q, %v", newKID, err)
	}
	after := rp.signIn(b, u)
	if got := headerKID(t, after.token.Extra("id_token").(string)); got != newKID {
		t.Fatalf("new ID token kid = %s, want %s", got, newKID)
	}
	if got := headerKID(t, before.token.Extra("id_token").(string)); got != oldKID {
		t.Fatalf("old ID token kid = %s, want %s", got, oldKID)
	}
	// The old token still verifies against the published set.
	if _, err := rp.verifier.Verify(context.Background(), before.token.Extra("id_token").(string)); err != nil {
		t.Fatalf("ID token signed before rotation no longer verifies: %v", err)
	}
}

// TestES256Client: a client that registered ES256 gets ID tokens signed
// with the P-256 key, from the code exchange and from refresh, and they
// verify at the relying party from the discovery document and JWKS alone;
// another client keeps the RS256 default.
func TestES256Client(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("es256@example.com")
	ec := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true, IDTokenAlg: store.AlgES256})
	rs := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
	b := s.newBrowser()

	in := ec.signIn(b, u)
	idToken := in.token.Extra("id_token").(string)
	if alg, kid := headerAlg(t, idToken), headerKID(t, idToken); alg != "ES256" || kid != s.srv.keys.ActiveKID(store.AlgES256) {
		t.Fatalf("ES256 client's ID token: alg %s kid %s, want ES256 and %s", alg, kid, s.srv.keys.ActiveKID(store.AlgES256))
	}
	refreshed, err := ec.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: in.token.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := refreshed.Extra("id_token").(string)
	if headerAlg(t, again) != "ES256" {
		t.Fatalf("ID token from refresh is %s, want ES256", headerAlg(t, again))
	}
	if _, err := ec.verifier.Verify(context.Background(), again); err != nil {
		t.Fatalf("refreshed ES256 ID token does not verify: %v", err)
	}
	if alg := headerAlg(t, rs.signIn(b, u).token.Extra("id_token").(string)); alg != "RS256" {
		t.Fatalf("default client's ID token is %s, want RS256", alg)
	}
}

// TestIDTokenHints: an application's own ID token works as id_token_hint
// (prompt=none) whichever algorithm signed it, and still after a rotation:
// the authorization endpoint checks it, and the token endpoint checks it
// again when it issues the next ID token.
func TestIDTokenHints(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("hints@example.com")
	b := s.newBrowser()
	for _, alg := range []string{store.AlgES256, store.AlgRS256} {
		rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true, IDTokenAlg: alg})
		hint := rp.signIn(b, u).token.Extra("id_token").(string)
		silent := func(when string) {
			t.Helper()
			ar := rp.authRequest(oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("id_token_hint", hint))
			in := rp.exchange(rp.code(b.get(ar.url), ar), ar)
			if in.claims.Sub != u.ID || headerAlg(t, in.token.Extra("id_token").(string)) != alg {
				t.Fatalf("%s, %s: silent sign-in gave %+v", alg, when, in.claims)
			}
		}
		silent("with a fresh hint")
		if _, err := s.srv.keys.Rotate(context.Background()); err != nil {
			t.Fatal(err)
		}
		silent("with a hint signed by the key before the rotation")
	}
}
