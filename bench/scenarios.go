package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// scenario is one kind of traffic. prepare builds the ops of n workers for
// one level; what it does (signing browsers in, getting first tokens) is
// not measured.
type scenario struct {
	key, title, what string
	prepare          func(ctx context.Context, h *harness, n int) ([]op, error)
	// pool is set for the sign-in scenarios, which borrow seeded users.
	pool bool
}

// allScenarios are every scenario, in the order they run.
func allScenarios() []scenario {
	return []scenario{
		{key: "discovery", title: "Discovery and JWKS", prepare: prepareDiscovery,
			what: "One op is one GET, alternating /.well-known/openid-configuration and /.well-known/jwks.json; the body is checked."},
		{key: "client-credentials", title: "Client credentials", prepare: prepareClientCredentials,
			what: "POST /oauth2/token grant_type=client_credentials, confidential client with HTTP Basic authentication; an access token must come back."},
		{key: "code", title: "Authorization code with a live session", prepare: prepareCodeFlow,
			what: "Authorize (the browser has a session; consent skipped) → code → token exchange with PKCE S256 (golang.org/x/oauth2) → ID token verified with coreos/go-oidc (signature, nonce, at_hash) → userinfo. One browser per worker, signed in before measuring; one op is the whole flow."},
		{key: "refresh", title: "Refresh", prepare: prepareRefresh,
			what: "POST /oauth2/token grant_type=refresh_token; tokens rotate, and each worker follows its own chain."},
		{key: "introspection", title: "Introspection", prepare: prepareIntrospection,
			what: "POST /oauth2/introspect of an access token (one per worker), client authenticated with HTTP Basic; active must be true."},
		{key: "totp", title: "Interactive sign-in with password and TOTP", prepare: prepareTOTP, pool: true,
			what: "A new browser each time: authorize → sign-in form (argon2id) → second-factor form with a fresh TOTP code → code → token exchange with PKCE → ID token verified (amr must hold otp). The application registered ES256 ID tokens (`clients create --id-token-alg ES256`); with the RS256 default each sign-in also pays one RSA-2048 signature (`make bench-go` measures both in `BenchmarkSignIDToken`)."},
		{key: "backup", title: "Sign-in with a backup code", prepare: prepareBackup, pool: true,
			what: "As the TOTP sign-in, with a backup code in the second-factor field (each works once; twofold queues an email for each use). When three or fewer codes remain, twofold shows a notice, and the browser follows its Continue link."},
	}
}

func prepareDiscovery(ctx context.Context, h *harness, n int) ([]op, error) {
	paths := []string{"/.well-known/openid-configuration", "/.well-known/jwks.json"}
	want := [][]byte{[]byte(`"issuer"`), []byte(`"keys"`)}
	ops := make([]op, n)
	for i := range ops {
		k := i
		ops[i] = func(ctx context.Context) error {
			k++
			body, err := h.fetch(ctx, http.MethodGet, paths[k%2], nil, nil)
			if err == nil && !bytes.Contains(body, want[k%2]) {
				err = fmt.Errorf("%s: unexpected body", paths[k%2])
			}
			return err
		}
	}
	return ops, nil
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	TokenType    string `json:"token_type"`
}

// clientToken gets an access token with client credentials.
func (h *harness) clientToken(ctx context.Context) (string, error) {
	var t tokenResponse
	err := h.postJSON(ctx, "/oauth2/token", h.seed.service, url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}, &t)
	if err == nil && t.AccessToken == "" {
		err = errors.New("no access_token")
	}
	return t.AccessToken, err
}

func prepareClientCredentials(ctx context.Context, h *harness, n int) ([]op, error) {
	ops := make([]op, n)
	for i := range ops {
		ops[i] = func(ctx context.Context) error { _, err := h.clientToken(ctx); return err }
	}
	return ops, nil
}

func prepareIntrospection(ctx context.Context, h *harness, n int) ([]op, error) {
	ops := make([]op, n)
	for i := range ops {
		token, err := h.clientToken(ctx)
		if err != nil {
			return nil, err
		}
		ops[i] = func(ctx context.Context) error {
			var info struct {
				Active bool `json:"active"`
			}
			if err := h.postJSON(ctx, "/oauth2/introspect", h.seed.service, url.Values{"token": {token}}, &info); err != nil {
				return err
			}
			if !info.Active {
				return errors.New("introspection: token not active")
			}
			return nil
		}
	}
	return ops, nil
}

