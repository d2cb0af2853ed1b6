package provider

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/gorilla/mux"
	"github.com/ory/fosite/token/jwt"

	"github.com/twofold-id/twofold/seal"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/store/storetest"
	"github.com/twofold-id/twofold/templates"
)

// Fuzz targets for the id_token_hint an application sends to the
// end_session_endpoint: the keyring's signature check, and the endpoint
// itself. Seeds are in testdata/fuzz, and hints this run's key signed are
// added in code; `make fuzz` runs each for a few seconds.

const fuzzIssuer = "https://id.example.com"

// hintFuzz is a keyring with its key loaded, a provider serving the
// end-session endpoint from it, and a hint it signed, to seed with.
type hintFuzz struct {
	keys    *Keyring
	p       *Provider
	handler http.Handler
	hint    string
}

func newHintFuzz(f *testing.F) *hintFuzz {
	db := storetest.SQLite().Open(f)
	ctx := context.Background()
	k := newKeyring(f, db, 1, time.Now)
	if err := k.Load(ctx); err != nil {
		f.Fatal(err)
	}
	err := db.CreateClient(ctx, store.Client{ID: "rp", Name: "RP", RedirectURIs: []string{"https://rp.example/cb"},
		PostLogoutRedirectURIs: []string{"https://rp.example/bye"}, GrantTypes: []string{"authorization_code"},
		Scopes: []string{"openid"}, CreatedAt: time.Now()})
	if err != nil {
		f.Fatal(err)
	}
	tmpl, err := templates.Load(templates.Brand{}, "")
	if err != nil {
		f.Fatal(err)
	}
	sealer, _ := seal.New(bytes.Repeat([]byte{1}, 32), nil)
	issuer, _ := url.Parse(fuzzIssuer)
	p, err := New(Config{Issuer: issuer, AccessTokenLifespan: time.Hour, RefreshTokenLifespan: time.Hour, IDTokenLifespan: time.Hour,
		AuthorizeCodeLifespan: time.Minute}, db, k, sealer, nil, tmpl, time.Now)
	if err != nil {
		f.Fatal(err)
	}
	r := mux.NewRouter()
	p.Mount(r)
	signer := &jwt.DefaultSigner{GetPrivateKey: k.PrivateKey}
	hint, _, err := signer.Generate(ctx, jwt.MapClaims{"iss": fuzzIssuer, "sub": "u", "aud": []string{"rp"},
		"exp": time.Now().Add(-time.Hour).Unix()}, &jwt.Headers{}) // expired: a hint may be
	if err != nil {
		f.Fatal(err)
	}
	return &hintFuzz{keys: k, p: p, handler: r, hint: hint}
}

// FuzzVerifyHint: Keyring.Verify and hintAudience never panic; only a
// single signature by a published key, with that key's algorithm, verifies; an audience comes
// only from a token that verifies and names this issuer.
func FuzzVerifyHint(f *testing.F) {
	hf := newHintFuzz(f)
	f.Add(hf.hint)
	header, payload, _ := strings.Cut(hf.hint, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"x"}`))
	f.Add(none + "." + payload + ".")
	f.Add(header + "." + payload + ".AAAA")
	f.Fuzz(func(t *testing.T, token string) {
		body, err := hf.keys.Verify(token)
		aud, audErr := hf.p.hintAudience(token)
		if audErr == nil && err != nil {
			t.Fatalf("audience %v from a token that does not verify: %v", aud, err)
		}
		if err != nil {
			return
		}
		sig, perr := jose.ParseSigned(token)
		h := sig.Signatures[0].Header
		if perr != nil || len(sig.Signatures) != 1 || body == nil ||
			h.KeyID != hf.keys.ActiveKID(h.Algorithm) || (h.Algorithm != store.AlgRS256 && h.Algorithm != store.AlgES256) {
			t.Fatalf("verified %q: %v", token, perr)
		}
	})
}

// FuzzEndSession: whatever an application sends to the end-session
// endpoint, the answer is the sign-out page's address or a plain 400,
// never a 5xx; and it never leads anywhere but an address registered for
// the client named by the hint or client_id (no open redirect).
func FuzzEndSession(f *testing.F) {
	hf := newHintFuzz(f)
	f.Add(hf.hint, "", "https://rp.example/bye", "s1", false)
	f.Add(hf.hint, "rp", "https://evil.example/", "", true)
	// The genuine hint gets through, to the registered address.
	rec := httptest.NewRecorder()
	hf.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth2/sessions/logout?"+url.Values{"id_token_hint": {hf.hint},
		"post_logout_redirect_uri": {"https://rp.example/bye"}}.Encode(), nil))
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || !strings.Contains(loc, "client_id=rp") {
		f.Fatalf("the genuine hint: %d to %q", rec.Code, loc)
	}
	f.Fuzz(func(t *testing.T, hint, clientID, redirect, state string, post bool) {
		form := url.Values{}
		for k, v := range map[string]string{"id_token_hint": hint, "client_id": clientID, "post_logout_redirect_uri": redirect, "state": state} {
			if v != "" {
				form.Set(k, v)
			}
		}
		req := httptest.NewRequest(http.MethodGet, "/oauth2/sessions/logout?"+form.Encode(), nil)
		if post {
			req = httptest.NewRequest(http.MethodPost, "/oauth2/sessions/logout", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		rec := httptest.NewRecorder()
		hf.handler.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusBadRequest:
			return
		case http.StatusSeeOther:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		loc, err := url.Parse(rec.Header().Get("Location"))
		if err != nil || loc.Path != "/logout" || loc.Host != "" {
			t.Fatalf("sent to %q", rec.Header().Get("Location"))
		}
		q := loc.Query()
		if r := q.Get("post_logout_redirect_uri"); r != "" && (q.Get("client_id") != "rp" || !slices.Contains([]string{"https://rp.example/bye"}, r)) {
			t.Fatalf("sign-out would return to %q for client %q", r, q.Get("client_id"))
		}
	})
}
