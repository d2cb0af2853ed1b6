package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twofold-id/twofold/store"
)

func newFlow(t *testing.T, db *store.DB) store.LoginFlow {
	t.Helper()
	fositeClient(t, db)
	f := store.LoginFlow{ID: "flow1", BindingHash: []byte("bind"), ClientID: "rp", Query: "client_id=rp&scope=openid",
		RequestedAt: t0, ExpiresAt: t0.Add(15 * time.Minute)}
	must(t, db.CreateLoginFlow(ctx, f), "create flow")
	return f
}

func testLoginFlows(t *testing.T, db *store.DB) {
	f := newFlow(t, db)
	u := newUser(t, db, "flow@example.com")
	got, err := db.GetLoginFlow(ctx, f.ID, t0.Add(time.Minute))
	must(t, err, "get flow")
	if got.UserID != "" || got.GrantedScopes != nil || len(got.AMR) != 0 || got.Query != f.Query || string(got.BindingHash) != "bind" {
		t.Fatalf("fresh flow = %+v", got)
	}
	// Before its password step a flow has no user to read with it.
	if _, _, _, err := db.GetLoginFlowWithUser(ctx, f.ID, t0.Add(time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("flow without a user read with its user: %v, want ErrNotFound", err)
	}
	got.UserID, got.AMR, got.AuthTime, got.GrantedScopes = u.ID, []string{"pwd"}, t0.Add(time.Minute), []string{"openid"}
	must(t, db.UpdateLoginFlow(ctx, got, t0.Add(time.Minute)), "update flow")
	must(t, db.CountFlowMFAFailure(ctx, f.ID, 5, t0.Add(time.Minute)), "count attempt")
	again, err := db.GetLoginFlow(ctx, f.ID, t0.Add(2*time.Minute))
	must(t, err, "get flow")
	if again.UserID != u.ID || !slices.Equal(again.AMR, []string{"pwd"}) || !again.AuthTime.Equal(t0.Add(time.Minute)) ||
		!slices.Equal(again.GrantedScopes, []string{"openid"}) || again.MFAFailures != 1 {
		t.Fatalf("updated flow = %+v", again)
	}
	withUser, user, _, err := db.GetLoginFlowWithUser(ctx, f.ID, t0.Add(2*time.Minute))
	must(t, err, "get flow with user")
	if withUser.ID != f.ID || withUser.UserID != u.ID || withUser.Query != f.Query || string(withUser.BindingHash) != "bind" ||
		withUser.ClientID != f.ClientID || !slices.Equal(withUser.AMR, again.AMR) || !withUser.AuthTime.Equal(again.AuthTime) ||
		!slices.Equal(withUser.GrantedScopes, again.GrantedScopes) || withUser.MFAFailures != 1 ||
		!withUser.ExpiresAt.Equal(again.ExpiresAt) || !withUser.RequestedAt.Equal(again.RequestedAt) || user.ID != u.ID || user.Email != u.Email {
		t.Fatalf("flow with user = %+v, %+v; want %+v and user %s", withUser, user, again, u.ID)
	}
	// Expired flows are gone for every purpose.
	late := t0.Add(15 * time.Minute)
	if _, err := db.GetLoginFlow(ctx, f.ID, late); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired flow read: %v", err)
	}
	if _, _, _, err := db.GetLoginFlowWithUser(ctx, f.ID, late); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired flow read with its user: %v", err)
	}
	if err := db.UpdateLoginFlow(ctx, again, late); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired flow update: %v", err)
	}
	if err := db.ConsumeLoginFlow(ctx, f.ID, late); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired flow consume: %v", err)
	}
	must(t, db.ConsumeLoginFlow(ctx, f.ID, t0.Add(3*time.Minute)), "consume")
	if _, err := db.GetLoginFlow(ctx, f.ID, t0.Add(3*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("consumed flow read: %v", err)
	}
}

