package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twofold-id/twofold/mail/mailtest"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// secrets are the values a test saw that must never reach the log.
type secrets struct {
	t    *testing.T
	list []secret
}

type secret struct {
	what, value string
	// digits is set for short numeric codes, found only as a whole number.
	digits bool
}

func (s *secrets) add(what string, values ...string) {
	s.t.Helper()
	for _, v := range values {
		if len(v) < 6 {
			s.t.Fatalf("%s %q is too short to look for", what, v)
		}
		s.list = append(s.list, secret{what: what, value: v, digits: strings.Trim(v, "0123456789") == ""})
	}
}

// token adds an OAuth token, and for an opaque one (key.signature) its
// key too, which alone is as good as the token.
func (s *secrets) token(what, tok string) {
	s.t.Helper()
	s.add(what, tok)
	if key, _, ok := strings.Cut(tok, "."); ok && strings.Count(tok, ".") == 1 && len(key) >= 16 {
		s.add(what+" (key part)", key)
	}
}

// backupCodes adds codes as shown and as one might type them.
func (s *secrets) backupCodes(what string, codes []string) {
	s.t.Helper()
	for _, c := range codes {
		s.add(what, c, strings.ReplaceAll(c, "-", ""), strings.ToUpper(strings.ReplaceAll(c, "-", "")))
	}
}

// cookies adds the values of the browser's cookies for twofold.
func (s *secrets) cookies(b *browser) {
	s.t.Helper()
	u, _ := url.Parse(b.issuer)
	n := 0
	for _, c := range b.c.Jar.Cookies(u) {
		if len(c.Value) >= 16 {
			s.add("cookie "+c.Name, c.Value)
			n++
		}
	}
	if n == 0 {
		s.t.Fatal("the browser holds no cookie of twofold's")
	}
}

// check fails for each line of the log that shows a secret.
func (s *secrets) check(log string) {
	s.t.Helper()
	lines := strings.Split(log, "\n")
	for _, sec := range s.list {
		var whole *regexp.Regexp
		if sec.digits {
			whole = regexp.MustCompile(`(^|[^0-9])` + sec.value + `([^0-9]|$)`)
		}
		for _, l := range lines {
			if whole != nil && whole.MatchString(l) || whole == nil && strings.Contains(l, sec.value) {
				s.t.Errorf("the log shows the %s: %.400s", sec.what, l)
			}
		}
	}
}

// TestLogsKeepSecrets runs every flow that handles a secret, with the log
// at debug level in each format, and then looks for every secret the flows
// saw in the log: passwords (right and wrong), TOTP secrets and codes,
// backup codes, authorization codes, PKCE verifiers, access, refresh and
// ID tokens, client secrets, the reset link, cookie values, the server's
// secret key and the SMTP password. Every request's line, and every line
// written while serving one, carries its request id.
func TestLogsKeepSecrets(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			logs := &syncBuffer{}
			smtpPass := "smtp-" + rand.Text()
			smtp := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{User: "mailer", Pass: smtpPass})
			s := newTestServerWith(t, storetest.SQLite(), testOptions{logs: logs, mutate: func(c *Config) {
				c.SMTPURL = "smtp://mailer:" + smtpPass + "@" + smtp.Addr()
				c.MailFrom = "twofold <no-reply@id.test>"
				c.LogFormat, c.LogLevel = format, "debug"
			}})
			sec := &secrets{t: t}
			sec.add("server's secret key", s.a.cfg.SecretKey)
			sec.add("SMTP password", smtpPass)
			ids := secretFlows(t, s, smtp, sec)
			time.Sleep(300 * time.Millisecond) // the worker's last lines
			log := logs.String()
			if n := strings.Count(log, "\n"); n < 50 {
				t.Fatalf("only %d log lines:\n%s", n, log)
			}
			sec.check(log)
			checkRequestIDs(t, format, log, ids)
		})
	}
}

