package main

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// TestClientCredentialsIntrospectionRevocation: a service gets a token for
// itself, a resource server introspects it (authenticated), and revocation
// makes it inactive at once.
func TestClientCredentialsIntrospectionRevocation(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		s := newTestServer(t, backend, nil)
		svc, secret := s.createClient(store.Client{GrantTypes: []string{"client_credentials"}, Scopes: []string{"reports.read", "reports.write"}, RedirectURIs: []string{}})
		api := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true}) // a resource server authenticating as a client
		cc := clientcredentials.Config{ClientID: svc.ID, ClientSecret: secret, TokenURL: s.issuer + "/oauth2/token", Scopes: []string{"reports.read"}}
		tok, err := cc.Token(context.Background())
		if err != nil {
			t.Fatalf("client credentials: %v", err)
		}
		if tok.RefreshToken != "" {
			t.Fatal("client credentials issued a refresh token")
		}

		resp, body := api.postForm("/oauth2/introspect", url.Values{"token": {tok.AccessToken}})
		if resp.StatusCode != 200 || body["active"] != true || body["client_id"] != svc.ID || body["scope"] != "reports.read" {
			t.Fatalf("introspection: %d %v", resp.StatusCode, body)
		}
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("introspection is cacheable: %q", resp.Header.Get("Cache-Control"))
		}
		// Introspection requires client authentication.
		anon, err := http.PostForm(s.issuer+"/oauth2/introspect", url.Values{"token": {tok.AccessToken}})
		if err != nil {
			t.Fatal(err)
		}
		anon.Body.Close()
		if anon.StatusCode != http.StatusUnauthorized {
			t.Fatalf("anonymous introspection: %d", anon.StatusCode)
		}
		// A scope the client is not registered for is refused.
		if _, err := (&clientcredentials.Config{ClientID: svc.ID, ClientSecret: secret, TokenURL: cc.TokenURL, Scopes: []string{"admin"}}).Token(context.Background()); err == nil {
			t.Fatal("client credentials granted an unregistered scope")
		}
		// The service token is not a user's: no userinfo.
		if resp, _ := api.userinfo(tok.AccessToken); resp.StatusCode == http.StatusOK {
			t.Fatal("userinfo answered for a client credentials token")
		}

		// Another client cannot revoke it; the owner can.
		if resp, _ := api.postForm("/oauth2/revoke", url.Values{"token": {tok.AccessToken}}); resp.StatusCode != 200 && resp.StatusCode != 400 {
			t.Fatalf("foreign revocation: %d", resp.StatusCode)
		}
		if _, body := api.postForm("/oauth2/introspect", url.Values{"token": {tok.AccessToken}}); body["active"] != true {
			t.Fatal("another client revoked the token")
		}
		owner := &relyingParty{t: t, s: s, conf: &oauth2.Config{ClientID: svc.ID, ClientSecret: secret}}
		if resp, body := owner.postForm("/oauth2/revoke", url.Values{"token": {tok.AccessToken}}); resp.StatusCode != 200 {
			t.Fatalf("revocation: %d %v", resp.StatusCode, body)
		}
		if _, body := api.postForm("/oauth2/introspect", url.Values{"token": {tok.AccessToken}}); body["active"] != false {
			t.Fatalf("revoked token is active: %v", body)
		}
	})
}

// TestRevokeRefreshToken: revoking a refresh token (RFC 7009) ends the
// grant: the refresh token and the access tokens issued with it.
func TestRevokeRefreshToken(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("rev@example.com")
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
	in := rp.signIn(s.newBrowser(), u)

	resp, body := rp.postForm("/oauth2/introspect", url.Values{"token": {in.token.AccessToken}})
	if body["active"] != true || body["sub"] != u.ID || body["client_id"] != rp.client.ID {
		t.Fatalf("introspect user token: %d %v", resp.StatusCode, body)
	}
	if resp, body := rp.postForm("/oauth2/revoke", url.Values{"token": {in.token.RefreshToken}, "token_type_hint": {"refresh_token"}}); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d %v", resp.StatusCode, body)
	}
	if resp, body := rp.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {in.token.RefreshToken}}); resp.StatusCode != 400 {
		t.Fatalf("revoked refresh token works: %d %v", resp.StatusCode, body)
	}
	if resp, _ := rp.userinfo(in.token.AccessToken); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("access token survived revoking its refresh token: %d", resp.StatusCode)
	}
	// Revoking an unknown token is not an error (RFC 7009 §2.2).
	if resp, _ := rp.postForm("/oauth2/revoke", url.Values{"token": {"no-such-token"}}); resp.StatusCode != 200 {
		t.Fatalf("revoking an unknown token: %d", resp.StatusCode)
	}
}

// TestUserinfoRefusals: no token, a bad token, a malformed header.
func TestUserinfoRefusals(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	for name, auth := range map[string]string{"none": "", "unknown": "Bearer abc.def", "basic": "Basic Zm9vOmJhcg==", "empty bearer": "Bearer "} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.issuer+"/userinfo", nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatalf("%d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}
