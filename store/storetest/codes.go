package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/twofold-id/twofold/store"
)

// createCodeFamily stores a code, its PKCE record and its OpenID Connect
// session under sig, with ctx (which may carry a batch).
func createCodeFamily(t *testing.T, db *store.DB, c *store.Client, sig string, wctx context.Context) {
	t.Helper()
	r := newRequest(c, "req-"+sig, "alice")
	r.Form.Set("code_challenge", "challenge-"+sig)
	r.Form.Set("nonce", "nonce-"+sig)
	must(t, db.CreateAuthorizeCodeSession(wctx, sig, r), "create code")
	must(t, db.CreatePKCERequestSession(wctx, sig, r), "create pkce")
	must(t, db.CreateOIDCSession(wctx, sig, r), "create oidc")
}

// readFamily reads the three rows under sig with rctx and reports which
// were found; any error other than not found fails the test.
func readFamily(t *testing.T, db *store.DB, rctx context.Context, sig string) (code, pkce, oidc bool) {
	t.Helper()
	found := func(what string, err error, notFound ...error) bool {
		for _, nf := range notFound {
			if errors.Is(err, nf) {
				return false
			}
		}
		must(t, err, "read %s", what)
		return true
	}
	_, err := db.GetAuthorizeCodeSession(rctx, sig, newSession(""))
	code = found("code", err, fosite.ErrNotFound, fosite.ErrInvalidatedAuthorizeCode)
	got, err := db.GetPKCERequestSession(rctx, sig, newSession(""))
	if pkce = found("pkce", err, fosite.ErrNotFound); pkce && got.GetRequestForm().Get("code_challenge") != "challenge-"+sig {
		t.Fatalf("pkce record of %s has form %v", sig, got.GetRequestForm())
	}
	holder := &fosite.Request{Session: newSession("")}
	got, err = db.GetOIDCSession(rctx, sig, holder)
	if oidc = found("oidc", err, openid.ErrNoSessionFound); oidc &&
		(got.GetRequestForm().Get("nonce") != "nonce-"+sig || got.GetSession().(*openid.DefaultSession).Subject != "alice") {
		t.Fatalf("oidc session of %s = %+v", sig, got)
	}
	return code, pkce, oidc
}

// A code's PKCE record and OpenID Connect session live until the code is
// used: fosite's delete of the PKCE record changes nothing, and the
// invalidation removes both with the code's single use.
func testCodeCompanions(t *testing.T, db *store.DB) {
	c := fositeClient(t, db)
	createCodeFamily(t, db, c, "sig", ctx)
	createCodeFamily(t, db, c, "other", ctx)
	if code, pkce, oidc := readFamily(t, db, ctx, "sig"); !code || !pkce || !oidc {
		t.Fatalf("after create: code %v, pkce %v, oidc %v; want all", code, pkce, oidc)
	}
	must(t, db.DeletePKCERequestSession(ctx, "sig"), "delete pkce")
	if _, pkce, _ := readFamily(t, db, ctx, "sig"); !pkce {
		t.Fatal("DeletePKCERequestSession removed the record of a live code")
	}
	must(t, db.InvalidateAuthorizeCodeSession(ctx, "sig"), "invalidate")
	if code, pkce, oidc := readFamily(t, db, ctx, "sig"); code || pkce || oidc {
		t.Fatalf("after invalidation: code active %v, pkce %v, oidc %v; want none", code, pkce, oidc)
	}
	if code, pkce, oidc := readFamily(t, db, ctx, "other"); !code || !pkce || !oidc {
		t.Fatalf("another code's rows were touched: code %v, pkce %v, oidc %v", code, pkce, oidc)
	}
	if _, err := db.GetOIDCSession(ctx, "unknown", &fosite.Request{Session: newSession("")}); !errors.Is(err, openid.ErrNoSessionFound) {
		t.Fatalf("unknown oidc session: %v, want ErrNoSessionFound", err)
	}
}

