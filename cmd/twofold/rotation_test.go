package main

import (
	"context"
	"testing"

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
	oldKID := s.srv.keys.ActiveKID()

	newKID, err := s.srv.keys.Rotate(context.Background())
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
