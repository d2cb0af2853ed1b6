package consent

import (
	"errors"
	"net/http"

	"github.com/twofold-id/twofold/mfa"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/web"
)

// maxFlowMFAFailures ends a login flow after this many wrong second-factor
// codes; the per-user throttle (package mfa) limits guessing across flows.
const maxFlowMFAFailures = 5

// lowBackupCodes is the count at or below which sign-in warns.
const lowBackupCodes = 3

// msgInvalidCode is the one message for a wrong, replayed or throttled
// code, so the page tells an attacker nothing.
const msgInvalidCode = "That code didn't work. Check it and try again, or use a backup code."

// secondFactorPage is the data of pages/login_2fa.html.
type secondFactorPage struct {
	FlowID, ClientName, Error string
	HasTOTP                   bool
	// Key offers the user's security keys, when they have any.
	Key *mfa.KeyForm
}

// showSecondFactor renders the second-factor step: the code field, and a
// security-key ceremony (a new challenge, bound to this flow) when the
// user has keys.
func (h *Handler) showSecondFactor(w http.ResponseWriter, r *http.Request, status int, f store.LoginFlow, user store.User, errMsg string) {
	fs, err := h.factors(r.Context(), user.ID)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	page := secondFactorPage{FlowID: f.ID, ClientName: h.clientName(r, f), Error: errMsg, HasTOTP: fs.TOTP}
	if fs.Keys > 0 && h.Factors.KeysAvailable() {
		id, options, err := h.Factors.BeginKeyLogin(r.Context(), user, mfa.FlowBinding(f.ID))
		if err != nil {
			h.internalError(w, r, err)
			return
		}
		page.Key = &mfa.KeyForm{Options: options, Ceremony: id, Action: "/login/2fa/key", Mode: "get",
			Label: "Use your security key", FlowID: f.ID}
	}
	h.render(w, r, status, "login_2fa", page)
}

// factorFlow loads a flow at step (the second-factor or the enrollment
// page) and its user; otherwise it answers the request and returns false.
func (h *Handler) factorFlow(w http.ResponseWriter, r *http.Request, id, step string) (store.LoginFlow, store.User, bool) {
	f, ok := h.atStep(w, r, id, step)
	if !ok {
		return f, store.User{}, false
	}
	user, err := h.user(r.Context(), f.UserID)
	if err != nil {
		h.flowError(w, r, err)
		return f, store.User{}, false
	}
	return f, user, true
}

func (h *Handler) clientName(r *http.Request, f store.LoginFlow) string {
	if f.ClientID == "" {
		return ""
	}
	c, err := h.Clients.GetOAuthClient(r.Context(), f.ClientID)
	if err != nil {
		return ""
	}
	return c.Name
}

// handleSecondFactorPage asks for a code from the authenticator app or a
// backup code, in one field.
func (h *Handler) handleSecondFactorPage(w http.ResponseWriter, r *http.Request) {
	f, user, ok := h.factorFlow(w, r, r.URL.Query().Get("flow"), "/login/2fa")
	if !ok {
		return
	}
	h.showSecondFactor(w, r, http.StatusOK, f, user, "")
}

// handleSecondFactor checks the code. The flow's attempt is spent before
// the code is looked at (one conditional write), so a flow gets at most
// five tries however many requests race; the user's own throttle lives in
// mfa.Service.Verify.
func (h *Handler) handleSecondFactor(w http.ResponseWriter, r *http.Request) {
	if !web.ParseForm(w, r) {
		return
	}
	f, user, ok := h.factorFlow(w, r, r.PostForm.Get("flow"), "/login/2fa")
	if !ok {
		return
	}
	if !h.spendAttempt(w, r, f, user) {
		return
	}
	res, err := h.Factors.Verify(r.Context(), user, r.PostForm.Get("code"), mfa.Event{ClientAddr: h.ClientIP.Of(r)})
	if errors.Is(err, mfa.ErrInvalidCode) || errors.Is(err, mfa.ErrThrottled) {
		h.showSecondFactor(w, r, http.StatusUnauthorized, f, user, msgInvalidCode)
		return
	} else if err != nil {
		h.internalError(w, r, err)
		return
	}
	if !h.secondFactorDone(w, r, &f, user, res.AMR(), res.Method) {
		return
	}
	if res.Method == mfa.MethodBackupCode && res.BackupCodesLeft <= lowBackupCodes {
		if !h.saveFlow(w, r, &f) {
			return
		}
		h.render(w, r, http.StatusOK, "low_backup_codes", struct {
			Remaining   int
			ContinueURL string
		}{res.BackupCodesLeft, continueURL(f.ID)})
		return
	}
	h.advance(w, r, &f, true)
}

