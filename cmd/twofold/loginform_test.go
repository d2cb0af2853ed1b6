package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// TestLoginFormKeepsItsContext: the sign-in form shown again after a
// wrong password or an empty field still names the application (and
// still says why a re-authentication asks), as the first showing did; it
// keeps the email typed. The browser tests found the name missing: the
// page changed under the person, and the button moved.
func TestLoginFormKeepsItsContext(t *testing.T) {
	s := newTestServer(t, storetest.SQLite(), nil)
	u := s.createUser("keep@example.com")
	rp := s.newRP(store.Client{Name: "Billing", SkipConsent: true, RequirePKCE: true})
	b := s.newBrowser()
	first := b.get(rp.authRequest().url)
	const named = "to continue to <strong>Billing</strong>"
	if !strings.Contains(first.body, named) {
		t.Fatalf("the sign-in page does not name the application:\n%.1500s", first.body)
	}
	for name, tc := range map[string]struct {
		password, message string
		status            int
	}{
		"wrong password": {"not the password", "Incorrect email or password.", http.StatusUnauthorized},
		"empty password": {"", "Enter your email and password.", http.StatusBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			p := b.login(first, u.Email, tc.password)
			if p.status != tc.status || !strings.Contains(p.body, tc.message) || !strings.Contains(p.body, named) ||
				!strings.Contains(p.body, `value="`+u.Email+`"`) {
				t.Fatalf("%d, want %d with %q, the application's name and the email:\n%.2000s", p.status, tc.status, tc.message, p.body)
			}
		})
	}

	// A re-authentication for Security settings says why, before and after a mistake.
	local := b.get(s.issuer + "/login?reauth=1&return=%2Fsettings%2Fsecurity")
	const why = "To change your security settings, confirm it&#39;s you."
	if !strings.Contains(local.body, why) {
		t.Fatalf("the re-authentication page does not say why:\n%.1500s", local.body)
	}
	if p := b.login(local, u.Email, "not the password"); !strings.Contains(p.body, why) || strings.Contains(p.body, "to continue to") {
		t.Fatalf("after a wrong password the re-authentication page lost its reason:\n%.1500s", p.body)
	}
}
