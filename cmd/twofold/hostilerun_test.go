package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twofold-id/twofold/admin"
	"github.com/twofold-id/twofold/mfa"
	"github.com/twofold-id/twofold/session"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// hostile is a real twofold with a cast, and a client sending it hostile
// requests.
type hostile struct {
	t      testing.TB
	s      *testServer // nil in the fuzz targets, which call the handler directly
	db     *store.DB
	issuer string
	raw    rawDB
	http   *http.Client
	svc    *mfa.Service

	owner, member, newbie, plain testUser
	org                          string
	client, adminClient, public  store.Client
	adminSecret                  string
	ownerCookies                 []*http.Cookie
	ownerSessionHash             []byte
	ownerToken, idToken          string
	stale                        string // a member's session signed in an hour ago
	device                       string // the device cookie of the sign-in flows
	// disposable are the sessions POST /logout may end (hex id hashes).
	disposable map[string]bool
}

// hostileReq is one request as sent.
type hostileReq struct {
	what         string
	method, path string
	query        string
	body         []byte
	contentType  string
	encoding     string
	header       http.Header
	cookies      []*http.Cookie
	// stopped, when set, says whether an answer came from the guard the
	// request's context should have got past: a payload that never
	// reaches the handler tests nothing.
	stopped func(status int, location, body string) bool
}

