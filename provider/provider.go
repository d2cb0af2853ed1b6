package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/hmac"

	"github.com/twofold-id/twofold/seal"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/templates"
	"github.com/twofold-id/twofold/web"
)

// Config is the provider's plain configuration.
type Config struct {
	Issuer               *url.URL
	AccessTokenLifespan  time.Duration
	RefreshTokenLifespan time.Duration
	IDTokenLifespan      time.Duration
	// AuthorizeCodeLifespan is capped at 10 minutes.
	AuthorizeCodeLifespan time.Duration
	// Clients caches client registrations (ClientTTL); shared with the
	// sign-in pages. Nil: the provider caches its own.
	Clients *ClientCache
}

// MaxCodeLifespan is the longest an authorization code may live.
const MaxCodeLifespan = 10 * time.Minute

// Interaction is the browser side of an authorize request (package consent).
type Interaction interface {
	// Authorize decides a validated authorize request. It returns a
	// finished flow, and its user as read and checked in this request,
	// when the browser's session and the user's earlier consent allow a
	// code now. Otherwise it sends the browser into the login flow and
	// returns nils, or returns a fosite error such as login_required for
	// prompt=none.
	Authorize(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, client *store.Client) (*store.LoginFlow, *store.User, error)
	// Resume consumes the finished flow id, which must be bound to this
	// browser, and returns it: its Query is the original request.
	Resume(w http.ResponseWriter, r *http.Request, flowID string) (*store.LoginFlow, error)
}

// Provider serves the OAuth 2.0 and OpenID Connect endpoints.
type Provider struct {
	cfg         Config
	store       Storage
	keys        *Keyring
	interaction Interaction
	templates   *templates.Set
	now         func() time.Time
	oauth2      fosite.OAuth2Provider
	strategy    *compose.CommonStrategy
	discovery   []byte
}

// New composes fosite with exactly the flows twofold supports.
func New(cfg Config, st Storage, keys *Keyring, sealer *seal.Sealer, interaction Interaction,
	tmpl *templates.Set, now func() time.Time) (*Provider, error) {
	if cfg.AuthorizeCodeLifespan <= 0 || cfg.AuthorizeCodeLifespan > MaxCodeLifespan {
		return nil, fmt.Errorf("authorization code lifespan must be in (0, %s]", MaxCodeLifespan)
	}
	issuer := cfg.Issuer.String()
	fc := &fosite.Config{
		AccessTokenLifespan:   cfg.AccessTokenLifespan,
		RefreshTokenLifespan:  cfg.RefreshTokenLifespan,
		IDTokenLifespan:       cfg.IDTokenLifespan,
		AuthorizeCodeLifespan: cfg.AuthorizeCodeLifespan,
		IDTokenIssuer:         issuer,
		AccessTokenIssuer:     issuer,
		TokenURL:              issuer + "/oauth2/token",
		// The HMAC key for codes and opaque tokens is derived from the
		// secret key; the database holds only their signatures.
		GlobalSecret: sealer.Key("twofold/fosite-hmac"),
		// PKCE: public clients must, and confidential ones do unless their
		// registration opts out (checked in handleAuthorize); never plain.
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		ClientSecretsHasher:            clientSecretHasher{sealer: sealer},
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:       fosite.DefaultAudienceMatchingStrategy,
		RefreshTokenScopes:             []string{"offline_access"},
		AllowedPromptValues:            []string{"login", "none", "consent"},
		// Keep redirect_uri with the code so the token request must repeat
		// it exactly (RFC 6749 §4.1.3).
		SanitationWhiteList: []string{"redirect_uri"},
		MinParameterEntropy: fosite.MinParameterEntropy,
	}
	signer := newJWTSigner(keys)
	strategy := &compose.CommonStrategy{
		CoreStrategy:               oauth2.NewHMACSHAStrategyUnPrefixed(&hmac.HMACStrategy{Config: fc}, fc),
		OpenIDConnectTokenStrategy: &openid.DefaultStrategy{Signer: signer, Config: fc},
		Signer:                     signer,
	}
	// Clients are read on every token and introspection request; cache
	// them briefly (ClientTTL).
	clients := cfg.Clients
	if clients == nil {
		clients = NewClientCache(st, now)
	}
	st = &fositeStorage{Storage: st, clients: clients, codes: strategy.CoreStrategy}
	p := &Provider{
		cfg: cfg, store: st, keys: keys, interaction: interaction, templates: tmpl, now: now, strategy: strategy,
		oauth2: compose.Compose(fc, st, strategy,
			compose.OAuth2AuthorizeExplicitFactory,
			compose.OAuth2ClientCredentialsGrantFactory,
			compose.OAuth2RefreshTokenGrantFactory,
			compose.OpenIDConnectExplicitFactory,
			compose.OpenIDConnectRefreshFactory,
			compose.OAuth2TokenIntrospectionFactory,
			compose.OAuth2TokenRevocationFactory,
			compose.OAuth2PKCEFactory,
		),
	}
	var err error
	if p.discovery, err = discoveryDocument(cfg.Issuer); err != nil {
		return nil, err
	}
	return p, nil
}

