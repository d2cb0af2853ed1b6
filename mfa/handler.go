package mfa

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/twofold-id/twofold/session"
	"github.com/twofold-id/twofold/templates"
	"github.com/twofold-id/twofold/web"
)

// ReauthWindow is how recent a sign-in (with every factor the user has)
// must be to change second factors.
const ReauthWindow = 10 * time.Minute

// Handler serves the Security Settings pages.
type Handler struct {
	Factors   *Service
	Users     session.Users
	Sessions  *session.Manager
	Templates *templates.Set
	ClientIP  web.ClientIP
	Now       func() time.Time
}

// Mount registers the routes. The table shows each route's policy: every
// page needs a signed-in browser; every change needs a sign-in within
// ReauthWindow. All are no-store and refuse cross-origin POSTs.
func (h *Handler) Mount(r *mux.Router) {
	signedIn := r.PathPrefix("/settings/security").Subrouter()
	signedIn.Use(web.NoStore, web.CrossOrigin, h.Sessions.RequireAccount(h.Users, "/settings/security", h.fail))
	signedIn.HandleFunc("", h.handleStatus).Methods(http.MethodGet, http.MethodHead)

	recent := signedIn.NewRoute().Subrouter()
	recent.Use(h.requireRecentSignIn)
	recent.HandleFunc("/totp", h.handleEnrollPage).Methods(http.MethodGet)
	recent.HandleFunc("/totp", h.handleEnroll).Methods(http.MethodPost)
	recent.HandleFunc("/backup-codes", h.handleRegenerate).Methods(http.MethodPost)
	recent.HandleFunc("/disable", h.handleDisable).Methods(http.MethodPost)
	recent.HandleFunc("/keys/new", h.handleKeyPage).Methods(http.MethodGet)
	recent.HandleFunc("/keys", h.handleKeyAdd).Methods(http.MethodPost)
	recent.HandleFunc("/keys/{id}/rename", h.handleKeyRename).Methods(http.MethodPost)
	recent.HandleFunc("/keys/{id}/remove", h.handleKeyRemove).Methods(http.MethodPost)
}

func accountOf(ctx context.Context) session.Account {
	a, _ := session.AccountOf(ctx)
	return a
}

