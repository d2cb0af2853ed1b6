package provider

import (
	"errors"
	"net/http"
	"slices"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/twofold-id/twofold/session"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/web"
)

// handleAuthorize is the authorization endpoint. A request is validated by
// fosite (client, exact redirect URI, response type, scopes, state) and by
// twofold's own policy before any page is shown.
func (p *Provider) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if q := r.URL.Query(); r.Method == http.MethodGet && len(q) == 1 && q.Get("flow") != "" {
		p.resume(w, r, q.Get("flow"))
		return
	}
	ctx := r.Context()
	ar, err := p.oauth2.NewAuthorizeRequest(ctx, r)
	if err == nil && !exactRedirect(ar) {
		p.errorPage(w, r, http.StatusBadRequest, "Invalid sign-in request",
			"The application sent a redirect address it has not registered. Please contact the application's developer.", nil)
		return
	}
	if err == nil {
		err = checkAuthorizePolicy(ar)
	}
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	flow, user, err := p.interaction.Authorize(w, r, ar, ar.GetClient().(*store.Client))
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	if flow == nil {
		return // the browser was sent into the login flow
	}
	p.issueCode(w, r, ar, flow, user)
}

// resume finishes a login flow the browser brought back to this endpoint.
func (p *Provider) resume(w http.ResponseWriter, r *http.Request, flowID string) {
	flow, err := p.interaction.Resume(w, r, flowID)
	if err != nil {
		p.errorPage(w, r, http.StatusBadRequest, "Sign-in expired",
			"This sign-in has expired or was already completed. Return to the application and sign in again.", err)
		return
	}
	p.Finish(w, r, flow)
}

// Finish answers the authorize request of flow, a login flow whose every
// step is done and which the caller has consumed (so it yields one answer):
// a code, or the error the request now earns. The sign-in pages call it in
// the request that finished the flow, sparing the browser a round trip
// through this endpoint. The request is re-read from the flow record,
// never from the browser, and validated again (the client may have changed
// while the user signed in), and the user is read again (issueCode).
func (p *Provider) Finish(w http.ResponseWriter, r *http.Request, flow *store.LoginFlow) {
	original := r.Clone(r.Context())
	original.URL.RawQuery = flow.Query
	original.Form, original.PostForm, original.Method, original.Body = nil, nil, http.MethodGet, http.NoBody
	ar, err := p.oauth2.NewAuthorizeRequest(r.Context(), original)
	if err == nil && !exactRedirect(ar) {
		err = fosite.ErrInvalidRequest.WithHint("The redirect URI is no longer registered.")
		ar = nil // never redirect to it
	}
	if err == nil {
		err = checkAuthorizePolicy(ar)
	}
	if err == nil && flow.Denied {
		err = fosite.ErrAccessDenied.WithHint("The user denied the request.")
	}
	if err != nil {
		p.authorizeError(w, original, ar, err)
		return
	}
	p.issueCode(w, original, ar, flow, nil)
}

// exactRedirect reports whether the request's redirect_uri is, character
// for character, one the client registered. fosite follows RFC 8252 §7.3
// and lets loopback redirect URIs vary in port; that is right for native
// (public) clients, which listen on a port the OS picks, and wrong for a
// confidential client, whose code must go only where it said.
func exactRedirect(ar fosite.AuthorizeRequester) bool {
	client := ar.GetClient().(*store.Client)
	raw := ar.GetRequestForm().Get("redirect_uri")
	return raw == "" || client.Public || slices.Contains(client.RedirectURIs, raw)
}

// checkAuthorizePolicy adds what fosite checks only after the user has
// signed in, or leaves to configuration, so a bad request is refused before
// any page is shown: PKCE with S256 for public clients and for confidential
// ones unless their registration opts out.
func checkAuthorizePolicy(ar fosite.AuthorizeRequester) error {
	client := ar.GetClient().(*store.Client)
	form := ar.GetRequestForm()
	challenge, method := form.Get("code_challenge"), form.Get("code_challenge_method")
	if challenge == "" && (client.Public || client.RequirePKCE) {
		return fosite.ErrInvalidRequest.WithHint("This client must use PKCE: send code_challenge with code_challenge_method=S256.")
	}
	if challenge != "" && method != "S256" {
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256.")
	}
	return nil
}

