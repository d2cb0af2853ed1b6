package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
	"github.com/ory/fosite/token/jwt"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/twofold-id/twofold/mfa"
	"github.com/twofold-id/twofold/password"
	"github.com/twofold-id/twofold/provider"
	"github.com/twofold-id/twofold/seal"
	"github.com/twofold-id/twofold/session"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
)

// Fuzz targets that drive the real server (buildServer, every middleware)
// in process, on every configured backend: the forms and queries of the
// sign-in, consent, sign-out, reset-link and settings pages, and the
// OAuth endpoints' parameters. Each input is sent with what gets it past
// the route's guards (a live sign-in flow of the right step, a signed-in
// owner, client credentials); the answer must never be a 5xx nor show an
// error's text. Seeds are in testdata/fuzz; `make fuzz` runs each target
// for a few seconds.

// fuzzIssuer is the fuzz servers' issuer: a host name, so security keys
// are on.
const fuzzIssuer = "http://localhost:8080"

// newFuzzHostiles starts one server per backend with the cast of
// TestHostileInput, seeded directly through the store and the services.
func newFuzzHostiles(f *testing.F) []*hostile {
	var out []*hostile
	for _, b := range storetest.Backends(f) {
		out = append(out, newFuzzHostile(f, b))
	}
	return out
}

