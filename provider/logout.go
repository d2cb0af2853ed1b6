package provider

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/twofold-id/twofold/web"
)

// handleEndSession is the end_session_endpoint (OpenID Connect RP-Initiated
// Logout 1.0). It validates what the client sent and hands the browser to
// the sign-out confirmation page (/logout), which ends the session.
//
// post_logout_redirect_uri must exactly match one registered for the
// client, identified by id_token_hint (whose signature must be ours; expiry
// does not matter) or client_id; otherwise it is refused with a page here,
// so the endpoint can never be used as an open redirect.
func (p *Provider) handleEndSession(w http.ResponseWriter, r *http.Request) {
	if !web.ParseForm(w, r) {
		return
	}
	clientID := r.Form.Get("client_id")
	if hint := r.Form.Get("id_token_hint"); hint != "" {
		aud, err := p.hintAudience(hint)
		if err != nil {
			p.errorPage(w, r, http.StatusBadRequest, "Invalid sign-out request",
				"The application sent a sign-out request that could not be verified.", err)
			return
		}
		if clientID == "" && len(aud) == 1 {
			clientID = aud[0]
		}
		if clientID != "" && !slices.Contains(aud, clientID) {
			p.errorPage(w, r, http.StatusBadRequest, "Invalid sign-out request",
				"The application sent a sign-out request that could not be verified.", errors.New("client_id is not in the hint's audience"))
			return
		}
	}
	next := url.Values{}
	if redirect := r.Form.Get("post_logout_redirect_uri"); redirect != "" {
		client, err := p.store.GetOAuthClient(r.Context(), clientID)
		if err != nil || !client.AllowsPostLogoutRedirect(redirect) {
			p.errorPage(w, r, http.StatusBadRequest, "Invalid sign-out request",
				"The application asked to return to an address it has not registered.", err)
			return
		}
		next.Set("client_id", clientID)
		next.Set("post_logout_redirect_uri", redirect)
		if state := r.Form.Get("state"); state != "" {
			next.Set("state", state)
		}
	} else if clientID != "" {
		next.Set("client_id", clientID)
	}
	http.Redirect(w, r, "/logout?"+next.Encode(), http.StatusSeeOther)
}

// hintAudience verifies an id_token_hint we issued and returns its audience.
func (p *Provider) hintAudience(hint string) ([]string, error) {
	payload, err := p.keys.Verify(hint)
	if err != nil {
		return nil, err
	}
	var claims struct {
		Issuer   string          `json:"iss"`
		Audience json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, err
	}
	if claims.Issuer != p.cfg.Issuer.String() {
		return nil, errors.New("id_token_hint from another issuer")
	}
	var aud []string
	if err := json.Unmarshal(claims.Audience, &aud); err != nil {
		var one string
		if err := json.Unmarshal(claims.Audience, &one); err != nil {
			return nil, errors.New("id_token_hint has no audience")
		}
		aud = []string{one}
	}
	return aud, nil
}
