package main

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// TestCodeFlow: a real relying party signs a user in with the code flow
// and PKCE, verifies the ID token and calls userinfo; the second sign-in
// reuses the session and the remembered consent.
func TestCodeFlow(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		s := newTestServer(t, backend, nil)
		u := s.createUser("ada@example.com")
		rp := s.newRP(store.Client{RequirePKCE: true})
		b := s.newBrowser()

		ar := rp.authRequest(oauth2.SetAuthURLParam("login_hint", "ada@example.com"))
		p := b.get(ar.url)
		if !strings.Contains(p.body, `value="ada@example.com"`) || !strings.Contains(p.body, "Test App") {
			t.Fatalf("login page lacks the hint or the client's name:\n%s", p.body)
		}
		p = b.login(p, u.Email, u.Password)
		if !strings.Contains(p.body, "See your email address") {
			t.Fatalf("expected the consent page listing scopes:\n%s", p.body)
		}
		before := time.Now().Add(-time.Second).Unix()
		in := rp.exchange(rp.code(b.consent(p, "allow"), ar), ar)
		c := in.claims
		if c.Sub != u.ID || c.Email != u.Email || !c.EmailVerified || c.Name != u.Name {
			t.Fatalf("claims = %+v", c)
		}
		if !slices.Equal(c.AMR, []string{"pwd"}) || c.ACR != "urn:twofold:acr:pwd" || c.AuthTime < before || c.AtHash == "" {
			t.Fatalf("authentication claims = %+v", c)
		}
		if in.token.RefreshToken == "" {
			t.Fatal("no refresh token although offline_access was granted")
		}
		resp, info := rp.userinfo(in.token.AccessToken)
		if resp.StatusCode != 200 || info["sub"] != u.ID || info["email"] != u.Email || info["name"] != u.Name {
			t.Fatalf("userinfo = %d %v", resp.StatusCode, info)
		}

		// Second sign-in: live session and remembered consent, no page at all.
		ar2 := rp.authRequest()
		again := rp.exchange(rp.code(b.get(ar2.url), ar2), ar2)
		if again.claims.Sub != u.ID || again.claims.AuthTime != c.AuthTime {
			t.Fatalf("second sign-in claims = %+v, want the same session's auth_time %d", again.claims, c.AuthTime)
		}
	})
}

// TestScopesLimitClaims: without the email and profile scopes, neither the
// ID token nor userinfo carries those claims, and no refresh token is
// issued without offline_access.
func TestScopesLimitClaims(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("min@example.com")
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
	rp.conf.Scopes = []string{"openid"}
	in := rp.signIn(s.newBrowser(), u)
	if in.claims.Email != "" || in.claims.Name != "" || in.token.RefreshToken != "" {
		t.Fatalf("openid-only sign-in leaked claims or a refresh token: %+v, refresh %q", in.claims, in.token.RefreshToken)
	}
	_, info := rp.userinfo(in.token.AccessToken)
	if info["sub"] != u.ID || info["email"] != nil || info["name"] != nil {
		t.Fatalf("userinfo = %v", info)
	}
}

