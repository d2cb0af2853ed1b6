package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twofold-id/twofold/store"
)

// TestResetRacesFinishingStep: an owner's reset that lands while the step
// finishing a sign-in runs (held here at its session's insert, after the
// password check and before the flow is consumed) stops the
// code. That step never stored the user in the flow, so the reset found
// no flow to delete; the provider reads the user once the flow is
// consumed and sees the reset.
func TestResetRacesFinishingStep(t *testing.T) {
	d := newPGDatabase(t)
	s := newTestServerWith(t, d.backend(), testOptions{})
	u := s.createUser("race@example.com") // a password and no second factor: the password finishes the flow
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
	b := s.newBrowser()
	ar := rp.authRequest()
	form := b.get(ar.url).hidden()
	form.Set("email", u.Email)
	form.Set("password", u.Password)

	// Not at the login.succeeded audit event: that is written with the
	// user's last sign-in time, which holds the user's row until it ends.
	pause := d.pauseAt("browser_sessions", "")
	done := make(chan page, 1)
	go func() { done <- b.request(http.MethodPost, "/login", form, nil) }()
	pause.waiter()
	// The reset's effect on the user, as the owner's reset writes it.
	if err := d.exec(d.url, `UPDATE users SET mfa_state = 'reset_pending' WHERE id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	pause.release()
	p := <-done
	p.location = p.header.Get("Location") // request does not follow redirects into pages
	if strings.Contains(p.location, "code=") {
		t.Fatalf("a code was issued to a user reset while their sign-in finished: %q", p.location)
	}
	if q := rp.callback(p, ar); q.Get("error") != "access_denied" {
		t.Fatalf("callback %v, want error=access_denied", q)
	}
	if n := d.query(`SELECT count(*) FROM oauth2_sessions WHERE subject = $1`, u.ID); n != 0 {
		t.Fatalf("%d oauth2 rows stored for the reset user", n)
	}
}

// TestResetRacesCodeInsert: an owner's reset that runs after the provider
// read the user but before the code was written leaves no code that
// works. The member's finishing step (their second factor) is held at
// the code's INSERT, after the user was read, and the owner resets them
// then. The INSERT holds the member's row (store.insertSessions), so the
// reset waits for it and then revokes the code. Before the INSERT was
// tied to the user, the reset finished first, found no code to revoke,
// and the code it missed could be redeemed.
func TestResetRacesCodeInsert(t *testing.T) {
	d := newPGDatabase(t)
	s := newTestServerWith(t, d.backend(), testOptions{})
	sc := s.resetScene(nil)
	rp := s.newRP(store.Client{SkipConsent: true, RequirePKCE: true})
	b := s.newBrowser()
	ar := rp.authRequest()
	p := b.login(b.get(ar.url), sc.member.Email, sc.member.Password)
	if !strings.Contains(p.url.Path, "/login/2fa") {
		t.Fatalf("expected the second-factor page, got %d at %s", p.status, p.url)
	}
	form := p.hidden()
	form.Set("code", sc.memberApp.next())

	pause := d.pauseAt("oauth2_sessions", "NEW.kind = 'code'")
	done := make(chan page, 1)
	go func() { done <- b.request(http.MethodPost, "/login/2fa", form, nil) }()
	pause.waiter()
	reset := make(chan page, 1)
	go func() {
		reset <- sc.ownerB.request(http.MethodPost, "/settings/members/"+sc.member.ID+"/reset", url1("org", sc.org), nil)
	}()
	// Let the reset run until it is done or waits on a row lock (the
	// member's, held by the paused INSERT), then let the INSERT go on.
	var resetPage page
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case resetPage = <-reset:
		default:
		}
		if resetPage.status != 0 || d.query(`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event <> 'advisory'`) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reset neither finished nor waited on a lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	pause.release()
	p = <-done
	if resetPage.status == 0 {
		resetPage = <-reset
	}
	if resetPage.status != http.StatusOK || !strings.Contains(resetPage.body, "was reset") {
		t.Fatalf("owner's reset: %d\n%.2000s", resetPage.status, resetPage.body)
	}
	if n := d.query(`SELECT count(*) FROM oauth2_sessions WHERE subject = $1`, sc.member.ID); n != 0 {
		t.Errorf("%d oauth2 rows of the reset member outlived the reset", n)
	}
	p.location = p.header.Get("Location")
	q := rp.callback(p, ar)
	if q.Get("code") == "" {
		if q.Get("error") != "access_denied" {
			t.Fatalf("callback %v: neither a code nor access_denied", q)
		}
		return
	}
	resp, body := rp.postForm("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {rp.conf.RedirectURL}, "code_verifier": {ar.verifier}})
	if resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("the code issued as the member was reset was redeemed: %d %v", resp.StatusCode, body)
	}
}
