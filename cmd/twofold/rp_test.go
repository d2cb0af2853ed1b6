package main

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/twofold-id/twofold/store"
)

// relyingParty is a real OpenID Connect client: golang.org/x/oauth2 and
// coreos/go-oidc, used unchanged, as an application would.
type relyingParty struct {
	t        *testing.T
	s        *testServer
	client   store.Client
	conf     *oauth2.Config
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
}

func (s *testServer) newRP(c store.Client) *relyingParty {
	s.t.Helper()
	c, secret := s.createClient(c)
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, s.issuer)
	if err != nil {
		s.t.Fatalf("discovery: %v", err)
	}
	return &relyingParty{t: s.t, s: s, client: c, provider: p,
		verifier: p.Verifier(&oidc.Config{ClientID: c.ID}),
		conf: &oauth2.Config{ClientID: c.ID, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: c.RedirectURIs[0],
			Scopes: []string{oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess}}}
}

// authRequest is one authorization request and its secrets.
type authRequest struct {
	url, state, nonce, verifier string
}

func (rp *relyingParty) authRequest(extra ...oauth2.AuthCodeOption) authRequest {
	ar := authRequest{state: rand.Text(), nonce: rand.Text(), verifier: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{oidc.Nonce(ar.nonce), oauth2.S256ChallengeOption(ar.verifier)}, extra...)
	ar.url = rp.conf.AuthCodeURL(ar.state, opts...)
	return ar
}

// callback checks that p is the redirect to the client's redirect URI and
// returns its query, having checked state.
func (rp *relyingParty) callback(p page, ar authRequest) url.Values {
	rp.t.Helper()
	if !strings.HasPrefix(p.location, rp.conf.RedirectURL) {
		rp.t.Fatalf("expected a redirect to %s, got %d at %s (location %q):\n%.2000s", rp.conf.RedirectURL, p.status, p.url, p.location, p.body)
	}
	u, err := url.Parse(p.location)
	if err != nil {
		rp.t.Fatal(err)
	}
	q := u.Query()
	if q.Get("state") != ar.state {
		rp.t.Fatalf("state = %q, want %q", q.Get("state"), ar.state)
	}
	return q
}

// code returns the code from a successful callback.
func (rp *relyingParty) code(p page, ar authRequest) string {
	rp.t.Helper()
	q := rp.callback(p, ar)
	if q.Get("code") == "" {
		rp.t.Fatalf("no code in callback: %v", q)
	}
	return q.Get("code")
}

// signedIn is the result of a completed code flow.
type signedIn struct {
	token   *oauth2.Token
	idToken *oidc.IDToken
	claims  idClaims
}

type idClaims struct {
	Sub           string   `json:"sub"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	AMR           []string `json:"amr"`
	ACR           string   `json:"acr"`
	AuthTime      int64    `json:"auth_time"`
	Nonce         string   `json:"nonce"`
	AtHash        string   `json:"at_hash"`
}

// exchange redeems code and verifies the ID token: signature, issuer,
// audience, expiry, nonce and at_hash.
func (rp *relyingParty) exchange(code string, ar authRequest) signedIn {
	rp.t.Helper()
	ctx := context.Background()
	tok, err := rp.conf.Exchange(ctx, code, oauth2.VerifierOption(ar.verifier))
	if err != nil {
		rp.t.Fatalf("exchange: %v", err)
	}
	return rp.verify(tok, ar.nonce)
}

func (rp *relyingParty) verify(tok *oauth2.Token, nonce string) signedIn {
	rp.t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		rp.t.Fatal("token response has no id_token")
	}
	idt, err := rp.verifier.Verify(context.Background(), raw)
	if err != nil {
		rp.t.Fatalf("verify id token: %v", err)
	}
	if nonce != "" && idt.Nonce != nonce {
		rp.t.Fatalf("nonce = %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		rp.t.Fatalf("at_hash: %v", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		rp.t.Fatal(err)
	}
	return signedIn{token: tok, idToken: idt, claims: c}
}

// signIn runs the whole flow for a browser that must log in: authorize,
// password, consent when shown, code, token, verified ID token.
func (rp *relyingParty) signIn(b *browser, u testUser, extra ...oauth2.AuthCodeOption) signedIn {
	rp.t.Helper()
	ar := rp.authRequest(extra...)
	p := b.get(ar.url)
	if strings.Contains(p.body, `name="password"`) {
		p = b.login(p, u.Email, u.Password)
	}
	if strings.Contains(p.body, `name="decision"`) {
		p = b.consent(p, "allow")
	}
	return rp.exchange(rp.code(p, ar), ar)
}

// userinfo calls the userinfo endpoint with an access token.
func (rp *relyingParty) userinfo(accessToken string) (*http.Response, map[string]any) {
	rp.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rp.s.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		rp.t.Fatal(err)
	}
	defer resp.Body.Close()
	var claims map[string]any
	decodeJSON(rp.t, resp.Body, &claims)
	return resp, claims
}

// postForm posts a back-channel form with the client's credentials.
func (rp *relyingParty) postForm(path string, form url.Values) (*http.Response, map[string]any) {
	rp.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, rp.s.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if rp.conf.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(rp.conf.ClientID), url.QueryEscape(rp.conf.ClientSecret))
	} else {
		form.Set("client_id", rp.conf.ClientID)
		req.Body = http.NoBody
		req, _ = http.NewRequest(http.MethodPost, rp.s.issuer+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		rp.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	decodeJSON(rp.t, resp.Body, &body)
	return resp, body
}
