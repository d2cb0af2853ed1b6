package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// TestAuthorizeRefusals: requests that must never get a code. Where the
// redirect URI is not exactly registered, the browser gets an error page
// and is never sent to it.
func TestAuthorizeRefusals(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("ref@example.com")
	rp := s.newRP(store.Client{RequirePKCE: true})
	public := s.newRP(store.Client{Public: true})
	b := s.newBrowser()
	rp.signIn(b, u) // a live session and consent: only the request's flaws can stop a code

	withParams := func(base string, set map[string]string, del ...string) string {
		u, _ := url.Parse(base)
		q := u.Query()
		for k, v := range set {
			q.Set(k, v)
		}
		for _, k := range del {
			q.Del(k)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	pageCases := map[string]string{
		"unregistered redirect uri":     withParams(rp.authRequest().url, map[string]string{"redirect_uri": "https://evil.example/cb"}),
		"redirect uri with extra path":  withParams(rp.authRequest().url, map[string]string{"redirect_uri": rp.conf.RedirectURL + "/x"}),
		"redirect uri with extra query": withParams(rp.authRequest().url, map[string]string{"redirect_uri": rp.conf.RedirectURL + "?a=1"}),
		"unknown client":                withParams(rp.authRequest().url, map[string]string{"client_id": "nope"}),
	}
	for name, u := range pageCases {
		t.Run(name, func(t *testing.T) {
			p := b.get(u)
			if p.status != http.StatusBadRequest || p.location != "" || !strings.Contains(p.body, "Invalid sign-in request") {
				t.Fatalf("got %d, location %q:\n%.500s", p.status, p.location, p.body)
			}
		})
	}

	redirectCases := []struct {
		name, url, wantErr string
		rp                 *relyingParty
	}{
		{"public client without PKCE", withParams(public.authRequest().url, nil, "code_challenge", "code_challenge_method"), "invalid_request", public},
		{"confidential client without PKCE", withParams(rp.authRequest().url, nil, "code_challenge", "code_challenge_method"), "invalid_request", rp},
		{"plain PKCE", withParams(rp.authRequest().url, map[string]string{"code_challenge_method": "plain"}), "invalid_request", rp},
		{"implicit flow", withParams(rp.authRequest().url, map[string]string{"response_type": "token"}), "unsupported_response_type", rp},
		{"hybrid flow", withParams(rp.authRequest().url, map[string]string{"response_type": "code id_token"}), "unsupported_response_type", rp},
		{"form_post response mode", withParams(rp.authRequest().url, map[string]string{"response_mode": "form_post"}), "", rp},
		{"unknown scope", withParams(rp.authRequest().url, map[string]string{"scope": "openid admin"}), "invalid_scope", rp},
		{"unknown prompt", withParams(rp.authRequest().url, map[string]string{"prompt": "select_account"}), "invalid_request", rp},
	}
	for _, tc := range redirectCases {
		t.Run(tc.name, func(t *testing.T) {
			p := b.get(tc.url)
			loc, _ := url.Parse(p.location)
			errCode := loc.Query().Get("error")
			if errCode == "" && loc.Fragment != "" { // fosite answers implicit requests in the fragment
				frag, _ := url.ParseQuery(loc.Fragment)
				errCode = frag.Get("error")
			}
			if p.location == "" || loc.Query().Get("code") != "" || errCode == "" || (tc.wantErr != "" && errCode != tc.wantErr) {
				t.Fatalf("got %d, location %q, want error %q", p.status, p.location, tc.wantErr)
			}
		})
	}
}

// TestNativeClientLoopbackPort: a public (native) client may receive the
// code on any loopback port (RFC 8252 §7.3), with PKCE.
func TestNativeClientLoopbackPort(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("native@example.com")
	rp := s.newRP(store.Client{Public: true, SkipConsent: true, RedirectURIs: []string{"http://127.0.0.1/callback"}})
	rp.conf.RedirectURL = "http://127.0.0.1:49152/callback"
	in := rp.signIn(s.newBrowser(), u)
	if in.claims.Sub != u.ID {
		t.Fatalf("claims = %+v", in.claims)
	}
}

// TestLegacyClientWithoutPKCE: a confidential client registered with
// --no-pkce may omit PKCE, and still must authenticate.
func TestLegacyClientWithoutPKCE(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("legacy@example.com")
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: false})
	b := s.newBrowser()
	ar := authRequest{state: "state-12345678", nonce: "nonce-12345678"}
	ar.url = rp.conf.AuthCodeURL(ar.state, oauth2.SetAuthURLParam("nonce", ar.nonce))
	p := b.login(b.get(ar.url), u.Email, u.Password)
	tok, err := rp.conf.Exchange(context.Background(), rp.code(p, ar))
	if err != nil {
		t.Fatalf("legacy exchange: %v", err)
	}
	rp.verify(tok, ar.nonce)
}