func newFuzzHostile(f *testing.F, b storetest.Backend) *hostile {
	ctx := context.Background()
	cfg, err := LoadConfig("", func(string) string { return "" })
	if err != nil {
		f.Fatal(err)
	}
	cfg.Issuer, cfg.DatabaseURL, cfg.DataDir, cfg.SecretKey = fuzzIssuer, b.URL(f), f.TempDir(), rand.Text()+rand.Text()
	db := storetest.OpenURL(f, cfg.databaseURL())
	key, _ := decodeSecretKey(cfg.SecretKey)
	sealer, err := seal.New(key, nil)
	if err != nil {
		f.Fatal(err)
	}
	a := &app{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), sealer: sealer, db: db, passwordParams: testPasswordParams, now: time.Now}
	srv, err := buildServer(ctx, a)
	if err != nil {
		f.Fatal(err)
	}
	h := &hostile{t: f, db: db, issuer: fuzzIssuer, raw: openRawDB(f, cfg.databaseURL(), db.Dialect()), disposable: map[string]bool{},
		http: &http.Client{Transport: inProcess{srv.handler}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if h.svc, err = factorService(a, srv.mailer); err != nil {
		f.Fatal(err)
	}
	user := func(email string) testUser {
		pw := rand.Text()
		hash, err := password.New(testPasswordParams, 1).Hash(ctx, pw)
		if err != nil {
			f.Fatal(err)
		}
		u := store.User{ID: uuid.NewString(), Email: email, EmailVerified: true, PasswordHash: hash, CreatedAt: time.Now()}
		if err := db.CreateUser(ctx, u); err != nil {
			f.Fatal(err)
		}
		return testUser{User: u, Password: pw}
	}
	h.owner, h.member, h.newbie, h.plain = user("owner@example.com"), user("member@example.com"), user("newbie@example.com"), user("plain@example.com")
	must := func(err error) {
		if err != nil {
			f.Fatal(err)
		}
	}
	// The member has an authenticator app, the newbie must enroll one.
	e, err := h.svc.BeginTOTP(ctx, h.member.User)
	must(err)
	code, err := totp.GenerateCodeCustom(e.Secret, time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	must(err)
	_, err = h.svc.ConfirmTOTP(ctx, h.member.User, code, mfa.Event{})
	must(err)
	// and a security key (its public key is not one: signing in with it
	// always fails, after the answer has been read).
	cred, err := json.Marshal(webauthn.Credential{ID: []byte("fuzz-credential"), PublicKey: []byte{0xa0}, AttestationType: "none"})
	must(err)
	must(db.CreateWebAuthnCredential(ctx, store.WebAuthnCredential{ID: []byte("fuzz-credential"), UserID: h.member.ID, Name: "Fuzz key",
		Data: string(cred), CreatedAt: time.Now()}))
	h.org = "org-acme"
	for _, o := range []store.Organization{{ID: h.org, Name: "Acme"}, {ID: "org-strict", Name: "Strict"}} {
		o.CreatedAt = time.Now()
		must(db.CreateOrganization(ctx, o))
	}
	must(db.SetOrganizationRequire2FA(ctx, "org-strict", true))
	for _, m := range []store.Membership{{OrgID: h.org, UserID: h.owner.ID, Role: store.RoleOwner}, {OrgID: h.org, UserID: h.member.ID, Role: store.RoleMember},
		{OrgID: "org-strict", UserID: h.owner.ID, Role: store.RoleOwner}, {OrgID: "org-strict", UserID: h.newbie.ID, Role: store.RoleMember}} {
		m.CreatedAt = time.Now()
		must(db.PutMembership(ctx, m))
	}
	_, err = h.svc.BeginTOTP(ctx, h.newbie.User)
	must(err)
	// Clients with fixed ids, so that the checked-in seeds name them.
	h.adminSecret = newClientSecret()
	for _, c := range []store.Client{
		{ID: "fuzz-consent", Name: "Consent", RequirePKCE: true},
		{ID: "fuzz-admin", Name: "Admin", SkipConsent: true, RequirePKCE: true, SecretHash: provider.HashClientSecret(sealer, h.adminSecret),
			Scopes: []string{"openid", "email", "profile", "offline_access", "twofold:admin"}},
		{ID: "fuzz-public", Name: "Public", Public: true},
	} {
		c.RedirectURIs, c.PostLogoutRedirectURIs, c.CreatedAt = []string{"http://127.0.0.1:5555/callback"}, []string{"http://127.0.0.1:5555/bye"}, time.Now()
		c.GrantTypes = []string{"authorization_code", "refresh_token"}
		if c.Scopes == nil {
			c.Scopes = []string{"openid", "email", "profile", "offline_access"}
		}
		must(db.CreateClient(ctx, c))
		switch c.ID {
		case "fuzz-consent":
			h.client = c
		case "fuzz-admin":
			h.adminClient = c
		default:
			h.public = c
		}
	}
	// The owner is signed in, recently, with both factors.
	ownerSession := h.newSession(h.owner, 0)
	sum := sha256.Sum256([]byte(ownerSession))
	h.ownerSessionHash, h.ownerCookies = sum[:], []*http.Cookie{{Name: session.CookieName, Value: ownerSession}}
	h.stale, h.device = h.newSession(h.member, time.Hour), "fuzz-device-"+rand.Text()
	signer := &jwt.DefaultSigner{GetPrivateKey: srv.keys.PrivateKey}
	h.idToken, _, err = signer.Generate(ctx, jwt.MapClaims{"iss": fuzzIssuer, "sub": h.owner.ID, "aud": []string{"fuzz-admin"},
		"exp": time.Now().Add(time.Hour).Unix()}, &jwt.Headers{})
	must(err)
	return h
}

// inProcess is a transport that hands requests to the server's handler.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	r.RemoteAddr = "192.0.2.1:1234"
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// fuzzRoute is a route a fuzz input goes to, and who sends it.
type fuzzRoute struct{ method, path, who string }

// fuzzOne sends one fuzz input to rt on every server and checks the
// answers: the context's valid fields come first in the query and the
// form (so the fuzzed ones after them cannot replace them), {var} in the
// path is seg, and query and body follow as they are.
func fuzzOne(t *testing.T, hs []*hostile, rt fuzzRoute, seg, query, body, auth string) {
	for _, h := range hs {
		h.t = t
		r := hostileReq{what: rt.method + " " + rt.path + " (" + rt.who + ")", method: rt.method, header: http.Header{}}
		r.path = rt.path
		if i := strings.Index(r.path, "{"); i >= 0 {
			r.path = r.path[:i] + url.PathEscape(seg) + r.path[strings.Index(r.path, "}")+1:]
		}
		valid := url.Values(mapValues(h.context(rt.who, &r))).Encode()
		r.query = join(valid, query)
		if rt.method == http.MethodPost {
			r.query, r.body, r.contentType = query, []byte(join(valid, body)), "application/x-www-form-urlencoded"
		}
		if auth != "" && !strings.ContainsAny(auth, "\x00\r\n") {
			r.header.Set("Authorization", auth)
		}
		status, header, answer, err := h.send(r)
		if err != nil {
			t.Fatal(err)
		}
		if problem := checkAnswer(r, status, header, answer); problem != "" {
			t.Fatalf("%s on %s: %s", r.what, h.db.Dialect(), problem)
		}
		h.liftThrottles()
	}
}

func join(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "&" + b
}

// pageRoutes are the pages' routes with who sends the fuzz input.
// Actions without input (turning 2FA off, new backup codes) are left out:
// from a signed-in owner any request to them is the action.
var pageRoutes = []fuzzRoute{
	{"GET", "/login", "anon"}, {"GET", "/login", "flow:login"}, {"POST", "/login", "flow:login"}, {"POST", "/login", "flow:login+email"},
	{"GET", "/login/continue", "flow:2fa"}, {"GET", "/login/2fa", "flow:2fa"}, {"POST", "/login/2fa", "flow:2fa"},
	{"POST", "/login/2fa/key", "flow:2fa+key"}, {"GET", "/login/enroll", "flow:enroll"}, {"POST", "/login/enroll", "flow:enroll"},
	{"POST", "/login/enroll/key", "flow:enroll+key"}, {"GET", "/consent", "flow:consent"}, {"POST", "/consent", "flow:consent"},
	{"GET", "/logout", "owner"}, {"POST", "/logout", "disposable"}, {"GET", "/reset/{token}", "anon"}, {"POST", "/reset/{token}", "anon"},
	{"GET", "/settings/security", "owner"}, {"GET", "/settings/security/totp", "owner"}, {"POST", "/settings/security/totp", "owner"},
	{"POST", "/settings/security/keys", "owner+key"}, {"POST", "/settings/security/keys/{id}/rename", "owner"},
	{"POST", "/settings/security/keys/{id}/remove", "owner"}, {"GET", "/settings/members", "owner"}, {"GET", "/settings/audit", "owner"},
	{"GET", "/settings/members/{user}/reset", "owner"}, {"POST", "/settings/members/{user}/reset", "owner"},
	{"POST", "/settings/members/{user}/resend", "owner"}, {"POST", "/settings/organization/require-2fa", "owner"},
}

// FuzzPages: arbitrary queries, forms and path segments to every page,
// past its guards: never a 5xx, never an error's text.
func FuzzPages(f *testing.F) {
	hs := newFuzzHostiles(f)
	f.Fuzz(func(t *testing.T, route uint8, seg, query, body string) {
		fuzzOne(t, hs, pageRoutes[int(route)%len(pageRoutes)], seg, query, body, "")
	})
}

// oauthRoutes are the OAuth endpoints with who sends the fuzz input.
var oauthRoutes = []fuzzRoute{
	{"GET", "/oauth2/auth", "anon"}, {"GET", "/oauth2/auth", "owner"}, {"POST", "/oauth2/auth", "owner"},
	{"POST", "/oauth2/token", "anon"}, {"POST", "/oauth2/token", "client"}, {"POST", "/oauth2/token", "client:refresh"},
	{"POST", "/oauth2/token", "public"}, {"POST", "/oauth2/revoke", "client"}, {"POST", "/oauth2/introspect", "client"},
	{"GET", "/userinfo", "anon"}, {"GET", "/oauth2/sessions/logout", "anon"}, {"GET", "/oauth2/sessions/logout", "hint"},
}

// FuzzOAuth2: arbitrary authorize, token, revocation, introspection,
// userinfo and end-session parameters and Authorization headers: never a
// 5xx, never an error's text.
func FuzzOAuth2(f *testing.F) {
	hs := newFuzzHostiles(f)
	f.Fuzz(func(t *testing.T, route uint8, query, body, auth string) {
		fuzzOne(t, hs, oauthRoutes[int(route)%len(oauthRoutes)], "", query, body, auth)
	})
}
