package consent

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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

// flowStore serves one flow: with its user through the combined read when
// the flow has one, alone otherwise. It counts every read.
type flowStore struct {
	countingStore
	flow                   store.LoginFlow
	flowReads, joinedReads int
}

func (s *flowStore) GetLoginFlow(_ context.Context, id string, _ time.Time) (store.LoginFlow, error) {
	s.flowReads++
	if id != s.flow.ID {
		return store.LoginFlow{}, store.ErrNotFound
	}
	return s.flow, nil
}

func (s *flowStore) GetLoginFlowWithUser(_ context.Context, id string, _ time.Time) (store.LoginFlow, store.User, store.FactorSummary, error) {
	s.joinedReads++
	if id != s.flow.ID || s.flow.UserID == "" {
		return store.LoginFlow{}, store.User{}, store.FactorSummary{}, store.ErrNotFound
	}
	return s.flow, store.User{ID: s.flow.UserID}, store.FactorSummary{TOTP: true}, nil
}

// TestStepReadsFlowWithUser: a step after the password reads its flow, the
// flow's user and their factors in one query and decides on them without
// another read; a flow still at the password goes back to the form after a
// second read; a flow of another browser is refused however it is read.
func TestStepReadsFlowWithUser(t *testing.T) {
	device := "0123456789abcdefghijklmnopqrstuvwxyz"
	sum := sha256.Sum256([]byte(device))
	st, factors := &flowStore{}, &countingFactors{}
	h := &Handler{Store: st, Factors: factors, Now: time.Now}
	step := func(flow store.LoginFlow, cookie string) (*httptest.ResponseRecorder, bool) {
		st.flow = flow
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/login/2fa?flow="+flow.ID, nil)
		req.AddCookie(&http.Cookie{Name: deviceCookie, Value: cookie})
		var ok bool
		withReads(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, ok = h.atStep(w, r, flow.ID, "/login/2fa")
		})).ServeHTTP(rec, req)
		return rec, ok
	}
	withUser := store.LoginFlow{ID: "f1", BindingHash: sum[:], ClientID: "rp", UserID: "ada", AMR: []string{"pwd"}}
	if _, ok := step(withUser, device); !ok {
		t.Fatal("a flow waiting for its second factor is not at /login/2fa")
	}
	if st.joinedReads != 1 || st.flowReads != 0 || st.userReads != 0 || factors.lookups != 0 {
		t.Fatalf("reads: %d combined, %d flow, %d user, %d factors; want the combined one alone",
			st.joinedReads, st.flowReads, st.userReads, factors.lookups)
	}
	atPassword := store.LoginFlow{ID: "f2", BindingHash: sum[:], ClientID: "rp"}
	rec, ok := step(atPassword, device)
	if ok || rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/login?flow=f2" {
		t.Fatalf("flow at the password: ok %v, %d to %q; want a redirect to the form", ok, rec.Code, rec.Header().Get("Location"))
	}
	if st.joinedReads != 2 || st.flowReads != 1 {
		t.Fatalf("reads: %d combined, %d flow; want 2 and 1", st.joinedReads, st.flowReads)
	}
	for _, f := range []store.LoginFlow{withUser, atPassword} {
		st.flow = f
		req := httptest.NewRequest(http.MethodGet, "/login/2fa", nil)
		req.AddCookie(&http.Cookie{Name: deviceCookie, Value: device + "x"})
		if _, err := h.loadFlowPastPassword(req, f.ID); err != errFlowNotHere {
			t.Fatalf("flow %s from another browser: %v, want errFlowNotHere", f.ID, err)
		}
	}
}