// TestTokenRefusals: token requests that must fail, and what they leave.
func TestTokenRefusals(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("tok@example.com")
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
	b := s.newBrowser()
	codeFor := func() (string, authRequest) {
		ar := rp.authRequest()
		p := b.get(ar.url)
		if strings.Contains(p.body, `name="password"`) {
			p = b.login(p, u.Email, u.Password)
		}
		return rp.code(p, ar), ar
	}
	exchange := func(form url.Values) (*http.Response, map[string]any) {
		form.Set("grant_type", "authorization_code")
		if form.Get("redirect_uri") == "" {
			form.Set("redirect_uri", rp.conf.RedirectURL)
		}
		return rp.postForm("/oauth2/token", form)
	}

	t.Run("wrong verifier", func(t *testing.T) {
		code, ar := codeFor()
		resp, body := exchange(url.Values{"code": {code}, "code_verifier": {oauth2.GenerateVerifier()}})
		if resp.StatusCode != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("%d %v", resp.StatusCode, body)
		}
		// The failure did not strip the code of its PKCE binding: without
		// a verifier it is still refused, and only its own verifier works.
		resp, body = exchange(url.Values{"code": {code}})
		if resp.StatusCode != 400 || body["error"] == nil {
			t.Fatalf("after a wrong verifier, no verifier: %d %v", resp.StatusCode, body)
		}
		rp.exchange(code, ar)
	})
	t.Run("missing verifier", func(t *testing.T) {
		code, _ := codeFor()
		resp, body := exchange(url.Values{"code": {code}})
		if resp.StatusCode != 400 || body["error"] == nil {
			t.Fatalf("%d %v", resp.StatusCode, body)
		}
	})
	t.Run("other redirect uri", func(t *testing.T) {
		code, ar := codeFor()
		resp, body := exchange(url.Values{"code": {code}, "code_verifier": {ar.verifier}, "redirect_uri": {"http://127.0.0.1:5555/other"}})
		if resp.StatusCode != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("%d %v", resp.StatusCode, body)
		}
	})
	t.Run("wrong client secret", func(t *testing.T) {
		code, ar := codeFor()
		bad := *rp
		conf := *rp.conf
		conf.ClientSecret = "not-the-secret"
		bad.conf = &conf
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {ar.verifier}, "redirect_uri": {rp.conf.RedirectURL}}
		resp, body := bad.postForm("/oauth2/token", form)
		if resp.StatusCode != 401 || body["error"] != "invalid_client" {
			t.Fatalf("%d %v", resp.StatusCode, body)
		}
		// The code survives a request that never authenticated.
		rp.exchange(code, ar)
	})
	t.Run("code reuse revokes what it issued", func(t *testing.T) {
		code, ar := codeFor()
		in := rp.exchange(code, ar)
		resp, body := exchange(url.Values{"code": {code}, "code_verifier": {ar.verifier}})
		if resp.StatusCode != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("replay: %d %v", resp.StatusCode, body)
		}
		if resp, _ := rp.userinfo(in.token.AccessToken); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("access token from a replayed code still works: %d", resp.StatusCode)
		}
		resp, body = rp.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {in.token.RefreshToken}})
		if resp.StatusCode != 400 {
			t.Fatalf("refresh token from a replayed code still works: %d %v", resp.StatusCode, body)
		}
	})
	t.Run("unsupported grant types", func(t *testing.T) {
		for _, gt := range []string{"password", "implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer", ""} {
			resp, body := rp.postForm("/oauth2/token", url.Values{"grant_type": {gt}, "username": {u.Email}, "password": {u.Password}})
			if resp.StatusCode < 400 || resp.StatusCode >= 500 || body["access_token"] != nil {
				t.Fatalf("grant_type %q: %d %v", gt, resp.StatusCode, body)
			}
		}
	})
}

// TestConcurrentCodeRedemption: ten simultaneous redemptions of one code
// yield exactly one token response; the rest are invalid_grant, never 5xx.
func TestConcurrentCodeRedemption(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		s := newTestServer(t, backend, nil)
		u := s.createUser("race@example.com")
		rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
		b := s.newBrowser()
		for round := range 3 {
			ar := rp.authRequest()
			p := b.get(ar.url)
			if round == 0 {
				p = b.login(p, u.Email, u.Password)
			}
			code := rp.code(p, ar)
			var mu sync.Mutex
			statuses := map[int]int{}
			errs := map[any]int{}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 10 {
				wg.Go(func() {
					<-start
					resp, body := rp.postForm("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
						"code_verifier": {ar.verifier}, "redirect_uri": {rp.conf.RedirectURL}})
					mu.Lock()
					statuses[resp.StatusCode]++
					errs[body["error"]]++
					mu.Unlock()
				})
			}
			close(start)
			wg.Wait()
			if statuses[200] != 1 || statuses[400] != 9 || errs["invalid_grant"] != 9 {
				t.Fatalf("round %d: statuses %v, errors %v; want one 200 and nine invalid_grant", round, statuses, errs)
			}
		}
	})
}
