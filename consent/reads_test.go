package consent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/twofold-id/twofold/store"
)

// countingStore counts user reads; the rest of Store is not used here.
type countingStore struct {
	Store
	userReads int
}

func (s *countingStore) GetUser(_ context.Context, id string) (store.User, error) {
	s.userReads++
	return store.User{ID: id, Email: id + "@example.com"}, nil
}

// countingFactors counts second-factor lookups.
type countingFactors struct {
	SecondFactor
	lookups int
}

func (f *countingFactors) Summary(context.Context, string) (store.FactorSummary, error) {
	f.lookups++
	return store.FactorSummary{TOTP: true}, nil
}

// TestReadsOncePerRequest: within one request on the consent routes a user
// and their second factor are read once; forgetUser sends the next read to
// the store; a new request, or a call outside the routes, reads afresh.
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
			t.Fatalf("store read users %d and factors %d times, want %d and %d", st.userReads, factors.lookups, users, lookups)
		}
	}

	request(readTwice)
	want(1, 1)
	request(func(ctx context.Context) {
		readTwice(ctx)
		forgetUser(ctx, "ada")
		readTwice(ctx)
	})
	want(3, 3)
	request(func(ctx context.Context) {
		rememberUser(ctx, store.User{ID: "ada"})
		if _, err := h.user(ctx, "ada"); err != nil {
			t.Fatal(err)
		}
	})
	want(3, 3)
	readTwice(context.Background()) // outside the routes: nothing kept
	want(5, 5)
}