func newHostileServer(t *testing.T, s *testServer) *hostile {
	return &hostile{t: t, s: s, db: s.db, issuer: s.issuer, raw: s.rawDB(), disposable: map[string]bool{},
		http: &http.Client{Timeout: requestTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// newHostile starts twofold, with security keys on (issuer localhost) if
// keys, and its cast: an owner and a member of Acme with authenticator apps, the
// member with a security key too, each signed in in a browser; a user who
// must enroll (organization Strict requires 2FA); a user without factors;
// a client that asks for consent, a first-party client with twofold:admin
// (and the owner's access and ID tokens from it), and a public client.
//
// Without keys, the issuer is http://127.0.0.1:PORT, where security keys
// are unavailable (WebAuthn needs a host name), and the member has none.
func newHostile(t *testing.T, b storetest.Backend, keys bool) *hostile {
	s := newTestServer(t, b, nil)
	if keys {
		s = newKeyServer(t, b, testOptions{})
	}
	h := newHostileServer(t, s)
	ctx := context.Background()
	sc := s.resetScene(nil)
	h.owner, h.member, h.org = sc.owner, sc.member, sc.org
	if keys {
		if p := sc.memberB.registerKey(s, newSoftKey(t), "Member's key"); !strings.Contains(p.body, "added") {
			t.Fatalf("member's key: %d %s", p.status, p.url)
		}
	}
	h.newbie, h.plain = s.createUser("newbie@example.com"), s.createUser("plain@example.com")
	if err := s.db.SetOrganizationRequire2FA(ctx, s.org("Strict", h.owner, h.newbie), true); err != nil {
		t.Fatal(err)
	}
	h.client, _ = s.createClient(store.Client{RequirePKCE: true})
	h.public, _ = s.createClient(store.Client{Public: true})
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true, Scopes: []string{"openid", "email", "profile", "offline_access", admin.Scope}})
	rp.conf.Scopes = append(rp.conf.Scopes, admin.Scope)
	h.adminClient, h.adminSecret = rp.client, rp.conf.ClientSecret
	ar := rp.authRequest()
	ob := s.newBrowser()
	in := rp.exchange(rp.code(ob.secondFactor(ob.login(ob.get(ar.url), h.owner.Email, h.owner.Password), sc.ownerApp.next()), ar), ar)
	h.ownerToken, h.idToken = in.token.AccessToken, in.token.Extra("id_token").(string)

	issuer, _ := url.Parse(s.issuer)
	h.ownerCookies = sc.ownerB.c.Jar.Cookies(issuer)
	for _, c := range h.ownerCookies {
		if c.Name == session.CookieName {
			sum := sha256.Sum256([]byte(c.Value))
			h.ownerSessionHash = sum[:]
		}
	}
	if h.ownerSessionHash == nil {
		t.Fatal("the owner's browser has no session")
	}
	h.stale = h.newSession(h.member, time.Hour)
	h.device = rand.Text() + rand.Text()
	var err error
	if h.svc, err = factorService(s.a, s.srv.mailer); err != nil {
		t.Fatal(err)
	}
	// The enrollment page reuses a pending secret: begin it now, so that
	// showing the page changes nothing later.
	if _, err := h.svc.BeginTOTP(ctx, h.newbie.User); err != nil {
		t.Fatal(err)
	}
	return h
}

// newSession signs u in directly in the store, ago ago, with both factors,
// and returns the cookie value.
func (h *hostile) newSession(u testUser, ago time.Duration) string {
	id := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(id))
	now := time.Now()
	err := h.db.CreateBrowserSession(context.Background(), store.BrowserSession{IDHash: sum[:], UserID: u.ID,
		AMR: []string{"pwd", "otp", "mfa"}, AuthTime: now.Add(-ago), CreatedAt: now.Add(-ago), LastSeenAt: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// newFlow stores a sign-in flow of this test's device at step: "login"
// (nothing done), "2fa" (the member's password done), "enroll" (the
// newbie's password done) or "consent" (the plain user's password done,
// for the client that asks for consent).
func (h *hostile) newFlow(step string) string {
	now := time.Now()
	sum := sha256.Sum256([]byte(h.device))
	f := store.LoginFlow{ID: rand.Text(), BindingHash: sum[:], Query: url.Values{"return": {"/settings/security"}}.Encode(),
		RequestedAt: now, ExpiresAt: now.Add(time.Hour), AuthTime: now, AMR: []string{"pwd"}}
	switch step {
	case "login":
		f.AMR, f.AuthTime = nil, time.Time{}
	case "2fa":
		f.UserID = h.member.ID
	case "enroll":
		f.UserID = h.newbie.ID
	case "consent":
		f.UserID, f.ClientID = h.plain.ID, h.client.ID
		f.Query = url.Values{"client_id": {h.client.ID}, "response_type": {"code"}, "scope": {"openid email"},
			"redirect_uri": {h.client.RedirectURIs[0]}, "state": {rand.Text()}}.Encode()
	default:
		h.t.Fatalf("no flow step %q", step)
	}
	if err := h.db.CreateLoginFlow(context.Background(), f); err != nil {
		h.t.Fatal(err)
	}
	return f.ID
}

// run snapshots the database, sends reqs, checks every answer, and checks
// what changed in the database.
func (h *hostile) run(reqs []hostileReq) {
	t := h.t
	before := h.raw.snapshot(t)
	start := time.Now()
	statuses := map[int]int{}
	failures := 0
	for _, r := range reqs {
		if throttled(r.path) {
			h.liftThrottles()
		}
		status, header, body, err := h.send(r)
		problem := ""
		if err != nil {
			problem = err.Error()
		} else {
			statuses[status]++
			problem = checkAnswer(r, status, header, body)
			if problem == "" && r.stopped != nil && r.stopped(status, header.Get("Location"), string(body)) {
				problem = fmt.Sprintf("status %d: stopped before the handler read its input", status)
			}
		}
		if problem != "" {
			if failures++; failures <= 50 {
				t.Errorf("%s: %s", r.what, problem)
			}
		}
	}
	t.Logf("%d hostile requests in %s; statuses %v", len(reqs), time.Since(start).Round(time.Millisecond), statuses)
	if failures > 50 {
		t.Errorf("... %d failures in all", failures)
	}
	h.checkChanges(before, h.raw.snapshot(t))
}

// throttled says whether path counts attempts: passwords per address and
// account, second factors per user, reset links per address.
func throttled(path string) bool {
	return strings.HasPrefix(path, "/login") || strings.HasPrefix(path, "/reset/")
}

// liftThrottles lets every counter go, as time would: hostile requests
// would otherwise soon be turned away before their input is looked at.
func (h *hostile) liftThrottles() {
	if _, err := h.raw.Exec(`UPDATE rate_limits SET failures = 0, blocked_until = last_failure_at`); err != nil {
		h.t.Fatal(err)
	}
}

func (h *hostile) send(r hostileReq) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(r.method, h.issuer+r.path, bytes.NewReader(r.body))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("build request: %w", err)
	}
	req.URL.RawQuery = r.query
	maps.Copy(req.Header, r.header)
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.encoding != "" {
		req.Header.Set("Content-Encoding", r.encoding)
	}
	for _, c := range r.cookies {
		req.AddCookie(c)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

// checkAnswer says what is wrong with an answer, or "".
func checkAnswer(r hostileReq, status int, header http.Header, body []byte) string {
	text := string(body)
	ct, _, _ := strings.Cut(header.Get("Content-Type"), ";")
	switch {
	case status >= 500:
		return fmt.Sprintf("status %d: %.300s", status, text)
	case status >= 400 && r.method != http.MethodHead && len(body) == 0:
		return fmt.Sprintf("status %d with an empty body", status)
	case status >= 400 && len(body) > 0 && !slices.Contains([]string{"text/html", "text/plain", "application/json"}, ct):
		return fmt.Sprintf("status %d with content type %q", status, ct)
	}
	if ct == "text/html" {
		for _, m := range xssMarkers {
			if strings.Contains(text, m) {
				return fmt.Sprintf("status %d reflects %q unescaped", status, m)
			}
		}
	}
	if status < 300 && (r.path == "/metrics" || strings.HasPrefix(r.path, "/static/")) {
		return "" // not a message: metric names and scripts
	}
	for _, m := range leakMarkers {
		if strings.Contains(text, m) {
			i := strings.Index(text, m)
			return fmt.Sprintf("status %d shows %q: …%s…", status, m, text[max(0, i-120):min(len(text), i+120)])
		}
	}
	return ""
}
