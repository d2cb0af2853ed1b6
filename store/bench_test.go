package store_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// Benchmarks of the store's hot queries, on every configured backend:
// go test -run '^$' -bench . -benchmem ./store (PostgreSQL too with
// TWOFOLD_TEST_DATABASE_URL set).

func benchBackends(b *testing.B, fn func(b *testing.B, db *store.DB)) {
	for _, be := range storetest.Backends(b) {
		b.Run(be.Name, func(b *testing.B) { fn(b, be.Open(b)) })
	}
}

func benchClient(b *testing.B, db *store.DB) *store.Client {
	c := store.Client{ID: "rp", Name: "RP", RedirectURIs: []string{"https://rp.example/cb"},
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}, CreatedAt: time.Now()}
	if err := db.CreateClient(context.Background(), c); err != nil {
		b.Fatal(err)
	}
	// The user "u" the tokens are for: a user's tokens are written only
	// while the user exists (store.insertSessions).
	if err := db.CreateUser(context.Background(), store.User{ID: "u", Email: "u@example.com", PasswordHash: "x", CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	return &c
}

func BenchmarkGetAccessTokenSession(b *testing.B) {
	benchBackends(b, func(b *testing.B, db *store.DB) {
		ctx := context.Background()
		c := benchClient(b, db)
		sess := &openid.DefaultSession{Subject: "u", Claims: &jwt.IDTokenClaims{Subject: "u"}, Headers: &jwt.Headers{}}
		req := &fosite.Request{ID: "r", RequestedAt: time.Now(), Client: c, GrantedScope: fosite.Arguments{"openid"}, Form: url.Values{}, Session: sess}
		if err := db.CreateAccessTokenSession(ctx, "sig", req); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := db.GetAccessTokenSession(ctx, "sig", &openid.DefaultSession{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkRateLimitAttempt(b *testing.B) {
	benchBackends(b, func(b *testing.B, db *store.DB) {
		ctx := context.Background()
		limit := store.Backoff{Free: 1 << 30, Base: time.Second, Max: time.Second}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if err := db.RateLimitAttempt(ctx, fmt.Sprint("k", i%64), limit, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkUseBackupCode(b *testing.B) {
	benchBackends(b, func(b *testing.B, db *store.DB) {
		ctx := context.Background()
		u := store.User{ID: "u", Email: "b@example.com", PasswordHash: "x", CreatedAt: time.Now()}
		if err := db.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			h := []byte(fmt.Sprint("code-", i))
			b.StopTimer()
			if err := db.ReplaceBackupCodes(ctx, u.ID, [][]byte{h}, time.Now()); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := db.UseBackupCode(ctx, u.ID, h, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
