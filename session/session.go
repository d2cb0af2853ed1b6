// Package session manages signed-in browsers.
//
// A session id is 256 random bits, carried only in an HttpOnly cookie
// (SameSite=Lax; Secure and __Host- prefixed on https issuers) and stored
// only as its SHA-256, so a database dump yields no usable session. Sessions
// end after an idle period and at an absolute maximum age, whichever comes
// first, and a new id is issued at every sign-in (never reused across a
// change of who is signed in or how strongly), which defeats session
// fixation.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/web"
)

// CookieName is the session cookie's base name.
const CookieName = "twofold_session"

// touchEvery limits idle-clock writes to one per minute per session.
const touchEvery = time.Minute

// Store is what the manager needs of the store.
type Store interface {
	CreateBrowserSession(ctx context.Context, s store.BrowserSession) error
	GetBrowserSession(ctx context.Context, idHash []byte, now, idleCutoff time.Time) (store.BrowserSession, error)
	TouchBrowserSession(ctx context.Context, idHash []byte, now time.Time) error
	DeleteBrowserSession(ctx context.Context, idHash []byte) error
}

// Manager starts, finds and ends browser sessions.
type Manager struct {
	Store   Store
	Cookies web.Cookies
	Now     func() time.Time
	// Idle ends a session not used for this long.
	Idle time.Duration
	// MaxAge ends a session this long after sign-in, however active.
	MaxAge time.Duration
}

func hashID(id string) []byte {
	sum := sha256.Sum256([]byte(id))
	return sum[:]
}

// Current returns the browser's live session, or store.ErrNotFound.
func (m *Manager) Current(r *http.Request) (store.BrowserSession, error) {
	id := m.Cookies.Get(r, CookieName)
	if id == "" {
		return store.BrowserSession{}, store.ErrNotFound
	}
	now := m.Now()
	s, err := m.Store.GetBrowserSession(r.Context(), hashID(id), now, now.Add(-m.Idle))
	if err != nil {
		return store.BrowserSession{}, err
	}
	if now.Sub(s.LastSeenAt) >= touchEvery {
		if err := m.Store.TouchBrowserSession(r.Context(), s.IDHash, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.BrowserSession{}, err
		}
	}
	return s, nil
}

// Start signs the browser in as userID, authenticated by amr at authTime.
// Any session the browser had is ended first, and the new one gets a fresh
// id, so an id planted before sign-in is worthless after it.
func (m *Manager) Start(w http.ResponseWriter, r *http.Request, userID string, amr []string, authTime time.Time) (store.BrowserSession, error) {
	if err := m.End(w, r); err != nil {
		return store.BrowserSession{}, err
	}
	id := rand.Text() + rand.Text() // 2 × 128 bits
	now := m.Now()
	s := store.BrowserSession{
		IDHash: hashID(id), UserID: userID, AMR: slices.Clone(amr), AuthTime: authTime,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(m.MaxAge),
	}
	if err := m.Store.CreateBrowserSession(r.Context(), s); err != nil {
		return store.BrowserSession{}, fmt.Errorf("start session: %w", err)
	}
	// A browser-session cookie: closing the browser signs out too.
	m.Cookies.Set(w, CookieName, id, 0)
	return s, nil
}

// End signs the browser out. It is not an error if it was not signed in.
func (m *Manager) End(w http.ResponseWriter, r *http.Request) error {
	id := m.Cookies.Get(r, CookieName)
	if id == "" {
		return nil
	}
	m.Cookies.Clear(w, CookieName)
	if err := m.Store.DeleteBrowserSession(r.Context(), hashID(id)); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}