// Mount registers the provider's routes. The OAuth endpoints authenticate
// clients, not cookies, so they are not behind cross-origin protection;
// token-bearing responses are no-store.
func (p *Provider) Mount(r *mux.Router) {
	public := r.NewRoute().Subrouter()
	public.HandleFunc("/.well-known/openid-configuration", p.handleDiscovery).Methods(http.MethodGet, http.MethodHead)
	public.HandleFunc("/.well-known/jwks.json", p.handleJWKS).Methods(http.MethodGet, http.MethodHead)

	browser := r.NewRoute().Subrouter()
	browser.Use(web.NoStore)
	browser.HandleFunc("/oauth2/auth", p.handleAuthorize).Methods(http.MethodGet, http.MethodPost)
	browser.HandleFunc("/oauth2/sessions/logout", p.handleEndSession).Methods(http.MethodGet, http.MethodPost)

	backchannel := r.NewRoute().Subrouter()
	backchannel.Use(web.NoStore)
	backchannel.HandleFunc("/oauth2/token", p.handleToken).Methods(http.MethodPost)
	backchannel.HandleFunc("/oauth2/revoke", p.handleRevoke).Methods(http.MethodPost)
	backchannel.HandleFunc("/oauth2/introspect", p.handleIntrospect).Methods(http.MethodPost)
	backchannel.HandleFunc("/userinfo", p.handleUserinfo).Methods(http.MethodGet, http.MethodPost)
}

// errorPage renders a plain error page; the cause goes to the log only.
func (p *Provider) errorPage(w http.ResponseWriter, r *http.Request, status int, title, message string, cause error) {
	p.templates.Error(w, r, status, title, message, cause)
}

// clientSecretHasher verifies client secrets with HMAC-SHA256 under a key
// derived from the secret key. twofold generates every client secret with
// 256 bits of entropy, so a fast keyed hash is as safe as a slow password
// hash here: nobody can enumerate 2^256 candidates, and without the secret
// key a stolen hash cannot even be tested. User passwords keep argon2id.
type clientSecretHasher struct{ sealer *seal.Sealer }

// HashClientSecret is the stored form of a generated client secret.
func HashClientSecret(sealer *seal.Sealer, secret string) []byte {
	return sealer.MAC("client-secret", []byte(secret))
}

func (h clientSecretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	return HashClientSecret(h.sealer, string(data)), nil
}

func (h clientSecretHasher) Compare(_ context.Context, hash, data []byte) error {
	if !seal.Equal(hash, HashClientSecret(h.sealer, string(data))) {
		return errors.New("client secret mismatch")
	}
	return nil
}