// secretFlows runs the flows, adding each secret they see, and returns
// the request ids twofold sent back.
func secretFlows(t *testing.T, s *testServer, smtp *mailtest.Server, sec *secrets) []string {
	rp := s.newRP(store.Client{RequirePKCE: true})
	sec.add("client secret", rp.conf.ClientSecret)
	var ids []string
	note := func(p page) page {
		ids = append(ids, p.header.Get("X-Request-Id"))
		return p
	}
	var lastCode string
	// exchange answers the consent page if one is shown and redeems the code.
	exchange := func(b *browser, p page, ar authRequest) signedIn {
		if strings.Contains(p.body, `name="decision"`) {
			p = b.consent(p, "allow")
		}
		code := rp.code(p, ar)
		lastCode = code
		sec.add("authorization code", code)
		sec.add("PKCE verifier", ar.verifier)
		in := rp.exchange(code, ar)
		sec.token("access token", in.token.AccessToken)
		sec.token("refresh token", in.token.RefreshToken)
		sec.token("ID token", in.token.Extra("id_token").(string))
		return in
	}

	// Password only, with a wrong password first.
	pw := s.createUser("pw@example.com")
	sec.add("password", pw.Password)
	b := s.newBrowser()
	ar := rp.authRequest()
	login := b.get(ar.url)
	wrong := "Wrong-" + rand.Text()
	sec.add("wrong password", wrong)
	if p := note(b.login(login, pw.Email, wrong)); p.status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", p.status)
	}
	in := exchange(b, b.login(login, pw.Email, pw.Password), ar)
	firstCode, firstAR := lastCode, ar
	sec.cookies(b)

	// Refresh, twice with the same token (the second is a reuse), and
	// introspection.
	st, body, _ := tokenCall(s.issuer, rp.conf.ClientID, rp.conf.ClientSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {in.token.RefreshToken}})
	if st != http.StatusOK {
		t.Fatalf("refresh: %d %v", st, body)
	}
	sec.token("refreshed access token", body["access_token"].(string))
	sec.token("refreshed refresh token", body["refresh_token"].(string))
	sec.token("refreshed ID token", body["id_token"].(string))
	if resp, got := rp.postForm("/oauth2/introspect", url.Values{"token": {body["access_token"].(string)}}); resp.StatusCode != http.StatusOK || got["active"] != true {
		t.Fatalf("introspection: %d %v", resp.StatusCode, got)
	}
	if st, _, _ := tokenCall(s.issuer, rp.conf.ClientID, rp.conf.ClientSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {in.token.RefreshToken}}); st != http.StatusBadRequest {
		t.Fatalf("reused refresh token: %d", st)
	}
	// The first code again: refused, and what it issued is revoked.
	if st, _, _ := tokenCall(s.issuer, rp.conf.ClientID, rp.conf.ClientSecret, url.Values{"grant_type": {"authorization_code"},
		"code": {firstCode}, "redirect_uri": {rp.conf.RedirectURL}, "code_verifier": {firstAR.verifier}}); st != http.StatusBadRequest {
		t.Fatalf("replayed code: %d", st)
	}
	svc, svcSecret := s.createClient(store.Client{GrantTypes: []string{"client_credentials"}, Scopes: []string{"reports.read"}, RedirectURIs: []string{}})
	sec.add("client secret", svcSecret)
	if st, body, _ := tokenCall(s.issuer, svc.ID, svcSecret, url.Values{"grant_type": {"client_credentials"}}); st != http.StatusOK {
		t.Fatalf("client credentials: %d %v", st, body)
	} else {
		sec.token("client-credentials token", body["access_token"].(string))
	}

	// TOTP: enrollment, a sign-in with a code, one with a backup code, a
	// wrong code.
	owner := s.createUser("owner@example.com")
	sec.add("password", owner.Password)
	ob := s.newBrowser()
	app, codes := ob.enrollInSettings(owner)
	sec.add("TOTP secret", app.secret)
	sec.backupCodes("backup code", codes)
	sec.cookies(ob)
	b = s.newBrowser()
	ar = rp.authRequest()
	p := b.login(b.get(ar.url), owner.Email, owner.Password)
	note(b.secondFactor(p, "000000"))
	code := app.next()
	sec.add("TOTP code", code)
	exchange(b, b.secondFactor(p, code), ar)
	b = s.newBrowser()
	ar = rp.authRequest()
	exchange(b, b.secondFactor(b.login(b.get(ar.url), owner.Email, owner.Password), codes[0]), ar)
	sec.add("backup code (as typed)", strings.ToUpper(strings.ReplaceAll(codes[0], "-", " ")))

	// The owner's reset, its emailed link, its completion, re-enrollment.
	member := s.createUser("member@example.com")
	sec.add("password", member.Password)
	org := s.org("Acme", owner, member)
	mb := s.newBrowser()
	mApp, mCodes := mb.enrollInSettings(member)
	sec.add("TOTP secret", mApp.secret)
	sec.backupCodes("backup code", mCodes)
	if p := note(ob.post("/settings/members/"+member.ID+"/reset", url1("org", org))); !strings.Contains(p.body, "was reset") {
		t.Fatalf("reset: %d", p.status)
	}
	var link string
	for deadline := time.Now().Add(10 * time.Second); link == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, m := range smtp.Messages() {
			if m.Subject == resetSubject && m.To[0] == member.Email {
				link = resetLink(t, m)
			}
		}
	}
	sec.add("reset link", link)
	sec.add("reset token", link[strings.LastIndex(link, "/")+1:])
	nb := s.newBrowser()
	path := strings.TrimPrefix(link, s.issuer)
	// The link mangled by a mail client, opened with another method, posted
	// from another site: refused, and not logged either.
	for _, odd := range []struct {
		method, path string
		edit         func(*http.Request)
		status       int
	}{
		{http.MethodGet, path + "/", nil, http.StatusNotFound},
		{http.MethodHead, path, nil, http.StatusMethodNotAllowed},
		{http.MethodPut, path, nil, http.StatusMethodNotAllowed},
		{http.MethodPost, path, func(r *http.Request) {
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			r.Header.Set("Origin", "https://evil.example")
		}, http.StatusForbidden},
	} {
		if p := note(nb.request(odd.method, odd.path, nil, odd.edit)); p.status != odd.status {
			t.Fatalf("%s of the link (%s): %d, want %d", odd.method, odd.path, p.status, odd.status)
		}
	}
	note(nb.get(link))
	if p := note(nb.post(path, nil)); !strings.Contains(p.body, "Reset complete") {
		t.Fatalf("completing the reset: %d", p.status)
	}
	ar = rp.authRequest()
	p = nb.login(nb.get(ar.url), member.Email, member.Password)
	again := enrollSecret(t, p)
	sec.add("TOTP secret", again.secret)
	form := p.hidden()
	code = again.next()
	sec.add("TOTP code", code)
	form.Set("code", code)
	sec.backupCodes("backup code", backupCodes(t, nb.post("/login/enroll", form)))
	p = nb.get(s.issuer + "/login/continue?flow=" + form.Get("flow"))
	exchange(nb, p, ar)
	sec.cookies(nb)
	return ids
}