// TestPrompts covers prompt=none, prompt=login, prompt=consent, max_age and
// a login_hint naming someone else.
func TestPrompts(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("pat@example.com")
	rp := s.newRP(store.Client{RequirePKCE: true})
	b := s.newBrowser()

	t.Run("none without a session is login_required", func(t *testing.T) {
		ar := rp.authRequest(oauth2.SetAuthURLParam("prompt", "none"))
		if q := rp.callback(b.get(ar.url), ar); q.Get("error") != "login_required" {
			t.Fatalf("callback = %v", q)
		}
	})
	first := rp.signIn(b, u)

	t.Run("none with a session and consent succeeds silently", func(t *testing.T) {
		ar := rp.authRequest(oauth2.SetAuthURLParam("prompt", "none"))
		in := rp.exchange(rp.code(b.get(ar.url), ar), ar)
		if in.claims.AuthTime != first.claims.AuthTime {
			t.Fatalf("auth_time changed without a sign-in")
		}
	})
	t.Run("none with a scope not yet granted is consent_required", func(t *testing.T) {
		rp2 := s.newRP(store.Client{RequirePKCE: true})
		ar := rp2.authRequest(oauth2.SetAuthURLParam("prompt", "none"))
		if q := rp2.callback(b.get(ar.url), ar); q.Get("error") != "consent_required" {
			t.Fatalf("callback = %v", q)
		}
	})
	t.Run("login forces the password again", func(t *testing.T) {
		time.Sleep(1100 * time.Millisecond) // auth_time has one-second resolution
		ar := rp.authRequest(oauth2.SetAuthURLParam("prompt", "login"))
		p := b.get(ar.url)
		in := rp.exchange(rp.code(b.login(p, u.Email, u.Password), ar), ar)
		if in.claims.AuthTime <= first.claims.AuthTime {
			t.Fatalf("prompt=login did not re-authenticate: auth_time %d <= %d", in.claims.AuthTime, first.claims.AuthTime)
		}
	})
	t.Run("max_age=0 forces the password again", func(t *testing.T) {
		ar := rp.authRequest(oauth2.SetAuthURLParam("max_age", "0"))
		if p := b.get(ar.url); !strings.Contains(p.body, `name="password"`) {
			t.Fatalf("max_age=0 did not ask for the password: %d %s", p.status, p.url)
		}
	})
	t.Run("a generous max_age keeps the session", func(t *testing.T) {
		ar := rp.authRequest(oauth2.SetAuthURLParam("max_age", "3600"))
		rp.code(b.get(ar.url), ar)
	})
	t.Run("consent asks again", func(t *testing.T) {
		ar := rp.authRequest(oauth2.SetAuthURLParam("prompt", "consent"))
		p := b.get(ar.url)
		rp.code(b.consent(p, "allow"), ar)
	})
	t.Run("a login_hint for someone else asks for the password", func(t *testing.T) {
		ar := rp.authRequest(oauth2.SetAuthURLParam("login_hint", "other@example.com"))
		if p := b.get(ar.url); !strings.Contains(p.body, `value="other@example.com"`) {
			t.Fatalf("expected the login page prefilled with the hint, got %d %s", p.status, p.url)
		}
	})
	t.Run("deny returns access_denied", func(t *testing.T) {
		ar := rp.authRequest(oauth2.SetAuthURLParam("prompt", "consent"))
		p := b.consent(b.get(ar.url), "deny")
		if q := rp.callback(p, ar); q.Get("error") != "access_denied" || q.Get("code") != "" {
			t.Fatalf("callback = %v", q)
		}
	})
}

// TestRefreshRotationAndReuse: each refresh rotates; reusing an old refresh
// token revokes the whole family, including the newest tokens.
func TestRefreshRotationAndReuse(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		s := newTestServer(t, backend, nil)
		u := s.createUser("rot@example.com")
		rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
		in := rp.signIn(s.newBrowser(), u)
		ctx := context.Background()

		first := in.token
		first.Expiry = time.Now().Add(-time.Minute) // make the source refresh
		second, err := rp.conf.TokenSource(ctx, first).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
			t.Fatal("refresh did not rotate the tokens")
		}
		refreshed := rp.verify(second, "")
		if refreshed.claims.Sub != u.ID || !slices.Equal(refreshed.claims.AMR, []string{"pwd"}) {
			t.Fatalf("refreshed ID token claims = %+v", refreshed.claims)
		}
		if resp, _ := rp.userinfo(first.AccessToken); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the previous access token still works after refresh: %d", resp.StatusCode)
		}

		// Reuse of the rotated-out refresh token: refused, and the family dies.
		resp, body := rp.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}})
		if resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("reuse: %d %v", resp.StatusCode, body)
		}
		if resp, _ := rp.userinfo(second.AccessToken); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the newest access token survived refresh token reuse: %d", resp.StatusCode)
		}
		resp, body = rp.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second.RefreshToken}})
		if resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("the newest refresh token survived reuse detection: %d %v", resp.StatusCode, body)
		}
	})
}
