package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twofold-id/twofold/store"
)

// A twofold process that dies in the middle of a reset, a code exchange or
// a backup-code regeneration leaves all or nothing. The death is real as
// far as the database can tell: the statement is held inside its
// transaction (after the transaction has written) and its backend is
// terminated, exactly what PostgreSQL sees when a process or its host
// goes away. A client that disconnects mid-reset is the gentler variant.

// TestKilledMidTransaction runs each case on one server and its own
// PostgreSQL database.
func TestKilledMidTransaction(t *testing.T) {
	d := newPGDatabase(t)
	s := newTestServerWith(t, d.backend(), testOptions{})
	for _, c := range []struct {
		name string
		run  func(t *testing.T, d *pgDatabase, s *testServer)
	}{
		{"reset", killedReset},
		{"reset, client gone", abandonedReset},
		{"code exchange", killedExchange},
		{"backup-code regeneration", killedRegeneration},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, d.withT(t), s.withT(t)) })
	}
}

// withT is s as seen from test t (a subtest): its helpers fail t.
func (s *testServer) withT(t *testing.T) *testServer {
	c := *s
	c.t = t
	return &c
}

// killedReset: the owner's reset dies just before its last write.
func killedReset(t *testing.T, d *pgDatabase, s *testServer) {
	sc := s.resetScene(nil)
	p := d.pauseAt("audit_events", "NEW.kind = 'reset.initiated'")
	done := make(chan page, 1)
	go func() {
		done <- sc.ownerB.request(http.MethodPost, "/settings/members/"+sc.member.ID+"/reset", url1("org", sc.org), nil)
	}()
	p.killWriter("the reset reached its audit event without having written anything")
	assertUnavailablePage(t, <-done)
	s.assertNotReset(sc.member)
	if pg := sc.memberB.get(s.issuer + "/settings/security"); strings.Contains(pg.body, `name="password"`) {
		t.Fatal("the member's session ended although the reset did not happen")
	}
	// Nothing is left that would get in the way: the owner resets again.
	sc.reset()
	if n := len(s.resetMails(sc.member)); n != 1 {
		t.Fatalf("%d reset emails after one reset that died and one that went through", n)
	}
}

