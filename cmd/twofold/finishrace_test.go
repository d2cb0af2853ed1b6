package main

import (
	"net/http"
	"strings"
	"testing"

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
