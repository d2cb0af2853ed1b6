package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/twofold-id/twofold/mfa"
	"github.com/twofold-id/twofold/session"
	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/web"
)

// membersPage is the data of pages/members.html.
type membersPage struct {
	Orgs    []store.OrgMembership // organizations the viewer owns
	Org     store.Organization
	Members []memberRow
	Notice  string
}

type memberRow struct {
	ID, Email, Name, Role string
	State                 string // On, Off, Reset pending
	Factors               string
	LastSignIn            time.Time
	Self, Pending         bool
	LinkStatus            string
}

// ownedOrg picks the organization a console page is about: ?org= when the
// viewer owns it, else the first they own.
func (h *Handler) ownedOrg(r *http.Request, userID string) ([]store.OrgMembership, store.OrgMembership, error) {
	all, err := h.Store.ListUserOrganizations(r.Context(), userID)
	if err != nil {
		return nil, store.OrgMembership{}, err
	}
	var owned []store.OrgMembership
	for _, om := range all {
		if om.Role == store.RoleOwner {
			owned = append(owned, om)
		}
	}
	want := r.URL.Query().Get("org")
	for _, om := range owned {
		if want == "" || om.Org.ID == want {
			return owned, om, nil
		}
	}
	return owned, store.OrgMembership{}, errNotOwner
}

// ownerPage resolves the organization a console page shows (ownedOrg); it
// answers a refusal or failure itself and returns false then.
func (h *Handler) ownerPage(w http.ResponseWriter, r *http.Request) (session.Account, []store.OrgMembership, store.OrgMembership, bool) {
	acct, _ := session.AccountOf(r.Context())
	owned, om, err := h.ownedOrg(r, acct.User.ID)
	if errors.Is(err, errNotOwner) {
		h.refuse(w, r, err)
		return acct, nil, om, false
	} else if err != nil {
		h.fail(w, r, err)
		return acct, nil, om, false
	}
	return acct, owned, om, true
}