// signedInBrowsers signs n browsers in as the session user (password
// only) through a complete flow, and returns their first tokens.
func (h *harness) signedInBrowsers(ctx context.Context, rp *relyingParty, n int) ([]*browser, []string, error) {
	browsers, refresh := make([]*browser, n), make([]string, n)
	for i := range browsers {
		browsers[i] = newBrowser(h.transport, h.env.issuer, fmt.Sprintf("10.3.%d.%d", i/250, i%250+1))
		tok, _, err := rp.signIn(ctx, browsers[i], h.seed.sessionUser, h.seed.password, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("sign in browser %d: %w", i, err)
		}
		refresh[i] = tok.RefreshToken
	}
	return browsers, refresh, nil
}

func prepareCodeFlow(ctx context.Context, h *harness, n int) ([]op, error) {
	rp, err := newRelyingParty(ctx, h.httpc, h.env.issuer, h.seed.web)
	if err != nil {
		return nil, err
	}
	browsers, _, err := h.signedInBrowsers(ctx, rp, n)
	if err != nil {
		return nil, err
	}
	ops := make([]op, n)
	for i, b := range browsers {
		ops[i] = func(ctx context.Context) error { return rp.liveSessionFlow(ctx, b) }
	}
	return ops, nil
}

func prepareRefresh(ctx context.Context, h *harness, n int) ([]op, error) {
	rp, err := newRelyingParty(ctx, h.httpc, h.env.issuer, h.seed.web)
	if err != nil {
		return nil, err
	}
	_, chains, err := h.signedInBrowsers(ctx, rp, n)
	if err != nil {
		return nil, err
	}
	ops := make([]op, n)
	for i := range ops {
		ops[i] = func(ctx context.Context) error {
			var t tokenResponse
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {chains[i]}}
			if err := h.postJSON(ctx, "/oauth2/token", h.seed.web, form, &t); err != nil {
				return err
			}
			if t.AccessToken == "" || t.RefreshToken == "" {
				return errors.New("refresh: no access_token or refresh_token")
			}
			chains[i] = t.RefreshToken
			return nil
		}
	}
	return ops, nil
}

func prepareTOTP(ctx context.Context, h *harness, n int) ([]op, error) {
	return h.prepareSignIn(ctx, n, totpReady, func(u *benchUser) (string, error) { return u.nextCode(time.Now()) })
}

func prepareBackup(ctx context.Context, h *harness, n int) ([]op, error) {
	return h.prepareSignIn(ctx, n, hasCodes, func(u *benchUser) (string, error) {
		c := u.codes[len(u.codes)-1]
		u.codes = u.codes[:len(u.codes)-1]
		return c, nil
	})
}

// prepareSignIn builds sign-in ops: each borrows a user for which usable
// holds, signs in from a new browser with password and the code that
// code gives, and checks that the ID token says a second factor was used.
func (h *harness) prepareSignIn(ctx context.Context, n int, usable func(*benchUser) bool, code func(*benchUser) (string, error)) ([]op, error) {
	rp, err := newRelyingParty(ctx, h.httpc, h.env.issuer, h.seed.webES256)
	if err != nil {
		return nil, err
	}
	ops := make([]op, n)
	for i := range ops {
		xff := fmt.Sprintf("10.2.%d.%d", i/250, i%250+1)
		ops[i] = func(ctx context.Context) error {
			u, err := h.seed.pool.take(ctx, usable)
			if err != nil {
				return err
			}
			defer h.seed.pool.put(u)
			b := newBrowser(h.transport, h.env.issuer, xff)
			_, idt, err := rp.signIn(ctx, b, u.email, h.seed.password, func() (string, error) { return code(u) })
			if err != nil {
				return err
			}
			var claims struct {
				AMR []string `json:"amr"`
			}
			if err := idt.Claims(&claims); err != nil {
				return err
			}
			if !slices.Contains(claims.AMR, "otp") {
				return fmt.Errorf("amr %v lacks otp", claims.AMR)
			}
			return nil
		}
	}
	return ops, nil
}

// fetch does one request without cookies and returns the body of a 2xx
// answer; any other status is an error. A path is twofold's; an absolute
// URL is fetched as it is.
func (h *harness) fetch(ctx context.Context, method, path string, c *clientCreds, form url.Values) ([]byte, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	target := path
	if strings.HasPrefix(path, "/") {
		target = h.env.issuer + path
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c != nil {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	resp, err := h.httpc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return b, fmt.Errorf("%s %s: status %d: %.200s", method, path, resp.StatusCode, b)
	}
	return b, nil
}

// postJSON posts a form with client authentication and decodes the answer.
func (h *harness) postJSON(ctx context.Context, path string, c clientCreds, form url.Values, v any) error {
	b, err := h.fetch(ctx, http.MethodPost, path, &c, form)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