// abandonedReset: the owner's browser goes away while the reset waits in
// its transaction; the request's context ends, and with it the transaction.
func abandonedReset(t *testing.T, d *pgDatabase, s *testServer) {
	owner, member := s.createUser("owner2@example.com"), s.createUser("member2@example.com")
	org := s.org("Gone", owner, member)
	ob := s.newBrowser()
	ob.enrollInSettings(owner)
	s.newBrowser().enrollInSettings(member)
	p := d.pauseAt("audit_events", "NEW.kind = 'reset.initiated'")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.issuer+"/settings/members/"+member.ID+"/reset",
			strings.NewReader(url1("org", org).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := ob.c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	if _, wrote := p.waiter(); !wrote {
		t.Fatal("the reset reached its audit event without having written anything")
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the cancelled request got an answer")
	}
	// The cancelled context reaches PostgreSQL: the statement stops
	// waiting and the transaction rolls back, before the pause ends.
	deadline := time.Now().Add(5 * time.Second)
	for p.waiting() {
		if time.Now().After(deadline) {
			t.Fatal("the reset's statement still runs after its request was cancelled")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.release()
	time.Sleep(100 * time.Millisecond) // let the handler finish
	s.assertNotReset(member)
}

// killedExchange: a code exchange dies after spending the code, before
// its tokens are stored.
func killedExchange(t *testing.T, d *pgDatabase, s *testServer) {
	u := s.createUser("exchange@example.com")
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
	b := s.newBrowser()
	ar := rp.authRequest()
	code := rp.code(b.login(b.get(ar.url), u.Email, u.Password), ar)
	tokens := func() int {
		return d.query(`SELECT count(*) FROM oauth2_sessions WHERE client_id = $1 AND kind IN ('access', 'refresh')`, rp.client.ID)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rp.conf.RedirectURL}, "code_verifier": {ar.verifier}}
	p := d.pauseAt("oauth2_sessions", "NEW.kind = 'access'")
	type answer struct {
		status int
		body   map[string]any
		err    error
	}
	done := make(chan answer, 1)
	go func() {
		st, body, err := tokenCall(s.issuer, rp.conf.ClientID, rp.conf.ClientSecret, form)
		done <- answer{st, body, err}
	}()
	p.killWriter("the exchange reached its access token without having used the code")
	a := <-done
	if a.err != nil {
		t.Fatal(a.err)
	}
	assertOAuthError(t, "exchange killed mid-transaction", a.status, a.body)
	if n := tokens(); n != 0 {
		t.Fatalf("%d tokens stored by an exchange that died", n)
	}
	if active := d.query(`SELECT count(*) FROM oauth2_sessions WHERE client_id = $1 AND kind = 'code' AND active`, rp.client.ID); active != 1 {
		t.Fatalf("the code is spent (%d active) although its exchange died", active)
	}
	// The client tries again. The code's PKCE record and OpenID Connect
	// session go only with the code's invalidation, in the transaction
	// that died, so the retry gets its tokens and ID token.
	st, body, err := tokenCall(s.issuer, rp.conf.ClientID, rp.conf.ClientSecret, form)
	if err != nil {
		t.Fatal(err)
	}
	if st != http.StatusOK || body["id_token"] == nil {
		t.Fatalf("retried exchange: %d %v, want tokens with an ID token", st, body)
	}
	if n := tokens(); n != 2 {
		t.Fatalf("the retried exchange stored %d tokens, want an access and a refresh token", n)
	}
	if left := d.query(`SELECT count(*) FROM oauth2_sessions WHERE client_id = $1 AND kind IN ('pkce', 'oidc')`, rp.client.ID); left != 0 {
		t.Fatalf("%d PKCE or OpenID Connect records outlived their code's exchange", left)
	}
	rp.signIn(s.newBrowser(), u) // a new sign-in works as usual
}

// killedRegeneration: a backup-code regeneration dies after replacing the
// codes, before its audit event and email.
func killedRegeneration(t *testing.T, d *pgDatabase, s *testServer) {
	u := s.createUser("codes@example.com")
	b := s.newBrowser()
	_, old := b.enrollInSettings(u)
	mails := func() int {
		return d.query(`SELECT count(*) FROM mail_outbox WHERE recipient = $1 AND subject = 'New backup codes for your account'`, u.Email)
	}
	p := d.pauseAt("audit_events", "NEW.kind = 'backup_codes.regenerated'")
	done := make(chan page, 1)
	go func() { done <- b.request(http.MethodPost, "/settings/security/backup-codes", nil, nil) }()
	p.killWriter("the regeneration reached its audit event without having replaced the codes")
	assertUnavailablePage(t, <-done)
	if n, err := s.db.CountBackupCodes(context.Background(), u.ID); err != nil || n != 10 {
		t.Fatalf("%d backup codes (%v) after a regeneration that died, want the old 10", n, err)
	}
	if n := mails(); n != 0 {
		t.Fatalf("%d regeneration emails queued by a regeneration that died", n)
	}
	if evs := s.auditOf(u, "backup_codes.regenerated"); len(evs) != 0 {
		t.Fatalf("%d regeneration audit events", len(evs))
	}
	// The old codes still work; a regeneration now replaces them.
	s.signInWithCode(u, old[0])
	fresh := backupCodes(t, b.post("/settings/security/backup-codes", nil))
	if n := mails(); n != 1 {
		t.Fatalf("%d regeneration emails, want 1", n)
	}
	if p := s.tryCode(u, old[1]); p.status != http.StatusUnauthorized {
		t.Fatalf("an old backup code after the regeneration: %d", p.status)
	}
	s.signInWithCode(u, fresh[0])
}

// tryCode signs u in to twofold in a new browser with password and code
// and returns the page after the code.
func (s *testServer) tryCode(u testUser, code string) page {
	s.t.Helper()
	b := s.newBrowser()
	return b.secondFactor(b.signInToSettings(u), code)
}

// signInWithCode fails unless code, as second factor, signs u in.
func (s *testServer) signInWithCode(u testUser, code string) {
	s.t.Helper()
	if p := s.tryCode(u, code); p.status != http.StatusOK || !strings.HasSuffix(p.url.Path, "/settings/security") {
		s.t.Fatalf("sign-in with %s's code: %d at %s\n%.1000s", u.Email, p.status, p.url, p.body)
	}
}

// assertUnavailablePage fails unless p is the plain "try again" page a
// request gets when the database fails under it: 503, no internals.
func assertUnavailablePage(t *testing.T, p page) {
	t.Helper()
	if p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, "Something went wrong") || leaksInternals(p.body) {
		t.Fatalf("expected the 503 page, got %d at %s:\n%.1500s", p.status, p.url, p.body)
	}
}

// assertOAuthError fails unless status and body are an OAuth error
// response that is not a 500.
func assertOAuthError(t *testing.T, what string, status int, body map[string]any) {
	t.Helper()
	if msg := oauthErrorProblem(status, body); msg != "" {
		t.Fatalf("%s: %s", what, msg)
	}
}

// oauthErrorProblem says what is wrong with a token endpoint's error
// answer, or "" when it is a proper OAuth error: JSON with an error code,
// 4xx or 503, nothing about the internals.
func oauthErrorProblem(status int, body map[string]any) string {
	code, _ := body["error"].(string)
	desc, _ := body["error_description"].(string)
	switch {
	case code == "":
		return fmt.Sprintf("no OAuth error code in %d %v", status, body)
	case status != http.StatusServiceUnavailable && (status < 400 || status >= 500):
		return "OAuth error " + code + " with status " + http.StatusText(status)
	case leaksInternals(desc):
		return "OAuth error description shows internals: " + desc
	}
	return ""
}

// leaksInternals reports text that belongs in the log, not in an answer:
// a stack, a driver's error, SQL. (Case matters: pages show an upper-case
// request id as a reference, which may spell anything.)
func leaksInternals(s string) bool {
	for _, w := range []string{"goroutine ", "panic", ".go:", "SQLSTATE", "pgconn", "pgx", "sql: ", "database", "postgres", "sqlite", "runtime error"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}
