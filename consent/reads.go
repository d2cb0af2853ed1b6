package consent

import (
	"context"
	"net/http"

	"github.com/twofold-id/twofold/store"
)

// reads remembers, for one request, the users the dispatcher read to place
// a flow and their second factors at a glance (store.FactorSummary: has
// one, must have one, what the second-factor page offers), so that the
// step serving the request, and the dispatcher deciding where to go after
// it, do not read them again. A sign-in step reads each at most once this
// way.
//
// It lives in the request's context (withReads, on this package's routes);
// elsewhere (the authorization endpoint calling Authorize and Resume) each
// call gets a fresh one, so every read goes to the store. Nothing is kept
// past the request, and a step that changes a user's factors forgets the
// user (forgetUser), so no decision rests on a read older than the request.
type reads struct {
	users   map[string]store.User
	factors map[string]store.FactorSummary
}

type readsKey struct{}

func newReads() *reads {
	return &reads{users: map[string]store.User{}, factors: map[string]store.FactorSummary{}}
}

// withReads gives each request its own reads.
func withReads(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), readsKey{}, newReads())))
	})
}

// readsOf is the request's reads, or a fresh one remembering nothing
// beyond the call.
func readsOf(ctx context.Context) *reads {
	if rd, ok := ctx.Value(readsKey{}).(*reads); ok {
		return rd
	}
	return newReads()
}

// user reads a user, once per request.
func (h *Handler) user(ctx context.Context, id string) (store.User, error) {
	rd := readsOf(ctx)
	if u, ok := rd.users[id]; ok {
		return u, nil
	}
	u, err := h.Store.GetUser(ctx, id)
	if err == nil {
		rd.users[id] = u
	}
	return u, err
}

// factors reads a user's second factors at a glance, once per request.
func (h *Handler) factors(ctx context.Context, userID string) (store.FactorSummary, error) {
	rd := readsOf(ctx)
	if fs, ok := rd.factors[userID]; ok {
		return fs, nil
	}
	fs, err := h.Factors.Summary(ctx, userID)
	if err == nil {
		rd.factors[userID] = fs
	}
	return fs, err
}

// isEnrolled reports whether a user has a second factor.
func (h *Handler) isEnrolled(ctx context.Context, userID string) (bool, error) {
	fs, err := h.factors(ctx, userID)
	return fs.Enrolled(), err
}

// rememberUser notes a user read some other way (by email, at sign-in).
func rememberUser(ctx context.Context, u store.User) { readsOf(ctx).users[u.ID] = u }

// forgetUser drops what the request read about a user whose factors or
// state it has just changed.
func forgetUser(ctx context.Context, id string) {
	rd := readsOf(ctx)
	delete(rd.users, id)
	delete(rd.factors, id)
}
