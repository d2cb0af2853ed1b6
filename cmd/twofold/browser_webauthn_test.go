package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/twofold-id/twofold/store"
)

// rpCallback is the relying party's redirect URI, on a loopback port: it
// hands each callback's query to the test and shows a small page.
type rpCallback struct {
	*httptest.Server
	got chan url.Values
}

func newRPCallback(t *testing.T) *rpCallback {
	t.Helper()
	cb := &rpCallback{got: make(chan url.Values, 1)}
	cb.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			w.WriteHeader(http.StatusNoContent) // the browser's /favicon.ico
			return
		}
		select {
		case cb.got <- r.URL.Query():
		default:
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><html lang="en"><title>Test App</title><h1>Signed in to Test App</h1></html>`)
	}))
	t.Cleanup(cb.Close)
	return cb
}

// query returns the first callback's query.
func (cb *rpCallback) query(t *testing.T) url.Values {
	t.Helper()
	select {
	case q := <-cb.got:
		return q
	case <-time.After(5 * time.Second):
		t.Fatal("the relying party's callback was never called")
		return nil
	}
}

// TestBrowserSecurityKey plays the security-key journey in Chromium, with
// Chrome's virtual authenticator as the key: a member signs in to Security
// settings, adds a key, saves the backup codes and signs out; then an
// application's sign-in asks for the password and the key, and the
// application's ID token says so (amr pwd+hwk+mfa, acr mfa).
func TestBrowserSecurityKey(t *testing.T) {
	s := newBrowserTestServer(t, testOptions{})
	u := s.createUser("ada@example.com")
	cb := newRPCallback(t)
	rp := s.newRP(store.Client{Name: "Test App", SkipConsent: true, RequirePKCE: true, RedirectURIs: []string{cb.URL + "/callback"}})
	tab := newChromeTab(t, "security-key")
	key := tab.addVirtualAuthenticator(cdpwebauthn.VirtualAuthenticatorOptions{
		Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Transport: cdpwebauthn.AuthenticatorTransportUsb,
		HasResidentKey: false, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	})

	addKeyInSettings(tab, s, u, "Blue YubiKey")
	creds := tab.credentials(key)
	if len(creds) != 1 || creds[0].RpID != "localhost" || creds[0].IsResidentCredential {
		t.Fatalf("the authenticator should hold one non-resident credential for localhost, has %+v", creds)
	}

	// Signs out from the account page; the key stays in the authenticator.
	tab.navigate("open the account page", http.StatusOK, chromedp.Click(chromedp.CSS(`a[href="/"]:not(.product)`)))
	tab.expectPage("account", s.issuer+"/", "Your account")
	tab.navigate("sign out", http.StatusOK, chromedp.Click(chromedp.CSS(`form[action="/logout"] button[type="submit"]`)))
	tab.expectPage("signed-out", s.issuer+"/logout", "You are signed out")

	ar := rp.authRequest()
	signInWithKey(tab, s, u, ar.url)
	tab.expectPage("back-at-the-app", cb.URL+"/callback?", "Signed in to Test App")
	q := cb.query(t)
	if q.Get("state") != ar.state || q.Get("code") == "" {
		t.Fatalf("callback without code or with the wrong state: %v", q)
	}
	in := rp.exchange(q.Get("code"), ar)
	if want := []string{"pwd", "hwk", "mfa"}; !slices.Equal(in.claims.AMR, want) {
		t.Errorf("amr = %q, want %q", in.claims.AMR, want)
	}
	if in.claims.ACR != "urn:twofold:acr:mfa" {
		t.Errorf("acr = %q, want urn:twofold:acr:mfa", in.claims.ACR)
	}
	if in.claims.Sub != u.ID || in.claims.Email != u.Email {
		t.Errorf("signed in as %q <%s>, want %q <%s>", in.claims.Sub, in.claims.Email, u.ID, u.Email)
	}
	if creds := tab.credentials(key); len(creds) != 1 || creds[0].SignCount < 2 {
		t.Errorf("the key should have signed twice (registration, sign-in): %+v", creds)
	}
}

// addKeyInSettings signs u in to Security settings with the password,
// adds a security key named name (the tab's authenticator answers), saves
// the backup codes a first factor brings, and checks the key is listed.
func addKeyInSettings(tab *chromeTab, s *testServer, u testUser, name string) {
	tab.t.Helper()
	tab.navigate("open Security settings", http.StatusOK, chromedp.Navigate(s.issuer+"/settings/security"))
	tab.expectPage("sign-in", s.issuer+"/login", "Sign in")
	tab.signIn(u)
	tab.expectPage("security-settings", s.issuer+"/settings/security", "Security settings")

	tab.navigate("open Add a security key", http.StatusOK, chromedp.Click(chromedp.CSS(`a[href="/settings/security/keys/new"]`)))
	tab.do("name the key", chromedp.WaitVisible(chromedp.ID("key-name")), chromedp.SendKeys(chromedp.ID("key-name"), name))
	tab.expectPage("add-key", s.issuer+"/settings/security/keys/new", "Add a security key")
	tab.navigate("add the key", http.StatusOK, chromedp.Click(chromedp.CSS(`form[data-webauthn="create"] button[type="submit"]`)))

	tab.expectPage("backup-codes", s.issuer+"/settings/security/keys", "Save your backup codes")
	codes := chromeRun(tab, "read the backup codes", chromedp.Evaluate[[]string](`[...document.querySelectorAll("ul.codes code")].map(c => c.textContent)`))
	if len(codes) != 10 {
		tab.fail("%d backup codes on the page, want 10: %q", len(codes), codes)
	}
	tab.navigate("I have saved my codes", http.StatusOK, chromedp.Click(chromedp.CSS(`a.button.primary`)))
	tab.expectPage("security-settings-with-key", s.issuer+"/settings/security", "Security settings")
	if keys := chromeRun(tab, "read the keys", chromedp.Text(chromedp.CSS("ul.keys"))); !strings.Contains(keys, name) || !strings.Contains(keys, "security key") {
		tab.fail("the new key is not listed as a security key: %q", keys)
	}
}

// signInWithKey follows an application's authorization request: the
// sign-in page, then the second factor with the security key.
func signInWithKey(tab *chromeTab, s *testServer, u testUser, authURL string) {
	tab.t.Helper()
	tab.navigate("the application asks to sign in", http.StatusOK, chromedp.Navigate(authURL))
	tab.expectPage("app-sign-in", s.issuer+"/oauth2/auth", "Sign in")
	if to := chromeRun(tab, "read the application's name", chromedp.Text(chromedp.CSS("p.lead"))); !strings.Contains(to, "Test App") {
		tab.fail("the sign-in page does not name the application: %q", to)
	}
	tab.signIn(u)
	tab.expectPage("second-factor", s.issuer+"/login/2fa", "Two-factor authentication")
	use := `form[data-webauthn="get"] button[type="submit"]`
	if label := chromeRun(tab, "read the key button", chromedp.Text(chromedp.CSS(use))); label != "Use your security key" {
		tab.fail("the key button says %q", label)
	}
	tab.navigate("use the security key", http.StatusOK, chromedp.Click(chromedp.CSS(use)))
}