// spendAttempt spends one of the flow's second-factor attempts, before the
// code or key is checked (one conditional write); when none are left the
// flow ends. It answers the request and returns false then.
func (h *Handler) spendAttempt(w http.ResponseWriter, r *http.Request, f store.LoginFlow, user store.User) bool {
	ctx := r.Context()
	err := h.Store.CountFlowMFAFailure(ctx, f.ID, maxFlowMFAFailures, h.Now())
	if errors.Is(err, store.ErrThrottled) {
		if err := h.Store.ConsumeLoginFlow(ctx, f.ID, h.Now()); err != nil && !errors.Is(err, store.ErrNotFound) {
			web.Logger(ctx).Error("end login flow", "err", err)
		}
		h.audit(r, "mfa.flow_ended", user.ID, nil)
		h.errorPage(w, r, http.StatusTooManyRequests, "Too many attempts",
			"This sign-in has ended after too many wrong codes. Return to the application and sign in again.", nil)
		return false
	} else if err != nil {
		h.internalError(w, r, err)
		return false
	}
	return true
}

// handleSecurityKey checks a security key's answer to the challenge the
// second-factor page carried.
func (h *Handler) handleSecurityKey(w http.ResponseWriter, r *http.Request) {
	if !web.ParseForm(w, r) {
		return
	}
	f, user, ok := h.factorFlow(w, r, r.PostForm.Get("flow"), "/login/2fa")
	if !ok || !h.spendAttempt(w, r, f, user) {
		return
	}
	res, err := h.Factors.FinishKeyLogin(r.Context(), user, r.PostForm.Get("ceremony"), mfa.FlowBinding(f.ID),
		[]byte(r.PostForm.Get("response")), mfa.Event{ClientAddr: h.ClientIP.Of(r)})
	if errors.Is(err, mfa.ErrKeyRejected) || errors.Is(err, mfa.ErrThrottled) {
		h.showSecondFactor(w, r, http.StatusUnauthorized, f, user, "Your security key was not accepted. Try again, or enter a code.")
		return
	} else if err != nil {
		h.internalError(w, r, err)
		return
	}
	if h.secondFactorDone(w, r, &f, user, res.AMR(), res.Method) {
		h.advance(w, r, &f, true)
	}
}

// secondFactorDone records a proved second factor in f and signs the
// browser in with a new session id: the password-only stage never had a
// session, and a step-up replaces the weaker one. The caller stores f
// (advance or saveFlow).
func (h *Handler) secondFactorDone(w http.ResponseWriter, r *http.Request, f *store.LoginFlow, user store.User, amr []string, method string) bool {
	now := h.Now()
	f.AMR, f.AuthTime = amr, now
	if _, err := h.Sessions.Start(w, r, user.ID, amr, now); err != nil {
		h.internalError(w, r, err)
		return false
	}
	h.recordLogin(r, user.ID, "password+"+method)
	return true
}

// handleEnrollPage sets up an authenticator app inside the sign-in flow,
// for a user who must have a second factor and has none.
func (h *Handler) handleEnrollPage(w http.ResponseWriter, r *http.Request) {
	f, user, ok := h.factorFlow(w, r, r.URL.Query().Get("flow"), "/login/enroll")
	if !ok {
		return
	}
	e, err := h.enrollment(r, user)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	h.showEnroll(w, r, http.StatusOK, f, user, e, "")
}

// showEnroll renders forced enrollment: the authenticator app, and a
// security key (its own ceremony, bound to this flow).
func (h *Handler) showEnroll(w http.ResponseWriter, r *http.Request, status int, f store.LoginFlow, user store.User, e mfa.Enrollment, errMsg string) {
	page := h.enrollPage(f, e, errMsg)
	if !h.Factors.KeysAvailable() {
		h.render(w, r, status, "totp_enroll", page)
		return
	}
	id, options, err := h.Factors.BeginKeyRegistration(r.Context(), user, mfa.FlowBinding(f.ID))
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	page.Key = &mfa.KeyForm{Options: options, Ceremony: id, Action: "/login/enroll/key", Mode: "create",
		Label: "Use a security key", FlowID: f.ID}
	h.render(w, r, status, "totp_enroll", page)
}

