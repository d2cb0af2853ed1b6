package provider

import (
	"context"
	"time"

	"github.com/ory/fosite"
)

// TokenInfo is what an access token twofold issued says about its grant.
type TokenInfo struct {
	Subject  string
	ClientID string
	Scopes   []string
	AuthTime time.Time
	AMR      []string
}

// InspectAccessToken validates an access token (signature, expiry, not
// revoked: it is looked up in the store) and returns its grant. The JSON
// API of the owner console authorizes with it.
func (p *Provider) InspectAccessToken(ctx context.Context, token string) (TokenInfo, error) {
	sess := emptySession()
	_, ar, err := p.oauth2.IntrospectToken(ctx, token, fosite.AccessToken, sess)
	if err != nil {
		return TokenInfo{}, err
	}
	return TokenInfo{Subject: sess.Subject, ClientID: ar.GetClient().GetID(), Scopes: ar.GetGrantedScopes(),
		AuthTime: sess.Claims.AuthTime, AMR: sess.Claims.AuthenticationMethodsReferences}, nil
}
