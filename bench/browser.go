package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// browser is a user agent: a cookie jar, redirects followed within
// twofold and stopped at any other host, as a browser reaching the relying
// party's redirect URI would. Browsers share the harness's transport, so
// connections are kept alive across them.
type browser struct {
	issuer string
	// follow are the URL prefixes whose redirects the browser follows:
	// twofold's, and for Hydra its login and consent app's too.
	follow []string
	// xff is the address of the person at this browser, sent as
	// X-Forwarded-For (twofold trusts loopback as its proxy).
	xff string
	c   *http.Client
}

func newBrowser(t http.RoundTripper, issuer, xff string) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{issuer: issuer, xff: xff, follow: []string{issuer + "/"}}
	b.c = &http.Client{Transport: t, Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > 20 || !slices.ContainsFunc(b.follow, func(p string) bool { return strings.HasPrefix(req.URL.String(), p) }) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// page is a fetched response with its body read.
type page struct {
	status   int
	url      *url.URL // where the browser ended up
	location string   // set when stopped at a redirect leaving twofold
	body     string
}

func (b *browser) do(req *http.Request) (page, error) {
	if b.xff != "" {
		req.Header.Set("X-Forwarded-For", b.xff)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		return page{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return page{}, err
	}
	p := page{status: resp.StatusCode, url: resp.Request.URL, body: string(body)}
	if resp.StatusCode/100 == 3 {
		p.location = resp.Header.Get("Location")
	}
	return p, nil
}

func (b *browser) get(ctx context.Context, u string) (page, error) {
	if strings.HasPrefix(u, "/") {
		u = b.issuer + u
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return page{}, err
	}
	return b.do(req)
}

// post submits a form as a same-origin page would.
func (b *browser) post(ctx context.Context, path string, form url.Values) (page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		return page{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", b.issuer)
	return b.do(req)
}

var (
	hiddenInput  = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)
	secretOnPage = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	codeOnPage   = regexp.MustCompile(`<li><code>([0-9a-z]{5}-[0-9a-z]{5}-[0-9a-z]{5})</code></li>`)
	continueLink = regexp.MustCompile(`href="(/login/continue\?flow=[^"]+)"`)
)

// hidden returns the page's hidden form fields.
func (p page) hidden() url.Values {
	v := url.Values{}
	unescape := strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&quot;", `"`)
	for _, m := range hiddenInput.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], unescape.Replace(m[2]))
	}
	return v
}

// unexpected describes a page that is not the one a step expected.
func (p page) unexpected(want string) error {
	body := p.body
	if len(body) > 300 {
		body = body[:300]
	}
	return fmt.Errorf("expected %s, got %d at %s: %q", want, p.status, p.url.Path, body)
}

// login submits email and password on p, which must be the sign-in page.
func (b *browser) login(ctx context.Context, p page, email, pw string) (page, error) {
	if !strings.Contains(p.body, `name="password"`) {
		return p, p.unexpected("the sign-in page")
	}
	form := p.hidden()
	form.Set("email", email)
	form.Set("password", pw)
	return b.post(ctx, "/login", form)
}

// secondFactor submits code on p, which must be the second-factor page.
func (b *browser) secondFactor(ctx context.Context, p page, code string) (page, error) {
	if p.url == nil || p.url.Path != "/login/2fa" {
		return p, p.unexpected("the second-factor page")
	}
	form := p.hidden()
	form.Set("code", code)
	return b.post(ctx, "/login/2fa", form)
}

// relyingParty is an application signing users in with golang.org/x/oauth2
// and coreos/go-oidc, used unchanged.
type relyingParty struct {
	conf     *oauth2.Config
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	httpc    *http.Client
}

func newRelyingParty(ctx context.Context, httpc *http.Client, issuer string, c clientCreds) (*relyingParty, error) {
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, httpc), issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	return &relyingParty{provider: p, httpc: httpc, verifier: p.Verifier(&oidc.Config{ClientID: c.ID}),
		conf: &oauth2.Config{ClientID: c.ID, ClientSecret: c.Secret, Endpoint: ep, RedirectURL: redirectURI,
			Scopes: []string{oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess}}}, nil
}

// ctx carries the harness's HTTP client to oauth2 and go-oidc.
func (rp *relyingParty) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, rp.httpc), rp.httpc)
}

// authRequest is one authorization request and its secrets.
type authRequest struct {
	url, state, nonce, verifier string
}

func (rp *relyingParty) authRequest() authRequest {
	ar := authRequest{state: rand.Text(), nonce: rand.Text(), verifier: oauth2.GenerateVerifier()}
	ar.url = rp.conf.AuthCodeURL(ar.state, oidc.Nonce(ar.nonce), oauth2.S256ChallengeOption(ar.verifier))
	return ar
}

// code checks that p is the redirect to the callback with ar's state and
// returns the code.
func (rp *relyingParty) code(p page, ar authRequest) (string, error) {
	if !strings.HasPrefix(p.location, rp.conf.RedirectURL) {
		return "", p.unexpected("a redirect to the callback")
	}
	u, err := url.Parse(p.location)
	if err != nil {
		return "", err
	}
	q := u.Query()
	if q.Get("state") != ar.state || q.Get("code") == "" {
		return "", fmt.Errorf("callback without code or with the wrong state: %s", u.RawQuery)
	}
	return q.Get("code"), nil
}

// exchange redeems code with the PKCE verifier and verifies the ID token:
// signature, issuer, audience, expiry, nonce and at_hash.
func (rp *relyingParty) exchange(ctx context.Context, code string, ar authRequest) (*oauth2.Token, *oidc.IDToken, error) {
	ctx = rp.ctx(ctx)
	tok, err := rp.conf.Exchange(ctx, code, oauth2.VerifierOption(ar.verifier))
	if err != nil {
		return nil, nil, fmt.Errorf("exchange: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return nil, nil, errors.New("token response without id_token")
	}
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("verify ID token: %w", err)
	}
	if idt.Nonce != ar.nonce {
		return nil, nil, errors.New("ID token nonce mismatch")
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		return nil, nil, fmt.Errorf("at_hash: %w", err)
	}
	return tok, idt, nil
}

// userinfo calls the userinfo endpoint and checks the subject.
func (rp *relyingParty) userinfo(ctx context.Context, tok *oauth2.Token, sub string) error {
	info, err := rp.provider.UserInfo(rp.ctx(ctx), oauth2.StaticTokenSource(tok))
	if err != nil {
		return fmt.Errorf("userinfo: %w", err)
	}
	if info.Subject != sub {
		return fmt.Errorf("userinfo sub %q, ID token sub %q", info.Subject, sub)
	}
	return nil
}

// liveSessionFlow is one authorization-code flow for browser b, which
// has a session already: authorize (redirects followed, no page shown),
// the code exchange with its ID-token checks, and userinfo.
func (rp *relyingParty) liveSessionFlow(ctx context.Context, b *browser) error {
	ar := rp.authRequest()
	p, err := b.get(ctx, ar.url)
	if err != nil {
		return err
	}
	code, err := rp.code(p, ar)
	if err != nil {
		return err
	}
	tok, idt, err := rp.exchange(ctx, code, ar)
	if err != nil {
		return err
	}
	return rp.userinfo(ctx, tok, idt.Subject)
}

// signIn walks a complete sign-in in b: authorize, the sign-in form, a
// second factor when asked (secondFactor returns the code to enter), the
// low-backup-codes notice when shown, then the code exchange.
func (rp *relyingParty) signIn(ctx context.Context, b *browser, email, pw string, secondFactor func() (string, error)) (*oauth2.Token, *oidc.IDToken, error) {
	ar := rp.authRequest()
	p, err := b.get(ctx, ar.url)
	if err == nil && p.location == "" {
		p, err = b.login(ctx, p, email, pw)
	}
	if err == nil && p.location == "" && secondFactor != nil {
		var code string
		if code, err = secondFactor(); err == nil {
			p, err = b.secondFactor(ctx, p, code)
		}
	}
	if m := continueLink.FindStringSubmatch(p.body); err == nil && p.location == "" && m != nil {
		p, err = b.get(ctx, strings.ReplaceAll(m[1], "&amp;", "&"))
	}
	if err != nil {
		return nil, nil, err
	}
	code, err := rp.code(p, ar)
	if err != nil {
		return nil, nil, err
	}
	return rp.exchange(ctx, code, ar)
}