func (h *Handler) enrollPage(f store.LoginFlow, e mfa.Enrollment, errMsg string) mfa.EnrollPage {
	return mfa.EnrollPage{Action: "/login/enroll", FlowID: f.ID, Error: errMsg, Enrollment: e,
		Intro: "Your account needs two-factor authentication before you can continue. Set up an authenticator app now."}
}

// handleEnroll confirms the authenticator app with a code from it, then
// shows the new backup codes once.
func (h *Handler) handleEnroll(w http.ResponseWriter, r *http.Request) {
	if !web.ParseForm(w, r) {
		return
	}
	f, user, ok := h.factorFlow(w, r, r.PostForm.Get("flow"), "/login/enroll")
	if !ok {
		return
	}
	ctx := r.Context()
	codes, err := h.Factors.ConfirmTOTP(ctx, user, r.PostForm.Get("code"), mfa.Event{ClientAddr: h.ClientIP.Of(r)})
	if errors.Is(err, mfa.ErrInvalidCode) {
		e, err := h.Factors.PendingTOTP(ctx, user)
		if err != nil {
			h.internalError(w, r, err)
			return
		}
		h.showEnroll(w, r, http.StatusUnauthorized, f, user, e, "That code didn't work. Enter the current code from your app.")
		return
	} else if errors.Is(err, mfa.ErrNoPending) {
		http.Redirect(w, r, "/login/enroll?flow="+f.ID, http.StatusSeeOther)
		return
	} else if err != nil {
		h.internalError(w, r, err)
		return
	}
	// Enrolling proved the new factor with a code from it.
	h.enrolled(w, r, f, user, codes, []string{"pwd", "otp", "mfa"}, "enrolled_totp")
}

// enrollment is the authenticator-app enrollment in progress, or a new
// one: reloading the page shows the same secret, so an app that already
// scanned it keeps working.
func (h *Handler) enrollment(r *http.Request, user store.User) (mfa.Enrollment, error) {
	e, err := h.Factors.PendingTOTP(r.Context(), user)
	if errors.Is(err, mfa.ErrNoPending) {
		e, err = h.Factors.BeginTOTP(r.Context(), user)
	}
	return e, err
}

// enrolled finishes forced enrollment: the flow records the new factor,
// the browser is signed in, and the backup codes are shown once.
func (h *Handler) enrolled(w http.ResponseWriter, r *http.Request, f store.LoginFlow, user store.User, codes, amr []string, method string) {
	forgetUser(r.Context(), user.ID) // enrolling changed the user's factors and state
	if h.secondFactorDone(w, r, &f, user, amr, method) && h.saveFlow(w, r, &f) {
		h.render(w, r, http.StatusOK, "backup_codes", mfa.NewBackupCodesPage(h.Templates.Brand().Name, codes, continueURL(f.ID)))
	}
}

// handleEnrollKey registers a security key as the required second factor
// inside the sign-in flow, then shows the new backup codes once.
func (h *Handler) handleEnrollKey(w http.ResponseWriter, r *http.Request) {
	if !web.ParseForm(w, r) {
		return
	}
	f, user, ok := h.factorFlow(w, r, r.PostForm.Get("flow"), "/login/enroll")
	if !ok {
		return
	}
	codes, err := h.Factors.FinishKeyRegistration(r.Context(), user, r.PostForm.Get("ceremony"), mfa.FlowBinding(f.ID),
		r.PostForm.Get("name"), []byte(r.PostForm.Get("response")), mfa.Event{ClientAddr: h.ClientIP.Of(r)})
	// ErrKeysUnavailable: a form posted to a server without security keys
	// (its issuer is an IP address) is refused like a rejected key.
	if errors.Is(err, mfa.ErrKeyRejected) || errors.Is(err, mfa.ErrKeyExists) || errors.Is(err, mfa.ErrKeysUnavailable) {
		e, perr := h.enrollment(r, user)
		if perr != nil {
			h.internalError(w, r, perr)
			return
		}
		h.showEnroll(w, r, http.StatusBadRequest, f, user, e, "The security key could not be added. Try again, or use an authenticator app.")
		return
	} else if err != nil {
		h.internalError(w, r, err)
		return
	}
	// Registering proved the key is in the user's hands.
	h.enrolled(w, r, f, user, codes, []string{"pwd", "hwk", "mfa"}, "enrolled_key")
}
