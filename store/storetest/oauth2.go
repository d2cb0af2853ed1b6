package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/twofold-id/twofold/store"
)

// fositeClient registers a client the fosite cases use, and the users
// alice and bob their tokens are for (a user's codes and tokens are
// written only while the user exists without a pending 2FA reset).
func fositeClient(t *testing.T, db *store.DB) *store.Client {
	t.Helper()
	c := store.Client{ID: "rp", Name: "RP", RedirectURIs: []string{"https://rp.example/cb"},
		GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"},
		Scopes:     []string{"openid", "offline_access"}, CreatedAt: t0}
	must(t, db.CreateClient(ctx, c), "create client")
	for _, id := range []string{"alice", "bob"} {
		must(t, db.CreateUser(ctx, store.User{ID: id, Email: id + "@example.com", PasswordHash: "$argon2id$x", CreatedAt: t0}), "create user %s", id)
	}
	return &c
}

func newSession(subject string) *openid.DefaultSession {
	return &openid.DefaultSession{
		Subject: subject,
		Claims:  &jwt.IDTokenClaims{Subject: subject, AuthTime: t0, Extra: map[string]any{}},
		Headers: &jwt.Headers{Extra: map[string]any{}},
		ExpiresAt: map[fosite.TokenType]time.Time{
			fosite.AuthorizeCode: t0.Add(10 * time.Minute), fosite.AccessToken: t0.Add(time.Hour),
		},
	}
}

func newRequest(c *store.Client, id, subject string) *fosite.Request {
	return &fosite.Request{
		ID: id, RequestedAt: t0, Client: c,
		RequestedScope: fosite.Arguments{"openid", "offline_access"}, GrantedScope: fosite.Arguments{"openid", "offline_access"},
		Form: url.Values{"redirect_uri": {"https://rp.example/cb"}}, Session: newSession(subject),
	}
}

func testAuthorizeCode(t *testing.T, db *store.DB) {
	c := fositeClient(t, db)
	must(t, db.CreateAuthorizeCodeSession(ctx, "code-sig", newRequest(c, "req1", "alice")), "create code")

	sess := newSession("")
	got, err := db.GetAuthorizeCodeSession(ctx, "code-sig", sess)
	must(t, err, "get code")
	if got.GetID() != "req1" || got.GetClient().GetID() != "rp" || sess.Subject != "alice" ||
		got.GetRequestForm().Get("redirect_uri") != "https://rp.example/cb" || !got.GetGrantedScopes().Has("offline_access") {
		t.Fatalf("code session = %+v (session %+v)", got, sess)
	}
	if !got.GetRequestedAt().Equal(t0) {
		t.Fatalf("requested at = %v, want %v", got.GetRequestedAt(), t0)
	}

	must(t, db.InvalidateAuthorizeCodeSession(ctx, "code-sig"), "invalidate")
	got, err = db.GetAuthorizeCodeSession(ctx, "code-sig", newSession(""))
	if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || got == nil || got.GetID() != "req1" {
		t.Fatalf("used code: request %v, err %v; want the request and ErrInvalidatedAuthorizeCode", got, err)
	}
	if err := db.InvalidateAuthorizeCodeSession(ctx, "code-sig"); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Fatalf("second invalidation: %v, want ErrInvalidatedAuthorizeCode", err)
	}
	if _, err := db.GetAuthorizeCodeSession(ctx, "unknown", newSession("")); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("unknown code: %v, want fosite.ErrNotFound", err)
	}
}

func testAuthorizeCodeConcurrent(t *testing.T, db *store.DB) {
	c := fositeClient(t, db)
	must(t, db.CreateAuthorizeCodeSession(ctx, "code-sig", newRequest(c, "req1", "alice")), "create code")
	// Each redemption reads the code first, through its own request's
	// reads, as the token endpoint does: that must not weaken single use.
	ok, errs := concurrently(20, func(int) error {
		rctx := store.WithCodeReads(ctx)
		if _, err := db.GetAuthorizeCodeSession(rctx, "code-sig", newSession("")); err != nil {
			return err
		}
		return db.InvalidateAuthorizeCodeSession(rctx, "code-sig")
	})
	if ok != 1 {
		t.Fatalf("%d of 20 concurrent invalidations succeeded, want exactly 1 (errors: %v)", ok, errs)
	}
	for _, err := range errs {
		if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
			t.Fatalf("loser error = %v, want ErrInvalidatedAuthorizeCode", err)
		}
	}
}

