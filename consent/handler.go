package consent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/twofold-id/twofold/mfa"
	"github.com/twofold-id/twofold/session"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/templates"
	"github.com/twofold-id/twofold/web"
)

// Store is what the browser flow needs of the store.
type Store interface {
	GetUser(ctx context.Context, id string) (store.User, error)
	GetUserByEmail(ctx context.Context, email string) (store.User, error)
	// GetUserWithFactors reads a user and their second factors at a
	// glance in one query.
	GetUserWithFactors(ctx context.Context, id string) (store.User, store.FactorSummary, error)
	// RecordLogin records a sign-in: the user's last sign-in time and
	// its audit event, together.
	RecordLogin(ctx context.Context, e store.AuditEvent) error
	CreateLoginFlow(ctx context.Context, f store.LoginFlow) error
	GetLoginFlow(ctx context.Context, id string, now time.Time) (store.LoginFlow, error)
	// GetLoginFlowWithUser reads a flow past its password step with its
	// user and their second factors in one query.
	GetLoginFlowWithUser(ctx context.Context, id string, now time.Time) (store.LoginFlow, store.User, store.FactorSummary, error)
	UpdateLoginFlow(ctx context.Context, f store.LoginFlow, now time.Time) error
	ConsumeLoginFlow(ctx context.Context, id string, now time.Time) error
	GetConsentGrant(ctx context.Context, userID, clientID string) (store.ConsentGrant, error)
	PutConsentGrant(ctx context.Context, g store.ConsentGrant) error
	RateLimitAttempt(ctx context.Context, key string, b store.Backoff, now time.Time) error
	SettleRateLimits(ctx context.Context, reset, refund string) error
	AppendAudit(ctx context.Context, e store.AuditEvent) error
	CountFlowMFAFailure(ctx context.Context, flowID string, limit int, now time.Time) error
	ListUserOrganizations(ctx context.Context, userID string) ([]store.OrgMembership, error)
}

// SecondFactor is the second-factor service (package mfa) as the sign-in
// flow uses it.
type SecondFactor interface {
	// Summary is the user's second factors and 2FA policy in one read.
	Summary(ctx context.Context, userID string) (store.FactorSummary, error)
	Verify(ctx context.Context, user store.User, code string, ev mfa.Event) (mfa.Result, error)
	BeginTOTP(ctx context.Context, user store.User) (mfa.Enrollment, error)
	PendingTOTP(ctx context.Context, user store.User) (mfa.Enrollment, error)
	ConfirmTOTP(ctx context.Context, user store.User, code string, ev mfa.Event) ([]string, error)
	KeysAvailable() bool
	BeginKeyLogin(ctx context.Context, user store.User, binding string) (string, json.RawMessage, error)
	FinishKeyLogin(ctx context.Context, user store.User, ceremonyID, binding string, response []byte, ev mfa.Event) (mfa.Result, error)
	BeginKeyRegistration(ctx context.Context, user store.User, binding string) (string, json.RawMessage, error)
	FinishKeyRegistration(ctx context.Context, user store.User, ceremonyID, binding, name string, response []byte, ev mfa.Event) ([]string, error)
}

// Clients reads client registrations; the provider's cache
// (provider.ClientCache), so a sign-in reads each at most every few
// seconds, not on every page.
type Clients interface {
	GetOAuthClient(ctx context.Context, id string) (*store.Client, error)
}

// Passwords verifies user passwords (package password).
type Passwords interface {
	Verify(ctx context.Context, encoded, password string) error
}

// Handler serves the sign-in, consent and sign-out pages.
type Handler struct {
	Store     Store
	Clients   Clients
	Passwords Passwords
	Factors   SecondFactor
	Sessions  *session.Manager
	Templates *templates.Set
	Cookies   web.Cookies
	ClientIP  web.ClientIP
	Now       func() time.Time
	// FlowLifetime is how long a sign-in may take (default 15 minutes).
	FlowLifetime time.Duration
	// AccountLimit throttles password attempts per account,
	// AddressLimit per client address.
	AccountLimit, AddressLimit store.Backoff
	// Finish answers the authorize request of a finished, consumed flow
	// (provider.Provider.Finish). Nil: finished flows go back to the
	// authorization endpoint, which consumes them through Resume.
	Finish func(w http.ResponseWriter, r *http.Request, f *store.LoginFlow)
}

// Default password throttles. Per account: 5 free failures, then 30 s
// doubling to 15 min, forgotten after a quiet day. Per address: 30 free,
// then 1 s doubling to 5 min, forgotten after a quiet hour (generous, so a
// shared NAT is not locked out by one user's typos).
var (
	DefaultAccountLimit = store.Backoff{Free: 5, Base: 30 * time.Second, Max: 15 * time.Minute, Forget: 24 * time.Hour}
	DefaultAddressLimit = store.Backoff{Free: 30, Base: time.Second, Max: 5 * time.Minute, Forget: time.Hour}
)

