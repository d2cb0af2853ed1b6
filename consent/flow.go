package consent

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/twofold-id/twofold/session"
	"github.com/twofold-id/twofold/store"
)

var _ interface {
	Authorize(http.ResponseWriter, *http.Request, fosite.AuthorizeRequester, *store.Client) (*store.LoginFlow, *store.User, error)
	Resume(http.ResponseWriter, *http.Request, string) (*store.LoginFlow, error)
} = (*Handler)(nil)

// Authorize implements provider.Interaction. It returns a finished flow
// (not stored) and its user when the browser's session is good enough for
// the request and the user's consent covers it; otherwise it stores a
// flow, shows the sign-in form or sends the browser to the flow's next
// step, and returns nils. With prompt=none it never shows a page: it
// returns login_required or consent_required instead.
func (h *Handler) Authorize(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, client *store.Client) (*store.LoginFlow, *store.User, error) {
	ctx := r.Context()
	now := h.Now()
	form := ar.GetRequestForm()
	prompt := promptValues(form)

	sess, user, err := h.currentUser(r)
	if err != nil {
		return nil, nil, err
	}
	needLogin := user == nil || prompt["login"] || maxAgeExceeded(form, sess.AuthTime, now) ||
		!hintMatches(form.Get("login_hint"), user.Email)
	if needLogin && prompt["none"] {
		return nil, nil, fosite.ErrLoginRequired.WithHint("The user must sign in.")
	}
	flow := store.LoginFlow{ClientID: client.ID, Query: form.Encode(), RequestedAt: now, ExpiresAt: now.Add(h.flowLifetime())}
	if !needLogin {
		flow.UserID, flow.AMR, flow.AuthTime = user.ID, sess.AMR, sess.AuthTime
		stepUp, err := h.needsSecondFactor(r, &flow, *user, client)
		if err != nil {
			return nil, nil, err
		}
		if stepUp && prompt["none"] {
			return nil, nil, fosite.ErrLoginRequired.WithHint("The user must sign in with a second factor.")
		}
		need, err := h.needConsent(r, client, user.ID, ar.GetRequestedScopes(), prompt)
		if err != nil {
			return nil, nil, err
		}
		if !need && !stepUp {
			flow.GrantedScopes = ar.GetRequestedScopes()
			return &flow, user, nil
		}
		if need && prompt["none"] {
			return nil, nil, fosite.ErrConsentRequired.WithHint("The user must consent.")
		}
	}
	flow.ID, flow.BindingHash = rand.Text(), h.binding(w, r)
	if err := h.Store.CreateLoginFlow(ctx, flow); err != nil {
		return nil, nil, err
	}
	if flow.UserID == "" {
		// A new sign-in starts with the password form: it is shown here, at
		// the authorization endpoint, rather than behind a redirect to
		// /login (a round trip and a read of the flow less). It posts to
		// /login like the form there, and reloading it starts a new flow.
		h.render(w, r, http.StatusOK, "login", h.loginForm(r, flow))
		return nil, nil, nil
	}
	h.advance(w, r, &flow, false)
	return nil, nil, nil
}

// Resume implements provider.Interaction: it consumes a finished flow of
// this browser. Consumption is a conditional delete, so a flow yields at
// most one authorization code however often its URL is replayed.
func (h *Handler) Resume(w http.ResponseWriter, r *http.Request, id string) (*store.LoginFlow, error) {
	f, err := h.loadFlow(r, id)
	if err != nil {
		return nil, err
	}
	// The dispatcher alone says whether every step is done: a flow is
	// finished only when it would send the browser here, whatever state a
	// forged request may have put a single step in.
	if f.ClientID == "" || f.UserID == "" {
		return nil, errors.New("login flow is not finished")
	}
	if next, err := h.nextStep(r, &f); err != nil {
		return nil, err
	} else if next != authorizeURL(f.ID) {
		return nil, fmt.Errorf("login flow is not finished: next step %s", next)
	}
	if err := h.Store.ConsumeLoginFlow(r.Context(), id, h.Now()); err != nil {
		return nil, err
	}
	return &f, nil
}

