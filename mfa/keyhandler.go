package mfa

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/twofold-id/twofold/session"
	"github.com/twofold-id/twofold/web"
)

// KeyForm is the data of the security-key form (pages/_webauthn.html):
// the ceremony's options, made server-side, and where the response goes.
type KeyForm struct {
	Options  json.RawMessage
	Ceremony string
	Action   string
	Mode     string // "get" to sign in, "create" to register
	Label    string
	FlowID   string
	Name     bool // ask for a name (registration)
}

// SessionBinding binds a settings-page ceremony to the browser session
// that began it.
func SessionBinding(a session.Account) string {
	return "session:" + hex.EncodeToString(a.Session.IDHash)
}

// FlowBinding binds a sign-in ceremony to its login flow.
func FlowBinding(flowID string) string { return "flow:" + flowID }

// keyAddPage is the data of pages/key_add.html.
type keyAddPage struct {
	Key   KeyForm
	Error string
}

// handleKeyPage begins registering a security key from Security Settings.
func (h *Handler) handleKeyPage(w http.ResponseWriter, r *http.Request) {
	h.renderKeyPage(w, r, http.StatusOK, "")
}

func (h *Handler) renderKeyPage(w http.ResponseWriter, r *http.Request, status int, errMsg string) {
	acct := accountOf(r.Context())
	id, options, err := h.Factors.BeginKeyRegistration(r.Context(), acct.User, SessionBinding(acct))
	if errors.Is(err, ErrKeysUnavailable) {
		h.Templates.Error(w, r, http.StatusNotFound, "Security keys unavailable",
			"This server cannot use security keys: its address is an IP address, which browsers do not allow for them.", nil)
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, status, "key_add", keyAddPage{Error: errMsg, Key: KeyForm{Options: options, Ceremony: id,
		Action: "/settings/security/keys", Mode: "create", Label: "Add security key", Name: true}})
}

// handleKeyAdd finishes the registration. For a first factor the backup
// codes are shown, and the session is renewed as one with a second factor.
func (h *Handler) handleKeyAdd(w http.ResponseWriter, r *http.Request) {
	if !web.ParseForm(w, r) {
		return
	}
	acct := accountOf(r.Context())
	codes, err := h.Factors.FinishKeyRegistration(r.Context(), acct.User, r.PostForm.Get("ceremony"), SessionBinding(acct),
		r.PostForm.Get("name"), []byte(r.PostForm.Get("response")), h.event(r))
	switch {
	case errors.Is(err, ErrKeyRejected), errors.Is(err, ErrKeysUnavailable):
		// Without keys on this server, renderKeyPage says so with a 404.
		h.renderKeyPage(w, r, http.StatusBadRequest, "The security key could not be added. Try again.")
		return
	case errors.Is(err, ErrKeyExists):
		h.renderKeyPage(w, r, http.StatusConflict, "This security key is registered already.")
		return
	case err != nil:
		h.fail(w, r, err)
		return
	}
	if codes == nil {
		http.Redirect(w, r, "/settings/security?done=key-added", http.StatusSeeOther)
		return
	}
	if _, err := h.Sessions.Start(w, r, acct.User.ID, []string{"pwd", "hwk", "mfa"}, h.Now()); err != nil {
		h.fail(w, r, err)
		return
	}
	h.showCodes(w, r, codes)
}

func (h *Handler) handleKeyRename(w http.ResponseWriter, r *http.Request) {
	if !web.ParseForm(w, r) {
		return
	}
	acct := accountOf(r.Context())
	if err := h.Factors.RenameKey(r.Context(), acct.User, mux.Vars(r)["id"], r.PostForm.Get("name")); err != nil && !errors.Is(err, ErrNoFactor) {
		h.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/settings/security", http.StatusSeeOther)
}

func (h *Handler) handleKeyRemove(w http.ResponseWriter, r *http.Request) {
	acct := accountOf(r.Context())
	err := h.Factors.RemoveKey(r.Context(), acct.User, mux.Vars(r)["id"], h.event(r))
	switch {
	case errors.Is(err, ErrRequired):
		h.refuseRequired(w, r, "This is your last second factor and an organization you belong to requires one. Add another first.")
		return
	case err != nil && !errors.Is(err, ErrNoFactor):
		h.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/settings/security?done=key-removed", http.StatusSeeOther)
}