// Within one token request (WithCodeReads) the code family is read once:
// rows deleted behind the request's back are still served, the request's
// own invalidation is seen, and each read gets its own copy.
func testCodeReads(t *testing.T, db *store.DB) {
	c := fositeClient(t, db)
	createCodeFamily(t, db, c, "sig", ctx)
	rctx := store.WithCodeReads(ctx)
	got, err := db.GetAuthorizeCodeSession(rctx, "sig", newSession(""))
	must(t, err, "first read")
	got.GetRequestForm().Set("redirect_uri", "https://evil.example/")
	got.GetGrantedScopes()[0] = "changed"

	// Another request redeems the code: this one still holds what it read.
	must(t, db.InvalidateAuthorizeCodeSession(ctx, "sig"), "invalidate elsewhere")
	if code, pkce, oidc := readFamily(t, db, rctx, "sig"); !code || !pkce || !oidc {
		t.Fatalf("request's reads: code %v, pkce %v, oidc %v; want all from its first query", code, pkce, oidc)
	}
	again, err := db.GetAuthorizeCodeSession(rctx, "sig", newSession(""))
	must(t, err, "read again")
	if again.GetRequestForm().Get("redirect_uri") != "https://rp.example/cb" || again.GetGrantedScopes()[0] != "openid" {
		t.Fatalf("a change to one read's request leaked into the next: %v %v", again.GetRequestForm(), again.GetGrantedScopes())
	}
	// Its own invalidation fails (the code is used) and changes nothing.
	if err := db.InvalidateAuthorizeCodeSession(rctx, "sig"); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Fatalf("second invalidation: %v, want ErrInvalidatedAuthorizeCode", err)
	}

	// A request that invalidates the code sees it used, and keeps the
	// OpenID Connect session it needs to finish the ID token.
	createCodeFamily(t, db, c, "sig2", ctx)
	rctx = store.WithCodeReads(ctx)
	if code, _, _ := readFamily(t, db, rctx, "sig2"); !code {
		t.Fatal("sig2 not found")
	}
	must(t, db.InvalidateAuthorizeCodeSession(rctx, "sig2"), "invalidate sig2")
	if code, _, oidc := readFamily(t, db, rctx, "sig2"); code || !oidc {
		t.Fatalf("after own invalidation: code active %v, oidc %v; want used code, session kept", code, oidc)
	}
	if _, _, oidc := readFamily(t, db, ctx, "sig2"); oidc {
		t.Fatal("the oidc session is still stored after the code's invalidation")
	}
}

// WithCodeBatch collects a code's rows; FlushCodeBatch writes all or none.
func testCodeBatch(t *testing.T, db *store.DB) {
	c := fositeClient(t, db)
	must(t, db.FlushCodeBatch(ctx), "flush without a batch")

	bctx := store.WithCodeBatch(ctx)
	createCodeFamily(t, db, c, "sig", bctx)
	if code, pkce, oidc := readFamily(t, db, ctx, "sig"); code || pkce || oidc {
		t.Fatalf("before the flush: code %v, pkce %v, oidc %v; want nothing written", code, pkce, oidc)
	}
	must(t, db.FlushCodeBatch(bctx), "flush")
	if code, pkce, oidc := readFamily(t, db, ctx, "sig"); !code || !pkce || !oidc {
		t.Fatalf("after the flush: code %v, pkce %v, oidc %v; want all", code, pkce, oidc)
	}
	must(t, db.FlushCodeBatch(bctx), "second flush of an emptied batch")

	// A batch whose last row collides writes none of its rows.
	must(t, db.CreatePKCERequestSession(ctx, "taken", newRequest(c, "req-x", "bob")), "create pkce")
	bctx = store.WithCodeBatch(ctx)
	r := newRequest(c, "req-taken", "alice")
	must(t, db.CreateAuthorizeCodeSession(bctx, "taken", r), "collect code")
	must(t, db.CreatePKCERequestSession(bctx, "taken", r), "collect pkce")
	if err := db.FlushCodeBatch(bctx); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("flush over an existing row: %v, want ErrConflict", err)
	}
	if _, err := db.GetAuthorizeCodeSession(ctx, "taken", newSession("")); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("a failed flush left the code: %v", err)
	}
}