// requireRecentSignIn lets a change through only if the browser signed in
// within ReauthWindow, with a second factor when the user has one; else it
// asks for the password (and code) again. Someone at an unlocked browser
// hours later cannot quietly swap the factors.
func (h *Handler) requireRecentSignIn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		acct := accountOf(r.Context())
		enrolled, err := h.Factors.Enrolled(r.Context(), acct.User.ID)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if !acct.Recent(h.Now(), ReauthWindow, enrolled) {
			back := r.URL.Path
			if r.Method != http.MethodGet {
				back = "/settings/security" // a form is not replayed after signing in
			}
			http.Redirect(w, r, session.LoginURL(back, true), http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// securityPage is the data of pages/security.html.
type securityPage struct {
	Email         string
	Status        Status
	Notice, Error string
	KeysAvailable bool
}

var notices = map[string]string{
	"off":         "Two-factor authentication is off. Your authenticator app, security keys and backup codes no longer work.",
	"key-added":   "The security key was added.",
	"key-removed": "The security key was removed.",
}

func (h *Handler) handleStatus(w http.ResponseWriter, r *http.Request) {
	acct := accountOf(r.Context())
	st, err := h.Factors.Status(r.Context(), acct.User.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "security", securityPage{Email: acct.User.Email, Status: st,
		Notice: notices[r.URL.Query().Get("done")], KeysAvailable: h.Factors.KeysAvailable()})
}

func (h *Handler) event(r *http.Request) Event {
	return Event{ActorID: accountOf(r.Context()).User.ID, ClientAddr: h.ClientIP.Of(r)}
}

// EnrollPage is the data of pages/totp_enroll.html, which the sign-in
// flow's forced enrollment shows too.
type EnrollPage struct {
	Action, FlowID, Error, Intro string
	Enrollment
	// Key, when set, offers a security key instead of the app.
	Key *KeyForm
}

// QRImage is the QR code as an image URL. html/template refuses data: URLs
// from strings; this one is a PNG we rendered from our own otpauth URL.
func (p EnrollPage) QRImage() template.URL { return template.URL(p.QR) }

// AppLink is the otpauth: link for authenticator apps on this device; its
// scheme is unknown to html/template, and its content is ours.
func (p EnrollPage) AppLink() template.URL { return template.URL(p.URL) }

func (h *Handler) handleEnrollPage(w http.ResponseWriter, r *http.Request) {
	acct := accountOf(r.Context())
	if ok, err := h.Factors.Enrolled(r.Context(), acct.User.ID); err != nil || ok {
		if err != nil {
			h.fail(w, r, err)
			return
		}
		http.Redirect(w, r, "/settings/security", http.StatusSeeOther)
		return
	}
	e, err := h.Factors.PendingTOTP(r.Context(), acct.User)
	if errors.Is(err, ErrNoPending) {
		e, err = h.Factors.BeginTOTP(r.Context(), acct.User)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "totp_enroll", EnrollPage{Action: "/settings/security/totp", Enrollment: e})
}

// handleEnroll confirms the app with a code from it; the session is then
// renewed as one that used a second factor, and the backup codes shown.
func (h *Handler) handleEnroll(w http.ResponseWriter, r *http.Request) {
	if !web.ParseForm(w, r) {
		return
	}
	acct := accountOf(r.Context())
	codes, err := h.Factors.ConfirmTOTP(r.Context(), acct.User, r.PostForm.Get("code"), h.event(r))
	switch {
	case errors.Is(err, ErrInvalidCode):
		e, err := h.Factors.PendingTOTP(r.Context(), acct.User)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		h.render(w, r, http.StatusUnauthorized, "totp_enroll", EnrollPage{Action: "/settings/security/totp", Enrollment: e,
			Error: "That code didn't work. Enter the current code from your app."})
		return
	case errors.Is(err, ErrNoPending):
		http.Redirect(w, r, "/settings/security/totp", http.StatusSeeOther)
		return
	case err != nil:
		h.fail(w, r, err)
		return
	}
	if _, err := h.Sessions.Start(w, r, acct.User.ID, []string{"pwd", "otp", "mfa"}, h.Now()); err != nil {
		h.fail(w, r, err)
		return
	}
	h.showCodes(w, r, codes)
}

func (h *Handler) handleRegenerate(w http.ResponseWriter, r *http.Request) {
	codes, err := h.Factors.RegenerateBackupCodes(r.Context(), accountOf(r.Context()).User, h.event(r))
	if errors.Is(err, ErrNoFactor) {
		http.Redirect(w, r, "/settings/security", http.StatusSeeOther)
		return
	} else if err != nil {
		h.fail(w, r, err)
		return
	}
	h.showCodes(w, r, codes)
}

func (h *Handler) handleDisable(w http.ResponseWriter, r *http.Request) {
	acct := accountOf(r.Context())
	err := h.Factors.Disable(r.Context(), acct.User, h.event(r))
	switch {
	case errors.Is(err, ErrRequired):
		h.refuseRequired(w, r, "An organization you belong to requires two-factor authentication, so it cannot be turned off.")
		return
	case err != nil && !errors.Is(err, ErrNoFactor):
		h.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/settings/security?done=off", http.StatusSeeOther)
}

// refuseRequired shows Security Settings with why a change that would leave
// the user without a second factor was refused (nothing changed).
func (h *Handler) refuseRequired(w http.ResponseWriter, r *http.Request, msg string) {
	acct := accountOf(r.Context())
	st, err := h.Factors.Status(r.Context(), acct.User.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusConflict, "security", securityPage{Email: acct.User.Email, Status: st, Error: msg,
		KeysAvailable: h.Factors.KeysAvailable()})
}

// BackupCodesPage is the data of pages/backup_codes.html.
type BackupCodesPage struct {
	Codes       []string
	Download    template.URL
	ContinueURL string
}

// NewBackupCodesPage shows new backup codes once, with a .txt download
// built here from the codes (never from input, so the data: URL is safe
// to mark as such), and a link to continueURL.
func NewBackupCodesPage(product string, codes []string, continueURL string) BackupCodesPage {
	text := product + " backup codes\n\nEach code works once. Keep them somewhere safe.\n\n" + strings.Join(codes, "\n") + "\n"
	return BackupCodesPage{Codes: codes, ContinueURL: continueURL,
		Download: template.URL("data:text/plain;charset=utf-8," + url.PathEscape(text))}
}

func (h *Handler) showCodes(w http.ResponseWriter, r *http.Request, codes []string) {
	h.render(w, r, http.StatusOK, "backup_codes", NewBackupCodesPage(h.Templates.Brand().Name, codes, "/settings/security"))
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	h.Templates.Respond(w, r, status, page, data)
}

// fail logs the cause and shows a plain message.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.Templates.Error(w, r, http.StatusServiceUnavailable, "Something went wrong",
		"Your security settings are unavailable right now. Please try again in a moment.", err)
}
