package consent

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"

	"github.com/twofold-id/twofold/password"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/web"
)

// loginPage is the data of pages/login.html.
type loginPage struct {
	FlowID     string
	ClientName string
	Email      string
	Error      string
	Notice     string
}

// Messages shown on the sign-in page. One message covers an unknown email
// and a wrong password, so the page never reveals who has an account.
const (
	msgBadCredentials = "Incorrect email or password."
	msgThrottled      = "Too many attempts. Wait a few minutes, then try again."
)

// handleLoginPage shows the sign-in form of a flow. Without a flow it
// starts a sign-in to twofold itself, returning to ?return= afterwards.
func (h *Handler) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("flow")
	if id == "" {
		h.startLocalFlow(w, r)
		return
	}
	f, err := h.loadFlow(r, id)
	if err != nil {
		h.flowError(w, r, err)
		return
	}
	if f.UserID != "" {
		http.Redirect(w, r, continueURL(f.ID), http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "login", h.loginForm(r, f))
}

// loginForm is the sign-in form of flow f: the application it signs in
// to, the email the application hinted at, and why the user is asked
// again when it is a re-authentication.
func (h *Handler) loginForm(r *http.Request, f store.LoginFlow) loginPage {
	page := loginPage{FlowID: f.ID}
	q, _ := url.ParseQuery(f.Query)
	if q.Get("reauth") == "1" {
		page.Notice = "To change your security settings, confirm it's you."
	}
	if f.ClientID != "" {
		page.Email = q.Get("login_hint")
		page.ClientName = h.clientName(r, f)
	}
	return page
}

// startLocalFlow creates a flow that signs in to twofold itself.
func (h *Handler) startLocalFlow(w http.ResponseWriter, r *http.Request) {
	now := h.Now()
	q := url.Values{"return": {localReturn("return=" + url.QueryEscape(r.URL.Query().Get("return")))}}
	if r.URL.Query().Get("reauth") == "1" {
		q.Set("reauth", "1")
	}
	f := store.LoginFlow{ID: rand.Text(), BindingHash: h.binding(w, r), Query: q.Encode(),
		RequestedAt: now, ExpiresAt: now.Add(h.flowLifetime())}
	if err := h.Store.CreateLoginFlow(r.Context(), f); err != nil {
		h.internalError(w, r, err)
		return
	}
	http.Redirect(w, r, "/login?flow="+f.ID, http.StatusSeeOther)
}

// handleLogin checks an email and password.
//
// Both the address and the account are throttled before the password is
// looked at, and the attempt is counted up front (store.RateLimitAttempt),
// so parallel guesses cannot all slip under the limit. An unknown email
// costs the same argon2id work as a known one and gets the same message.
func (h *Handler) handleLogin(w http.ResponseWriter, r *http.Request) {
	if !web.ParseForm(w, r) {
		return
	}
	ctx := r.Context()
	f, err := h.loadFlow(r, r.PostForm.Get("flow"))
	if err != nil {
		h.flowError(w, r, err)
		return
	}
	email := store.NormalizeEmail(r.PostForm.Get("email"))
	if email == "" || r.PostForm.Get("password") == "" {
		h.loginAgain(w, r, http.StatusBadRequest, f, email, "Enter your email and password.")
		return
	}
	now := h.Now()
	addrKey, acctKey := "pwd-addr:"+h.ClientIP.Of(r), "pwd-acct:"+digest(email)
	err = h.Store.RateLimitAttempt(ctx, addrKey, h.AddressLimit, now)
	if err == nil {
		err = h.Store.RateLimitAttempt(ctx, acctKey, h.AccountLimit, now)
	}
	if errors.Is(err, store.ErrThrottled) {
		h.audit(r, "login.throttled", "", map[string]string{"reason": "password"})
		h.loginAgain(w, r, http.StatusTooManyRequests, f, email, msgThrottled)
		return
	} else if err != nil {
		h.internalError(w, r, err)
		return
	}

	user, err := h.Store.GetUserByEmail(ctx, email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.internalError(w, r, err)
		return
	}
	// user.PasswordHash is "" for an unknown email: Verify then spends the
	// same work on a dummy hash and fails.
	if err := h.Passwords.Verify(ctx, user.PasswordHash, r.PostForm.Get("password")); err != nil {
		if !errors.Is(err, password.ErrMismatch) {
			h.internalError(w, r, err)
			return
		}
		h.audit(r, "login.failed", user.ID, map[string]string{"factor": "password"})
		h.loginAgain(w, r, http.StatusUnauthorized, f, email, msgBadCredentials)
		return
	}
	if err := h.Store.SettleRateLimits(ctx, acctKey, addrKey); err != nil {
		web.Logger(ctx).Error("reset password throttle", "err", err)
	}
	// Only the user is kept for the steps after the hash: whether a second
	// factor is needed is decided on factors read after it (needsSecondFactor),
	// so an authenticator app confirmed, or an organization's policy turned
	// on, while the hash ran is not missed.
	rememberUser(ctx, user)
	h.passwordVerified(w, r, f, user)
}

// loginAgain shows the sign-in form again with the email typed and an
// error; the rest is as the first showing (the application's name above
// all), so the page does not change under the person.
func (h *Handler) loginAgain(w http.ResponseWriter, r *http.Request, status int, f store.LoginFlow, email, msg string) {
	page := h.loginForm(r, f)
	page.Email, page.Error = email, msg
	h.render(w, r, status, "login", page)
}

// passwordVerified moves the flow on after a correct password.
func (h *Handler) passwordVerified(w http.ResponseWriter, r *http.Request, f store.LoginFlow, user store.User) {
	if user.MFAState == store.MFAResetPending {
		// While an owner's reset is pending, a password alone never yields
		// a session: the emailed link must be used first.
		h.resetPendingPage(w, r)
		return
	}
	now := h.Now()
	f.UserID, f.AMR, f.AuthTime = user.ID, []string{"pwd"}, now
	more, err := h.needsSecondFactor(r, &f, user, nil)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	if !more {
		// Nothing more to prove: the browser is signed in now. The session
		// id changes here, so whatever id it had before is worthless.
		if _, err := h.Sessions.Start(w, r, user.ID, f.AMR, now); err != nil {
			h.internalError(w, r, err)
			return
		}
		h.recordLogin(r, user.ID, "password")
	}
	// With a second factor to come, the password is only noted in the flow:
	// no session exists until the second factor is proved.
	h.advance(w, r, &f, true)
}

// resetPendingPage tells a user whose 2FA an owner reset to use the
// emailed link first.
func (h *Handler) resetPendingPage(w http.ResponseWriter, r *http.Request) {
	h.errorPage(w, r, http.StatusForbidden, "Check your email",
		"Your two-factor authentication was reset by an owner of your organization. Open the link in the email we sent you to continue. If the link has expired, ask an owner to send a new one.", nil)
}

// recordLogin notes a completed sign-in: the user's last sign-in time and
// an audit event saying which factors were used.
func (h *Handler) recordLogin(r *http.Request, userID, method string) {
	e := store.AuditEvent{At: h.Now(), Kind: "login.succeeded", ActorID: userID, TargetID: userID,
		ClientAddr: h.ClientIP.Of(r), Details: map[string]string{"method": method}}
	if err := h.Store.RecordLogin(r.Context(), e); err != nil {
		web.Logger(r.Context()).Error("record login", "err", err)
	}
}

// digest keys rate limits by email without storing emails that may not
// belong to anyone.
func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}
