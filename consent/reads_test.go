package consent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/twofold-id/twofold/store"
)

// countingStore counts reads of a user (with their factors); the rest of
// Store is not used here.
type countingStore struct {
	Store
	userReads int
}

func (s *countingStore) GetUserWithFactors(_ context.Context, id string) (store.User, store.FactorSummary, error) {
	s.userReads++
	return store.User{ID: id, Email: id + "@example.com"}, store.FactorSummary{TOTP: true}, nil
}

// countingFactors counts second-factor lookups on their own.
type countingFactors struct {
	SecondFactor
	lookups int
}

// Summary answers differently from countingStore's combined read (a key,
// not an app), so the tests see which read a decision used.
func (f *countingFactors) Summary(context.Context, string) (store.FactorSummary, error) {
	f.lookups++
	return store.FactorSummary{Keys: 1}, nil
}

// TestReadsOncePerRequest: within one request on the consent routes a user
// and their second factors are read once, together; forgetUser sends the
// next read to the store; a new request, or a call outside the routes,
// reads afresh. Factors asked for before their user, or for a user
// remembered from another read, are looked up alone.
func TestReadsOncePerRequest(t *testing.T) {
	st, factors := &countingStore{}, &countingFactors{}
	h := &Handler{Store: st, Factors: factors}
	readTwice := func(ctx context.Context) {
		for range 2 {
			if u, err := h.user(ctx, "ada"); err != nil || u.ID != "ada" {
				t.Fatalf("user = %+v, %v", u, err)
			}
			if e, err := h.isEnrolled(ctx, "ada"); err != nil || !e {
				t.Fatalf("enrolled = %v, %v", e, err)
			}
		}
	}
	request := func(fn func(ctx context.Context)) {
		withReads(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { fn(r.Context()) })).
			ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/login", nil))
	}
	want := func(users, lookups int) {
		t.Helper()
		if st.userReads != users || factors.lookups != lookups {
			t.Fatalf("store read users %d and factors alone %d times, want %d and %d", st.userReads, factors.lookups, users, lookups)
		}
	}

	request(func(ctx context.Context) {
		readTwice(ctx)
		if fs, err := h.factors(ctx, "ada"); err != nil || !fs.TOTP {
			t.Fatalf("factors after reading the user = %+v, %v; want the combined read's", fs, err)
		}
	})
	want(1, 0)
	request(func(ctx context.Context) {
		readTwice(ctx)
		forgetUser(ctx, "ada")
		readTwice(ctx)
	})
	want(3, 0)
	// A user remembered from another read (by email, before the password
	// hash) comes without factors: they are read when asked for.
	request(func(ctx context.Context) {
		rememberUser(ctx, store.User{ID: "ada"})
		if _, err := h.user(ctx, "ada"); err != nil {
			t.Fatal(err)
		}
		if fs, err := h.factors(ctx, "ada"); err != nil || fs.Keys != 1 {
			t.Fatalf("factors after rememberUser = %+v, %v; want a fresh lookup's", fs, err)
		}
	})
	want(3, 1)
	request(func(ctx context.Context) {
		if e, err := h.isEnrolled(ctx, "ada"); err != nil || !e {
			t.Fatalf("enrolled = %v, %v", e, err)
		}
		readTwice(ctx)
	})
	want(4, 2)
	readTwice(context.Background()) // outside the routes: nothing kept
	want(6, 4)
}