// issueCode grants the scopes the user consented to and redirects to the
// client with a code. read is the user as the live-session path read it to
// decide, in this request; nil reads it now, as a finished flow needs:
// read after the flow was consumed, the user's state shows an owner's
// reset that raced the flow's last step.
func (p *Provider) issueCode(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, flow *store.LoginFlow, read *store.User) {
	ctx := r.Context()
	if read == nil || read.ID != flow.UserID {
		u, err := p.store.GetUser(ctx, flow.UserID)
		if err != nil {
			p.authorizeError(w, r, ar, err)
			return
		}
		read = &u
	}
	user := *read
	if user.MFAState != store.MFANone {
		// A second lock behind the login flow's: a user whose 2FA an owner
		// reset gets no code until they have enrolled again.
		p.authorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The user must set up two-factor authentication again."))
		return
	}
	for _, s := range flow.GrantedScopes {
		if ar.GetRequestedScopes().Has(s) {
			ar.GrantScope(s)
		}
	}
	// The code, its PKCE record and its OpenID Connect session are written
	// in one statement, before the code leaves (see store.WithCodeBatch).
	ctx = store.WithCodeBatch(ctx)
	resp, err := p.oauth2.NewAuthorizeResponse(ctx, ar, p.newSession(user, flow, ar.GetGrantedScopes()))
	if err == nil {
		err = p.store.FlushCodeBatch(ctx)
	}
	if errors.Is(err, store.ErrUserInactive) {
		// An owner reset the user after they were read above: the code
		// was not written (store.insertSessions).
		err = fosite.ErrAccessDenied.WithHint("The user must set up two-factor authentication again.")
	}
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	p.oauth2.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// newSession is the token session for a user signed in through flow. The
// ID token carries auth_time, amr and acr from the flow, and the profile
// claims the granted scopes allow.
func (p *Provider) newSession(user store.User, flow *store.LoginFlow, granted fosite.Arguments) *openid.DefaultSession {
	return &openid.DefaultSession{
		Subject: user.ID,
		Claims: &jwt.IDTokenClaims{
			Subject:                             user.ID,
			AuthTime:                            flow.AuthTime,
			RequestedAt:                         flow.RequestedAt,
			AuthenticationMethodsReferences:     flow.AMR,
			AuthenticationContextClassReference: session.ACR(flow.AMR),
			Extra:                               userClaims(user, granted),
		},
		Headers: &jwt.Headers{Extra: map[string]any{}},
	}
}

// userClaims are the standard claims of user that the scopes allow.
func userClaims(user store.User, scopes fosite.Arguments) map[string]any {
	c := map[string]any{}
	if scopes.Has("email") {
		c["email"] = user.Email
		c["email_verified"] = user.EmailVerified
	}
	if scopes.Has("profile") && user.Name != "" {
		c["name"] = user.Name
	}
	return c
}

// authorizeError reports a failed authorize request. Only when fosite has
// validated the redirect URI does the error go back to the client; anything
// else is a page here, so an unregistered or altered redirect URI is never
// followed.
func (p *Provider) authorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	var rfcErr *fosite.RFC6749Error
	if !errors.As(err, &rfcErr) || errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		// Also a client that could not be loaded because the store is away
		// (see fositeStorage.GetClient): not the application's fault.
		p.errorPage(w, r, http.StatusServiceUnavailable, "Something went wrong",
			"Sign-in is unavailable right now. Please try again in a moment.", err)
		return
	}
	if ar == nil || !ar.IsRedirectURIValid() {
		msg := "The application sent an invalid sign-in request. Please contact the application's developer."
		if rfcErr.HintField != "" {
			msg += " (" + rfcErr.HintField + ")"
		}
		p.errorPage(w, r, http.StatusBadRequest, "Invalid sign-in request", msg, rfcErr.WithDebug(rfcErr.DebugField))
		return
	}
	if req, ok := ar.(*fosite.AuthorizeRequest); ok && req.ResponseMode != fosite.ResponseModeDefault {
		// Only query is supported (store.Client.GetResponseModes): a refused
		// form_post or fragment request still gets its error in the query,
		// never as a form_post page, which would need inline script.
		req.ResponseMode = fosite.ResponseModeQuery
	}
	web.Logger(r.Context()).Info("authorize error", "error", rfcErr.ErrorField, "hint", rfcErr.HintField, "debug", rfcErr.DebugField)
	p.oauth2.WriteAuthorizeError(r.Context(), w, ar, err)
}
