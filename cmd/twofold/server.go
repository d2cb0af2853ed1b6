package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/gorilla/mux"

	"github.com/twofold-id/twofold/admin"
	"github.com/twofold-id/twofold/consent"
	"github.com/twofold-id/twofold/mail"
	"github.com/twofold-id/twofold/metrics"
	"github.com/twofold-id/twofold/mfa"
	"github.com/twofold-id/twofold/password"
	"github.com/twofold-id/twofold/provider"
	"github.com/twofold-id/twofold/session"
	"github.com/twofold-id/twofold/templates"
	"github.com/twofold-id/twofold/web"
)

// maxBody caps request bodies; no form or token request comes near it.
const maxBody = 64 << 10

// server is the wired HTTP application and what runs beside it.
type server struct {
	handler http.Handler
	// router is the route table inside handler; tests walk it.
	router    *mux.Router
	keys      *provider.Keyring
	passwords *password.Hasher
	templates *templates.Set
	mailer    *mail.Mailer
	// worker delivers the outbox; nil without an SMTP server.
	worker *mail.Worker
	demo   *demoData // development mode only
}

// buildServer wires every handler from its explicit dependencies. It is the
// only place that knows how the packages fit together.
func buildServer(ctx context.Context, a *app) (*server, error) {
	cfg := a.cfg
	now := a.now
	tmpl, err := loadTemplates(cfg)
	if err != nil {
		return nil, err
	}
	keys := &provider.Keyring{Store: a.db, Sealer: a.sealer, Now: now, Retain: cfg.IDTokenLifespan, Log: a.log}
	if err := keys.Load(ctx); err != nil {
		return nil, err
	}
	issuer := cfg.issuerURL()
	cookies := web.NewCookies(issuer)
	proxies, _ := cfg.trustedProxies() // validated
	clientIP := web.ClientIP{Trusted: proxies}
	passwords := password.New(a.passwordParams, 0)
	sessions := &session.Manager{Store: a.db, Cookies: cookies, Now: now, Idle: cfg.SessionIdleTimeout, MaxAge: cfg.SessionMaxAge}

	mailer := &mail.Mailer{Store: a.db, Templates: tmpl, Now: now}
	worker, err := mailWorker(a, now)
	if err != nil {
		return nil, err
	}
	factors, err := factorService(a, mailer)
	if err != nil {
		return nil, err
	}
	if worker != nil {
		factors.Delivered = worker.Nudge
	}
	settings := &mfa.Handler{Factors: factors, Users: a.db, Sessions: sessions, Templates: tmpl, ClientIP: clientIP, Now: now}
	resetLinks := &mfa.ResetLinks{Factors: factors, Limiter: a.db, Templates: tmpl, ClientIP: clientIP, Host: issuer.Host, Now: now}
	// One client cache serves the provider and the sign-in pages.
	clients := provider.NewClientCache(a.db, now)
	flows := &consent.Handler{
		Store: a.db, Clients: clients, Passwords: passwords, Factors: factors, Sessions: sessions, Templates: tmpl, Cookies: cookies, ClientIP: clientIP, Now: now,
		FlowLifetime: cfg.LoginFlowLifespan, AccountLimit: consent.DefaultAccountLimit, AddressLimit: consent.DefaultAddressLimit,
	}
	oidc, err := provider.New(provider.Config{
		Issuer: issuer, AccessTokenLifespan: cfg.AccessTokenLifespan, RefreshTokenLifespan: cfg.RefreshTokenLifespan,
		IDTokenLifespan: cfg.IDTokenLifespan, AuthorizeCodeLifespan: cfg.AuthorizeCodeLifespan, Clients: clients,
	}, a.db, keys, a.sealer, flows, tmpl, now)
	if err != nil {
		return nil, err
	}
	// A flow's last step answers the application itself, rather than
	// sending the browser back through the authorization endpoint.
	flows.Finish = oidc.Finish
	console := &admin.Handler{Store: a.db, Resets: factors, Sessions: sessions, Templates: tmpl, ClientIP: clientIP, Now: now,
		Tokens: func(ctx context.Context, token string) (admin.BearerToken, error) {
			info, err := oidc.InspectAccessToken(ctx, token)
			return admin.BearerToken(info), err
		}}

	r := mux.NewRouter()
	allowed, _ := parsePrefixes(cfg.MetricsNetworks) // validated
	meters := metrics.New(a.db, r, allowed, clientIP)
	a.db.SetAuditHook(meters.CountAudit)
	meters.Mount(r)
	r.PathPrefix("/static/").Handler(tmpl.Static())
	ops := &opsHandler{db: a.db}
	ops.Mount(r)
	oidc.Mount(r)
	flows.Mount(r)
	settings.Mount(r)
	resetLinks.Mount(r)
	console.Mount(r)
	var demoInfo *demoData
	if cfg.Dev {
		if demoInfo, err = mountDev(ctx, r, a, passwords, tmpl, cookies); err != nil {
			return nil, err
		}
		if worker == nil {
			(&mail.DevOutbox{Store: a.db, Templates: tmpl}).Mount(r)
		}
	} else if worker == nil {
		a.log.Warn("no SMTP server configured (TWOFOLD_SMTP_URL): mail stays in the outbox and is not delivered")
	}
	unrouted := web.NotFoundOrNotAllowed(r)
	r.NotFoundHandler, r.MethodNotAllowedHandler = unrouted, unrouted

	handler := web.Logging(a.log, meters.Observe)(web.SecurityHeaders(web.LimitBody(maxBody)(r)))
	return &server{handler: handler, router: r, keys: keys, passwords: passwords, templates: tmpl, mailer: mailer, worker: worker, demo: demoInfo}, nil
}

