package session

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
	"github.com/twofold-id/twofold/web"
)

func newManager(t *testing.T) (*Manager, *time.Time, string) {
	t.Helper()
	db := storetest.SQLite().Open(t)
	u := store.User{ID: "u1", Email: "s@example.com", PasswordHash: "x", CreatedAt: time.Now()}
	if err := db.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	issuer, _ := url.Parse("http://localhost")
	return &Manager{Store: db, Cookies: web.NewCookies(issuer), Now: func() time.Time { return clock }, Idle: time.Hour, MaxAge: 8 * time.Hour}, &clock, u.ID
}

// request carries the cookies rec set.
func request(rec *httptest.ResponseRecorder) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge >= 0 {
			r.AddCookie(c)
		}
	}
	return r
}

func TestStartFindEnd(t *testing.T) {
	m, clock, uid := newManager(t)
	rec := httptest.NewRecorder()
	if _, err := m.Start(rec, httptest.NewRequest("GET", "/", nil), uid, []string{"pwd"}, *clock); err != nil {
		t.Fatal(err)
	}
	r := request(rec)
	s, err := m.Current(r)
	if err != nil || s.UserID != uid || !slices.Equal(s.AMR, []string{"pwd"}) {
		t.Fatalf("Current = %+v, %v", s, err)
	}
	if id := m.Cookies.Get(r, CookieName); len(id) < 40 || string(s.IDHash) == id {
		t.Fatalf("session id %q is short or stored as is", id)
	}
	if err := m.End(httptest.NewRecorder(), r); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Current(r); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ended session still found: %v", err)
	}
}

// TestStartReplacesSession: signing in again issues a new id and kills the
// old one, so an id fixed before sign-in is worthless after it.
func TestStartReplacesSession(t *testing.T) {
	m, clock, uid := newManager(t)
	rec := httptest.NewRecorder()
	m.Start(rec, httptest.NewRequest("GET", "/", nil), uid, []string{"pwd"}, *clock)
	old := request(rec)
	rec2 := httptest.NewRecorder()
	if _, err := m.Start(rec2, old, uid, []string{"pwd", "otp", "mfa"}, *clock); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Current(old); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the previous session id still works: %v", err)
	}
	s, err := m.Current(request(rec2))
	if err != nil || !slices.Contains(s.AMR, "mfa") {
		t.Fatalf("new session = %+v, %v", s, err)
	}
}

func TestTimeouts(t *testing.T) {
	m, clock, uid := newManager(t)
	rec := httptest.NewRecorder()
	m.Start(rec, httptest.NewRequest("GET", "/", nil), uid, []string{"pwd"}, *clock)
	r := request(rec)
	// Used every 50 minutes: the idle clock keeps moving.
	for range 5 {
		*clock = clock.Add(50 * time.Minute)
		if _, err := m.Current(r); err != nil {
			t.Fatalf("active session ended at %s: %v", clock, err)
		}
	}
	// Past the absolute maximum (8 h) it ends however active.
	*clock = clock.Add(4 * time.Hour)
	if _, err := m.Current(r); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session outlived its maximum age: %v", err)
	}
	// Idle for more than an hour: ended.
	rec = httptest.NewRecorder()
	m.Start(rec, httptest.NewRequest("GET", "/", nil), uid, []string{"pwd"}, *clock)
	*clock = clock.Add(61 * time.Minute)
	if _, err := m.Current(request(rec)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("idle session still alive: %v", err)
	}
}
