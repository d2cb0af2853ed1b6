package admin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/twofold-id/twofold/mfa"
	"github.com/twofold-id/twofold/session"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/templates"
	"github.com/twofold-id/twofold/web"
)

// ReauthWindow is how recent the owner's sign-in with a second factor must
// be to reset someone.
const ReauthWindow = 10 * time.Minute

// Scope is the OAuth scope an access token needs for the JSON API.
const Scope = "twofold:admin"

// Store is what the console reads and writes.
type Store interface {
	ListUserOrganizations(ctx context.Context, userID string) ([]store.OrgMembership, error)
	GetMembership(ctx context.Context, orgID, userID string) (store.Membership, error)
	GetOrganization(ctx context.Context, id string) (store.Organization, error)
	ListOrgMembers(ctx context.Context, orgID string) ([]store.MemberInfo, error)
	GetUser(ctx context.Context, id string) (store.User, error)
	SetOrganizationRequire2FA(ctx context.Context, orgID string, require bool) error
	ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error)
	AppendAudit(ctx context.Context, e store.AuditEvent) error
	LatestResetToken(ctx context.Context, userID string) (store.ResetToken, error)
	GetMail(ctx context.Context, id int64) (store.Mail, error)
}

// Resets performs resets (package mfa).
type Resets interface {
	Reset(ctx context.Context, target store.User, actor mfa.Event) (mfa.ResetResult, error)
	Resend(ctx context.Context, target store.User, actor mfa.Event) (mfa.ResetResult, error)
	Enrolled(ctx context.Context, userID string) (bool, error)
}

// BearerToken is what an access token says about its grant.
type BearerToken struct {
	Subject  string
	ClientID string
	Scopes   []string
	AuthTime time.Time
	AMR      []string
}

// TokenInspector validates access tokens twofold issued (package provider).
type TokenInspector func(ctx context.Context, token string) (BearerToken, error)

// Handler serves the owner console and its JSON API.
type Handler struct {
	Store     Store
	Resets    Resets
	Sessions  *session.Manager
	Tokens    TokenInspector
	Templates *templates.Set
	ClientIP  web.ClientIP
	Now       func() time.Time
}

// Mount registers the routes; the table shows each route's policy.
//
//	/settings/members, /settings/audit      signed in; owner of the organization
//	reset, resend, policy changes            + owner's sign-in with a second factor within 10 min
//	/api/...                                 bearer token with twofold:admin; same rules
func (h *Handler) Mount(r *mux.Router) {
	console := r.PathPrefix("/settings").Subrouter()
	console.Use(web.NoStore, web.CrossOrigin, h.Sessions.RequireAccount(h.Store, "/settings/members", h.fail))
	console.HandleFunc("/members", h.handleMembers).Methods(http.MethodGet, http.MethodHead)
	console.HandleFunc("/audit", h.handleAudit).Methods(http.MethodGet, http.MethodHead)

	recent := console.NewRoute().Subrouter()
	recent.Use(h.requireRecentMFA)
	recent.HandleFunc("/members/{user}/reset", h.handleResetPage).Methods(http.MethodGet)
	recent.HandleFunc("/members/{user}/reset", h.handleReset).Methods(http.MethodPost)
	recent.HandleFunc("/members/{user}/resend", h.handleResend).Methods(http.MethodPost)
	recent.HandleFunc("/organization/require-2fa", h.handlePolicy).Methods(http.MethodPost)

	api := r.PathPrefix("/api").Subrouter()
	api.Use(web.NoStore, h.requireToken)
	api.HandleFunc("/orgs/{org}/members", h.apiMembers).Methods(http.MethodGet)
	api.HandleFunc("/orgs/{org}/members/{user}/reset-2fa", h.apiReset).Methods(http.MethodPost)
}

// Refusals, as authorize decides them.
var (
	errNotOwner  = errors.New("admin: not an owner of this organization")
	errNotMember = errors.New("admin: not a member of this organization")
)

// authorize decides whether actorID may act on targetID (or, with
// targetID "", on the organization itself) in orgID: the actor must own
// the organization and the target belong to it. A missing organization is
// the same refusal as a foreign one, so nothing is learnt by probing.
func (h *Handler) authorize(ctx context.Context, actorID, orgID, targetID string) (store.Organization, store.User, error) {
	m, err := h.Store.GetMembership(ctx, orgID, actorID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && m.Role != store.RoleOwner) {
		return store.Organization{}, store.User{}, errNotOwner
	} else if err != nil {
		return store.Organization{}, store.User{}, err
	}
	org, err := h.Store.GetOrganization(ctx, orgID)
	if err != nil || targetID == "" {
		return org, store.User{}, err
	}
	if _, err := h.Store.GetMembership(ctx, orgID, targetID); errors.Is(err, store.ErrNotFound) {
		return org, store.User{}, errNotMember
	} else if err != nil {
		return org, store.User{}, err
	}
	target, err := h.Store.GetUser(ctx, targetID)
	return org, target, err
}

// requireRecentMFA lets an owner act only after signing in with their own
// second factor within ReauthWindow; an owner without one is told to turn
// it on first.
func (h *Handler) requireRecentMFA(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		acct, _ := session.AccountOf(r.Context())
		if acct.Recent(h.Now(), ReauthWindow, true) {
			next.ServeHTTP(w, r)
			return
		}
		enrolled, err := h.Resets.Enrolled(r.Context(), acct.User.ID)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if !enrolled {
			h.message(w, r, http.StatusForbidden, "Turn on two-factor authentication first",
				"Resetting a member's two-factor authentication needs your own. Turn it on in Security settings, then come back.")
			return
		}
		// Back to the same page, query included: the confirmation page
		// needs its ?org= to know which organization the owner acts for.
		back := r.URL.RequestURI()
		if r.Method != http.MethodGet {
			back = "/settings/members" // a form is not replayed after signing in
		}
		http.Redirect(w, r, session.LoginURL(back, true), http.StatusSeeOther)
	})
}

func (h *Handler) event(r *http.Request, actorID string) mfa.Event {
	return mfa.Event{ActorID: actorID, ClientAddr: h.ClientIP.Of(r)}
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	h.Templates.Respond(w, r, status, page, data)
}

// message shows a plain page with a title and a sentence.
func (h *Handler) message(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	h.Templates.Error(w, r, status, title, msg, nil)
}

// refuse answers an authorization refusal; nothing has changed.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	web.Logger(r.Context()).Warn("owner console refused", "path", r.URL.Path, "reason", err)
	h.message(w, r, http.StatusForbidden, "Not allowed", "Only an owner of the organization can do this, and not for themselves.")
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.Templates.Error(w, r, http.StatusServiceUnavailable, "Something went wrong",
		"The members page is unavailable right now. Please try again in a moment.", err)
}