func testAccessTokens(t *testing.T, db *store.DB) {
	c := fositeClient(t, db)
	must(t, db.CreateAccessTokenSession(ctx, "at", newRequest(c, "req1", "alice")), "create access")
	sess := newSession("")
	got, err := db.GetAccessTokenSession(ctx, "at", sess)
	must(t, err, "get access")
	if got.GetID() != "req1" || sess.GetSubject() != "alice" || !sess.GetExpiresAt(fosite.AccessToken).Equal(t0.Add(time.Hour)) {
		t.Fatalf("access session = %+v", sess)
	}
	must(t, db.DeleteAccessTokenSession(ctx, "at"), "delete access")
	if _, err := db.GetAccessTokenSession(ctx, "at", newSession("")); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("deleted access token: %v", err)
	}
}

func testRefreshRotation(t *testing.T, db *store.DB) {
	c := fositeClient(t, db)
	must(t, db.CreateAccessTokenSession(ctx, "at1", newRequest(c, "req1", "alice")), "create access")
	must(t, db.CreateRefreshTokenSession(ctx, "rt1", "at1", newRequest(c, "req1", "alice")), "create refresh")
	must(t, db.RotateRefreshToken(ctx, "req1", "rt1"), "rotate")
	// The rotated token is kept, inactive, so its reuse is recognised.
	got, err := db.GetRefreshTokenSession(ctx, "rt1", newSession(""))
	if !errors.Is(err, fosite.ErrInactiveToken) || got == nil || got.GetID() != "req1" {
		t.Fatalf("rotated refresh token: %v, %v; want request and ErrInactiveToken", got, err)
	}
	// Its access tokens died with it.
	if _, err := db.GetAccessTokenSession(ctx, "at1", newSession("")); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("access token after rotation: %v, want not found", err)
	}
	if err := db.RotateRefreshToken(ctx, "req1", "rt1"); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Fatalf("second rotation: %v, want ErrInactiveToken", err)
	}
}

func testRefreshConcurrent(t *testing.T, db *store.DB) {
	c := fositeClient(t, db)
	must(t, db.CreateRefreshTokenSession(ctx, "rt1", "", newRequest(c, "req1", "alice")), "create refresh")
	ok, errs := concurrently(20, func(int) error {
		return db.InTx(ctx, func(ctx context.Context) error { return db.RotateRefreshToken(ctx, "req1", "rt1") })
	})
	if ok != 1 {
		t.Fatalf("%d of 20 concurrent rotations succeeded, want 1 (%v)", ok, errs)
	}
}

func testRevokeByRequest(t *testing.T, db *store.DB) {
	c := fositeClient(t, db)
	for i, id := range []string{"req1", "req1", "req2"} {
		must(t, db.CreateAccessTokenSession(ctx, fmt.Sprintf("at%d", i), newRequest(c, id, "alice")), "access")
		must(t, db.CreateRefreshTokenSession(ctx, fmt.Sprintf("rt%d", i), "", newRequest(c, id, "alice")), "refresh")
	}
	must(t, db.RevokeAccessToken(ctx, "req1"), "revoke access")
	must(t, db.RevokeRefreshToken(ctx, "req1"), "revoke refresh")
	for i, wantGone := range []bool{true, true, false} {
		_, errA := db.GetAccessTokenSession(ctx, fmt.Sprintf("at%d", i), newSession(""))
		_, errR := db.GetRefreshTokenSession(ctx, fmt.Sprintf("rt%d", i), newSession(""))
		if gone := errors.Is(errA, fosite.ErrNotFound) && errors.Is(errR, fosite.ErrNotFound); gone != wantGone {
			t.Fatalf("tokens %d: gone = %v, want %v (%v, %v)", i, gone, wantGone, errA, errR)
		}
	}
}

