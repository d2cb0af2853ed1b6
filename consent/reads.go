package consent

import (
	"context"
	"net/http"

	"github.com/twofold-id/twofold/store"
)

// reads remembers, for one request, the users the dispatcher read to place
// a flow and whether they have a second factor, so that the step serving
// the request, and the dispatcher deciding where to go after it, do not
// read them again. A sign-in step reads each at most once this way.
//
// It lives in the request's context (withReads, on this package's routes);
// elsewhere (the authorization endpoint calling Authorize and Resume) each
// call gets a fresh one, so every read goes to the store. Nothing is kept
// past the request, and a step that changes a user's factors forgets the
// user (forgetUser), so no decision rests on a read older than the request.
type reads struct {
	users    map[string]store.User
	enrolled map[string]bool
}

type readsKey struct{}

func newReads() *reads {
	return &reads{users: map[string]store.User{}, enrolled: map[string]bool{}}
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

// isEnrolled reports whether a user has a second factor, reading it once
// per request.
func (h *Handler) isEnrolled(ctx context.Context, userID string) (bool, error) {
	rd := readsOf(ctx)
	if e, ok := rd.enrolled[userID]; ok {
		return e, nil
	}
	e, err := h.Factors.Enrolled(ctx, userID)
	if err == nil {
		rd.enrolled[userID] = e
	}
	return e, err
}

// rememberUser notes a user read some other way (by email, at sign-in).
func rememberUser(ctx context.Context, u store.User) { readsOf(ctx).users[u.ID] = u }

// forgetUser drops what the request read about a user whose factors or
// state it has just changed.
func forgetUser(ctx context.Context, id string) {
	rd := readsOf(ctx)
	delete(rd.users, id)
	delete(rd.enrolled, id)
}
