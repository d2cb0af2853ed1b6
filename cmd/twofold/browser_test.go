package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// TestLogout: RP-initiated logout with id_token_hint returns to the
// registered address with state, and the session is gone.
func TestLogout(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, backend storetest.Backend) {
		s := newTestServer(t, backend, nil)
		u := s.createUser("bye@example.com")
		rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true, PostLogoutRedirectURIs: []string{"http://127.0.0.1:5555/bye"}})
		b := s.newBrowser()
		in := rp.signIn(b, u)
		raw := in.token.Extra("id_token").(string)

		q := url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {"http://127.0.0.1:5555/bye"}, "state": {"st-123"}}
		p := b.get(s.issuer + "/oauth2/sessions/logout?" + q.Encode())
		if !strings.Contains(p.body, "Sign out?") || !strings.Contains(p.body, u.Email) {
			t.Fatalf("expected the sign-out confirmation, got %d:\n%s", p.status, p.body)
		}
		p = b.post("/logout", p.hidden())
		if p.location != "http://127.0.0.1:5555/bye?state=st-123" {
			t.Fatalf("after sign-out: %d, location %q", p.status, p.location)
		}
		ar := rp.authRequest(oauth2.SetAuthURLParam("prompt", "none"))
		if q := rp.callback(b.get(ar.url), ar); q.Get("error") != "login_required" {
			t.Fatalf("session survived sign-out: %v", q)
		}
	})
}

// TestLogoutRefusals: the end-session endpoint is no open redirect.
func TestLogoutRefusals(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("bye2@example.com")
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true, PostLogoutRedirectURIs: []string{"http://127.0.0.1:5555/bye"}})
	other := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true, PostLogoutRedirectURIs: []string{"http://127.0.0.1:5555/other"}})
	b := s.newBrowser()
	raw := rp.signIn(b, u).token.Extra("id_token").(string)
	cases := map[string]url.Values{
		"unregistered address":             {"id_token_hint": {raw}, "post_logout_redirect_uri": {"https://evil.example/"}},
		"another client's address":         {"id_token_hint": {raw}, "post_logout_redirect_uri": {"http://127.0.0.1:5555/other"}},
		"client_id not in hint's audience": {"id_token_hint": {raw}, "client_id": {other.client.ID}, "post_logout_redirect_uri": {"http://127.0.0.1:5555/other"}},
		"forged hint":                      {"id_token_hint": {raw[:len(raw)-4] + "AAAA"}, "post_logout_redirect_uri": {"http://127.0.0.1:5555/bye"}},
		"address without client":           {"post_logout_redirect_uri": {"http://127.0.0.1:5555/bye"}},
	}
	for name, q := range cases {
		t.Run(name, func(t *testing.T) {
			p := b.get(s.issuer + "/oauth2/sessions/logout?" + q.Encode())
			if p.status != http.StatusBadRequest || p.location != "" {
				t.Fatalf("got %d, location %q", p.status, p.location)
			}
		})
	}
	// The confirmation step re-checks the address it is given.
	p := b.post("/logout", url.Values{"request": {url.Values{"client_id": {rp.client.ID}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode()}})
	if p.status != http.StatusBadRequest || p.location != "" {
		t.Fatalf("forged confirmation: %d, location %q", p.status, p.location)
	}
}

// TestFlowBoundToBrowser: a flow id used from another browser, or replayed
// after it produced a code, gets nowhere.
func TestFlowBoundToBrowser(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("bind@example.com")
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
	victim, attacker := s.newBrowser(), s.newBrowser()

	ar := rp.authRequest()
	p := victim.get(ar.url)
	flow := p.hidden().Get("flow")
	if flow == "" {
		t.Fatal("no flow on the login page")
	}
	for _, path := range []string{"/login?flow=" + flow, "/login/continue?flow=" + flow, "/oauth2/auth?flow=" + flow} {
		if p := attacker.get(s.issuer + path); p.status != http.StatusBadRequest || p.location != "" {
			t.Fatalf("%s from another browser: %d %q", path, p.status, p.location)
		}
	}
	if p := attacker.post("/login", url.Values{"flow": {flow}, "email": {u.Email}, "password": {u.Password}}); p.status != http.StatusBadRequest {
		t.Fatalf("login into another browser's flow: %d", p.status)
	}
	p = victim.login(p, u.Email, u.Password)
	rp.code(p, ar)
	if p := victim.get(s.issuer + "/oauth2/auth?flow=" + flow); p.status != http.StatusBadRequest || p.location != "" {
		t.Fatalf("replayed finished flow: %d %q", p.status, p.location)
	}
}

// TestCrossOriginPostRefused: a form posted from another site is refused
// before it is read.
func TestCrossOriginPostRefused(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	for _, path := range []string{"/login", "/consent", "/logout"} {
		req, _ := http.NewRequest(http.MethodPost, s.issuer+path, strings.NewReader("flow=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Origin", "https://evil.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-origin POST %s: %d", path, resp.StatusCode)
		}
	}
}