// factorService is the second-factor service, shared by the server and
// the operator's reset command.
func factorService(a *app, mailer mfa.Mailer) (*mfa.Service, error) {
	cfg := a.cfg
	issuer := cfg.issuerURL()
	var wa *webauthn.WebAuthn
	if _, err := netip.ParseAddr(issuer.Hostname()); err == nil {
		// WebAuthn's relying party id is a domain; browsers refuse an IP
		// address. Such an issuer works, without security keys.
		a.log.Warn("the issuer's host is an IP address: security keys are unavailable; use a host name such as localhost",
			"issuer", cfg.Issuer)
	} else if wa, err = mfa.NewWebAuthn(cfg.BrandName, issuer.Hostname(),
		append([]string{issuer.Scheme + "://" + issuer.Host}, cfg.WebAuthnOrigins...)); err != nil {
		return nil, fmt.Errorf("webauthn: %w", err)
	}
	return &mfa.Service{Store: a.db, Sealer: a.sealer, Mailer: mailer, Issuer: cfg.BrandName,
		SettingsURL: cfg.Issuer + "/settings/security", Now: a.now, Rand: rand.Reader, UserLimit: mfa.DefaultUserLimit,
		ResetURLBase: cfg.Issuer + "/reset/", ResetLinkLifespan: cfg.ResetLinkLifespan, WebAuthn: wa}, nil
}

// loadTemplates parses the pages and emails with the operator's branding.
func loadTemplates(cfg *Config) (*templates.Set, error) {
	return templates.Load(templates.Brand{Name: cfg.BrandName, LogoURL: cfg.BrandLogoURL, AccentColor: cfg.BrandColor}, cfg.TemplatesDir)
}

// mailWorker is the outbox's SMTP delivery, or nil when no server is set.
func mailWorker(a *app, now func() time.Time) (*mail.Worker, error) {
	if a.cfg.SMTPURL == "" {
		return nil, nil
	}
	smtp, err := mail.ParseSMTPURL(a.cfg.SMTPURL)
	if err != nil {
		return nil, err // validated already; kept for safety
	}
	smtp.From = a.cfg.MailFrom
	return &mail.Worker{Store: a.db, SMTP: smtp, Logger: a.log, Now: now}, nil
}

// opsHandler serves the operations endpoints.
type opsHandler struct {
	db interface{ Ping(context.Context) error }
}

func (o *opsHandler) Mount(r *mux.Router) {
	r.HandleFunc("/healthz", o.handleHealth).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", o.handleReady).Methods(http.MethodGet, http.MethodHead)
}

// handleHealth says the process is up.
func (o *opsHandler) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// handleReady says whether the database answers within a second.
func (o *opsHandler) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := o.db.Ping(ctx); err != nil {
		web.Logger(r.Context()).Warn("not ready", "err", err)
		web.PlainError(w, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ready\n"))
}