// handleMembers lists the organization's members with their 2FA state.
func (h *Handler) handleMembers(w http.ResponseWriter, r *http.Request) {
	acct, owned, om, ok := h.ownerPage(w, r)
	if !ok {
		return
	}
	members, err := h.Store.ListOrgMembers(r.Context(), om.Org.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page := membersPage{Orgs: owned, Org: om.Org, Notice: notices[r.URL.Query().Get("done")]}
	for _, m := range members {
		row := memberRow{ID: m.User.ID, Email: m.User.Email, Name: m.User.Name, Role: string(m.Role),
			LastSignIn: m.User.LastLoginAt, Self: m.User.ID == acct.User.ID}
		row.State, row.Factors = describe(m)
		if m.User.MFAState == store.MFAResetPending {
			row.Pending, row.LinkStatus = true, h.linkStatus(r, m.User.ID)
		}
		page.Members = append(page.Members, row)
	}
	h.render(w, r, http.StatusOK, "members", page)
}

var notices = map[string]string{
	"reset":  "Two-factor authentication was reset. The member was signed out everywhere and emailed a link to set it up again.",
	"resent": "A new link was emailed. The previous link no longer works.",
	"policy": "The organization's two-factor policy was saved.",
}

// describe is a member's 2FA state and factors in words.
func describe(m store.MemberInfo) (string, string) {
	switch {
	case m.User.MFAState == store.MFAResetPending:
		return "Reset pending", "—"
	case m.User.MFAState == store.MFAMustEnroll:
		return "Re-enrolling", "—"
	case !m.TOTP && m.Keys == 0:
		return "Off", "—"
	}
	var factors []string
	if m.TOTP {
		factors = append(factors, "Authenticator app")
	}
	if m.Keys > 0 {
		factors = append(factors, fmt.Sprintf("%d security key%s", m.Keys, plural(m.Keys)))
	}
	factors = append(factors, fmt.Sprintf("%d backup code%s", m.BackupCodes, plural(m.BackupCodes)))
	return "On", strings.Join(factors, ", ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// linkStatus says what became of the latest reset email.
func (h *Handler) linkStatus(r *http.Request, userID string) string {
	t, err := h.Store.LatestResetToken(r.Context(), userID)
	if err != nil {
		return ""
	}
	if !h.Now().Before(t.ExpiresAt) {
		return "Link expired: resend it"
	}
	m, err := h.Store.GetMail(r.Context(), t.MailID)
	switch {
	case err != nil:
		return ""
	case !m.SentAt.IsZero():
		return "Email sent " + m.SentAt.UTC().Format("2 Jan 15:04 UTC")
	case !m.FailedAt.IsZero():
		return "Email could not be delivered: resend it"
	}
	return "Email queued " + m.CreatedAt.UTC().Format("2 Jan 15:04 UTC")
}

// resetTarget authorizes a console action on the member in the URL, for
// the organization in the query or form; it answers and returns false on
// refusal.
func (h *Handler) resetTarget(w http.ResponseWriter, r *http.Request) (session.Account, store.Organization, store.User, bool) {
	acct, _ := session.AccountOf(r.Context())
	if !web.ParseForm(w, r) {
		return acct, store.Organization{}, store.User{}, false
	}
	targetID := mux.Vars(r)["user"]
	org, target, err := h.authorize(r.Context(), acct.User.ID, r.Form.Get("org"), targetID)
	if err == nil && target.ID == acct.User.ID {
		err = mfa.ErrSelfReset // owners may reset other owners, never themselves
	}
	switch {
	case errors.Is(err, errNotOwner), errors.Is(err, errNotMember), errors.Is(err, mfa.ErrSelfReset), errors.Is(err, store.ErrNotFound):
		h.refuse(w, r, err)
		return acct, org, target, false
	case err != nil:
		h.fail(w, r, err)
		return acct, org, target, false
	}
	return acct, org, target, true
}

// handleResetPage says exactly what a reset will do before it is done.
func (h *Handler) handleResetPage(w http.ResponseWriter, r *http.Request) {
	_, org, target, ok := h.resetTarget(w, r)
	if !ok {
		return
	}
	h.render(w, r, http.StatusOK, "reset_confirm", struct {
		Org    store.Organization
		Target store.User
	}{org, target})
}

func (h *Handler) handleReset(w http.ResponseWriter, r *http.Request) {
	acct, org, target, ok := h.resetTarget(w, r)
	if !ok {
		return
	}
	if _, err := h.Resets.Reset(r.Context(), target, h.event(r, acct.User.ID)); err != nil {
		h.fail(w, r, err)
		return
	}
	h.back(w, r, org.ID, "reset")
}

func (h *Handler) handleResend(w http.ResponseWriter, r *http.Request) {
	acct, org, target, ok := h.resetTarget(w, r)
	if !ok {
		return
	}
	if _, err := h.Resets.Resend(r.Context(), target, h.event(r, acct.User.ID)); errors.Is(err, mfa.ErrNotPending) {
		h.message(w, r, http.StatusConflict, "No reset pending", "This member has no reset pending, so there is no link to resend.")
		return
	} else if err != nil {
		h.fail(w, r, err)
		return
	}
	h.back(w, r, org.ID, "resent")
}

// handlePolicy sets whether the organization requires 2FA of everyone.
func (h *Handler) handlePolicy(w http.ResponseWriter, r *http.Request) {
	acct, _ := session.AccountOf(r.Context())
	if !web.ParseForm(w, r) {
		return
	}
	org, _, err := h.authorize(r.Context(), acct.User.ID, r.PostForm.Get("org"), "")
	if errors.Is(err, errNotOwner) || errors.Is(err, store.ErrNotFound) {
		h.refuse(w, r, err)
		return
	} else if err != nil {
		h.fail(w, r, err)
		return
	}
	require := r.PostForm.Get("require") == "on"
	if err := h.Store.SetOrganizationRequire2FA(r.Context(), org.ID, require); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.Store.AppendAudit(r.Context(), store.AuditEvent{At: h.Now(), Kind: "org.policy_changed", ActorID: acct.User.ID,
		OrgID: org.ID, ClientAddr: h.ClientIP.Of(r), Details: map[string]string{"require_2fa": fmt.Sprint(require)}}); err != nil {
		web.Logger(r.Context()).Error("audit policy change", "err", err)
	}
	h.back(w, r, org.ID, "policy")
}

func (h *Handler) back(w http.ResponseWriter, r *http.Request, orgID, done string) {
	http.Redirect(w, r, "/settings/members?"+url.Values{"org": {orgID}, "done": {done}}.Encode(), http.StatusSeeOther)
}