func testRevokeUserTokens(t *testing.T, db *store.DB) {
	c := fositeClient(t, db)
	must(t, db.CreateAccessTokenSession(ctx, "at-a", newRequest(c, "r1", "alice")), "access alice")
	must(t, db.CreateRefreshTokenSession(ctx, "rt-a", "", newRequest(c, "r1", "alice")), "refresh alice")
	must(t, db.CreateAccessTokenSession(ctx, "at-b", newRequest(c, "r2", "bob")), "access bob")
	createCodeFamily(t, db, c, "alice-code", ctx) // a code of alice's, not yet redeemed
	n, err := db.RevokeUserTokens(ctx, "alice")
	must(t, err, "revoke alice")
	if n != 5 {
		t.Fatalf("revoked %d rows, want 5 (2 tokens, a code and its PKCE and OIDC records)", n)
	}
	if code, pkce, oidc := readFamily(t, db, ctx, "alice-code"); code || pkce || oidc {
		t.Fatalf("alice's code outlived the revocation: code %v, pkce %v, oidc %v", code, pkce, oidc)
	}
	if _, err := db.GetAccessTokenSession(ctx, "at-b", newSession("")); err != nil {
		t.Fatalf("bob's token was touched: %v", err)
	}
}

func testTransactions(t *testing.T, db *store.DB) {
	c := fositeClient(t, db)
	txCtx, err := db.BeginTX(ctx)
	must(t, err, "begin")
	must(t, db.CreateAccessTokenSession(txCtx, "rolled-back", newRequest(c, "r1", "alice")), "create in tx")
	must(t, db.Rollback(txCtx), "rollback")
	if _, err := db.GetAccessTokenSession(ctx, "rolled-back", newSession("")); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("rolled-back write is visible: %v", err)
	}

	txCtx, err = db.BeginTX(ctx)
	must(t, err, "begin")
	must(t, db.CreateAccessTokenSession(txCtx, "committed", newRequest(c, "r2", "alice")), "create in tx")
	must(t, db.Commit(txCtx), "commit")
	if _, err := db.GetAccessTokenSession(ctx, "committed", newSession("")); err != nil {
		t.Fatalf("committed write is missing: %v", err)
	}

	// InTx rolls back on error.
	boom := errors.New("boom")
	err = db.InTx(ctx, func(ctx context.Context) error {
		if err := db.CreateAccessTokenSession(ctx, "in-tx", newRequest(c, "r3", "alice")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx error = %v", err)
	}
	if _, err := db.GetAccessTokenSession(ctx, "in-tx", newSession("")); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("InTx write survived its error: %v", err)
	}
}

