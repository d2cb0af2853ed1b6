package provider

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/web"
)

// emptySession is what fosite decodes a stored session into.
func emptySession() *openid.DefaultSession {
	return &openid.DefaultSession{Claims: &jwt.IDTokenClaims{}, Headers: &jwt.Headers{}}
}

// handleToken is the token endpoint: authorization_code (with PKCE),
// refresh_token (rotating) and client_credentials.
func (p *Provider) handleToken(w http.ResponseWriter, r *http.Request) {
	// fosite reads an authorization code twice and its PKCE and OpenID
	// Connect records once each; in this request they come from one query.
	ctx := store.WithCodeReads(r.Context())
	ar, err := p.oauth2.NewAccessRequest(ctx, r, emptySession())
	if err != nil {
		p.accessError(w, r, ar, err)
		return
	}
	if c, ok := ar.GetClient().(*store.Client); ok {
		// ID tokens are signed as the (authenticated) client registered.
		ctx = WithSigningAlg(ctx, c.IDTokenAlg)
	}
	if ar.GetGrantTypes().ExactOne("client_credentials") {
		// A client acting for itself gets the scopes it asked for among those
		// it is registered with (fosite has checked the latter).
		for _, s := range ar.GetRequestedScopes() {
			ar.GrantScope(s)
		}
	}
	resp, err := p.oauth2.NewAccessResponse(ctx, ar)
	if err != nil {
		p.accessError(w, r, ar, err)
		return
	}
	p.oauth2.WriteAccessResponse(ctx, w, ar, resp)
}

// accessError writes a token endpoint error and logs its cause.
//
// One case is fosite's to get wrong: of several concurrent redemptions of
// one code, the losers fail in InvalidateAuthorizeCodeSession (the store's
// conditional write), which fosite reports as server_error. They are code
// replays, so they get invalid_grant, and, as RFC 6749 §4.1.2 asks of a
// reused code, the tokens the winner got are revoked.
func (p *Provider) accessError(w http.ResponseWriter, r *http.Request, ar fosite.AccessRequester, err error) {
	log := web.Logger(r.Context())
	if errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) && ar != nil && ar.GetID() != "" {
		id := ar.GetID()
		if rErr := errors.Join(p.store.RevokeAccessToken(r.Context(), id), p.store.RevokeRefreshToken(r.Context(), id)); rErr != nil {
			log.Error("revoke tokens of a replayed code", "err", rErr)
		}
		err = fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
	}
	if errors.Is(err, store.ErrUserInactive) {
		// Defence in depth: the exchange's and the refresh's first write
		// hold the user's row (store.heldByUser), so their tokens' INSERT
		// does not find the user reset; if it ever did, nothing was written
		// and the grant is the user's no longer.
		err = fosite.ErrInvalidGrant.WithHint("The user's sign-in was revoked.")
	}
	rfcErr := fosite.ErrorToRFC6749Error(err)
	if !unavailable(err) {
		log.Info("token error", "error", rfcErr.ErrorField, "hint", rfcErr.HintField, "debug", rfcErr.DebugField)
		p.oauth2.WriteAccessError(r.Context(), w, ar, err)
		return
	}
	log.Error("token error", "error", rfcErr.ErrorField, "hint", rfcErr.HintField, "debug", rfcErr.DebugField)
	p.oauth2.WriteAccessError(r.Context(), w, ar, fosite.ErrTemporarilyUnavailable.WithWrap(err))
}

// unavailable reports whether err is twofold's failure rather than the
// client's: the database unreachable, a transaction cut off. fosite calls
// that server_error (500), or invalid_client when it happened while
// loading the client (GetClient marks those temporarily_unavailable).
// Either way the client can only try again later, so it gets 503
// temporarily_unavailable, as every page says "try again in a moment" in
// that case, never a 500 or a claim that its credentials are wrong.
func unavailable(err error) bool {
	return errors.Is(err, fosite.ErrTemporarilyUnavailable) || fosite.ErrorToRFC6749Error(err).CodeField >= 500
}

// handleRevoke is RFC 7009 revocation: the client authenticates and may
// revoke only its own tokens; revoking a refresh token also revokes the
// access tokens of its grant.
func (p *Provider) handleRevoke(w http.ResponseWriter, r *http.Request) {
	err := p.oauth2.NewRevocationRequest(r.Context(), r)
	if err != nil {
		web.Logger(r.Context()).Info("revocation error", "err", err)
	}
	if err != nil && unavailable(err) {
		// fosite answers 200 to a revocation that failed in the store (its
		// writer knows only invalid_request and invalid_client), so the
		// client would believe a token dead that still works. RFC 7009
		// §2.2.1: 503 tells it the token may still exist and to retry.
		p.oauth2.WriteAccessError(r.Context(), w, nil, fosite.ErrTemporarilyUnavailable.WithWrap(err))
		return
	}
	p.oauth2.WriteRevocationResponse(r.Context(), w, err)
}

// handleIntrospect is RFC 7662 introspection, for authenticated clients.
func (p *Provider) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	ir, err := p.oauth2.NewIntrospectionRequest(r.Context(), r, emptySession())
	if err != nil {
		web.Logger(r.Context()).Info("introspection error", "err", err)
		p.oauth2.WriteIntrospectionError(r.Context(), w, err)
		return
	}
	p.oauth2.WriteIntrospectionResponse(r.Context(), w, ir)
}

// handleUserinfo returns the claims of the access token's user that its
// scopes allow. Tokens are opaque and looked up on every call, so a revoked
// token (or a reset user's) stops working at once.
func (p *Provider) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := fosite.AccessTokenFromRequest(r)
	if token == "" {
		bearerError(w, http.StatusUnauthorized, "")
		return
	}
	sess := emptySession()
	_, ar, err := p.oauth2.IntrospectToken(ctx, token, fosite.AccessToken, sess)
	if err != nil {
		web.Logger(ctx).Info("userinfo: token refused", "err", err)
		bearerError(w, http.StatusUnauthorized, "invalid_token")
		return
	}
	if !ar.GetGrantedScopes().Has("openid") || sess.Subject == "" {
		bearerError(w, http.StatusForbidden, "insufficient_scope")
		return
	}
	user, err := p.store.GetUser(ctx, sess.Subject)
	if err != nil {
		web.Logger(ctx).Info("userinfo: user gone", "err", err)
		bearerError(w, http.StatusUnauthorized, "invalid_token")
		return
	}
	claims := userClaims(user, ar.GetGrantedScopes())
	claims["sub"] = user.ID
	web.JSON(w, http.StatusOK, claims)
}

// bearerError is an RFC 6750 error response.
func bearerError(w http.ResponseWriter, status int, code string) {
	v := `Bearer realm="twofold"`
	if code != "" {
		v += `, error="` + code + `"`
	}
	w.Header().Set("WWW-Authenticate", v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if code == "" {
		code = "invalid_request"
	}
	w.Write([]byte(`{"error":"` + strings.ReplaceAll(code, `"`, "") + `"}` + "\n"))
}
