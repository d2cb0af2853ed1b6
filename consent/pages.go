package consent

import (
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/web"
)

// scopeDescriptions say what each scope lets an application do.
var scopeDescriptions = map[string]string{
	"openid":         "Know who you are (your account identifier)",
	"email":          "See your email address",
	"profile":        "See your name",
	"offline_access": "Stay connected when you are not using it",
	"twofold:admin":  "Manage your organizations' members, including resetting their two-factor authentication",
}

type consentPage struct {
	FlowID     string
	ClientName string
	Email      string
	Scopes     []string
}

// handleConsentPage asks the user to allow the client's requested scopes.
func (h *Handler) handleConsentPage(w http.ResponseWriter, r *http.Request) {
	f, client, user, ok := h.consentFlow(w, r, r.URL.Query().Get("flow"))
	if !ok {
		return
	}
	q, _ := url.ParseQuery(f.Query)
	page := consentPage{FlowID: f.ID, ClientName: client.Name, Email: user.Email}
	for _, s := range scopeList(q) {
		if d, ok := scopeDescriptions[s]; ok {
			page.Scopes = append(page.Scopes, d)
		}
	}
	h.render(w, r, http.StatusOK, "consent", page)
}

// handleConsent records the user's decision. Allowing remembers the grant
// (adding to any earlier one), so the user is not asked again for the same
// scopes; denying sends access_denied to the client.
func (h *Handler) handleConsent(w http.ResponseWriter, r *http.Request) {
	if !web.ParseForm(w, r) {
		return
	}
	f, client, user, ok := h.consentFlow(w, r, r.PostForm.Get("flow"))
	if !ok {
		return
	}
	ctx := r.Context()
	q, _ := url.ParseQuery(f.Query)
	switch r.PostForm.Get("decision") {
	case "allow":
		f.GrantedScopes = scopeList(q)
		scopes := slices.Clone(f.GrantedScopes)
		if g, err := h.Store.GetConsentGrant(ctx, user.ID, client.ID); err == nil {
			scopes = append(scopes, g.Scopes...)
		} else if !errors.Is(err, store.ErrNotFound) {
			h.internalError(w, r, err)
			return
		}
		slices.Sort(scopes)
		if err := h.Store.PutConsentGrant(ctx, store.ConsentGrant{UserID: user.ID, ClientID: client.ID,
			Scopes: slices.Compact(scopes), GrantedAt: h.Now()}); err != nil {
			h.internalError(w, r, err)
			return
		}
	case "deny":
		f.Denied = true
	default:
		web.PlainError(w, http.StatusBadRequest)
		return
	}
	h.advance(w, r, &f, true)
}

// consentFlow loads a flow that is at the consent step, with its client
// and user. It answers the request itself and returns false otherwise.
func (h *Handler) consentFlow(w http.ResponseWriter, r *http.Request, id string) (store.LoginFlow, *store.Client, store.User, bool) {
	f, ok := h.atStep(w, r, id, "/consent")
	if !ok {
		return f, nil, store.User{}, false
	}
	client, err := h.Clients.GetOAuthClient(r.Context(), f.ClientID)
	var user store.User
	if err == nil {
		user, err = h.user(r.Context(), f.UserID)
	}
	if err != nil {
		h.flowError(w, r, err)
		return f, nil, store.User{}, false
	}
	return f, client, user, true
}

type homePage struct {
	Email, Name string
	Owner       bool
}

// handleHome shows who is signed in.
func (h *Handler) handleHome(w http.ResponseWriter, r *http.Request) {
	_, user, err := h.currentUser(r)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	var page homePage
	if user != nil {
		page = homePage{Email: user.Email, Name: user.Name}
		orgs, err := h.Store.ListUserOrganizations(r.Context(), user.ID)
		if err != nil {
			h.internalError(w, r, err)
			return
		}
		for _, o := range orgs {
			page.Owner = page.Owner || o.Role == store.RoleOwner
		}
	}
	h.render(w, r, http.StatusOK, "home", page)
}

type logoutPage struct {
	Email, ClientName, Request string
}

// handleLogoutPage asks the user to confirm signing out. A relying party
// arrives here from the end_session_endpoint, which has checked its
// post_logout_redirect_uri.
func (h *Handler) handleLogoutPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, client, err := h.logoutTarget(r, q)
	if err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "Invalid sign-out request",
			"The application asked to return to an address it has not registered.", err)
		return
	}
	_, user, err := h.currentUser(r)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	if user == nil && redirect != "" {
		// Nothing to sign out of: go straight back.
		http.Redirect(w, r, redirect, http.StatusSeeOther)
		return
	}
	page := logoutPage{Request: q.Encode()}
	if user != nil {
		page.Email = user.Email
	}
	if client != nil {
		page.ClientName = client.Name
	}
	h.render(w, r, http.StatusOK, "logout", page)
}

// handleLogout ends the browser's session and returns to the relying
// party's registered post-logout address, if it gave one.
func (h *Handler) handleLogout(w http.ResponseWriter, r *http.Request) {
	if !web.ParseForm(w, r) {
		return
	}
	q, err := url.ParseQuery(r.PostForm.Get("request"))
	if err != nil {
		web.PlainError(w, http.StatusBadRequest)
		return
	}
	redirect, _, err := h.logoutTarget(r, q)
	if err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "Invalid sign-out request",
			"The application asked to return to an address it has not registered.", err)
		return
	}
	sess, sessErr := h.Sessions.Current(r)
	if err := h.Sessions.End(w, r); err != nil {
		h.internalError(w, r, err)
		return
	}
	if sessErr == nil {
		h.audit(r, "logout", sess.UserID, nil)
	}
	if redirect != "" {
		http.Redirect(w, r, redirect, http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "signed_out", struct{}{})
}

// logoutTarget validates a sign-out request's return address: it must be
// registered for the named client. It returns the address with state.
func (h *Handler) logoutTarget(r *http.Request, q url.Values) (string, *store.Client, error) {
	clientID, redirect := q.Get("client_id"), q.Get("post_logout_redirect_uri")
	if clientID == "" {
		if redirect != "" {
			return "", nil, errors.New("post_logout_redirect_uri without client_id")
		}
		return "", nil, nil
	}
	client, err := h.Clients.GetOAuthClient(r.Context(), clientID)
	if err != nil {
		return "", nil, err
	}
	if redirect == "" {
		return "", client, nil
	}
	if !client.AllowsPostLogoutRedirect(redirect) {
		return "", nil, errors.New("post_logout_redirect_uri not registered")
	}
	u, err := url.Parse(redirect)
	if err != nil {
		return "", nil, err
	}
	if state := q.Get("state"); state != "" {
		uq := u.Query()
		uq.Set("state", state)
		u.RawQuery = uq.Encode()
	}
	return u.String(), client, nil
}