// Mount registers the routes. Every page is no-store and every POST is
// refused cross-origin.
func (h *Handler) Mount(r *mux.Router) {
	pages := r.NewRoute().Subrouter()
	pages.Use(web.NoStore, web.CrossOrigin, withReads)
	pages.HandleFunc("/", h.handleHome).Methods(http.MethodGet, http.MethodHead)
	pages.HandleFunc("/login", h.handleLoginPage).Methods(http.MethodGet, http.MethodHead)
	pages.HandleFunc("/login", h.handleLogin).Methods(http.MethodPost)
	pages.HandleFunc("/login/continue", h.handleContinue).Methods(http.MethodGet)
	pages.HandleFunc("/login/2fa", h.handleSecondFactorPage).Methods(http.MethodGet, http.MethodHead)
	pages.HandleFunc("/login/2fa", h.handleSecondFactor).Methods(http.MethodPost)
	pages.HandleFunc("/login/2fa/key", h.handleSecurityKey).Methods(http.MethodPost)
	pages.HandleFunc("/login/enroll", h.handleEnrollPage).Methods(http.MethodGet, http.MethodHead)
	pages.HandleFunc("/login/enroll", h.handleEnroll).Methods(http.MethodPost)
	pages.HandleFunc("/login/enroll/key", h.handleEnrollKey).Methods(http.MethodPost)
	pages.HandleFunc("/consent", h.handleConsentPage).Methods(http.MethodGet, http.MethodHead)
	pages.HandleFunc("/consent", h.handleConsent).Methods(http.MethodPost)
	pages.HandleFunc("/logout", h.handleLogoutPage).Methods(http.MethodGet, http.MethodHead)
	pages.HandleFunc("/logout", h.handleLogout).Methods(http.MethodPost)
}

// deviceCookie binds login flows to the browser that started them.
const deviceCookie = "twofold_device"

// binding returns the hash of the browser's device cookie, setting one if
// there is none.
func (h *Handler) binding(w http.ResponseWriter, r *http.Request) []byte {
	id := h.Cookies.Get(r, deviceCookie)
	if len(id) < 26 {
		id = rand.Text()
		h.Cookies.Set(w, deviceCookie, id, 0)
	}
	sum := sha256.Sum256([]byte(id))
	return sum[:]
}

// errFlowNotHere is a flow that is missing, expired, or bound to another browser.
var errFlowNotHere = errors.New("login flow missing, expired or bound to another browser")

// errResetPending is a flow whose user an owner reset after the flow's
// password step: it goes no further until the emailed link is used.
var errResetPending = errors.New("login flow of a user whose 2FA reset is pending")

// loadFlow returns the flow id if it is alive and bound to this browser.
func (h *Handler) loadFlow(r *http.Request, id string) (store.LoginFlow, error) {
	if !plausibleFlowID(id) {
		return store.LoginFlow{}, errFlowNotHere
	}
	f, err := h.Store.GetLoginFlow(r.Context(), id, h.Now())
	if errors.Is(err, store.ErrNotFound) {
		return store.LoginFlow{}, errFlowNotHere
	}
	if err != nil {
		return store.LoginFlow{}, err
	}
	return f, h.checkBinding(r, f)
}

// loadFlowPastPassword is loadFlow for the steps after the password (the
// second factor, enrollment, consent): it reads the flow with its user and
// their factors in one query and keeps them for the request (reads). A flow
// without a user, which these steps send back to the password form, is read
// again by loadFlow.
func (h *Handler) loadFlowPastPassword(r *http.Request, id string) (store.LoginFlow, error) {
	if !plausibleFlowID(id) {
		return store.LoginFlow{}, errFlowNotHere
	}
	ctx := r.Context()
	f, user, fs, err := h.Store.GetLoginFlowWithUser(ctx, id, h.Now())
	if errors.Is(err, store.ErrNotFound) {
		return h.loadFlow(r, id)
	}
	if err != nil {
		return store.LoginFlow{}, err
	}
	if err := h.checkBinding(r, f); err != nil {
		return store.LoginFlow{}, err
	}
	rememberUserFactors(ctx, user, fs)
	return f, nil
}

// plausibleFlowID rejects, before any query, an id no flow can have.
func plausibleFlowID(id string) bool { return id != "" && len(id) <= 64 }

// checkBinding refuses flow f unless this browser started it: the hash of
// its device cookie is the flow's binding.
func (h *Handler) checkBinding(r *http.Request, f store.LoginFlow) error {
	device := h.Cookies.Get(r, deviceCookie)
	sum := sha256.Sum256([]byte(device))
	if device == "" || subtle.ConstantTimeCompare(sum[:], f.BindingHash) != 1 {
		return errFlowNotHere
	}
	return nil
}

// flowError answers a request whose flow cannot continue.
func (h *Handler) flowError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errResetPending) {
		h.resetPendingPage(w, r)
		return
	}
	if errors.Is(err, errFlowNotHere) {
		h.errorPage(w, r, http.StatusBadRequest, "Sign-in expired",
			"This sign-in has expired, was completed, or was started in another browser. Return to the application and sign in again.", nil)
		return
	}
	h.internalError(w, r, err)
}

// internalError is the page for a failure that is not the user's doing.
func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, err error) {
	h.errorPage(w, r, http.StatusServiceUnavailable, "Something went wrong",
		"Sign-in is unavailable right now. Please try again in a moment.", err)
}

// errorPage renders a plain error; the cause goes to the log only.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, title, message string, cause error) {
	h.Templates.Error(w, r, status, title, message, cause)
}

// render renders a page, falling back to a plain error if it cannot.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	h.Templates.Respond(w, r, status, page, data)
}

// audit writes an audit event; a failure is logged, not shown.
func (h *Handler) audit(r *http.Request, kind, targetID string, details map[string]string) {
	err := h.Store.AppendAudit(r.Context(), store.AuditEvent{At: h.Now(), Kind: kind, TargetID: targetID, ActorID: targetID,
		ClientAddr: h.ClientIP.Of(r), Details: details})
	if err != nil {
		web.Logger(r.Context()).Error("audit", "kind", kind, "err", err)
	}
}

// continueURL is the dispatcher's address for flow id.
func continueURL(id string) string { return "/login/continue?flow=" + id }
