package web

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"
)

// probedMethods are the methods a not-found request is tried with again.
var probedMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// NotFoundOrNotAllowed is router's NotFoundHandler and
// MethodNotAllowedHandler: a request whose path a route serves with other
// methods gets 405 with an Allow header (RFC 9110 §15.5.6), any other 404.
//
// gorilla/mux finds a method mismatch itself only at the top level: inside
// a subrouter under a path prefix, a sibling route clears the mismatch
// (each route repeats the prefix's matcher, and a matching matcher resets
// it), so /settings/members asked with DELETE came out as 404. Trying the
// path with each other method through router.Match is exact instead: it
// runs the matchers and wraps (never calls) the matched handler in its
// middlewares, and it costs nothing on the paths that exist. A match
// counts only when it reached a route with a handler of its own: a
// subrouter that answers a mismatch itself (its MethodNotAllowedHandler)
// reports the match on its prefix route, which has none.
func NotFoundOrNotAllowed(router *mux.Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		probe := r.Clone(r.Context()) // Match reads the request, never changes it
		for _, m := range probedMethods {
			if m == r.Method {
				continue
			}
			probe.Method = m
			var match mux.RouteMatch
			if router.Match(probe, &match) && match.MatchErr == nil && match.Route != nil && match.Route.GetHandler() != nil {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) == 0 {
			PlainError(w, http.StatusNotFound)
			return
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		PlainError(w, http.StatusMethodNotAllowed)
	})
}
