package admin

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/twofold-id/twofold/mfa"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/web"
)

type apiKey struct{}

// apiCaller is the owner an API request acts for, and their token.
type apiCaller struct {
	token BearerToken
	user  store.User
}

// requireToken authenticates the JSON API: an access token twofold issued
// (looked up, so revoked and reset users' tokens fail at once), granted
// the twofold:admin scope, for a user (not a client acting for itself).
func (h *Handler) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || raw == "" {
			apiError(w, http.StatusUnauthorized, "invalid_token", "Send an access token: Authorization: Bearer <token>.")
			return
		}
		tok, err := h.Tokens(r.Context(), raw)
		if err != nil {
			web.Logger(r.Context()).Info("api: token refused", "err", err)
			apiError(w, http.StatusUnauthorized, "invalid_token", "The access token is not valid.")
			return
		}
		if !slices.Contains(tok.Scopes, Scope) || tok.Subject == "" {
			apiError(w, http.StatusForbidden, "insufficient_scope", "The access token must be an owner's, with the "+Scope+" scope.")
			return
		}
		user, err := h.Store.GetUser(r.Context(), tok.Subject)
		if err != nil || user.MFAState != store.MFANone {
			apiError(w, http.StatusUnauthorized, "invalid_token", "The access token is not valid.")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), apiKey{}, apiCaller{tok, user})))
	})
}

func callerOf(ctx context.Context) apiCaller { return ctx.Value(apiKey{}).(apiCaller) }

// apiMember is one member in the JSON API.
type apiMember struct {
	ID          string     `json:"id"`
	Email       string     `json:"email"`
	Name        string     `json:"name,omitempty"`
	Role        string     `json:"role"`
	MFA         string     `json:"mfa"` // on, off, reset_pending, must_enroll
	Factors     []string   `json:"factors"`
	BackupCodes int        `json:"backup_codes"`
	LastSignIn  *time.Time `json:"last_sign_in,omitempty"`
}

// apiMembers lists the organization's members, for its owners.
func (h *Handler) apiMembers(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r.Context())
	org, _, err := h.authorize(r.Context(), c.user.ID, mux.Vars(r)["org"], "")
	if h.apiRefused(w, r, err) {
		return
	}
	members, err := h.Store.ListOrgMembers(r.Context(), org.ID)
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	out := make([]apiMember, 0, len(members))
	for _, m := range members {
		am := apiMember{ID: m.User.ID, Email: m.User.Email, Name: m.User.Name, Role: string(m.Role), Factors: []string{}, BackupCodes: m.BackupCodes}
		if m.TOTP {
			am.Factors = append(am.Factors, "totp")
		}
		if m.Keys > 0 {
			am.Factors = append(am.Factors, "security_key")
		}
		switch {
		case m.User.MFAState != store.MFANone:
			am.MFA = string(m.User.MFAState)
		case len(am.Factors) > 0:
			am.MFA = "on"
		default:
			am.MFA = "off"
		}
		if !m.User.LastLoginAt.IsZero() {
			t := m.User.LastLoginAt.UTC()
			am.LastSignIn = &t
		}
		out = append(out, am)
	}
	web.JSON(w, http.StatusOK, map[string]any{"organization": map[string]any{"id": org.ID, "name": org.Name, "require_2fa": org.Require2FA}, "members": out})
}

// apiReset resets a member's 2FA, by the same rules as the console: owner
// of the organization, target a member, never oneself, and the token from
// a sign-in with a second factor within the last ten minutes.
func (h *Handler) apiReset(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r.Context())
	_, target, err := h.authorize(r.Context(), c.user.ID, mux.Vars(r)["org"], mux.Vars(r)["user"])
	if err == nil && target.ID == c.user.ID {
		err = mfa.ErrSelfReset
	}
	if h.apiRefused(w, r, err) {
		return
	}
	if h.Now().Sub(c.token.AuthTime) > ReauthWindow || !slices.Contains(c.token.AMR, "mfa") {
		apiError(w, http.StatusForbidden, "reauthentication_required",
			"Sign in again with your second factor (max_age=600, acr_values=urn:twofold:acr:mfa) and use the new access token.")
		return
	}
	res, err := h.Resets.Reset(r.Context(), target, mfa.Event{ActorID: c.user.ID, ClientAddr: h.ClientIP.Of(r)})
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, map[string]any{"user_id": target.ID, "mfa": string(store.MFAResetPending),
		"email": "queued", "link_expires_at": res.ExpiresAt.UTC()})
}

// apiRefused answers an authorization refusal (true) or passes (false).
func (h *Handler) apiRefused(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, errNotOwner), errors.Is(err, errNotMember), errors.Is(err, mfa.ErrSelfReset), errors.Is(err, store.ErrNotFound):
		web.Logger(r.Context()).Warn("api refused", "path", r.URL.Path, "reason", err)
		apiError(w, http.StatusForbidden, "forbidden", "Only an owner of the organization can do this, and not for themselves.")
	default:
		h.apiFail(w, r, err)
	}
	return true
}

func (h *Handler) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	web.Logger(r.Context()).Error("api", "err", err)
	apiError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "Try again in a moment.")
}

// apiError writes {"error": code, "error_description": description}.
func apiError(w http.ResponseWriter, status int, code, description string) {
	if status == http.StatusUnauthorized || code == "insufficient_scope" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="twofold", error="`+code+`"`)
	}
	web.JSON(w, status, map[string]string{"error": code, "error_description": description})
}
