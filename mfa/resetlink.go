package mfa

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/templates"
	"github.com/twofold-id/twofold/web"
)

// ResetLinkLimit throttles guessing at reset links per client address:
// each attempt counts before the token is looked at, a good link refunds
// its count; 20 free, then 1 s doubling to 15 min.
var ResetLinkLimit = store.Backoff{Free: 20, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour}

// LinkLimiter counts reset-link attempts (the store).
type LinkLimiter interface {
	RateLimitAttempt(ctx context.Context, key string, b store.Backoff, now time.Time) error
	RefundRateLimit(ctx context.Context, key string) error
}

// ResetLinks serves the member's side of a reset: the emailed link.
type ResetLinks struct {
	Factors   *Service
	Limiter   LinkLimiter
	Templates *templates.Set
	ClientIP  web.ClientIP
	// Host is the issuer's host: the link works only there.
	Host string
	Now  func() time.Time
}

// Mount registers /reset/{token}. GET shows a confirmation and changes
// nothing, because mail scanners and link previews open links; only the
// POST from that page completes the reset. Both are no-store (the URL is a
// secret; Referrer-Policy no-referrer is set on every page) and the POST
// refuses cross-origin requests. The log shows /reset/{token}, never the
// path, also for a mangled link (404) or another method (405): the
// subrouter answers those itself so that they are hidden too.
func (h *ResetLinks) Mount(r *mux.Router) {
	hide := web.HidePath("/reset/{token}")
	s := r.PathPrefix("/reset").Subrouter()
	s.Use(hide, web.NoStore, web.CrossOrigin, h.sameHost)
	s.HandleFunc("/{token}", h.handleLink).Methods(http.MethodGet)
	s.HandleFunc("/{token}", h.handleComplete).Methods(http.MethodPost)
	s.NotFoundHandler = hide(web.NotFound)
	s.MethodNotAllowedHandler = hide(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, POST")
		web.MethodNotAllowed(w, r)
	}))
}

// sameHost refuses a link reached under another host name (a proxy or a
// look-alike domain in front of twofold).
func (h *ResetLinks) sameHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != h.Host {
			web.PlainError(w, http.StatusNotFound)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// throttle spends an attempt for the client's address; false when blocked
// (the answer is written).
func (h *ResetLinks) throttle(w http.ResponseWriter, r *http.Request) (string, bool) {
	key := "reset-addr:" + h.ClientIP.Of(r)
	err := h.Limiter.RateLimitAttempt(r.Context(), key, ResetLinkLimit, h.Now())
	if errors.Is(err, store.ErrThrottled) {
		h.Templates.Error(w, r, http.StatusTooManyRequests, "Too many attempts", "Wait a few minutes, then open the link from your email again.", nil)
		return key, false
	}
	if err != nil {
		h.fail(w, r, err)
		return key, false
	}
	return key, true
}

func (h *ResetLinks) handleLink(w http.ResponseWriter, r *http.Request) {
	key, ok := h.throttle(w, r)
	if !ok {
		return
	}
	token := mux.Vars(r)["token"]
	user, err := h.Factors.CheckResetLink(r.Context(), token)
	if err != nil {
		h.linkError(w, r, err)
		return
	}
	h.refund(r, key)
	h.Templates.Respond(w, r, http.StatusOK, "reset_link", struct{ Email, Action string }{user.Email, "/reset/" + token})
}

func (h *ResetLinks) handleComplete(w http.ResponseWriter, r *http.Request) {
	key, ok := h.throttle(w, r)
	if !ok {
		return
	}
	if _, err := h.Factors.CompleteReset(r.Context(), mux.Vars(r)["token"], h.ClientIP.Of(r)); err != nil {
		h.linkError(w, r, err)
		return
	}
	h.refund(r, key)
	h.Templates.Respond(w, r, http.StatusOK, "reset_done", struct{}{})
}

func (h *ResetLinks) refund(r *http.Request, key string) {
	if err := h.Limiter.RefundRateLimit(r.Context(), key); err != nil {
		web.Logger(r.Context()).Error("refund reset-link attempt", "err", err)
	}
}

// linkError tells the member why the link does not work and what to do.
func (h *ResetLinks) linkError(w http.ResponseWriter, r *http.Request, err error) {
	const ask = " Ask an owner of your organization to send you a new one."
	msg, status := "", http.StatusBadRequest
	switch {
	case errors.Is(err, ErrLinkUsed):
		msg = "This reset link was already used." + ask
	case errors.Is(err, ErrLinkSuperseded):
		msg = "A newer reset link was sent to you; this one no longer works. Use the newest email, or ask an owner of your organization to send a new one."
	case errors.Is(err, ErrLinkExpired):
		msg = "This reset link has expired." + ask
	case errors.Is(err, ErrLinkUnknown):
		msg, status = "This reset link is not valid. Check that you opened the whole link from the email."+ask, http.StatusNotFound
	default:
		h.fail(w, r, err)
		return
	}
	h.Templates.Error(w, r, status, "Reset link not valid", msg, nil)
}

func (h *ResetLinks) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.Templates.Error(w, r, http.StatusServiceUnavailable, "Something went wrong",
		"The reset is unavailable right now. Please try again in a moment.", err)
}