// logLine is one log record: its message and attributes.
type logLine struct {
	raw   string
	msg   string
	attrs map[string]string
}

var textAttr = regexp.MustCompile(`([a-z_]+)=("(?:[^"\\]|\\.)*"|\S*)`)

func parseLog(t *testing.T, format, log string) []logLine {
	t.Helper()
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := logLine{raw: sc.Text(), attrs: map[string]string{}}
		if format == "json" {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("a log line is not JSON: %v\n%s", err, sc.Text())
			}
			for k, v := range m {
				if s, ok := v.(string); ok {
					l.attrs[k] = s
				} else {
					b, _ := json.Marshal(v)
					l.attrs[k] = string(b)
				}
			}
		} else {
			for _, m := range textAttr.FindAllStringSubmatch(l.raw, -1) {
				l.attrs[m[1]] = strings.Trim(m[2], `"`)
			}
		}
		l.msg = l.attrs["msg"]
		out = append(out, l)
	}
	return out
}

// checkRequestIDs fails unless each request's line has a request id of its
// own, every line written while serving a request has one of those, and
// the ids twofold sent back (X-Request-Id) are in the log.
func checkRequestIDs(t *testing.T, format, log string, sent []string) {
	t.Helper()
	// Lines of the process, not of a request.
	background := map[string]bool{
		"mail worker started": true, "mail sent": true,
		"no SMTP server configured (TWOFOLD_SMTP_URL): mail stays in the outbox and is not delivered":          true,
		"the issuer's host is an IP address: security keys are unavailable; use a host name such as localhost": true,
	}
	requests := map[string]bool{}
	lines := parseLog(t, format, log)
	for _, l := range lines {
		if l.msg != "request" {
			continue
		}
		id := l.attrs["request_id"]
		if id == "" || requests[id] {
			t.Errorf("request line without an id of its own: %s", l.raw)
		}
		requests[id] = true
	}
	for _, l := range lines {
		if l.msg == "request" || background[l.msg] {
			continue
		}
		if !requests[l.attrs["request_id"]] {
			t.Errorf("a line that is neither a request's nor the process's has no request id: %s", l.raw)
		}
	}
	for _, id := range sent {
		if !requests[id] {
			t.Errorf("X-Request-Id %q is not in the log", id)
		}
	}
	if len(requests) < 50 {
		t.Fatalf("only %d request lines", len(requests))
	}
}

// stackedError formats with %+v as errors from github.com/pkg/errors do:
// its message, then the frames of its stack.
type stackedError struct{}

func (stackedError) Error() string { return "token inactive" }

func (e stackedError) Format(f fmt.State, verb rune) {
	io.WriteString(f, e.Error())
	if f.Flag('+') {
		io.WriteString(f, "\ngithub.com/ory/fosite.(*Fosite).IntrospectToken\n\t/fosite/introspect.go:42")
	}
}

// TestLogErrorsWithoutStacks: an error is logged as its message, in text
// and JSON, also when it carries a stack (which the text handler printed).
func TestLogErrorsWithoutStacks(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		newLogger(&Config{LogLevel: "info", LogFormat: format}, &buf).Info("userinfo: token refused", "err", stackedError{}, "wrapped", fmt.Errorf("load: %w", stackedError{}))
		out := buf.String()
		if strings.Count(out, "\n") != 1 || strings.Contains(out, "introspect.go") || !strings.Contains(out, "token inactive") || !strings.Contains(out, "load: token inactive") {
			t.Errorf("%s log of an error with a stack:\n%s", format, out)
		}
	}
}