// testTokensHeldByUser: a user's codes, tokens and their companions are
// written, and a code is redeemed or a refresh token rotated, only while
// the user exists without a pending 2FA reset; a refused write leaves
// nothing and says ErrUserInactive. A client's own tokens (no subject)
// have no user to hold them. The PostgreSQL race with an owner's reset
// is cmd/twofold's TestResetRacesCodeInsert.
func testTokensHeldByUser(t *testing.T, db *store.DB) {
	c := fositeClient(t, db)
	createCodeFamily(t, db, c, "live", ctx)
	must(t, db.CreateRefreshTokenSession(ctx, "rt", "", newRequest(c, "req-rt", "alice")), "refresh token")
	must(t, db.SetMFAState(ctx, "alice", store.MFAResetPending), "reset alice")

	bctx := store.WithCodeBatch(ctx)
	createCodeFamily(t, db, c, "after-reset", bctx)
	if err := db.FlushCodeBatch(bctx); !errors.Is(err, store.ErrUserInactive) {
		t.Fatalf("code batch for a reset user: %v, want ErrUserInactive", err)
	}
	if code, pkce, oidc := readFamily(t, db, ctx, "after-reset"); code || pkce || oidc {
		t.Fatalf("refused batch wrote code %v, pkce %v, oidc %v", code, pkce, oidc)
	}
	for _, sub := range []string{"alice", "nobody"} {
		if err := db.CreateAccessTokenSession(ctx, "at-"+sub, newRequest(c, "req-"+sub, sub)); !errors.Is(err, store.ErrUserInactive) {
			t.Fatalf("access token for %s: %v, want ErrUserInactive", sub, err)
		}
		if _, err := db.GetAccessTokenSession(ctx, "at-"+sub, newSession("")); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("refused access token for %s was stored: %v", sub, err)
		}
	}
	if err := db.InvalidateAuthorizeCodeSession(ctx, "live"); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Fatalf("redeeming a reset user's code: %v, want ErrInvalidatedAuthorizeCode", err)
	}
	if err := db.RotateRefreshToken(ctx, "req-rt", "rt"); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Fatalf("rotating a reset user's refresh token: %v, want ErrInactiveToken", err)
	}

	// Others are unaffected: bob, and the client acting for itself.
	must(t, db.CreateAccessTokenSession(ctx, "at-bob", newRequest(c, "req-bob", "bob")), "access token for bob")
	must(t, db.CreateAccessTokenSession(ctx, "at-client", newRequest(c, "req-client", "")), "client's own access token")
	// Once enrolled again, alice gets codes again.
	must(t, db.SetMFAState(ctx, "alice", store.MFANone), "alice enrolled again")
	bctx = store.WithCodeBatch(ctx)
	createCodeFamily(t, db, c, "re-enrolled", bctx)
	must(t, db.FlushCodeBatch(bctx), "code after re-enrolling")
	must(t, db.InvalidateAuthorizeCodeSession(ctx, "re-enrolled"), "redeem after re-enrolling")
}

// testTokensWaitForReset: with an owner's reset open (the user's row
// locked, their codes and tokens revoked, the reset marked, not yet
// committed), a code's INSERT, a code's redemption and a refresh token's
// rotation that arrive meanwhile wait for it and then find the reset:
// nothing is written, and each says so as it would after the reset. On
// PostgreSQL they wait on the user's row (insertSessions, heldByUser); on
// SQLite, on the one writer. The pause before the commit lets each reach
// the database first; one that arrived after the commit must end the same.
func testTokensWaitForReset(t *testing.T, db *store.DB) {
	c := fositeClient(t, db)
	cases := []struct {
		name string
		op   func() error
		want error
	}{
		{"code batch", func() error {
			bctx := store.WithCodeBatch(ctx)
			createCodeFamily(t, db, c, "new", bctx)
			return db.FlushCodeBatch(bctx)
		}, store.ErrUserInactive},
		{"code redemption", func() error { return db.InvalidateAuthorizeCodeSession(ctx, "old") }, fosite.ErrInvalidatedAuthorizeCode},
		{"refresh rotation", func() error { return db.RotateRefreshToken(ctx, "req-rt", "rt") }, fosite.ErrInactiveToken},
	}
	for _, tc := range cases {
		must(t, db.SetMFAState(ctx, "alice", store.MFANone), "alice without a reset")
		createCodeFamily(t, db, c, "old", ctx)
		must(t, db.CreateRefreshTokenSession(ctx, "rt", "", newRequest(c, "req-rt", "alice")), "refresh token")

		reset, err := db.BeginTX(ctx)
		must(t, err, "begin the reset")
		must(t, db.LockUser(reset, "alice"), "lock alice")
		_, err = db.RevokeUserTokens(reset, "alice")
		must(t, err, "revoke alice's tokens")
		must(t, db.SetMFAState(reset, "alice", store.MFAResetPending), "mark the reset")
		done := make(chan error, 1)
		go func() { done <- tc.op() }()
		time.Sleep(50 * time.Millisecond)
		must(t, db.Commit(reset), "commit the reset")
		if err := <-done; !errors.Is(err, tc.want) {
			t.Fatalf("%s during a reset: %v, want %v", tc.name, err, tc.want)
		}
		// What is left of alice's to revoke now: nothing.
		if n, err := db.RevokeUserTokens(ctx, "alice"); err != nil || n != 0 {
			t.Fatalf("%s during a reset left %d rows of alice's (%v)", tc.name, n, err)
		}
	}
}
