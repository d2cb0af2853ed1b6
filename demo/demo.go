// Package demo is a tiny relying party served by twofold itself in
// development mode, so a newcomer can click "Sign in", walk the real OpenID
// Connect flow (authorization code with PKCE, through the network, as any
// application would) and see the ID token's claims. It uses the same
// libraries the end-to-end tests use: golang.org/x/oauth2 and
// coreos/go-oidc. It is never mounted outside development mode.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/mux"
	"golang.org/x/oauth2"

	"github.com/twofold-id/twofold/templates"
	"github.com/twofold-id/twofold/web"
)

// Handler is the demo relying party.
type Handler struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	Templates    *templates.Set
	Cookies      web.Cookies
	// HTTPClient reaches the issuer (discovery, token, JWKS, userinfo).
	HTTPClient *http.Client

	mu      sync.Mutex
	rp      *oidc.Provider
	pending map[string]pending // by state
	signins map[string]signin  // by demo cookie
}

type pending struct {
	nonce, verifier string
	created         time.Time
}

type signin struct {
	IDToken   string
	Claims    string // ID token claims, indented JSON
	UserInfo  string // userinfo response, indented JSON
	AMR       []string
	ACR       string
	Email     string
	AuthTime  time.Time
	Refreshed bool
}

const cookieName = "twofold_demo"

// Mount registers /demo routes.
func (h *Handler) Mount(r *mux.Router) {
	s := r.PathPrefix("/demo").Subrouter()
	s.Use(web.NoStore)
	s.HandleFunc("", h.handleHome).Methods(http.MethodGet)
	s.HandleFunc("/login", h.handleLogin).Methods(http.MethodGet)
	s.HandleFunc("/callback", h.handleCallback).Methods(http.MethodGet)
	s.HandleFunc("/logout", h.handleLogout).Methods(http.MethodGet)
}

func (h *Handler) oauth(ctx context.Context) (*oauth2.Config, *oidc.Provider, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rp == nil {
		rp, err := oidc.NewProvider(oidc.ClientContext(ctx, h.HTTPClient), h.Issuer)
		if err != nil {
			return nil, nil, err
		}
		h.rp = rp
		h.pending, h.signins = map[string]pending{}, map[string]signin{}
	}
	return &oauth2.Config{
		ClientID: h.ClientID, ClientSecret: h.ClientSecret, Endpoint: h.rp.Endpoint(),
		RedirectURL: h.Issuer + "/demo/callback", Scopes: []string{oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess},
	}, h.rp, nil
}

type page struct {
	Signin *signin
	Error  string
}

func (h *Handler) handleHome(w http.ResponseWriter, r *http.Request) {
	var p page
	h.mu.Lock()
	if s, ok := h.signins[h.Cookies.Get(r, cookieName)]; ok {
		p.Signin = &s
	}
	h.mu.Unlock()
	p.Error = r.URL.Query().Get("error")
	if err := h.Templates.Render(w, http.StatusOK, "demo", p); err != nil {
		web.Logger(r.Context()).Error("render demo", "err", err)
		web.PlainError(w, http.StatusInternalServerError)
	}
}

// handleLogin starts the code flow with PKCE S256, state and nonce.
func (h *Handler) handleLogin(w http.ResponseWriter, r *http.Request) {
	conf, _, err := h.oauth(r.Context())
	if err != nil {
		h.fail(w, r, "discovery failed", err)
		return
	}
	state, nonce, verifier := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	h.mu.Lock()
	for k, p := range h.pending {
		if time.Since(p.created) > 15*time.Minute {
			delete(h.pending, k)
		}
	}
	h.pending[state] = pending{nonce: nonce, verifier: verifier, created: time.Now()}
	h.mu.Unlock()
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if p := r.URL.Query().Get("prompt"); p == "login" || p == "consent" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", p))
	}
	http.Redirect(w, r, conf.AuthCodeURL(state, opts...), http.StatusSeeOther)
}

// handleCallback exchanges the code, verifies the ID token (signature,
// issuer, audience, expiry, nonce) and calls userinfo.
func (h *Handler) handleCallback(w http.ResponseWriter, r *http.Request) {
	ctx := oidc.ClientContext(r.Context(), h.HTTPClient)
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		http.Redirect(w, r, "/demo?error="+url.QueryEscape(e+": "+q.Get("error_description")), http.StatusSeeOther)
		return
	}
	conf, rp, err := h.oauth(ctx)
	if err != nil {
		h.fail(w, r, "discovery failed", err)
		return
	}
	h.mu.Lock()
	p, ok := h.pending[q.Get("state")]
	delete(h.pending, q.Get("state"))
	h.mu.Unlock()
	if !ok {
		h.fail(w, r, "unknown state", errors.New("state mismatch"))
		return
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		h.fail(w, r, "code exchange failed", err)
		return
	}
	s, err := h.verify(ctx, rp, conf, tok, p.nonce)
	if err != nil {
		h.fail(w, r, "token verification failed", err)
		return
	}
	id := rand.Text()
	h.mu.Lock()
	h.signins[id] = s
	h.mu.Unlock()
	h.Cookies.Set(w, cookieName, id, 0)
	http.Redirect(w, r, "/demo", http.StatusSeeOther)
}

func (h *Handler) verify(ctx context.Context, rp *oidc.Provider, conf *oauth2.Config, tok *oauth2.Token, nonce string) (signin, error) {
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.Verifier(&oidc.Config{ClientID: h.ClientID}).Verify(ctx, raw)
	if err != nil {
		return signin{}, err
	}
	if idt.Nonce != nonce {
		return signin{}, errors.New("nonce mismatch")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return signin{}, err
	}
	var std struct {
		AMR   []string `json:"amr"`
		ACR   string   `json:"acr"`
		Email string   `json:"email"`
		Auth  int64    `json:"auth_time"`
	}
	idt.Claims(&std)
	ui, err := rp.UserInfo(ctx, conf.TokenSource(ctx, tok))
	if err != nil {
		return signin{}, err
	}
	var uiClaims map[string]any
	ui.Claims(&uiClaims)
	cj, _ := json.MarshalIndent(claims, "", "  ")
	uj, _ := json.MarshalIndent(uiClaims, "", "  ")
	return signin{IDToken: raw, Claims: string(cj), UserInfo: string(uj), AMR: std.AMR, ACR: std.ACR, Email: std.Email,
		AuthTime: time.Unix(std.Auth, 0)}, nil
}

// handleLogout forgets the demo's sign-in and sends the browser to
// twofold's end_session_endpoint with id_token_hint.
func (h *Handler) handleLogout(w http.ResponseWriter, r *http.Request) {
	id := h.Cookies.Get(r, cookieName)
	h.mu.Lock()
	s, ok := h.signins[id]
	delete(h.signins, id)
	h.mu.Unlock()
	h.Cookies.Clear(w, cookieName)
	q := url.Values{"post_logout_redirect_uri": {h.Issuer + "/demo"}, "client_id": {h.ClientID}}
	if ok {
		q.Set("id_token_hint", s.IDToken)
	}
	http.Redirect(w, r, "/oauth2/sessions/logout?"+q.Encode(), http.StatusSeeOther)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, msg string, err error) {
	web.Logger(r.Context()).Warn("demo: "+msg, "err", err)
	http.Redirect(w, r, "/demo?error="+url.QueryEscape(msg), http.StatusSeeOther)
}
