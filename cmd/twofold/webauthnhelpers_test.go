package main

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/descope/virtualwebauthn"

	"github.com/twofold-id/twofold/mfa/mfatest"
	"github.com/twofold-id/twofold/store/storetest"
)

// Helpers of the security-key tests: a server whose issuer is
// http://localhost:PORT, and a software authenticator
// (descope/virtualwebauthn) answering the ceremonies the pages carry, as
// templates/static/webauthn.js does in a browser.

// newKeyServer starts twofold on backend with issuer http://localhost:PORT:
// WebAuthn's relying party id is a host name, never an IP address, so
// security keys are off on the default http://127.0.0.1:PORT. Go's
// resolver reaches the loopback listener for localhost.
func newKeyServer(t *testing.T, backend storetest.Backend, opts testOptions) *testServer {
	t.Helper()
	mutate := opts.mutate
	opts.mutate = func(c *Config) {
		u, err := url.Parse(c.Issuer)
		if err != nil {
			t.Fatal(err)
		}
		c.Issuer = "http://localhost:" + u.Port()
		if mutate != nil {
			mutate(c)
		}
	}
	s := newTestServerWith(t, backend, opts)
	// The browsers and the relying party use the issuer as configured.
	s.issuer = s.a.cfg.Issuer
	return s
}

// softKey is a security key in software holding one credential; its
// counter goes up with every assertion, as a real key's does.
type softKey struct {
	t    *testing.T
	auth virtualwebauthn.Authenticator
	cred virtualwebauthn.Credential
}

func newSoftKey(t *testing.T) *softKey {
	k := &softKey{t: t, auth: virtualwebauthn.NewAuthenticator(), cred: mfatest.NewCredential()}
	k.auth.AddCredential(k.cred)
	return k
}

// keyOrigin is the relying party a browser on s reports: RP id localhost,
// origin the issuer.
func (s *testServer) keyOrigin() virtualwebauthn.RelyingParty {
	return virtualwebauthn.RelyingParty{Name: "twofold", ID: "localhost", Origin: s.issuer}
}

// create answers a registration's options and returns the response JSON.
func (k *softKey) create(rp virtualwebauthn.RelyingParty, options string) string {
	k.t.Helper()
	opts, err := virtualwebauthn.ParseAttestationOptions(options)
	if err != nil {
		k.t.Fatalf("attestation options %s: %v", options, err)
	}
	k.auth.Options.UserHandle = []byte(opts.UserID)
	return virtualwebauthn.CreateAttestationResponse(rp, k.auth, k.cred, *opts)
}

// get answers a sign-in's options and returns the response JSON.
func (k *softKey) get(rp virtualwebauthn.RelyingParty, options string) string {
	k.t.Helper()
	opts, err := virtualwebauthn.ParseAssertionOptions(options)
	if err != nil {
		k.t.Fatalf("assertion options %s: %v", options, err)
	}
	if !k.cred.IsAllowedForAssertion(*opts) {
		k.t.Fatalf("the page does not offer this key: %s", options)
	}
	k.cred.Counter++
	return virtualwebauthn.CreateAssertionResponse(rp, k.auth, k.cred, *opts)
}

// keyForm is the security-key form of a page (pages/_webauthn.html).
type keyForm struct {
	action, mode, options string
	fields                url.Values
}

var (
	keyFormOnPage = regexp.MustCompile(`(?s)<form method="post" action="([^"]+)" data-webauthn="(get|create)"[^>]*>(.*?)</form>`)
	optionsOnPage = regexp.MustCompile(`(?s)<script type="application/json" id="webauthn-options">(.*?)</script>`)
)

// keyForm reads the form and the options of the ceremony p carries.
func (p page) keyForm(t *testing.T) keyForm {
	t.Helper()
	f, o := keyFormOnPage.FindStringSubmatch(p.body), optionsOnPage.FindStringSubmatch(p.body)
	if f == nil || o == nil || !strings.Contains(p.body, `src="/static/webauthn.js`) {
		t.Fatalf("expected a security-key form, got %d at %s:\n%.3000s", p.status, p.url, p.body)
	}
	return keyForm{action: htmlUnescape(f[1]), mode: f[2], options: o[1], fields: page{body: f[3]}.hidden()}
}

// registerKey adds k in Security Settings, named name, and returns the
// page after it: the backup codes for a first factor.
func (b *browser) registerKey(s *testServer, k *softKey, name string) page {
	b.t.Helper()
	f := b.get(s.issuer + "/settings/security/keys/new").keyForm(b.t)
	if f.mode != "create" || f.action != "/settings/security/keys" {
		b.t.Fatalf("key page form: %+v", f)
	}
	f.fields.Set("response", k.create(s.keyOrigin(), f.options))
	f.fields.Set("name", name)
	return b.post(f.action, f.fields)
}

// useKey answers the security-key form on p with k, as a browser at rp.
func (b *browser) useKey(p page, k *softKey, rp virtualwebauthn.RelyingParty) page {
	b.t.Helper()
	f := p.keyForm(b.t)
	if f.mode != "get" || f.action != "/login/2fa/key" || !strings.Contains(p.body, "Use your security key") {
		b.t.Fatalf("expected the second-factor page offering a key, got %+v at %s", f, p.url)
	}
	f.fields.Set("response", k.get(rp, f.options))
	return b.post(f.action, f.fields)
}