// TestPasswordThrottle: wrong passwords are throttled per account, with the
// same message whether or not the account exists; the right password is
// refused while throttled, and works (resetting the count) after.
func TestPasswordThrottle(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("slow@example.com")
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
	b := s.newBrowser()
	p := b.get(rp.authRequest().url)
	for _, email := range []string{u.Email, "nobody@example.com"} {
		for range 6 {
			r := b.login(p, email, "wrong-password")
			if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Incorrect email or password.") {
				t.Fatalf("attempt on %s: %d without the generic message", email, r.status)
			}
		}
		if r := b.login(p, email, "wrong-password"); r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Too many attempts") {
			t.Fatalf("7th attempt on %s: %d", email, r.status)
		}
	}
	if r := b.login(p, u.Email, u.Password); r.status != http.StatusTooManyRequests {
		t.Fatalf("the right password got through a throttle: %d", r.status)
	}
	events, err := s.db.ListAudit(context.Background(), store.AuditFilter{Kind: "login.failed", TargetID: u.ID})
	if err != nil || len(events) != 6 {
		t.Fatalf("audit: %d login.failed events for the user, err %v; want 6", len(events), err)
	}
	// Once the block has passed (simulated by resetting), the password works.
	if err := s.db.ResetRateLimit(context.Background(), "pwd-acct:"+digestForTest(u.Email)); err != nil {
		t.Fatal(err)
	}
	ar := rp.authRequest()
	rp.code(b.login(b.get(ar.url), u.Email, u.Password), ar)
}

// TestResponseHeaders: security headers everywhere; no-store on pages and
// token responses; plain 404 and 405.
func TestResponseHeaders(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	b := s.newBrowser()
	for path, wantStatus := range map[string]int{"/": 200, "/login": 200, "/.well-known/openid-configuration": 200, "/nope": 404, "/healthz": 200, "/readyz": 200} {
		p := b.get(s.issuer + path)
		if p.status != wantStatus {
			t.Fatalf("%s: %d, want %d", path, p.status, wantStatus)
		}
		for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
			if got := p.header.Get(h); got != want {
				t.Errorf("%s: %s = %q, want %q", path, h, got, want)
			}
		}
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", path, csp)
		}
	}
	if p := b.get(s.issuer + "/login"); p.header.Get("Cache-Control") != "no-store" {
		t.Errorf("login page cacheable: %q", p.header.Get("Cache-Control"))
	}
	req, _ := http.NewRequest(http.MethodDelete, s.issuer+"/oauth2/token", nil)
	if p := b.do(req); p.status != http.StatusMethodNotAllowed || strings.Contains(p.body, "<") {
		t.Fatalf("DELETE /oauth2/token: %d %q", p.status, p.body)
	}
}

// TestWrongMethodUnderPrefixes: under /settings, /settings/security,
// /api and /reset a known path with a method it does not take is 405 with
// the methods it takes in Allow, and an unknown path 404, both plain text,
// signed in or not (gorilla/mux answered a method mismatch inside a
// subrouter with 404).
func TestWrongMethodUnderPrefixes(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("alice@example.com")
	signedIn := s.newBrowser()
	signedIn.signInToSettings(u)
	for _, c := range []struct {
		method, path string
		want         int
		allow        string
	}{
		{http.MethodDelete, "/settings/members", 405, "GET, HEAD"},
		{http.MethodPut, "/settings/audit", 405, "GET, HEAD"},
		{http.MethodGet, "/settings/members/x/resend", 405, "POST"},
		{http.MethodPatch, "/settings/organization/require-2fa", 405, "POST"},
		{http.MethodDelete, "/settings/security", 405, "GET, HEAD"},
		{http.MethodPut, "/settings/security/totp", 405, "GET, POST"},
		{http.MethodGet, "/settings/security/disable", 405, "POST"},
		{http.MethodDelete, "/api/orgs/x/members", 405, "GET"},
		{http.MethodGet, "/api/orgs/x/members/y/reset-2fa", 405, "POST"},
		{http.MethodDelete, "/oauth2/token", 405, "POST"},
		{http.MethodDelete, "/reset/some-token", 405, "GET, POST"}, // its own subrouter, which hides the path
		{http.MethodGet, "/settings/nope", 404, ""},
		{http.MethodGet, "/settings/security/nope", 404, ""},
		{http.MethodGet, "/api/nope", 404, ""},
		{http.MethodPost, "/nope", 404, ""},
	} {
		for _, b := range []*browser{s.newBrowser(), signedIn} {
			req, _ := http.NewRequest(c.method, s.issuer+c.path, nil)
			p := b.do(req)
			if p.status != c.want || strings.Contains(p.body, "<") || p.header.Get("Allow") != c.allow {
				t.Errorf("%s %s: %d %q, Allow %q; want %d in plain text, Allow %q", c.method, c.path, p.status, p.body, p.header.Get("Allow"), c.want, c.allow)
			}
		}
	}
}

func digestForTest(email string) string {
	return consentDigest(store.NormalizeEmail(email))
}

// TestDevelopmentOnlyRoutes: /demo and /dev/mail exist only with --dev.
func TestDevelopmentOnlyRoutes(t *testing.T) {
	prod := newTestServer(t, storetest.SQLite(), nil)
	dev := newTestServer(t, storetest.SQLite(), func(c *Config) { c.Dev = true })
	for _, path := range []string{"/dev/mail", "/demo"} {
		if p := prod.newBrowser().get(prod.issuer + path); p.status != http.StatusNotFound {
			t.Errorf("production %s: %d, want 404", path, p.status)
		}
		if p := dev.newBrowser().get(dev.issuer + path); p.status != http.StatusOK {
			t.Errorf("development %s: %d, want 200", path, p.status)
		}
	}
}
