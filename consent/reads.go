package consent

import (
	"context"
	"net/http"

	"github.com/twofold-id/twofold/store"
)

// reads remembers, for one request, the users the dispatcher read to place
// a flow (or that came with the flow, loadFlowPastPassword) and their
// second factors at a glance (store.FactorSummary: has
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

// readOnce returns seen[id], reading it with read and keeping it on first
// use; errors are not kept.
func readOnce[V any](ctx context.Context, seen map[string]V, id string, read func(context.Context, string) (V, error)) (V, error) {
	if v, ok := seen[id]; ok {
		return v, nil
	}
	v, err := read(ctx, id)
	if err == nil {
		seen[id] = v
	}
	return v, err
}

// user reads a user, once per request.
func (h *Handler) user(ctx context.Context, id string) (store.User, error) {
	rd := readsOf(ctx)
	return readOnce(ctx, rd.users, id, func(ctx context.Context, id string) (store.User, error) {
		// The user comes with their factors in one query: every step that
		// reads the one goes on to need the other.
		u, fs, err := h.Store.GetUserWithFactors(ctx, id)
		if err == nil {
			rd.factors[id] = fs
		}
		return u, err
	})
}

// factors reads a user's second factors at a glance, once per request.
func (h *Handler) factors(ctx context.Context, userID string) (store.FactorSummary, error) {
	return readOnce(ctx, readsOf(ctx).factors, userID, h.Factors.Summary)
}

// isEnrolled reports whether a user has a second factor.
func (h *Handler) isEnrolled(ctx context.Context, userID string) (bool, error) {
	fs, err := h.factors(ctx, userID)
	return fs.Enrolled(), err
}

// rememberUser notes a user read some other way (by email, at sign-in);
// their factors are read when first asked for.
func rememberUser(ctx context.Context, u store.User) { readsOf(ctx).users[u.ID] = u }

// rememberUserFactors notes a user and their factors read together with
// a flow (loadFlowPastPassword).
func rememberUserFactors(ctx context.Context, u store.User, fs store.FactorSummary) {
	rd := readsOf(ctx)
	rd.users[u.ID], rd.factors[u.ID] = u, fs
}

// forgetUser drops what the request read about a user whose factors or
// state it has just changed.
func forgetUser(ctx context.Context, id string) {
	rd := readsOf(ctx)
	delete(rd.users, id)
	delete(rd.factors, id)
}