func testDeleteUserLoginFlows(t *testing.T, db *store.DB) {
	f := newFlow(t, db)
	u := newUser(t, db, "flows@example.com")
	f.UserID, f.AMR, f.AuthTime = u.ID, []string{"pwd", "otp", "mfa"}, t0
	must(t, db.UpdateLoginFlow(ctx, f, t0), "update")
	anon := store.LoginFlow{ID: "flow2", BindingHash: []byte("b"), ClientID: "rp", Query: "x", RequestedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	must(t, db.CreateLoginFlow(ctx, anon), "create anonymous flow")
	n, err := db.DeleteUserLoginFlows(ctx, u.ID)
	must(t, err, "delete")
	if n != 1 {
		t.Fatalf("deleted %d flows, want the user's one", n)
	}
	if _, err := db.GetLoginFlow(ctx, "flow2", t0); err != nil {
		t.Fatalf("a flow without the user was deleted: %v", err)
	}
}

func testLoginFlowConcurrent(t *testing.T, db *store.DB) {
	f := newFlow(t, db)
	ok, errs := concurrently(20, func(int) error { return db.ConsumeLoginFlow(ctx, f.ID, t0.Add(time.Minute)) })
	if ok != 1 {
		t.Fatalf("%d of 20 concurrent consumptions succeeded, want 1 (%v)", ok, errs)
	}
}

func testBrowserSessions(t *testing.T, db *store.DB) {
	u := newUser(t, db, "sess@example.com")
	s := store.BrowserSession{IDHash: []byte("h1"), UserID: u.ID, AMR: []string{"pwd", "otp", "mfa"}, AuthTime: t0,
		CreatedAt: t0, LastSeenAt: t0, ExpiresAt: t0.Add(12 * time.Hour)}
	must(t, db.CreateBrowserSession(ctx, s), "create session")
	must(t, db.CreateBrowserSession(ctx, store.BrowserSession{IDHash: []byte("h2"), UserID: u.ID, AMR: []string{"pwd"},
		AuthTime: t0, CreatedAt: t0, LastSeenAt: t0, ExpiresAt: t0.Add(12 * time.Hour)}), "create second session")

	idle := func(now time.Time) time.Time { return now.Add(-time.Hour) }
	now := t0.Add(30 * time.Minute)
	got, err := db.GetBrowserSession(ctx, []byte("h1"), now, idle(now))
	must(t, err, "get session")
	if got.UserID != u.ID || !slices.Equal(got.AMR, s.AMR) || !got.AuthTime.Equal(t0) {
		t.Fatalf("session = %+v", got)
	}
	// Idle for more than an hour: gone. Touching keeps it alive.
	now = t0.Add(61 * time.Minute)
	if _, err := db.GetBrowserSession(ctx, []byte("h1"), now, idle(now)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("idle session: %v", err)
	}
	must(t, db.TouchBrowserSession(ctx, []byte("h1"), t0.Add(50*time.Minute)), "touch")
	if _, err := db.GetBrowserSession(ctx, []byte("h1"), now, idle(now)); err != nil {
		t.Fatalf("touched session: %v", err)
	}
	// Past the absolute expiry: gone however recently seen.
	must(t, db.TouchBrowserSession(ctx, []byte("h1"), t0.Add(12*time.Hour)), "touch")
	now = t0.Add(12 * time.Hour)
	if _, err := db.GetBrowserSession(ctx, []byte("h1"), now, idle(now)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired session: %v", err)
	}
	n, err := db.DeleteUserBrowserSessions(ctx, u.ID)
	must(t, err, "delete user sessions")
	if n != 2 {
		t.Fatalf("deleted %d sessions, want 2", n)
	}
}

func testConsentGrants(t *testing.T, db *store.DB) {
	fositeClient(t, db)
	u := newUser(t, db, "consent@example.com")
	if _, err := db.GetConsentGrant(ctx, u.ID, "rp"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no grant yet: %v", err)
	}
	must(t, db.PutConsentGrant(ctx, store.ConsentGrant{UserID: u.ID, ClientID: "rp", Scopes: []string{"openid"}, GrantedAt: t0}), "grant")
	must(t, db.PutConsentGrant(ctx, store.ConsentGrant{UserID: u.ID, ClientID: "rp", Scopes: []string{"openid", "email"}, GrantedAt: t0.Add(time.Hour)}), "regrant")
	g, err := db.GetConsentGrant(ctx, u.ID, "rp")
	must(t, err, "get grant")
	if !slices.Equal(g.Scopes, []string{"openid", "email"}) || !g.GrantedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("grant = %+v", g)
	}
}

func testSigningKeys(t *testing.T, db *store.DB) {
	if _, err := db.ActiveSigningKeyID(ctx, "RS256"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no key yet: %v", err)
	}
	must(t, db.CreateSigningKey(ctx, store.SigningKey{KID: "k1", Alg: "RS256", Sealed: []byte("s1"), CreatedAt: t0}), "k1")
	must(t, db.CreateSigningKey(ctx, store.SigningKey{KID: "k2", Alg: "RS256", Sealed: []byte("s2"), CreatedAt: t0.Add(time.Hour)}), "k2")
	kid, err := db.ActiveSigningKeyID(ctx, "RS256")
	must(t, err, "active key")
	if kid != "k2" {
		t.Fatalf("active = %s, want k2", kid)
	}
	// k1 retired at k2's creation: published while its tokens may live.
	keys, err := db.ListSigningKeys(ctx, t0.Add(30*time.Minute))
	must(t, err, "list")
	if len(keys) != 2 || keys[0].KID != "k2" || !keys[0].RetiredAt.IsZero() || !keys[1].RetiredAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("published keys = %+v", keys)
	}
	keys, err = db.ListSigningKeys(ctx, t0.Add(2*time.Hour))
	must(t, err, "list")
	if len(keys) != 1 || keys[0].KID != "k2" {
		t.Fatalf("after k1's tokens expired: %+v", keys)
	}
}
