package provider

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/twofold-id/twofold/session"
)

// discoveryDocument is the OpenID Provider Metadata, built once.
func discoveryDocument(issuer *url.URL) ([]byte, error) {
	base := issuer.String()
	return json.MarshalIndent(map[string]any{
		"issuer":                                base,
		"authorization_endpoint":                base + "/oauth2/auth",
		"token_endpoint":                        base + "/oauth2/token",
		"userinfo_endpoint":                     base + "/userinfo",
		"jwks_uri":                              base + "/.well-known/jwks.json",
		"revocation_endpoint":                   base + "/oauth2/revoke",
		"introspection_endpoint":                base + "/oauth2/introspect",
		"end_session_endpoint":                  base + "/oauth2/sessions/logout",
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token", "client_credentials"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": SigningAlgs,
		"scopes_supported":                      []string{"openid", "email", "profile", "offline_access"},
		"claims_supported": []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "at_hash",
			"email", "email_verified", "name"},
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":              []string{"S256"},
		"acr_values_supported":                          []string{session.ACRPassword, session.ACRMultiFactor},
		"prompt_values_supported":                       []string{"none", "login", "consent"},
		"claims_parameter_supported":                    false,
		"request_parameter_supported":                   false,
		"request_uri_parameter_supported":               false,
	}, "", "  ")
}

// handleDiscovery serves the precomputed discovery document.
func (p *Provider) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Write(p.discovery)
}

// handleJWKS serves the published keys as precomputed bytes; they change
// only at rotation, so caches may keep them briefly.
func (p *Provider) handleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Write(p.keys.JWKS())
}