// handleContinue is the dispatcher: it sends the browser to the flow's next
// step, or back to the authorization endpoint when every step is done.
func (h *Handler) handleContinue(w http.ResponseWriter, r *http.Request) {
	f, err := h.loadFlow(r, r.URL.Query().Get("flow"))
	if err != nil {
		h.flowError(w, r, err)
		return
	}
	next, err := h.nextStep(r, &f)
	if err != nil {
		h.flowError(w, r, err)
		return
	}
	if next == authorizeURL(f.ID) && h.Finish != nil {
		h.finish(w, r, &f)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// advance sends the browser straight to flow f's next step after a step
// is done, saving the round trip through the dispatcher. The decision is
// the dispatcher's own (nextStep), so no step can be skipped; if it cannot
// be made now, the dispatcher makes it on the next request. changed says
// the step changed f in this request: it is stored unless the flow ends
// here (finish), where storing it would only precede its deletion. (An
// owner's reset deletes a user's stored flows; one that races this step
// meets the provider's read of the user after the consumption instead.)
func (h *Handler) advance(w http.ResponseWriter, r *http.Request, f *store.LoginFlow, changed bool) {
	if f.ClientID == "" && changed {
		// A sign-in to twofold itself: nextStep consumes it when it is done.
		if !h.saveFlow(w, r, f) {
			return
		}
		changed = false
	}
	next, err := h.nextStep(r, f)
	if err == nil && next == authorizeURL(f.ID) && h.Finish != nil {
		h.finish(w, r, f)
		return
	}
	if changed && !h.saveFlow(w, r, f) {
		return
	}
	if err != nil {
		next = continueURL(f.ID)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// saveFlow stores f; on failure it answers the request and returns false.
func (h *Handler) saveFlow(w http.ResponseWriter, r *http.Request, f *store.LoginFlow) bool {
	if err := h.Store.UpdateLoginFlow(r.Context(), *f, h.Now()); err != nil {
		h.flowError(w, r, err)
		return false
	}
	return true
}

// finish ends flow f, whose every step is done, in this request: it
// consumes the flow, with the conditional delete Resume uses, so a flow
// yields at most one answer, and hands it to the provider (Finish).
func (h *Handler) finish(w http.ResponseWriter, r *http.Request, f *store.LoginFlow) {
	if err := h.Store.ConsumeLoginFlow(r.Context(), f.ID, h.Now()); err != nil {
		h.flowError(w, r, err)
		return
	}
	// The provider reads the user again, now that the flow is consumed: an
	// owner's reset that landed while this step ran (during the password
	// hash, say) finds no flow to delete when the step never stored the
	// user in it, and the user's state is then what stops the code.
	h.Finish(w, r, f)
}

// nextStep decides where flow f goes now.
func (h *Handler) nextStep(r *http.Request, f *store.LoginFlow) (string, error) {
	if f.UserID == "" {
		return "/login?flow=" + f.ID, nil
	}
	if !slices.Contains(f.AMR, "mfa") {
		user, err := h.user(r.Context(), f.UserID)
		if err != nil {
			return "", err
		}
		// An owner reset the user after this flow's password step: their
		// factors are gone, so without this stop a flow waiting for the
		// second factor would finish with the password alone.
		if user.MFAState == store.MFAResetPending {
			return "", errResetPending
		}
		enrolled, err := h.isEnrolled(r.Context(), user.ID)
		if err != nil {
			return "", err
		}
		if enrolled {
			return "/login/2fa?flow=" + f.ID, nil
		}
		need, err := h.needsSecondFactor(r, f, user, nil)
		if err != nil {
			return "", err
		}
		if need {
			return "/login/enroll?flow=" + f.ID, nil
		}
	}
	switch {
	case f.ClientID == "":
		// A sign-in to twofold itself ends at its return path.
		if err := h.Store.ConsumeLoginFlow(r.Context(), f.ID, h.Now()); err != nil {
			return "", err
		}
		return localReturn(f.Query), nil
	case f.GrantedScopes == nil && !f.Denied:
		client, err := h.Clients.GetOAuthClient(r.Context(), f.ClientID)
		if err != nil {
			return "", err
		}
		q, _ := url.ParseQuery(f.Query)
		requested := scopeList(q)
		need, err := h.needConsent(r, client, f.UserID, requested, promptValues(q))
		if err != nil {
			return "", err
		}
		if need {
			return "/consent?flow=" + f.ID, nil
		}
		// Not stored: whoever finishes the flow asks nextStep again.
		f.GrantedScopes = requested
	}
	return authorizeURL(f.ID), nil
}

// authorizeURL is what nextStep says of a finished flow. The step that
// finishes it consumes it and answers the application itself (finish);
// without Finish, or for a flow brought back later, the authorization
// endpoint consumes it through Resume.
func authorizeURL(id string) string { return "/oauth2/auth?flow=" + id }

// atStep loads flow id and checks that the dispatcher would send it to
// step (a path such as "/login/2fa": every step that uses it comes after
// the password). Otherwise it sends the browser where the flow really is
// and returns false: no step can be reached out of order, and none can be
// skipped.
func (h *Handler) atStep(w http.ResponseWriter, r *http.Request, id, step string) (store.LoginFlow, bool) {
	f, err := h.loadFlowPastPassword(r, id)
	if err != nil {
		h.flowError(w, r, err)
		return f, false
	}
	next, err := h.nextStep(r, &f)
	if err != nil {
		h.flowError(w, r, err)
		return f, false
	}
	if !strings.HasPrefix(next, step+"?") {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return f, false
	}
	return f, true
}

// needsSecondFactor reports whether flow f may not finish with the
// password alone: the user has a second factor (then every sign-in asks for
// it), must enroll one (an organization's policy, or an owner's reset), the
// client requires one, or the request's acr_values ask for one. client is
// the flow's client when the caller has it already, else nil.
func (h *Handler) needsSecondFactor(r *http.Request, f *store.LoginFlow, user store.User, client *store.Client) (bool, error) {
	ctx := r.Context()
	fs, err := h.factors(ctx, user.ID)
	if err != nil || fs.Enrolled() {
		return fs.Enrolled(), err
	}
	// No second factor yet, and none may be skipped: an organization of the
	// user requires one, or an owner's reset does.
	if fs.Required || user.MFAState == store.MFAMustEnroll {
		return true, nil
	}
	if f.ClientID == "" {
		return false, nil
	}
	q, _ := url.ParseQuery(f.Query)
	if slices.Contains(strings.Fields(q.Get("acr_values")), session.ACRMultiFactor) {
		return true, nil
	}
	if client == nil {
		var err error
		if client, err = h.Clients.GetOAuthClient(ctx, f.ClientID); err != nil {
			return false, err
		}
	}
	return client.Require2FA, nil
}

// needConsent reports whether the user must be asked: never for a
// first-party client, always for prompt=consent, otherwise unless an
// earlier grant covers every requested scope.
func (h *Handler) needConsent(r *http.Request, client *store.Client, userID string, requested []string, prompt map[string]bool) (bool, error) {
	if client.SkipConsent {
		return false, nil
	}
	if prompt["consent"] {
		return true, nil
	}
	g, err := h.Store.GetConsentGrant(r.Context(), userID, client.ID)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	for _, s := range requested {
		if !slices.Contains(g.Scopes, s) {
			return true, nil
		}
	}
	return false, nil
}

// currentUser returns the browser's session and its user, or nils when
// the browser is not signed in (or its user may not use a session).
func (h *Handler) currentUser(r *http.Request) (store.BrowserSession, *store.User, error) {
	sess, err := h.Sessions.Current(r)
	if errors.Is(err, store.ErrNotFound) {
		return sess, nil, nil
	}
	if err != nil {
		return sess, nil, err
	}
	user, err := h.Store.GetUser(r.Context(), sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return sess, nil, nil
	}
	if err != nil {
		return sess, nil, err
	}
	// A reset invalidates sessions as it happens; this is the second lock.
	if user.MFAState != store.MFANone {
		return sess, nil, nil
	}
	return sess, &user, nil
}

func (h *Handler) flowLifetime() time.Duration {
	if h.FlowLifetime > 0 {
		return h.FlowLifetime
	}
	return 15 * time.Minute
}

func promptValues(q url.Values) map[string]bool {
	m := map[string]bool{}
	for _, p := range strings.Fields(q.Get("prompt")) {
		m[p] = true
	}
	return m
}

func scopeList(q url.Values) []string { return strings.Fields(q.Get("scope")) }

// maxAgeExceeded reports whether the request's max_age rules out a sign-in
// at authTime. max_age=0 always does.
func maxAgeExceeded(q url.Values, authTime, now time.Time) bool {
	raw := q.Get("max_age")
	if raw == "" {
		return false
	}
	secs, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || secs < 0 {
		return false // fosite has refused a malformed value already
	}
	return now.Sub(authTime) > time.Duration(secs)*time.Second || secs == 0
}

// hintMatches reports whether a login_hint is compatible with the signed-in
// email: a hint naming someone else means the user wants to switch accounts.
func hintMatches(hint, email string) bool {
	return hint == "" || store.NormalizeEmail(hint) == email
}

// localReturn is the return path of a local sign-in, limited to paths on
// this host so it cannot become an open redirect.
func localReturn(query string) string {
	q, _ := url.ParseQuery(query)
	p := q.Get("return")
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	return p
}
